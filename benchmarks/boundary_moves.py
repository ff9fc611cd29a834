"""Where single moves improve a good placement, and what boundary descent makes of it.

    .venv/bin/python benchmarks/boundary_moves.py leaderboard/results/go-paper-v0-placement \\
        --graph go-paper-v0/rnnlm-8 \\
        --agent-config '{"placement_actions":"tree","tie_roles":true,"warm_proposal":"subtrees","warm_start":"single-device"}'

Why: the GO agent's refining phase (``refine_share``) and the ``boundary-descent`` baseline
rest on two measurements this prints from a committed row's placement (by default `go`'s,
seed 0): the share of random single-op moves (a colocation leader to another device) that
improve it, against the share of *boundary moves* (an op on an edge between devices moved
to its neighbour's device) that do, and of the 16 boundary moves that save the most
transfer bytes; and the step time `agents.search.boundary_descent` reaches from it after a
few budgets, with single moves only, with role moves, and with role and balance moves (as
the GO agent and the ``boundary-descent`` baseline run it), over a few seeds of the
descent. Figures are ratios to the placement's own step time (lower is better).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from agents.go.roles import role_groups
from agents.search import boundary_bytes_saved, boundary_descent, boundary_moves
from go_gym.cli import at_least
from go_gym.cluster import op_times
from go_gym.runner.cells import load_decisions, make_env
from go_gym.runner.results import ResultsError, read_results


def _budgets(text: str) -> list[int]:
    """``--budgets``: comma-separated evaluation budgets, each >= 1."""
    parse = at_least(1)
    budgets = [parse(b.strip()) for b in text.split(",") if b.strip()]
    if not budgets:
        raise argparse.ArgumentTypeError("no budget given")
    return budgets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a go-gym bench results directory")
    parser.add_argument("--graph", required=True, help="graph id, e.g. go-paper-v0/rnnlm-8")
    parser.add_argument("--agent", default="go")
    parser.add_argument("--agent-config", default="{}", help="the row's agent config (JSON)")
    parser.add_argument("--seed", type=int, default=0, help="the row's seed")
    parser.add_argument("--random-moves", type=at_least(1), default=2000)
    parser.add_argument("--budgets", type=_budgets, default="150,300,500", help="descent budgets")
    parser.add_argument("--descent-seeds", type=at_least(1), default=4)
    args = parser.parse_args(argv)

    try:
        wanted = json.loads(args.agent_config)
    except json.JSONDecodeError as exc:
        parser.error(f"--agent-config is not JSON ({exc}): {args.agent_config!r}")
    try:
        rows, root = read_results(args.results)
    except ResultsError as exc:
        parser.error(str(exc))
    on_graph = [r for r in rows if r.graph == args.graph]
    if not on_graph:
        parser.error(
            f"--graph: no rows of {args.graph} in {args.results}; its graphs: "
            f"{', '.join(sorted({r.graph for r in rows}))}"
        )
    match = [
        r
        for r in on_graph
        if r.agent == args.agent
        and r.seed == args.seed
        and json.loads(r.agent_config or "{}") == wanted
        and r.task == "placement"
    ]
    if not match:
        seeds: dict[str, set[int]] = {}
        for r in on_graph:
            if r.task == "placement":
                seeds.setdefault(f"{r.agent} {r.agent_config or '{}'}", set()).add(r.seed)
        parser.error(
            f"no {args.agent} {args.agent_config} placement row for {args.graph} seed "
            f"{args.seed}; placement rows of that graph: "
            + "; ".join(f"{k} seeds {sorted(v)}" for k, v in sorted(seeds.items()))
        )
    row = match[0]
    core = make_env(row.graph, row.task).unwrapped
    leader = core._context.leader
    start = load_decisions(root / row.decisions_file)["placement"][leader]
    d = core.cluster.n_devices
    if d < 2:
        parser.error(f"{row.graph} runs on one device: there is no move to another device")

    def evaluate(batch: NDArray[np.int64]) -> NDArray[np.float64]:
        return core.evaluate({"placement": batch})

    start_time = float(evaluate(start[None])[0])
    print(
        f"{row.graph}, {args.agent} {args.agent_config} seed {args.seed}: {start_time * 1e3:.2f} ms"
    )

    rng = np.random.default_rng(0)
    leaders = np.flatnonzero(leader == np.arange(len(leader)))
    ops = rng.choice(leaders, args.random_moves)
    devices = (start[ops] + rng.integers(1, d, args.random_moves)) % d
    moves = np.stack([ops, devices], axis=1)
    src, dst = leader[core.graph.edge_src], leader[core.graph.edge_dst]
    apart = src != dst
    boundary = boundary_moves(src[apart], dst[apart], start)
    n = core.graph.n_ops
    saved = boundary_bytes_saved(
        src[apart],
        dst[apart],
        core.graph.edge_bytes[apart],
        start,
        np.arange(n),
        np.arange(n + 1),
        d,
    )[: n * d]
    most_saving = boundary[np.argsort(-saved[boundary[:, 0] * d + boundary[:, 1]])[:16]]
    for name, chosen in (
        ("random single moves", moves),
        ("boundary moves", boundary),
        ("16 saving most bytes", most_saving),
    ):
        times = np.concatenate(
            [
                evaluate(_moved(start, chosen[i : i + 256], leader))
                for i in range(0, len(chosen), 256)
            ]
        )
        better = times < start_time
        print(
            f"  {name:20s} {int(better.sum()):5d} of {len(chosen):5d} improve "
            f"({better.mean():.1%}); best {times.min() * 1e3:.2f} ms"
        )

    roles = role_groups(core.graph, leader)
    op_time = op_times(core.graph, core.cluster).mean(axis=1)
    for budget in args.budgets:
        for label, kwargs in (
            ("single moves", {}),
            ("with role moves", {"roles": roles}),
            ("+ balance moves", {"roles": roles, "op_time": op_time}),
        ):
            found = [
                boundary_descent(
                    evaluate, core.graph, d, budget, seed=s, init=start, leader=leader, **kwargs
                ).best_value
                for s in range(args.descent_seeds)
            ]
            ratio = np.asarray(found) / start_time
            print(
                f"  descent, {budget:4d} evaluations, {label:15s}: refined / start "
                f"{' '.join(f'{r:.3f}' for r in ratio)} (mean {ratio.mean():.3f})"
            )


def _moved(
    start: NDArray[np.int64], moves: NDArray[np.int64], leader: NDArray[np.int64]
) -> NDArray[np.int64]:
    """One row per (op, device) move: ``start`` with that op's group on that device."""
    rows = np.repeat(start[None, :], len(moves), axis=0)
    rows[np.arange(len(moves)), moves[:, 0]] = moves[:, 1]
    return rows[:, leader]


if __name__ == "__main__":
    main()
