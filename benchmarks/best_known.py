"""The best step time any committed row reached on each graph, against the human expert.

    .venv/bin/python benchmarks/best_known.py leaderboard/results/go-paper-v0-placement

Why: a target such as "at most 0.8x the expert's step time in geometric mean" is only as hard
as the placements that exist. This takes, per graph, the fastest valid row of any agent, any
configuration and any seed in a `go-gym bench` results directory, and prints it against the
human expert and the lower bound, with the geometric means over graphs. No single agent run
is that good (each graph's best comes from a different run), so the geometric mean of those
bests is a ceiling of what has been found: a setting that reaches a target below it has to
beat the best known placement on some graph.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from go_gym.runner.results import ResultsError, Row, read_results


def best_known(rows: Sequence[Row]) -> dict[str, tuple[float, str]]:
    """Per graph, the fastest valid row's effective step time and who found it."""
    best: dict[str, tuple[float, str]] = {}
    for row in rows:
        if not row.valid:
            continue
        who = f"{row.agent} {row.agent_config}" if row.agent_config != "{}" else row.agent
        if row.graph not in best or row.effective_step_time_s < best[row.graph][0]:
            best[row.graph] = (row.effective_step_time_s, f"{who} (seed {row.seed})")
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    try:
        rows, _ = read_results(args.results)
    except ResultsError as exc:
        parser.error(str(exc))
    best = best_known(rows)
    if not best:
        parser.error(f"{args.results} has no valid row")
    expert = {row.graph: row.human_expert_step_time_s for row in rows}
    bound = {row.graph: row.lower_bound_s for row in rows}
    print(f"{'graph':<32}{'best (ms)':>11}{'/ expert':>10}{'/ bound':>9}  found by")
    vs_expert, vs_bound = [], []
    for graph in sorted(best):
        time, who = best[graph]
        vs_expert.append(time / expert[graph])
        vs_bound.append(time / bound[graph])
        print(f"{graph:<32}{time * 1e3:>11.4g}{vs_expert[-1]:>10.3f}{vs_bound[-1]:>9.2f}  {who}")

    def geomean(values: list[float]) -> float:
        return float(np.exp(np.mean(np.log(values))))

    print(
        f"geometric mean over {len(best)} graphs: {geomean(vs_expert):.3f}x the expert's step "
        f"time, {geomean(vs_bound):.2f}x the lower bound; the lower bound itself is "
        f"{geomean([bound[g] / expert[g] for g in best]):.3f}x the expert's"
    )


if __name__ == "__main__":
    main()
