"""Simulator speed: kernel vs the pure-Python twin, and `simulate_many` throughput, in one run.

    .venv/bin/python benchmarks/sim_speed.py [--sizes 1000 10000 80000] [--repeats 11]
        [--placement random] [--batch 16] [--zoo go-paper-v0] [--twin-max 100000]

For each synthetic graph (`random_layered_graph(n, seed=0)`, ~2 edges per op) on an 8-GPU
``v100`` cluster, and for the zoo graphs when a suite is given (an unknown one is a usage
error) and its files exist, it
prints: the wall time of one `simulate` call (validation and result included; compilation
excluded by a warm-up call, and kernels are cached across processes), the twin's time
for the first decision (``tests/sim/reference.py``, median of three runs up to 20k ops,
else one), their ratio, the single-call
throughput, the `simulate_many` throughput on the same K decisions at once (all cores)
and the ratio of the two.

The single-call time is the median over ``--repeats`` rounds of one pass of K calls on K
*different* decisions, divided by K; each round also makes one `simulate_many` call on the
same K decisions, the two in alternating order, so that their ratio compares timings taken
under the same machine speed (with three separate timings of each, taken one after the
other, the ratio of a graph moved between 1.55x and 2.0x from run to run).

Repeating one decision would flatter the kernel on small graphs: the CPU's branch predictor
learns the whole run of a few-hundred-op simulation by heart (a 248-op graph simulates in
~19 us when one placement is repeated, ~34 us over distinct ones), while an agent's samples
differ. Placements are random over all devices unless ``--placement`` says ``block``
(contiguous blocks in topological order) or ``single``; those two are one decision K
times, so on small graphs they read faster than an agent would see.

OpenBLAS's idle worker threads spin on the cores we measure; they are limited to one
before NumPy is imported. Python's garbage collector is off while timing, as in `timeit`:
the twin allocates enough to trigger a full collection every other run or so, and that
collection walks every object the process holds (numba's, the zoo graphs'), which doubled
the twin's time on some runs and not others (rnnlm-2: 35 or 75 ms).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numba
import numpy as np

from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from go_gym.sim import simulate, simulate_many

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sim"))
from reference import reference_simulate  # type: ignore[import-not-found]  # tests/sim, above

from go_gym.cli import at_least


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Garbage collection off inside (as `timeit` does), collected once before."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _medians(fns: Sequence[Callable[[], object]], rounds: int) -> list[float]:
    """Median wall time of each function over ``rounds`` rounds that run them all, in
    alternating order (the machine's speed drifts by several percent within seconds, and a
    ratio of two timings is only fair when both saw the same drift)."""
    for fn in fns:
        fn()  # warm-up: compile or load the cached kernels, build the cached unit graph
    samples: list[list[float]] = [[] for _ in fns]
    with _no_gc():
        for r in range(rounds):
            order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
            for i in order:
                t0 = time.perf_counter()
                fns[i]()
                samples[i].append(time.perf_counter() - t0)
    return [statistics.median(s) for s in samples]


def _placements(graph: OpGraph, n_dev: int, kind: str, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, n_dev, (k, graph.n_ops))
    if kind == "single":
        return np.zeros((k, graph.n_ops), np.int64)
    block = (graph.topo_rank.astype(np.int64) * n_dev) // graph.n_ops
    return np.repeat(block[None, :], k, axis=0)


def _row(name: str, graph: OpGraph, cluster: Cluster, args: argparse.Namespace) -> str:
    p = _placements(graph, cluster.n_devices, args.placement, args.batch, 0)

    def one_pass() -> None:
        for row in p:
            simulate(graph, cluster, row)

    pass_time, many = _medians([one_pass, lambda: simulate_many(graph, cluster, p)], args.repeats)
    one = pass_time / args.batch
    if graph.n_ops <= args.twin_max:
        twin_runs = []
        for _ in range(3 if graph.n_ops <= 20_000 else 1):
            with _no_gc():
                t0 = time.perf_counter()
                ref = reference_simulate(graph, cluster, p[0])
                twin_runs.append(time.perf_counter() - t0)
        twin = statistics.median(twin_runs)
        assert ref.step_time == simulate(graph, cluster, p[0]).step_time
        twin_s, ratio = f"{twin:9.3f}", f"{twin / one:8.0f}x"
    else:
        twin_s, ratio = f"{'-':>9}", f"{'-':>9}"
    single_tp = 1.0 / one
    many_tp = args.batch / many
    return (
        f"{name:<22} {graph.n_ops:>7} {graph.n_edges:>7} {one * 1e3:9.2f} {twin_s} {ratio} "
        f"{single_tp:10.0f} {many_tp:10.0f} {many_tp / single_tp:7.2f}x"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=at_least(1), nargs="*", default=[1000, 10_000, 80_000])
    parser.add_argument("--repeats", type=at_least(1), default=11)
    parser.add_argument("--placement", choices=["random", "block", "single"], default="random")
    parser.add_argument(
        "--batch", type=at_least(1), default=16, help="K decisions per simulate_many"
    )
    parser.add_argument("--preset", default="v100")
    parser.add_argument("--devices", type=at_least(1), default=8)
    parser.add_argument("--zoo", default="go-paper-v0", help="suite of zoo graphs ('' for none)")
    parser.add_argument(
        "--twin-max", type=at_least(0), default=100_000, help="largest graph for the twin"
    )
    args = parser.parse_args(argv)
    try:
        cluster = Cluster.preset(args.preset, args.devices)
    except ValueError as exc:
        parser.error(f"--preset/--devices: {exc}")
    if args.zoo:
        try:
            from go_gym.zoo import list_graphs

            list_graphs(args.zoo)
        except ImportError:
            pass  # no zoo installed: reported below
        except KeyError as exc:
            parser.error(f"--zoo: {exc.args[0]}")
    print(
        f"cluster {cluster.name}, {args.placement} placements, K = {args.batch}, "
        f"numba {numba.__version__} with {numba.get_num_threads()} threads, "
        f"{os.cpu_count()} cores"
    )
    header = (
        f"{'graph':<22} {'ops':>7} {'edges':>7} {'sim ms':>9} {'twin s':>9} {'ratio':>9} "
        f"{'single/s':>10} {'many/s':>10} {'many/1':>8}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        graph = random_layered_graph(n, seed=0)
        print(_row(f"synthetic-{n}", graph, cluster, args), flush=True)
    if args.zoo:
        try:
            from go_gym.zoo import get_graph, list_graphs

            ids = list_graphs(args.zoo)
        except (ImportError, KeyError) as exc:
            print(f"(no zoo graphs: {exc})")
            ids = []
        for gid in ids:
            try:
                graph = get_graph(gid)
            except (FileNotFoundError, KeyError) as exc:
                print(f"{gid:<22} skipped: {exc}")
                continue
            print(_row(gid.split("/")[-1], graph, cluster, args), flush=True)


if __name__ == "__main__":
    main()
