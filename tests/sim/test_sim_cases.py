"""Hand-computed cases: the arithmetic of every expected figure is in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind
from go_gym.sim import FusionPlan, fuse, simulate, simulate_many
from tests.sim.reference import reference_simulate

MS = 1e-3
OTHER = int(OpKind.OTHER)
EW = int(OpKind.ELEMENTWISE)


def toy_cluster(memory: float = 1e9) -> Cluster:
    """Two devices; a link moves 1000 bytes in 1 ms after a 1 ms latency (2 ms in all)."""
    return Cluster.homogeneous(
        "toy",
        2,
        peak_flops=1e12,
        mem_bandwidth=1e11,
        memory_bytes=memory,
        launch_overhead_s=5e-6,
        link_bandwidth=1e6,
        link_latency_s=1e-3,
    )


def graph(times_us, edges, edge_bytes=1000.0, kind=OTHER, **fields) -> OpGraph:
    """Ops ``o0, o1, ...`` with measured times; each edge carries its source's output 0."""
    src = np.array([e[0] for e in edges], np.int64)
    dst = np.array([e[1] for e in edges], np.int64)
    return OpGraph(
        name="hand",
        op_names=[f"o{i}" for i in range(len(times_us))],
        op_kind=np.full(len(times_us), kind),
        measured_us=times_us,
        edge_src=src,
        edge_dst=dst,
        edge_bytes=np.full(len(edges), edge_bytes),
        **fields,
    )


def test_chain() -> None:
    # o0 (1 ms) -> o1 (2 ms) -> o2 (3 ms), 1000-byte tensors.
    g = graph([1000, 2000, 3000], [(0, 1), (1, 2)])
    c = toy_cluster()
    # One device: 1 + 2 + 3 = 6 ms, nothing moved.
    r = simulate(g, c, [0, 0, 0])
    assert r.step_time == pytest.approx(6 * MS, rel=1e-12)
    assert r.bytes_moved == 0 and r.n_transfers == 0
    # 0, 1, 0: o0 0-1, send 1-3, o1 3-5, send 5-7, o2 7-10 => 10 ms, 2000 bytes moved.
    r = simulate(g, c, [0, 1, 0], timeline=True)
    assert r.step_time == pytest.approx(10 * MS, rel=1e-12)
    assert r.bytes_moved == 2000 and r.n_transfers == 2
    tl = r.timeline
    assert tl is not None
    assert tl.unit_start == pytest.approx(np.array([0, 3, 7]) * MS, rel=1e-12)
    assert tl.transfer_start == pytest.approx(np.array([1, 5]) * MS, rel=1e-12)
    assert tl.transfer_end == pytest.approx(np.array([3, 7]) * MS, rel=1e-12)
    assert r.busy_time == pytest.approx(np.array([4, 2]) * MS, rel=1e-12)


def test_fork_join() -> None:
    # o0 (1 ms) -> o1 (4 ms), o0 -> o2 (2 ms), o1 -> o3, o2 -> o3 (1 ms).
    g = graph([1000, 4000, 2000, 1000], [(0, 1), (0, 2), (1, 3), (2, 3)])
    c = toy_cluster()
    # o1 alone on device 1: o0 0-1; o2 1-3 on device 0 while o0's tensor goes 1-3;
    # o1 3-7; its output goes back 7-9; o3 9-10 => 10 ms.
    r = simulate(g, c, [0, 1, 0, 0])
    assert r.step_time == pytest.approx(10 * MS, rel=1e-12)
    assert r.n_transfers == 2
    # o1 and o2 on device 1: o0's tensor is sent once (1-3) and read by both; FIFO by rank:
    # o1 3-7, o2 7-9; o1's output 7-9, o2's queues behind it on the same link 9-11;
    # o3 11-12 => 12 ms, 3 transfers, 3000 bytes.
    r = simulate(g, c, [0, 1, 1, 0], timeline=True)
    assert r.step_time == pytest.approx(12 * MS, rel=1e-12)
    assert r.n_transfers == 3 and r.bytes_moved == 3000
    # With a higher priority on o2 it runs first on device 1: o2 3-5, o1 5-9.
    r = simulate(g, c, [0, 1, 1, 0], priority=[0, 0, 1, 0], timeline=True)
    assert r.timeline is not None
    assert r.timeline.unit_start[1:3] == pytest.approx(np.array([5, 3]) * MS, rel=1e-12)
    # o2's output 5-7, o1's 9-11, o3 11-12 => still 12 ms.
    assert r.step_time == pytest.approx(12 * MS, rel=1e-12)


def test_transfer_overlaps_compute() -> None:
    # o0 (1 ms, device 0) -> o1 (1 ms, device 1) and o0 -> o2 (3 ms, device 0).
    # o0 0-1; the transfer 1-3 runs while o2 computes 1-4; o1 3-4 => 4 ms, not 1+2+1+3.
    g = graph([1000, 1000, 3000], [(0, 1), (0, 2)])
    r = simulate(g, toy_cluster(), [0, 1, 0], timeline=True)
    assert r.step_time == pytest.approx(4 * MS, rel=1e-12)
    assert r.busy_time == pytest.approx(np.array([4, 1]) * MS, rel=1e-12)
    assert r.timeline is not None
    assert r.timeline.transfer_start[0] == pytest.approx(1 * MS, rel=1e-12)
    assert r.timeline.transfer_end[0] == pytest.approx(3 * MS, rel=1e-12)


def memory_graph() -> OpGraph:
    # o0 writes 100 bytes read by o1; o1 writes 200 read by o2; o2 writes 40 nobody reads.
    # o0 owns 50 bytes of parameters; o1 needs 30 bytes of scratch.
    return OpGraph(
        name="memory",
        op_names=["o0", "o1", "o2"],
        op_kind=[OTHER] * 3,
        measured_us=[1000, 1000, 1000],
        bytes_written=[100, 200, 40],
        persistent_bytes=[50, 0, 0],
        temp_bytes=[0, 30, 0],
        edge_src=[0, 1],
        edge_dst=[1, 2],
        edge_bytes=[100, 200],
    )


def test_memory_peak() -> None:
    g = memory_graph()
    c = toy_cluster()
    # One device: 50 at t=0; o0 starts +100 = 150; o1 starts +200 +30 = 380 (peak);
    # o1 ends -30 scratch, -100 (o0's tensor, last reader done) = 250;
    # o2 starts +40 = 290; ends -40 -200 = 50.
    r = simulate(g, c, [0, 0, 0])
    assert r.peak_memory.tolist() == [380.0, 0.0]
    # o0 on device 0, o1 and o2 on device 1. Device 0: 50, +100 = 150 (peak), the tensor is
    # freed when its transfer arrives. Device 1: +100 on arrival, o1 +230 = 330 (peak),
    # o1 ends -30 -100 = 200, o2 +40 = 240, ends -240 = 0.
    r = simulate(g, c, [0, 1, 1])
    assert r.peak_memory.tolist() == [150.0, 330.0]


def test_a_weight_is_counted_once_where_it_lives_and_again_where_it_is_sent() -> None:
    # w: a parameter owning 100 bytes (weight + gradient + optimizer state), whose output
    # (the 40-byte weight) feeds a on device 0 and b on device 1; a's 10-byte output feeds b.
    kinds = np.array([OpKind.PARAMETER, OpKind.MATMUL, OpKind.MATMUL], np.int64)
    g = OpGraph(
        name="weights",
        op_names=["w", "a", "b"],
        op_kind=kinds,
        measured_us=[0.0, 1000.0, 1000.0],
        bytes_written=[40.0, 10.0, 0.0],
        persistent_bytes=[100.0, 0.0, 0.0],
        edge_src=[0, 0, 1],
        edge_dst=[1, 2, 2],
        edge_bytes=[40.0, 40.0, 10.0],
    )
    r = simulate(g, toy_cluster(), [0, 0, 1])
    # Device 0: 100 resident; the weight lives in them, so w's output adds nothing; a adds
    # its 10-byte output until it has been sent: peak 110 (not 150).
    # Device 1: the weight's copy (40) and a's output (10) arrive, b reads both: peak 50.
    assert r.peak_memory.tolist() == [110.0, 50.0]


def test_an_unread_weight_is_counted_once() -> None:
    # w: a parameter owning 4000 bytes whose 1000-byte output nobody reads (an unused
    # weight); o: an op that writes nothing. The weight's output lives in its persistent
    # bytes whether or not it is read: peak 4000, not 4000 + 1000.
    g = OpGraph(
        name="unused-weight",
        op_names=["w", "o"],
        op_kind=[OpKind.PARAMETER, OpKind.ELEMENTWISE],
        measured_us=[0.0, 1.0],
        bytes_written=[1000.0, 0.0],
        persistent_bytes=[4000.0, 0.0],
        edge_src=[],
        edge_dst=[],
        edge_bytes=[],
    )
    assert simulate(g, toy_cluster(), [0, 0]).peak_memory.tolist() == [4000.0, 0.0]
    ref = reference_simulate(g, toy_cluster(), [0, 0])
    assert ref.peak_memory == [4000.0, 0.0]


def test_only_a_weights_own_output_is_free_in_a_group_that_holds_it() -> None:
    # p (parameter: 4000 persistent bytes, 1000-byte output) -> m (matmul, 2000-byte output)
    # -> z. `fuse` never groups a parameter, but `FusionPlan.from_groups` may: {p, m} is one
    # unit. The weight's output is inside the group (no memory); m's output still is
    # allocated: device 0 holds 4000 + 2000 = 6000 at its peak, as unfused.
    g = OpGraph(
        name="weight-group",
        op_names=["p", "m", "z"],
        op_kind=[OpKind.PARAMETER, OpKind.MATMUL, OpKind.ELEMENTWISE],
        measured_us=[0.0, 2.0, 1.0],
        bytes_written=[1000.0, 2000.0, 0.0],
        persistent_bytes=[4000.0, 0.0, 0.0],
        edge_src=[0, 1],
        edge_dst=[1, 2],
        edge_bytes=[1000.0, 2000.0],
    )
    plan = FusionPlan.from_groups(g, [0, 0, 1])
    c = toy_cluster()
    assert simulate(g, c, [0, 0, 0]).peak_memory.tolist() == [6000.0, 0.0]
    for placement, peak in (([0, 0, 0], [6000.0, 0.0]), ([0, 0, 1], [6000.0, 2000.0])):
        assert simulate(g, c, placement, fusion=plan).peak_memory.tolist() == peak
        assert reference_simulate(g, c, placement, fusion=plan).peak_memory == peak


def test_out_of_memory_placement() -> None:
    g = memory_graph()
    # Capacity 379 < the 380 peak of the single-device placement: invalid, but reported.
    r = simulate(g, toy_cluster(memory=379), [0, 0, 0])
    assert not r.valid
    assert "out of memory on device 0" in r.reason
    assert r.step_time == pytest.approx(3 * MS, rel=1e-12)
    # Spread over two devices the peaks are 150 and 330: it fits.
    r = simulate(g, toy_cluster(memory=379), [0, 1, 1])
    assert r.valid and r.reason == ""
    assert simulate(g, toy_cluster(memory=380), [0, 0, 0]).valid


def test_fused_chain() -> None:
    # Three elementwise ops of 10, 20 and 30 us; o2 writes 40 bytes nobody reads.
    g = graph(
        [10, 20, 30],
        [(0, 1), (1, 2)],
        edge_bytes=100.0,
        kind=EW,
        bytes_written=[100, 100, 40],
    )
    c = toy_cluster()
    # Unfused: 10 + 20 + 30 = 60 us; memory 100, then +100 = 200 (peak), -100, +40.
    r = simulate(g, c, [0, 0, 0])
    assert r.step_time == pytest.approx(60e-6, rel=1e-12)
    assert r.peak_memory[0] == 200.0
    # Fused: one kernel, two launches saved: 60 - 2 x 5 = 50 us. The tensors between the
    # members never reach memory: only o2's 40 unread bytes are allocated.
    plan = fuse(g, [1, 1, 1])
    assert plan.n_groups == 1
    r = simulate(g, c, [0, 0, 0], fusion=[1, 1, 1], timeline=True)
    assert r.n_units == 1
    assert r.step_time == pytest.approx(50e-6, rel=1e-12)
    assert r.peak_memory[0] == 40.0
    assert r.timeline is not None
    assert r.timeline.op_start.tolist() == [0.0, 0.0, 0.0]
    # Split over two devices the chain cannot fuse across them: o0 alone, o1+o2 fused.
    r = simulate(g, c, [0, 1, 1], fusion=[1, 1, 1])
    assert r.n_units == 2


def test_batch_reasons_are_the_single_call_reasons() -> None:
    """`simulate_many` builds its messages for all rows at once; they must be `simulate`'s."""
    g = memory_graph().replace(colocation=np.array([0, -1, 0]))
    cluster = toy_cluster(memory=379)
    rows = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]])
    batch = simulate_many(g, cluster, rows)
    assert batch.reason == tuple(simulate(g, cluster, row).reason for row in rows)
    assert batch.valid.tolist() == [True, False, False, True, False]
    assert batch.reason[1].startswith("out of memory on device 0 (")
    name = [str(n) for n in g.op_names]
    split = f"colocation group 0 spans devices: op 0 ({name[0]!r}) and op 2 ({name[2]!r})"
    assert batch.reason[2] == split
    # Both at once: the memory message first, then the colocation one.
    assert batch.reason[4] == (
        "out of memory on device 1 (/device:GPU:1): peak 380 bytes > capacity 379; " + split
    )
