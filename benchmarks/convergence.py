"""How many simulator evaluations a learning agent needs to match the best search, per graph.

    .venv/bin/python benchmarks/convergence.py leaderboard/results/quick-v0-placement \\
        [--learner go] [--learner-config '{}'] [--searchers annealing brkga random-search] \\
        [--learner-results leaderboard/go/transfer-quick-train-48k]

Reads a `go-gym bench` results directory (each row's decisions file holds the best-so-far
curve of agents that search or learn). For each graph it takes the best searcher by final
step time (mean over seeds), then for the learner the first evaluation count at which its
best-so-far (mean over seeds, on the union of evaluation points) reaches that final value.
The ratio "searcher evaluations / learner evaluations" is the paper's "faster convergence"
figure (GO reports 15x against HDP); "not reached" means the learner never got there within
its budget.

Only rows with the given agent configuration count (``--learner-config``, the JSON the
runner records; default ``{}``, the agent's defaults; searchers always use theirs): a
results directory may hold the same agent run several ways, such as go-paper-v0's `go` from
scratch and `go` fine-tuned from a checkpoint, and averaging their curves would describe
neither. ``--learner-results`` reads the learner's rows from another results directory of the
same suite (a transfer experiment's, say), the searchers' still from ``results``.

A learner, configuration or searcher without best-so-far curves in its directory, or a graph
of the learner that no searcher ran, is a usage error that lists what the directory holds.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from go_gym.runner.cells import load_decisions
from go_gym.runner.results import ResultsError, read_results


def _curves(
    directory: Path, agent: str, config: str = "{}"
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Best-so-far curves of ``agent`` run with ``config`` (the JSON of its options), per graph."""
    wanted = json.loads(config)
    rows, root = read_results(directory)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for row in rows:
        if row.agent != agent or json.loads(row.agent_config or "{}") != wanted:
            continue
        data = load_decisions(root / row.decisions_file)
        if "curve_evals" in data:
            out[row.graph].append((data["curve_evals"], data["curve_best"]))
    return out


def _mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of best-so-far, as step functions on the union of evaluation points."""
    points = np.unique(np.concatenate([e for e, _ in curves]))
    values = []
    for evals, best in curves:
        idx = np.searchsorted(evals, points, side="right") - 1
        values.append(np.where(idx >= 0, best[np.maximum(idx, 0)], np.inf))
    return points, np.mean(values, axis=0)


def _searching_agents(directory: Path) -> list[str]:
    """``agent config`` of every (agent, configuration) of ``directory`` that spent more than
    one evaluation on some row (the agents with best-so-far curves), sorted."""
    rows, _ = read_results(directory)
    found = {(r.agent, r.agent_config or "{}") for r in rows if r.evaluations > 1}
    return [f"{agent} {config}" for agent, config in sorted(found)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--learner", default="go")
    parser.add_argument(
        "--learner-config", default="{}", help="the learner's options as the runner records them"
    )
    parser.add_argument("--searchers", nargs="+", default=["annealing", "brkga", "random-search"])
    parser.add_argument(
        "--learner-results",
        type=Path,
        default=None,
        help="where the learner's rows are (default: the results directory)",
    )
    args = parser.parse_args(argv)
    try:
        json.loads(args.learner_config)
    except json.JSONDecodeError as err:
        parser.error(f"--learner-config is not JSON ({err}): {args.learner_config!r}")
    learner_dir = args.learner_results or args.results
    try:
        learner = _curves(learner_dir, args.learner, args.learner_config)
        searchers = {name: _curves(args.results, name) for name in args.searchers}
        if not learner:
            parser.error(
                f"no {args.learner} rows with --learner-config {args.learner_config} and "
                f"best-so-far curves in {learner_dir}; agents with curves there: "
                f"{'; '.join(_searching_agents(learner_dir)) or 'none'}"
            )
        missing = [name for name, curves in searchers.items() if not curves]
        if missing:
            there = sorted(
                {a.split(" ", 1)[0] for a in _searching_agents(args.results) if a.endswith(" {}")}
            )
            parser.error(
                f"--searchers: no rows with best-so-far curves of {', '.join(missing)} (with "
                f"their default options) in {args.results}; searchers there: "
                f"{', '.join(there) or 'none'}"
            )
    except ResultsError as exc:
        parser.error(str(exc))
    unsearched = [g for g in sorted(learner) if not any(g in c for c in searchers.values())]
    if unsearched:
        parser.error(
            f"no searcher of {', '.join(args.searchers)} ran {', '.join(unsearched)} in "
            f"{args.results} (is --learner-results of another suite?)"
        )
    print(
        f"{'graph':<28}{'best search':>14}{'final (ms)':>12}{'its evals':>11}"
        f"{args.learner + ' evals':>14}{'ratio':>8}"
    )
    ratios = []
    for graph in sorted(learner):
        finals = {
            name: (_mean_curve(c[graph])[1][-1], _mean_curve(c[graph])[0][-1])
            for name, c in searchers.items()
            if graph in c
        }
        best_name = min(finals, key=lambda n: finals[n][0])
        target, search_evals = finals[best_name]
        points, values = _mean_curve(learner[graph])
        reached = np.flatnonzero(values <= target)
        if reached.size:
            evals = int(points[reached[0]])
            ratio = search_evals / max(evals, 1)
            ratios.append(ratio)
            shown = f"{evals:>14}{ratio:>7.1f}x"
        else:
            shown = f"{'not reached':>14}{'-':>8}"
        print(f"{graph:<28}{best_name:>14}{target * 1e3:>12.3f}{int(search_evals):>11}{shown}")
    print(f"reached on {len(ratios)} of {len(learner)} graphs", end="")
    print(
        f"; geometric-mean ratio where reached: {np.exp(np.mean(np.log(ratios))):.1f}x"
        if ratios
        else ""
    )


if __name__ == "__main__":
    main()
