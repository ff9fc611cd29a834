"""Step time of every placement baseline on a benchmark suite, as a table.

    .venv/bin/python benchmarks/baselines.py --suite quick-v0
    .venv/bin/python benchmarks/baselines.py --suite go-paper-v0 --placers human-expert,metis

For each graph of the suite (on the suite's cluster), each placer in `agents.placement.PLACERS`
places the graph and `go_gym.sim.simulate` runs it with first-ready scheduling and no fusion.
Cells are step times in milliseconds; ``OOM`` marks a placement that runs out of device memory
(its simulated time is shown after it). The last columns give the lower bound
(`go_gym.sim.lower_bound`) and the best valid baseline over the bound. With ``--times`` a
second table gives each placer's wall-clock time. When the zoo's suites are not available
(``go_gym.zoo`` cannot be imported) the script falls back to synthetic graphs; an unknown
suite, placer or a ``--graphs`` filter that matches no graph of the suite is a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time

from agents.placement import PLACERS
from go_gym.cli import at_least
from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from go_gym.sim import lower_bound, simulate


def suite_graphs(suite: str) -> list[tuple[str, OpGraph, Cluster]]:
    """(id, graph, cluster) of every graph of ``suite``; synthetic graphs if the zoo is absent.

    Raises:
        KeyError: for an unknown suite (the message lists the known ones).
    """
    try:
        from go_gym.zoo.suites import get_entry, get_graph, list_graphs
    except ImportError as exc:
        print(f"# suite {suite!r} unavailable ({exc}); using synthetic graphs", file=sys.stderr)
        return [
            (f"synthetic-{n}", random_layered_graph(n, seed=0), Cluster.preset("p100", 4))
            for n in (500, 2000, 8000)
        ]
    ids = list_graphs(suite)
    out = []
    for gid in ids:
        try:
            graph = get_graph(gid)
        except FileNotFoundError as exc:  # a suite whose files are being rebuilt
            print(f"# skipping {gid}: {exc}", file=sys.stderr)
            continue
        out.append((gid, graph, get_entry(gid).make_cluster()))
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="quick-v0", help="suite name (default quick-v0)")
    parser.add_argument(
        "--placers", default=",".join(PLACERS), help="comma-separated placer names (default all)"
    )
    parser.add_argument("--graphs", default="", help="only graph ids containing one of these")
    parser.add_argument("--seed", type=at_least(0), default=0, help="seed passed to every placer")
    parser.add_argument("--times", action="store_true", help="also print placer wall times")
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.placers.split(",") if p.strip()]
    unknown = [p for p in names if p not in PLACERS]
    if unknown:
        parser.error(f"unknown placers {unknown}; known: {list(PLACERS)}")
    if not names:
        parser.error(f"--placers names no placer; known: {list(PLACERS)}")
    try:
        graphs = suite_graphs(args.suite)
    except KeyError as exc:
        parser.error(f"--suite: {exc.args[0]}")
    keys = [k.strip() for k in args.graphs.split(",") if k.strip()]
    if keys:
        every = [g[0] for g in graphs]
        graphs = [g for g in graphs if any(k in g[0] for k in keys)]
        if not graphs:
            parser.error(f"--graphs {args.graphs!r} matches no graph of {args.suite}: {every}")

    width = max(10, *(len(n) + 1 for n in names))
    head = f"{'graph':32s} {'ops':>6s} {'dev':>3s} " + "".join(f"{n:>{width}s}" for n in names)
    print(f"# step time in ms, {args.suite}; OOM = out of memory (simulated time after it)")
    print(head + f"{'bound':>10s}{'best/bnd':>9s}")
    timings: list[list[float]] = []
    for gid, graph, cluster in graphs:
        cells, walls = [], []
        best = float("inf")
        for name in names:
            t0 = time.perf_counter()
            place = PLACERS[name](graph, cluster, seed=args.seed)
            walls.append(time.perf_counter() - t0)
            res = simulate(graph, cluster, place)
            ms = res.step_time * 1e3
            if res.valid:
                best = min(best, res.step_time)
                cells.append(f"{ms:{width}.2f}")
            else:
                cells.append(f"{'OOM ' + format(ms, '.0f'):>{width}s}")
        timings.append(walls)
        bound = lower_bound(graph, cluster)
        ratio = f"{best / bound:9.2f}" if best < float("inf") else f"{'-':>9s}"
        line = f"{gid:32s} {graph.n_ops:6d} {cluster.n_devices:3d} " + "".join(cells)
        print(line + f"{bound * 1e3:10.2f}" + ratio, flush=True)
    if args.times:
        print("\n# placer wall time in s")
        print(f"{'graph':32s} " + "".join(f"{n:>{width}s}" for n in names))
        for (gid, _, _), walls in zip(graphs, timings, strict=True):
            print(f"{gid:32s} " + "".join(f"{w:{width}.2f}" for w in walls))


if __name__ == "__main__":
    main()
