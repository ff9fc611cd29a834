"""Invariants over random graphs (hypothesis): bounds, sums, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from go_gym.cluster import Cluster, op_times
from go_gym.generators import random_layered_graph
from go_gym.sim import lower_bound, simulate, simulate_many

PRESETS = ["p100", "v100", "k80", "h100"]
cases = st.tuples(
    st.integers(1, 60),  # n_ops
    st.integers(0, 10_000),  # graph seed
    st.integers(1, 6),  # width
    st.sampled_from(PRESETS),
    st.integers(1, 8),  # devices
    st.integers(0, 10_000),  # decision seed
)


def _setup(case):  # type: ignore[no-untyped-def]
    n, seed, width, preset, n_dev, dseed = case
    g = random_layered_graph(n, seed, width=width)
    c = Cluster.preset(preset, n_dev)
    rng = np.random.default_rng(dseed)
    return g, c, rng


@settings(max_examples=60, deadline=None)
@given(cases)
def test_step_time_at_least_lower_bound(case) -> None:  # type: ignore[no-untyped-def]
    g, c, rng = _setup(case)
    bound = lower_bound(g, c)
    placement = rng.integers(0, c.n_devices, g.n_ops)
    priority = rng.integers(0, 5, g.n_ops) if rng.random() < 0.5 else None
    r = simulate(g, c, placement, priority)
    assert r.step_time >= bound * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_fused_step_time_at_least_fused_lower_bound(case) -> None:  # type: ignore[no-untyped-def]
    g, c, rng = _setup(case)
    bound = lower_bound(g, c, fused=True)
    assert bound <= lower_bound(g, c)
    for _ in range(3):
        placement = rng.integers(0, c.n_devices, g.n_ops)
        fusion = rng.integers(0, 4, g.n_ops)
        r = simulate(g, c, placement, rng.integers(0, 4, g.n_ops), fusion)
        assert r.step_time >= bound * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_single_device_is_the_sum_of_op_times(case) -> None:  # type: ignore[no-untyped-def]
    g, c, rng = _setup(case)
    d = int(rng.integers(0, c.n_devices))
    r = simulate(g, c, np.full(g.n_ops, d), timeline=True)
    times = op_times(g, c)[:, d]
    # Exactly the sum in execution order (the device never idles, nothing is sent) ...
    assert r.timeline is not None
    total = 0.0
    for op in np.argsort(r.timeline.unit_start, kind="stable"):
        total += times[op]
    assert r.step_time == total
    assert r.n_transfers == 0 and r.bytes_moved == 0
    # ... which is the sum of op times up to rounding.
    assert np.isclose(r.step_time, times.sum(), rtol=1e-12, atol=0)
    assert r.busy_time[d] == r.step_time


@settings(max_examples=40, deadline=None)
@given(cases, st.sampled_from(["go", "placeto"]))
def test_deterministic(case, profile) -> None:  # type: ignore[no-untyped-def]
    g, c, rng = _setup(case)
    placement = rng.integers(0, c.n_devices, g.n_ops)
    fusion = rng.integers(0, 3, g.n_ops)
    a = simulate(g, c, placement, fusion=fusion, profile=profile, timeline=True)
    b = simulate(g, c, placement.tolist(), fusion=fusion.tolist(), profile=profile, timeline=True)
    many = simulate_many(
        g, c, np.stack([placement] * 3), fusions=np.stack([fusion] * 3), profile=profile
    )
    assert a.step_time == b.step_time
    assert a.peak_memory.tolist() == b.peak_memory.tolist()
    assert a.timeline is not None and b.timeline is not None
    assert a.timeline.unit_start.tolist() == b.timeline.unit_start.tolist()
    assert many.step_time.tolist() == [a.step_time] * 3


@settings(max_examples=40, deadline=None)
@given(cases)
def test_timeline_is_consistent(case) -> None:  # type: ignore[no-untyped-def]
    g, c, rng = _setup(case)
    placement = rng.integers(0, c.n_devices, g.n_ops)
    r = simulate(g, c, placement, timeline=True)
    tl = r.timeline
    assert tl is not None
    # Every op starts after its producers end; devices never overlap; the step ends last.
    assert (tl.op_start[g.edge_dst] >= tl.op_end[g.edge_src]).all()
    for d in range(c.n_devices):
        on = np.flatnonzero(tl.unit_device == d)
        order = on[np.argsort(tl.unit_start[on], kind="stable")]
        assert (tl.unit_start[order][1:] >= tl.unit_end[order][:-1]).all()
    assert r.step_time == max(tl.unit_end.max(), 0.0)
    # Transfers leave after their producer ends and cross devices.
    assert (tl.transfer_start >= tl.unit_end[tl.transfer_unit]).all()
    assert (tl.transfer_src != tl.transfer_dst).all()
    assert tl.transfer_bytes.sum() == r.bytes_moved


_TORCH_THREADS_SCRIPT = """
import numpy as np, torch
from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.sim import simulate_many
torch.set_num_threads(1)
assert torch.get_num_threads() == 1  # torch's threads are set up before numba starts its own
graph = random_layered_graph(40, seed=3)
simulate_many(graph, Cluster.preset("p100", 2), np.zeros((4, graph.n_ops), np.int64))
print("torch threads", torch.get_num_threads())
"""


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_simulate_many_leaves_torchs_thread_count_alone() -> None:
    # numba's OpenMP layer sets the process's OpenMP thread count when it first starts its
    # threads (hence a fresh process), and torch shares that runtime.
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("NUMBA_NUM_THREADS", None)
    out = subprocess.run(
        [sys.executable, "-c", _TORCH_THREADS_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().endswith("torch threads 1"), out.stdout


def _partitions(n: int):  # type: ignore[no-untyped-def]
    """Every partition of range(n) as a restricted growth string (labels in first-use order)."""

    def grow(prefix: list[int], top: int):  # type: ignore[no-untyped-def]
        if len(prefix) == n:
            yield tuple(prefix)
            return
        for label in range(top + 2):
            yield from grow([*prefix, label], max(top, label))

    yield from grow([], -1)


def _canonical(labels) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    seen: dict[int, int] = {}
    return tuple(seen.setdefault(int(x), len(seen)) for x in labels)


def _legal(g, labels) -> bool:  # type: ignore[no-untyped-def]
    """A plan `fuse`'s rules can make or exceed: at most one HEAVY or NEVER kernel op per
    group (the premise of `op_time_floor`), and an acyclic contracted graph."""
    from go_gym.opkinds import FUSION_ROLE, FusionRole, OpKind, is_kernel

    lab = np.asarray(labels)
    kernel = is_kernel(g.op_kind)
    lone = [FUSION_ROLE[OpKind(int(k))] != FusionRole.LIGHT for k in g.op_kind]
    for k in range(lab.max() + 1):
        if sum(1 for i in np.flatnonzero(lab == k) if kernel[i] and lone[i]) > 1:
            return False
    pairs = zip(g.edge_src.tolist(), g.edge_dst.tolist(), strict=True)
    edges = {(int(lab[s]), int(lab[d])) for s, d in pairs if lab[s] != lab[d]}
    indeg = {k: 0 for k in range(lab.max() + 1)}
    for _, d in edges:
        indeg[d] += 1
    ready = [k for k, v in indeg.items() if v == 0]
    done = 0
    while ready:
        u = ready.pop()
        done += 1
        for s, d in edges:
            if s == u:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    return done == len(indeg)


@pytest.mark.parametrize("measured", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_fused_lower_bound_holds_for_every_fusion_plan(seed: int, measured: bool) -> None:
    """Brute force on tiny graphs: every legal plan (a superset of what `fuse` makes, which
    is checked too), on one or two devices, runs no faster than ``lower_bound(fused=True)``;
    and the bound is positive, though here op times are often below a launch."""
    from go_gym.graph import OpGraph
    from go_gym.opkinds import OpKind
    from go_gym.sim import FusionPlan, fuse

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    pairs = [(s, d) for d in range(n) for s in range(d) if rng.random() < 0.5]
    kinds = [OpKind.ELEMENTWISE, OpKind.ELEMENTWISE, OpKind.REDUCTION, OpKind.MATMUL]
    kinds += [OpKind.OTHER, OpKind.PARAMETER]
    g = OpGraph(
        name=f"tiny-{seed}",
        op_names=[f"o{i}" for i in range(n)],
        op_kind=[int(k) for k in rng.choice(kinds, n)],
        measured_us=rng.choice([0.0, 1.0, 3.0, 5.0, 8.0, 20.0], n) if measured else None,
        flops=rng.choice([0.0, 1e6, 1e9], n),
        bytes_read=rng.choice([0.0, 1e4, 1e6], n),
        bytes_written=rng.choice([0.0, 1e4, 1e6], n),
        edge_src=[s for s, _ in pairs],
        edge_dst=[d for _, d in pairs],
        edge_bytes=rng.choice([0.0, 1e4, 1e6], n)[[s for s, _ in pairs]],
    )
    for c in (Cluster.preset("p100", 1), Cluster.preset("k80", 2)):
        bound = lower_bound(g, c, fused=True)
        assert bound > 0 or not (op_times(g, c) > 0).any()
        plans = {p for p in _partitions(n) if _legal(g, p)}
        for decision in np.ndindex(*([3] * n)):
            assert _canonical(fuse(g, decision).group) in plans
        for labels in sorted(plans):
            plan = FusionPlan.from_groups(g, labels)
            placement = np.asarray(labels) % c.n_devices
            r = simulate(g, c, placement, fusion=plan)
            assert r.step_time >= bound * (1 - 1e-12), (labels, r.step_time, bound)
