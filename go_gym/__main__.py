"""``python -m go_gym`` (what ``make run`` runs): the quick-suite placement leaderboard.

With no arguments it runs every built-in placement agent on ``quick-v0`` (the searches with a
small budget) with `go_gym.runner`, into ``runs/quick-v0`` (resumable: a second run only
rebuilds the tables), and prints the leaderboard table. Arguments go to the ``go-gym``
command line (``python -m go_gym bench ...``), except ``tour``: one graph on one cluster
under a few classic placements, the figures a user looks at first (step time, distance to
the lower bound, whether it fits in memory, bytes crossing devices).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph


def _placements(graph: OpGraph, n_devices: int, seed: int) -> dict[str, np.ndarray]:
    """A few placements anyone would try first, to show what the simulator tells apart."""
    rng = np.random.default_rng(seed)
    layers = np.maximum(graph.layer, 0)
    n_layers = int(layers.max()) + 1
    return {
        "single device (TF default)": np.zeros(graph.n_ops, np.int64),
        "contiguous layer blocks": (layers * n_devices // n_layers).astype(np.int64),
        "round-robin by layer": (layers % n_devices).astype(np.int64),
        "random": rng.integers(0, n_devices, graph.n_ops),
    }


def tour(n_ops: int, preset: str, n_devices: int, seed: int) -> None:
    """Print one graph's figures under a few placements."""
    from go_gym.sim import lower_bound, simulate

    t0 = time.perf_counter()
    graph = random_layered_graph(n_ops, seed=seed)
    cluster = Cluster.preset(preset, n_devices)
    built = time.perf_counter() - t0
    bound = lower_bound(graph, cluster)
    print(
        f"graph   {graph.name}: {graph.n_ops:,} ops, {graph.n_edges:,} edges, "
        f"{graph.flops.sum() / 1e12:.2f} TFLOP, "
        f"{graph.persistent_bytes.sum() / 1e9:.2f} GB of parameters and optimizer state "
        f"(built in {built * 1e3:.0f} ms)"
    )
    print(
        f"cluster {cluster.name}: {cluster.n_devices} x {cluster.peak_flops[0] / 1e12:.1f} "
        f"TFLOP/s, {cluster.memory_bytes[0] / 1e9:.0f} GB each"
    )
    print(f"lower bound on the step time: {bound * 1e3:.2f} ms\n")
    header = f"{'placement':<28}{'step (ms)':>10}{'/ bound':>9}{'fits':>6}"
    header += f"{'peak GB (max dev)':>19}{'moved GB':>10}{'sim ms':>8}"
    print(header)
    print("-" * len(header))
    for name, placement in _placements(graph, cluster.n_devices, seed).items():
        simulate(graph, cluster, placement)  # first call compiles / loads the cached kernel
        t0 = time.perf_counter()
        result = simulate(graph, cluster, placement)
        elapsed = time.perf_counter() - t0
        print(
            f"{name:<28}{result.step_time * 1e3:>10.2f}{result.step_time / bound:>9.2f}"
            f"{'yes' if result.valid else 'OOM':>6}{result.peak_memory.max() / 1e9:>19.2f}"
            f"{result.bytes_moved / 1e9:>10.2f}{elapsed * 1e3:>8.2f}"
        )


#: What ``make run`` runs: the quick suite, every built-in baseline, small budgets (the
#: learned agents take longer; their runs are committed under ``leaderboard/results/``).
QUICK_RUN = [
    "bench",
    "--suite",
    "quick-v0",
    "--task",
    "placement",
    "--agents",
    "all-baselines",
    "--seeds",
    "3",
    "--budget",
    "2000",
    "--out",
    "runs/quick-v0",
    "--leaderboard",
]


def tour_main(argv: list[str]) -> None:
    """``python -m go_gym tour [--ops N --cluster NAME --devices D --seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m go_gym tour", description=tour.__doc__)
    parser.add_argument("--ops", type=int, default=2000, help="ops in the synthetic graph")
    parser.add_argument("--cluster", default="p100", help="cluster preset (p100, v100, k80, h100)")
    parser.add_argument("--devices", type=int, default=4, help="number of devices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tour(args.ops, args.cluster, args.devices, args.seed)


def main(argv: list[str] | None = None) -> int:
    """``make run`` with no arguments; ``tour``; anything else goes to ``go-gym``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "tour":
        tour_main(args[1:])
        return 0
    from go_gym.cli import main as cli_main

    t0 = time.perf_counter()
    status = cli_main(args or QUICK_RUN)
    if not args:
        print(f"\nmake run: {time.perf_counter() - t0:.0f} s wall time", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
