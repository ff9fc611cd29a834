"""The GO agent against the baselines: placement, convergence, transfer, joint optimisation.

    .venv/bin/python benchmarks/go_results.py --suite quick-v0 --budget 4000
    .venv/bin/python benchmarks/go_results.py --parts transfer --budget 4000

Writes under ``--out`` (default ``leaderboard/go``):

- ``placement_<suite>.csv``: one row per (graph, agent) with the evaluations spent, the step
  time of the final decision (re-simulated), validity and ratios to human expert / bound;
  heuristics spend 0 evaluations, every searching or learning agent exactly ``--budget``.
- ``convergence_<suite>.csv``: best step time against evaluations for GO and the searches.
- ``transfer_<suite>.csv``: pre-trained policy zero-shot and fine-tuned on held-out graphs.
- ``joint_<suite>.csv``: GOJoint-v0 (placement + scheduling + fusion) against tf-default.
- ``decisions_<part>_<suite>.npz``: every row's decisions (``<graph>|<agent>|<task>`` keys),
  NumPy arrays only, so each row can be replayed.
- ``summary_<suite>.md``: the tables and the checks against the issue's targets.

Agents: ``go`` is GO-one, PPO from scratch as in the paper; ``go+warm`` starts PPO from
the best of the placement heuristics (``agents.go.agent.WARM_CANDIDATES``, one evaluation
each, charged), held as a fixed prior on the logits, a warm start the paper does not use.
Searches start from the TensorFlow default like the paper's HDP baseline, and
``annealing+warm`` from the m-SCT placement.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch

import agents
import go_gym  # noqa: F401  (registers the env ids)
from agents.base import EnvAgent, HeuristicAgent, SearchAgent, core_env
from agents.go.agent import GOAgent
from agents.go.checkpoint import DEFAULT_CHECKPOINT, policy_state, save_checkpoint
from agents.go.model import PLACEMENT_ACTIONS, GOConfig
from agents.go.ppo import PPOConfig, PPOTrainer, make_policy
from go_gym.cli import at_least
from go_gym.envs.graph_env import GraphOptEnv
from go_gym.generators import random_layered_graph
from go_gym.zoo import list_graphs
from go_gym.zoo.suites import get_entry

HEURISTICS = ("human-expert", "metis", "m-etf", "m-sct", "heft", "critical-path")
SEARCHES = ("random-search", "annealing", "brkga")
#: The parts ``--parts`` may name, in the order they run.
PARTS = ("placement", "transfer", "joint")
AgentT = TypeVar("AgentT")
FIELDS = [
    "suite",
    "graph",
    "task",
    "agent",
    "seed",
    "budget",
    "evaluations",
    "step_time_s",
    "valid",
    "lower_bound_s",
    "vs_human_expert",
    "vs_bound",
    "wall_s",
    "decisions_key",
]


def replay(env_id: str, graph: str, decisions: dict[str, np.ndarray]) -> tuple[float, bool]:
    """Step time and validity of ``decisions`` on a fresh env (the check a replay makes)."""
    env = gym.make(env_id, graph=graph)
    env.reset(seed=0)
    core = core_env(env)
    _, _, _, _, info = env.step(core.action_from(decisions))
    return float(info["step_time"]), bool(info["valid"])


class Results:
    """Rows and decisions of one part, written as CSV + NPZ."""

    def __init__(self, out: Path, part: str, suite: str) -> None:
        self.out, self.part, self.suite = out, part, suite
        self.rows: list[dict[str, Any]] = []
        self.decisions: dict[str, Any] = {}  # Any: numpy's stubs read **decisions as allow_pickle

    def add(
        self,
        env_id: str,
        graph: str,
        agent: str,
        decisions: dict[str, np.ndarray],
        evaluations: int,
        budget: int,
        wall: float,
        seed: int = 0,
    ) -> dict[str, Any]:
        step, valid = replay(env_id, graph, decisions)
        lb = core_env(gym.make(env_id, graph=graph)).lower_bound
        key = f"{graph}|{agent}"
        for task, decision in decisions.items():
            self.decisions[f"{key}|{task}"] = np.asarray(decision, np.int64)
        row = {
            "suite": self.suite,
            "graph": graph,
            "task": env_id,
            "agent": agent,
            "seed": seed,
            "budget": budget,
            "evaluations": evaluations,
            "step_time_s": step,
            "valid": valid,
            "lower_bound_s": lb,
            "vs_human_expert": "",
            "vs_bound": step / lb,
            "wall_s": round(wall, 2),
            "decisions_key": key,
        }
        self.rows.append(row)
        print(
            f"  {graph:32s} {agent:18s} evals={evaluations:6d} {step * 1e3:8.3f} ms "
            f"valid={valid} ({wall:.1f}s)",
            flush=True,
        )
        return row

    def write(self, reference: str | None = "human-expert") -> None:
        if reference:
            ref = {r["graph"]: r["step_time_s"] for r in self.rows if r["agent"] == reference}
            for r in self.rows:
                if r["graph"] in ref:
                    r["vs_human_expert"] = r["step_time_s"] / ref[r["graph"]]
        self.out.mkdir(parents=True, exist_ok=True)
        with (self.out / f"{self.part}_{self.suite}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(self.rows)
        np.savez_compressed(self.out / f"decisions_{self.part}_{self.suite}.npz", **self.decisions)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def make_agent(kind: type[AgentT], name: str, env: gym.Env, **kwargs: Any) -> AgentT:
    """``agents.make(name, env, **kwargs)``, checked to be a ``kind``."""
    agent = agents.make(name, env, **kwargs)
    if not isinstance(agent, kind):
        raise TypeError(f"agent {name!r} is a {type(agent).__name__}, not a {kind.__name__}")
    return agent


def run_go(env: gym.Env, budget: int, seed: int, **kwargs: Any) -> tuple[GOAgent, list[Any]]:
    agent = agents.make("go", env, seed=seed, budget=budget, **kwargs)
    assert isinstance(agent, GOAgent)
    history = list(agent.fit(env, budget).history)
    return agent, history


def part_placement(args: argparse.Namespace, graphs: list[str]) -> tuple[Results, list[dict]]:
    """Heuristics, searches and GO-one on every graph's placement, same budget."""
    res = Results(Path(args.out), "placement", args.suite)
    curves: list[dict[str, Any]] = []
    for graph in graphs:
        print(graph, flush=True)
        for name in HEURISTICS:
            env = gym.make("GOPlacement-v0", graph=graph)
            env.reset(seed=0)
            heuristic = make_agent(EnvAgent, name, env, seed=args.seed)
            dec, wall = timed(partial(heuristic.decide, core_env(env)))
            res.add("GOPlacement-v0", graph, name, dec, 0, 0, wall, args.seed)
        for name, kwargs in [(s, {}) for s in SEARCHES] + [("annealing+warm", {"init": "m-sct"})]:
            env = gym.make("GOPlacement-v0", graph=graph)
            core = core_env(env)
            method = name.split("+")[0]
            search = make_agent(SearchAgent, method, env, seed=args.seed, **kwargs)
            result, wall = timed(partial(search.fit, env, args.budget))
            res.add(
                "GOPlacement-v0",
                graph,
                name,
                {"placement": result.best},
                core.evaluations,
                args.budget,
                wall,
                args.seed,
            )
            for e, b in zip(result.curve_evals.tolist(), result.curve_best.tolist(), strict=True):
                curves.append(
                    {"graph": graph, "agent": name, "evaluations": e, "best_step_time_s": b}
                )
        for name, kwargs in [("go", {}), ("go+warm", {"warm_start": "best"})]:
            env = gym.make("GOPlacement-v0", graph=graph)
            core = core_env(env)
            (agent, history), wall = timed(partial(run_go, env, args.budget, args.seed, **kwargs))
            found = agent.best(core)
            assert found is not None
            res.add(
                "GOPlacement-v0",
                graph,
                name,
                found[1],
                core.evaluations,
                args.budget,
                wall,
                args.seed,
            )
            for s in history:
                curves.append(
                    {
                        "graph": graph,
                        "agent": name,
                        "evaluations": s.graph_evaluations,
                        "best_step_time_s": s.best_step_time,
                    }
                )
    res.write()
    with (Path(args.out) / f"convergence_{args.suite}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["graph", "agent", "evaluations", "best_step_time_s"])
        writer.writeheader()
        writer.writerows(curves)
    return res, curves


def evals_to_reach(curves: list[dict], graph: str, agent: str, target: float) -> int | None:
    """First evaluation count at which ``agent``'s best step time is <= ``target``."""
    for c in curves:
        if (
            c["graph"] == graph
            and c["agent"] == agent
            and c["best_step_time_s"] <= target * (1 + 1e-9)
        ):
            return int(c["evaluations"])
    return None


def part_transfer(args: argparse.Namespace, train: list[str], held_out: list[str]) -> Results:
    """Pre-train on synthetic + training graphs; zero-shot and fine-tune on held-out graphs."""
    res = Results(Path(args.out), "transfer", args.suite)
    envs: list[GraphOptEnv] = [core_env(gym.make("GOPlacement-v0", graph=g)) for g in train]
    for i in range(args.synthetic):
        synthetic = random_layered_graph(args.synthetic_ops, seed=1000 + i, name=f"synthetic-{i}")
        envs.append(
            core_env(gym.make("GOPlacement-v0", graph=synthetic, cluster="p100", n_devices=2))
        )
    torch.manual_seed(args.seed)
    config = GOConfig(placement_actions=args.placement_actions)
    trainer = PPOTrainer(make_policy(config, seed=args.seed), PPOConfig(), seed=args.seed)
    print(f"pre-training on {len(envs)} graphs for {args.pretrain_budget} evaluations", flush=True)
    _, wall = timed(lambda: trainer.train(envs, args.pretrain_budget))
    print(f"  pre-training took {wall:.0f}s", flush=True)
    ckpt = Path(args.checkpoint)
    save_checkpoint(ckpt, policy_state(trainer.state_dict(), [e.graph.name for e in envs]))
    print(f"  checkpoint {ckpt} ({ckpt.stat().st_size / 1e6:.2f} MB)", flush=True)
    for graph in held_out:
        env = gym.make("GOPlacement-v0", graph=graph)
        env.reset(seed=0)
        zs = make_agent(EnvAgent, "go-zeroshot", env, checkpoint=str(ckpt))
        dec, wall = timed(partial(zs.decide, core_env(env)))
        res.add("GOPlacement-v0", graph, "go-zeroshot", dec, 0, 0, wall, args.seed)
        env = gym.make("GOPlacement-v0", graph=graph)
        core = core_env(env)
        (agent, _), wall = timed(
            partial(run_go, env, args.finetune_budget, args.seed, checkpoint=str(ckpt))
        )
        found = agent.best(core)
        assert found is not None
        res.add(
            "GOPlacement-v0",
            graph,
            "go-finetune",
            found[1],
            core.evaluations,
            args.finetune_budget,
            wall,
            args.seed,
        )
        env = gym.make("GOPlacement-v0", graph=graph)
        core = core_env(env)
        (agent, _), wall = timed(
            partial(
                run_go,
                env,
                args.finetune_budget,
                args.seed,
                placement_actions=args.placement_actions,
            )
        )
        found = agent.best(core)
        assert found is not None
        res.add(
            "GOPlacement-v0",
            graph,
            "go-one-same-budget",
            found[1],
            core.evaluations,
            args.finetune_budget,
            wall,
            args.seed,
        )
    res.write(reference=None)
    return res


def part_joint(args: argparse.Namespace, graphs: list[str]) -> Results:
    """GOJoint-v0: tf-default, the best heuristic pipeline, GO joint (scratch and warm)."""
    res = Results(Path(args.out), "joint", args.suite)
    for graph in graphs:
        print(graph, flush=True)
        for name in ("tf-default", "m-sct+critical-path+xla-greedy"):
            env = gym.make("GOJoint-v0", graph=graph)
            env.reset(seed=0)
            pipeline = (
                make_agent(EnvAgent, "tf-default", env)
                if name == "tf-default"
                else HeuristicAgent(
                    env, placement="m-sct", priority="critical-path", fusion="xla-greedy"
                )
            )
            dec, wall = timed(partial(pipeline.decide, core_env(env)))
            res.add("GOJoint-v0", graph, name, dec, 0, 0, wall, args.seed)
        for name, kwargs in [("go-joint", {}), ("go-joint+warm", {"warm_start": "best"})]:
            env = gym.make("GOJoint-v0", graph=graph)
            core = core_env(env)
            (agent, _), wall = timed(partial(run_go, env, args.joint_budget, args.seed, **kwargs))
            found = agent.best(core)
            assert found is not None
            res.add(
                "GOJoint-v0",
                graph,
                name,
                found[1],
                core.evaluations,
                args.joint_budget,
                wall,
                args.seed,
            )
    for r in res.rows:
        ref = next(x for x in res.rows if x["graph"] == r["graph"] and x["agent"] == "tf-default")
        r["vs_human_expert"] = ""
        r["vs_tf_default"] = r["step_time_s"] / ref["step_time_s"]
    FIELDS.append("vs_tf_default") if "vs_tf_default" not in FIELDS else None
    res.write(reference=None)
    return res


def geomean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def summary(
    args: argparse.Namespace,
    placement: Results | None,
    curves: list[dict],
    transfer: Results | None,
    joint: Results | None,
) -> str:
    """Markdown tables and the checks against the issue's targets."""
    lines = [f"# GO agent results on {args.suite} (seed {args.seed})", ""]
    lines.append(f"Command: `.venv/bin/python benchmarks/go_results.py {' '.join(args.argv)}`")
    lines.append("")
    if placement is not None:
        rows = placement.rows
        graphs = list(dict.fromkeys(r["graph"] for r in rows))
        names = list(dict.fromkeys(r["agent"] for r in rows))
        lines += [
            f"## Placement: step time (ms), budget {args.budget} evaluations per searching agent",
            "",
        ]
        lines.append("| graph | " + " | ".join(names) + " | bound |")
        lines.append("|---" * (len(names) + 2) + "|")
        cell = {(r["graph"], r["agent"]): r for r in rows}
        for g in graphs:
            vals = []
            for a in names:
                r = cell[(g, a)]
                vals.append(f"{r['step_time_s'] * 1e3:.3f}" + ("" if r["valid"] else " OOM"))
            lines.append(
                f"| {g} | "
                + " | ".join(vals)
                + f" | {cell[(g, names[0])]['lower_bound_s'] * 1e3:.3f} |"
            )
        lines.append("")
        lines.append("Geometric mean of step time / human expert:")
        lines.append("")
        for a in names:
            lines.append(f"- {a}: {geomean([cell[(g, a)]['vs_human_expert'] for g in graphs]):.3f}")
        lines.append("")
        baselines = [a for a in names if not a.startswith("go")]
        for go in [a for a in names if a.startswith("go")]:
            beats_he = sum(
                cell[(g, go)]["step_time_s"] < cell[(g, "human-expert")]["step_time_s"]
                for g in graphs
            )
            beats_best = sum(
                cell[(g, go)]["step_time_s"] < min(cell[(g, b)]["step_time_s"] for b in baselines)
                for g in graphs
            )
            lines.append(
                f"- {go}: beats human expert on {beats_he}/{len(graphs)} graphs, "
                f"beats the best baseline on {beats_best}/{len(graphs)}"
            )
        lines.append("")
        lines += [
            "## Convergence: evaluations to reach the best search baseline's final step time",
            "",
        ]
        lines.append(
            "| graph | best search | its final (ms) | go evals | ratio | go+warm evals | ratio |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for g in graphs:
            best_s = min(SEARCHES, key=lambda s: cell[(g, s)]["step_time_s"])
            target = cell[(g, best_s)]["step_time_s"]
            out = [g, best_s, f"{target * 1e3:.3f}"]
            for go in ("go", "go+warm"):
                n = evals_to_reach(curves, g, go, target)
                out += (
                    ["not reached", "-"]
                    if n is None
                    else [str(n), f"{args.budget / max(n, 1):.1f}x"]
                )
            lines.append("| " + " | ".join(out) + " |")
        lines.append("")
    if transfer is not None:
        lines += ["## Transfer (held-out graphs): step time (ms)", ""]
        cell = {(r["graph"], r["agent"]): r for r in transfer.rows}
        graphs = list(dict.fromkeys(r["graph"] for r in transfer.rows))
        go_one = {}
        if placement is not None:
            go_one = {r["graph"]: r["step_time_s"] for r in placement.rows if r["agent"] == "go"}
        lines.append(
            f"Pre-trained on {args.train} + {args.synthetic} synthetic graphs "
            f"({args.pretrain_budget} evaluations, {args.placement_actions} placement actions); "
            f"fine-tune budget {args.finetune_budget}."
        )
        lines.append("")
        lines.append(
            f"| graph | zero-shot | fine-tuned | GO-one ({args.finetune_budget}) | GO-one ({args.budget}) | zero-shot / GO-one |"
        )
        lines.append("|---|---|---|---|---|---|")
        for g in graphs:
            zs = cell[(g, "go-zeroshot")]["step_time_s"]
            one = go_one.get(g, float("nan"))
            lines.append(
                f"| {g} | {zs * 1e3:.3f} | {cell[(g, 'go-finetune')]['step_time_s'] * 1e3:.3f} | "
                f"{cell[(g, 'go-one-same-budget')]['step_time_s'] * 1e3:.3f} | {one * 1e3:.3f} | {zs / one:.3f} |"
            )
        lines.append("")
    if joint is not None:
        lines += [
            f"## Joint placement + scheduling + fusion (GOJoint-v0), budget {args.joint_budget}",
            "",
        ]
        cell = {(r["graph"], r["agent"]): r for r in joint.rows}
        graphs = list(dict.fromkeys(r["graph"] for r in joint.rows))
        names = list(dict.fromkeys(r["agent"] for r in joint.rows))
        lines.append("| graph | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for g in graphs:
            lines.append(
                f"| {g} | "
                + " | ".join(
                    f"{cell[(g, a)]['step_time_s'] * 1e3:.3f} ({cell[(g, a)]['vs_tf_default']:.2f}x)"
                    for a in names
                )
                + " |"
            )
        lines.append("")
        for a in names:
            gm = geomean([cell[(g, a)]["vs_tf_default"] for g in graphs])
            lines.append(
                f"- {a}: geometric mean {gm:.3f}x tf-default ({(1 - gm) * 100:.0f}% faster)"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="quick-v0")
    parser.add_argument("--graphs", default="", help="only these graph ids (comma-separated)")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}"
    )
    parser.add_argument("--budget", type=at_least(1), default=4000)
    parser.add_argument("--joint-budget", type=at_least(1), default=2000)
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument(
        "--train", default="quick-v0/rnnlm-2,quick-v0/transformer-xl-2,quick-v0/inception-v3-b2"
    )
    parser.add_argument(
        "--held-out", default="quick-v0/gnmt-3,quick-v0/amoebanet,quick-v0/wavenet-2x6"
    )
    parser.add_argument("--synthetic", type=at_least(0), default=6)
    parser.add_argument("--synthetic-ops", type=at_least(1), default=500)
    parser.add_argument("--pretrain-budget", type=at_least(1), default=16000)
    parser.add_argument("--finetune-budget", type=at_least(1), default=1000)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument(
        "--placement-actions",
        default="device",
        choices=PLACEMENT_ACTIONS,
        help="transfer: what the pre-trained and the GO-one policies' placement choices mean",
    )
    parser.add_argument("--out", default="leaderboard/go")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - set(PARTS):
        parser.error(
            f"--parts: unknown parts {sorted(parts - set(PARTS))}; choose from {', '.join(PARTS)}"
            if parts
            else f"--parts: no part given; choose from {', '.join(PARTS)}"
        )
    try:
        suite_graphs = list_graphs(args.suite)
    except KeyError as exc:
        parser.error(f"--suite: {exc.args[0]}")
    graphs = [g.strip() for g in args.graphs.split(",") if g.strip()] or suite_graphs
    train = [g.strip() for g in args.train.split(",") if g.strip()]
    held_out = [g.strip() for g in args.held_out.split(",") if g.strip()]
    checked = [("--graphs", graphs)]
    if "transfer" in parts:
        checked += [("--train", train), ("--held-out", held_out)]
    for option, ids in checked:
        for graph in ids:
            try:
                get_entry(graph)
            except KeyError as exc:
                parser.error(f"{option}: {exc.args[0]}")
    if "transfer" in parts and not held_out:
        parser.error("--parts transfer needs at least one --held-out graph")
    if "transfer" in parts and not train and not args.synthetic:
        parser.error("--parts transfer needs --train graphs or --synthetic graphs to pre-train on")
    torch.set_num_threads(1)
    placement: Results | None = None
    transfer: Results | None = None
    joint: Results | None = None
    curves: list[dict[str, Any]] = []
    if "placement" in parts:
        placement, curves = part_placement(args, graphs)
    if "transfer" in parts:
        transfer = part_transfer(args, train, held_out)
    if "joint" in parts:
        joint = part_joint(args, graphs)
    text = summary(args, placement, curves, transfer, joint)
    path = Path(args.out) / f"summary_{args.suite}_{'-'.join(sorted(parts))}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
