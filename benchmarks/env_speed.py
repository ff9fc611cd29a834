"""Env steps per second next to the bare simulator, on synthetic graphs, in one run.

    .venv/bin/python benchmarks/env_speed.py [--sizes 1000 10000 80000] [--repeats 20]

For each size: the median time of `simulate` on a fixed placement, the median time of one
``reset`` + ``step`` of GOPlacement-v0 with the same placement (what an agent pays per
decision), and the overhead of the env on top of the simulator. The env's target is at most
20% overhead at 80k ops. Graphs are built and encoded (and kernels compiled) before timing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import go_gym  # noqa: F401  (registers the envs)
from go_gym import Cluster
from go_gym.cli import at_least
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from go_gym.sim import lower_bound, simulate


def _median(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: compile or load the cached kernel, fill caches
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _measure(graph: OpGraph, cluster: Cluster, n_devices: int, repeats: int) -> tuple[float, float]:
    """(simulate, env reset + step) median seconds for one contiguous-block placement."""
    placement = (graph.layer.astype(np.int64) * n_devices) // (graph.layer.max() + 1)
    env = gym.make("GOPlacement-v0", graph=graph, cluster=cluster)
    env.reset(seed=0)

    def env_step() -> None:
        env.reset()
        env.step(placement)

    return _median(lambda: simulate(graph, cluster, placement), repeats), _median(env_step, repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=at_least(1), nargs="+", default=[1000, 10_000, 80_000])
    parser.add_argument("--repeats", type=at_least(1), default=20)
    parser.add_argument("--devices", type=at_least(1), default=8)
    args = parser.parse_args(argv)
    try:
        cluster = Cluster.preset("h100", args.devices)
    except ValueError as exc:
        parser.error(f"--devices: {exc}")
    graphs = [random_layered_graph(n, seed=0) for n in args.sizes]
    for graph in graphs:  # the env refuses a graph that costs nothing: say so before timing
        if lower_bound(graph, cluster) <= 0:
            parser.error(
                f"--sizes: the synthetic graph of {graph.n_ops} ops is inputs only and takes "
                "no time; give more ops"
            )
    print(f"cluster {cluster.name}; median of {args.repeats}; placement: contiguous layer blocks")
    print(
        f"{'ops':>7}{'edges':>9}{'simulate (ms)':>15}{'env step (ms)':>15}{'steps/s':>9}"
        f"{'overhead':>10}"
    )
    for n, graph in zip(args.sizes, graphs, strict=True):
        sim, step = _measure(graph, cluster, args.devices, args.repeats)
        print(
            f"{n:>7}{graph.n_edges:>9}{sim * 1e3:>15.2f}{step * 1e3:>15.2f}"
            f"{1 / step:>9.0f}{step / sim - 1:>10.1%}"
        )


if __name__ == "__main__":
    main()
