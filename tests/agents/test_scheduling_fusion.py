"""Scheduling priorities and fusion decisions."""

from __future__ import annotations

import numpy as np
import pytest

from agents.fusion import FUSERS, fusion_xla_greedy
from agents.scheduling import PRIORITIZERS, priority_critical_path, to_levels
from go_gym.generators import random_layered_graph
from go_gym.opkinds import OpKind
from go_gym.sim import simulate
from tests.agents.conftest import make_graph, small_cluster


def test_to_levels_dense_and_bucketed() -> None:
    np.testing.assert_array_equal(to_levels(np.array([3.0, 1.0, 3.0, 2.0])), [2, 0, 2, 1])
    # Lexicographic: the second score breaks ties of the first.
    np.testing.assert_array_equal(
        to_levels(np.array([1.0, 1.0, 0.0]), np.array([5.0, 7.0, 9.0])), [1, 2, 0]
    )
    lv = to_levels(np.arange(100.0), levels=4)
    assert lv.min() == 0 and lv.max() == 3 and (np.diff(lv) >= 0).all()
    with pytest.raises(ValueError, match="levels"):
        to_levels(np.arange(3.0), levels=0)


@pytest.mark.parametrize("name", list(PRIORITIZERS))
@pytest.mark.parametrize("levels", [None, 16])
def test_prioritizers_give_valid_integer_priorities(name: str, levels: int | None) -> None:
    graph = random_layered_graph(300, seed=1)
    cluster = small_cluster(2)
    place = np.random.default_rng(0).integers(0, 2, graph.n_ops)
    pr = PRIORITIZERS[name](graph, cluster, place, levels=levels)
    again = PRIORITIZERS[name](graph, cluster, place, levels=levels)
    assert pr is not None and pr.dtype == np.int64 and pr.shape == (graph.n_ops,)
    np.testing.assert_array_equal(pr, again)
    assert pr.min() >= 0
    if levels is not None:
        assert pr.max() < levels
    assert simulate(graph, cluster, place, pr).step_time > 0


@pytest.mark.parametrize("seed", range(12))
def test_fifo_priorities_reproduce_first_ready_order(seed: int) -> None:
    """Exact ranks give the same simulation as priority=None (first-ready-first-run): every
    op starts at the same time; bucketed into 16 levels they stay a priority vector."""
    graph = random_layered_graph(40 + 20 * seed, seed=seed)
    n_dev = 2 + seed % 3
    cluster = small_cluster(n_dev)
    place = np.random.default_rng(seed).integers(0, n_dev, graph.n_ops)
    first_ready = simulate(graph, cluster, place, timeline=True)
    ranks = PRIORITIZERS["fifo"](graph, cluster, place)
    ranked = simulate(graph, cluster, place, ranks, timeline=True)
    assert first_ready.timeline is not None and ranked.timeline is not None
    np.testing.assert_array_equal(ranked.timeline.op_start, first_ready.timeline.op_start)
    assert ranked.step_time == first_ready.step_time
    # Distinct ranks: ops that start together are told apart by topological rank here.
    assert len(np.unique(ranks)) == graph.n_ops


def test_fifo_priorities_differ_from_topological_order() -> None:
    # Device 0 runs x (op 1) first; y (op 3) is ready from the start, z (op 2) only once w
    # (op 0, device 1) has ended and sent its output, still before x ends. First-ready order
    # then runs y before z; equal priorities run z first (the lower topological rank).
    graph = make_graph("fifo", 4, [(0, 2)], [5e10, 1e11, 1e9, 1e9], 1e3)
    cluster = small_cluster(2)
    place = np.array([1, 0, 0, 0])
    first_ready = simulate(graph, cluster, place, timeline=True).timeline
    ranks = PRIORITIZERS["fifo"](graph, cluster, place)
    ranked = simulate(graph, cluster, place, ranks, timeline=True).timeline
    equal = simulate(graph, cluster, place, np.zeros(4, np.int64), timeline=True).timeline
    assert first_ready is not None and ranked is not None and equal is not None
    assert first_ready.op_start[3] < first_ready.op_start[2]
    assert equal.op_start[2] < equal.op_start[3]
    np.testing.assert_array_equal(ranked.op_start, first_ready.op_start)


def test_critical_path_runs_the_long_path_first() -> None:
    # Device 0 holds x (long, independent, lower index) and y, which feeds z (long) on device 1.
    graph = make_graph("cp", 3, [(1, 2)], [1e11, 1e9, 1e11], 1e3)
    cluster = small_cluster(2)
    place = np.array([0, 0, 1])
    fifo = simulate(graph, cluster, place).step_time
    cp = simulate(graph, cluster, place, priority_critical_path(graph, cluster, place)).step_time
    assert cp < 0.6 * fifo


def test_memory_aware_lowers_peak_memory() -> None:
    # K branches a_i -> b_i on one device: a_i allocates 1 GB that b_i frees.
    k = 6
    edges = [(i, k + i) for i in range(k)]
    graph = make_graph("branches", 2 * k, edges, 1e9, 1e9)
    cluster = small_cluster(1)
    place = np.zeros(graph.n_ops, np.int64)
    fifo = simulate(graph, cluster, place).peak_memory[0]
    mem = PRIORITIZERS["memory-aware"](graph, cluster, place)
    aware = simulate(graph, cluster, place, mem).peak_memory[0]
    assert fifo >= k * 1e9
    assert aware <= 2e9


def test_no_fusion_is_zero_and_xla_greedy_fuses_chains() -> None:
    n = 6
    kinds = [int(OpKind.MATMUL)] + [int(OpKind.ELEMENTWISE)] * 4 + [int(OpKind.OPTIMIZER)]
    flops = [1e9, 1e6, 1e6, 1e6, 1e6, 1e6]  # a matmul and memory-bound elementwise ops
    graph = make_graph("chain", n, [(i, i + 1) for i in range(n - 1)], flops, 1e7, op_kind=kinds)
    cluster = small_cluster(1)
    place = np.zeros(n, np.int64)
    assert (FUSERS["no-fusion"](graph, cluster, place) == 0).all()
    dec = fusion_xla_greedy(graph, cluster, place)
    np.testing.assert_array_equal(dec, [1, 1, 1, 1, 1, 0])
    fused = simulate(graph, cluster, place, fusion=dec)
    unfused = simulate(graph, cluster, place)
    assert fused.n_units == 2  # matmul + its elementwise epilogue, and the optimizer op
    assert fused.step_time < unfused.step_time
    more = fusion_xla_greedy(graph, cluster, place, levels=8)
    assert more.max() <= 7 and (np.diff(more[:5]) >= 0).all() and more[5] == 0
    with pytest.raises(ValueError, match="levels"):
        fusion_xla_greedy(graph, cluster, place, levels=1)


@pytest.mark.parametrize("name", list(FUSERS))
def test_fusers_are_accepted_by_the_simulator(name: str) -> None:
    graph = random_layered_graph(400, seed=2)
    cluster = small_cluster(2)
    place = np.random.default_rng(0).integers(0, 2, graph.n_ops)
    dec = FUSERS[name](graph, cluster, place)
    assert dec.dtype == np.int64 and dec.min() >= 0
    res = simulate(graph, cluster, place, fusion=dec)
    assert res.step_time > 0
