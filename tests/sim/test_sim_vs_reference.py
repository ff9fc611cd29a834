"""Kernel == pure-Python twin, exactly, on many random small cases and on every profile."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.sim import FusionPlan, simulate, simulate_many
from go_gym.sim._kernel import RING_MAX_DEVICES
from tests.sim.reference import reference_simulate
from tests.sim.sim_cases import random_case, tie_cluster


def _check(case: dict, profile: str) -> None:
    kwargs = dict(case)
    if profile == "placeto":
        kwargs["priority"] = None
    got = simulate(**kwargs, profile=profile, timeline=True)
    ref = reference_simulate(**kwargs, profile=profile)
    where = f"{case['graph'].name} on {case['cluster'].name}, profile {profile}"
    assert got.step_time == ref.step_time, where
    assert got.valid == ref.valid, where
    assert got.peak_memory.tolist() == ref.peak_memory, where
    assert got.busy_time == pytest.approx(ref.busy_time, rel=1e-12, abs=1e-18), where
    assert got.bytes_moved == pytest.approx(ref.bytes_moved, rel=1e-12), where
    # Without a timeline the kernel runs on scratch arrays of its own: same results.
    plain = simulate(**kwargs, profile=profile)
    assert plain.step_time == got.step_time, where
    assert plain.peak_memory.tolist() == got.peak_memory.tolist(), where
    assert (plain.n_transfers, plain.reason) == (got.n_transfers, got.reason), where
    tl = got.timeline
    assert tl is not None
    assert tl.unit_start.tolist() == [ref.unit_start[u] for u in range(got.n_units)], where
    assert tl.unit_end.tolist() == [ref.unit_end[u] for u in range(got.n_units)], where


@pytest.mark.parametrize("profile", ["go", "placeto"])
@pytest.mark.parametrize("block", range(5))
def test_kernel_matches_reference(profile: str, block: int) -> None:
    """5 blocks x 110 seeds = 550 random cases per profile (1,100 in all)."""
    for seed in range(block * 110, (block + 1) * 110):
        _check(random_case(seed), profile)


@pytest.mark.parametrize("profile", ["go", "placeto"])
def test_kernel_matches_reference_on_large_clusters(profile: str) -> None:
    """Past RING_MAX_DEVICES devices the kernel queues events in a heap instead of a sorted
    ring: the same random graphs, spread over 17-24 devices, must still match the twin."""
    for seed in range(120):
        case = random_case(seed)
        rng = np.random.default_rng(seed)
        n_dev = RING_MAX_DEVICES + int(rng.integers(1, 9))
        case["cluster"] = tie_cluster(n_dev, memory=float(case["cluster"].memory_bytes[0]))
        case["placement"] = rng.integers(0, n_dev, case["graph"].n_ops)
        _check(case, profile)


@pytest.mark.parametrize("profile", ["go", "placeto"])
def test_kernel_matches_reference_on_plans_that_group_any_ops(profile: str) -> None:
    """`fuse` never groups a parameter, a constant or two heavy ops, but
    `FusionPlan.from_groups` takes any plan: groups of consecutive ops in topological order
    (so the contracted graph stays acyclic), each on the device of its first op, holding
    parameters with their consumers."""
    for seed in range(150):
        case = random_case(seed)
        g = case["graph"]
        if g.n_ops == 0:
            continue
        rng = np.random.default_rng(10_000 + seed)
        order = g.topo_order.astype(np.int64)
        cuts = np.flatnonzero(rng.random(g.n_ops) < 0.4)
        label = np.zeros(g.n_ops, np.int64)
        label[order] = np.cumsum(np.isin(np.arange(g.n_ops), cuts))
        first = np.full(label.max() + 1, -1, np.int64)
        for op in order[::-1]:
            first[label[op]] = op
        placement = np.asarray(case["placement"], np.int64)[first[label]]
        case = dict(case, placement=placement, fusion=FusionPlan.from_groups(g, label))
        _check(case, profile)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["go", "placeto"])
def test_kernel_matches_reference_many(profile: str) -> None:
    for seed in range(10_000, 15_000):
        _check(random_case(seed), profile)


@pytest.mark.parametrize("profile", ["go", "placeto"])
def test_simulate_many_equals_simulate(profile: str) -> None:
    for seed in range(20):
        case = random_case(1000 + seed)
        g, c = case["graph"], case["cluster"]
        rng = np.random.default_rng(seed)
        k = 5
        placements = rng.integers(0, c.n_devices, (k, g.n_ops))
        priorities = rng.integers(0, 5, (k, g.n_ops)) if profile == "go" and seed % 2 else None
        fusions = rng.integers(0, 3, (k, g.n_ops)) if seed % 3 == 0 else None
        batch = simulate_many(g, c, placements, priorities, fusions, profile=profile)
        assert len(batch) == k
        for r in range(k):
            one = simulate(
                g,
                c,
                placements[r],
                None if priorities is None else priorities[r],
                None if fusions is None else fusions[r],
                profile=profile,
            )
            assert batch.step_time[r] == one.step_time
            assert batch.valid[r] == one.valid
            assert batch.reason[r] == one.reason
            assert batch.peak_memory[r].tolist() == one.peak_memory.tolist()
            assert batch.busy_time[r].tolist() == one.busy_time.tolist()
            assert batch.bytes_moved[r] == one.bytes_moved
            assert batch.n_transfers[r] == one.n_transfers
