"""Cluster presets and validation, and the cost model on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym import Cluster, OpGraph, OpKind
from go_gym.cluster import FIGURES, PRESETS, fused_group_times, group_boundary_bytes, op_times

P100_PEAK, P100_BW, LAUNCH = 9.3e12, 732e9, 5e-6


def chain(kinds, flops, bytes_read, bytes_written, edges, edge_bytes, measured=None):
    n = len(kinds)
    return OpGraph(
        name="c",
        op_names=[f"op{i}" for i in range(n)],
        op_kind=[int(k) for k in kinds],
        flops=flops,
        bytes_read=bytes_read,
        bytes_written=bytes_written,
        edge_src=[s for s, _ in edges],
        edge_dst=[d for _, d in edges],
        edge_bytes=edge_bytes,
        measured_us=measured,
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_with_default_and_custom_sizes(name):
    c = Cluster.preset(name)
    assert c.n_devices == PRESETS[name]["n_devices"]
    assert c.device_names[0] == "/device:GPU:0"
    two = Cluster.preset(name, n_devices=2)
    assert two.n_devices == 2 and two.link_bandwidth.shape == (2, 2)
    assert (two.memory_bytes == PRESETS[name]["memory_bytes"]).all()


def test_p100_numbers_and_dgx1_topology():
    p = Cluster.preset("p100", 4)
    assert p.peak_flops[0] == 9.3e12 and p.memory_bytes[0] == 16e9
    assert p.link_bandwidth[0, 3] == 12e9
    v = Cluster.preset("v100")
    assert v.link_bandwidth[0, 1] == 25e9  # same quad: NVLink
    assert v.link_bandwidth[0, 4] == 25e9  # i <-> i+4: NVLink
    assert v.link_bandwidth[1, 6] == 10e9  # neither: PCIe
    k = Cluster.preset("k80", 12)
    assert k.link_bandwidth[0, 1] == 7.6e9 and k.link_latency_s[0, 1] == 25e-6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Cluster.preset("tpu"), r"unknown cluster preset 'tpu'; known presets: \['h100'"),
        (lambda: Cluster.preset("p100", 0), r"preset 'p100' supports 1..8 devices, got 0"),
        (lambda: Cluster.preset("v100", 9), r"supports 1..8 devices, got 9"),
    ],
)
def test_preset_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _two(**over):
    args = dict(
        name="x",
        device_names=("a", "b"),
        peak_flops=[1e12, 1e12],
        mem_bandwidth=[1e11, 1e11],
        memory_bytes=[1e9, 1e9],
        launch_overhead_s=[0.0, 0.0],
        link_bandwidth=[[0, 1e9], [1e9, 0]],
        link_latency_s=[[0, 1e-6], [1e-6, 0]],
    )
    args.update(over)
    return Cluster(**args)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (dict(device_names=()), "at least one device"),
        (dict(device_names=("a", "a")), "device names must be unique"),
        (dict(peak_flops=[1e12, 0.0]), r"device 1 \('b'\): peak_flops = 0.0 is not valid"),
        (dict(memory_bytes=[1e9]), r"memory_bytes has shape \(1,\), expected \(2,\)"),
        (dict(mem_bandwidth=[1e11, float("nan")]), "mem_bandwidth holds NaN"),
        (dict(launch_overhead_s=[0.0, -1.0]), r"launch_overhead_s = -1.0"),
        (dict(link_bandwidth=[[0, 1e9], [0.0, 0]]), r"link b -> a: link_bandwidth = 0.0"),
        (dict(link_latency_s=[[0, 1e-6]]), r"link_latency_s has shape \(1, 2\)"),
    ],
)
def test_cluster_validation(over, message):
    with pytest.raises(ValueError, match=message):
        _two(**over)


def test_cluster_is_immutable():
    c = _two()
    with pytest.raises(ValueError, match="read-only"):
        c.peak_flops[0] = 1.0


def test_roofline_hand_computed():
    g = chain(
        [OpKind.PARAMETER, OpKind.MATMUL, OpKind.ELEMENTWISE],
        flops=[0.0, 1e12, 1e6],
        bytes_read=[0.0, 1e6, 1e9],
        bytes_written=[4e6, 2e6, 0.0],
        edges=[(0, 1), (1, 2)],
        edge_bytes=[4e6, 2e6],
    )
    t = op_times(g, Cluster.preset("p100", 2))
    assert t.shape == (3, 2)
    assert t[0].tolist() == [0.0, 0.0]  # a parameter is a tensor at rest: no kernel
    # matmul: compute-bound, 1e12 / (9.3e12 * 0.75) beats 3e6 bytes / (732e9 * 0.8)
    assert t[1, 0] == pytest.approx(LAUNCH + 1e12 / (P100_PEAK * 0.75), rel=1e-12)
    # elementwise: memory-bound, 1e9 bytes / (732e9 * 0.85)
    assert t[2, 1] == pytest.approx(LAUNCH + 1e9 / (P100_BW * 0.85), rel=1e-12)


def test_measured_times_are_used_on_every_device():
    g = chain(
        [OpKind.INPUT, OpKind.MATMUL],
        flops=[0.0, 1e15],
        bytes_read=[0.0, 0.0],
        bytes_written=[0.0, 0.0],
        edges=[(0, 1)],
        edge_bytes=[1.0],
        measured=[3.0, 12.5],
    )
    t = op_times(g, Cluster.preset("k80", 3))
    assert t[1].tolist() == [12.5e-6] * 3
    assert t[0].tolist() == [0.0] * 3  # inputs never take time


def test_fused_chain_counts_only_boundary_bytes():
    # matmul a (reads 1e6, writes 4e8) -> relu b (reads 4e8, writes 4e8), b's output unread.
    g = chain(
        [OpKind.MATMUL, OpKind.ELEMENTWISE],
        flops=[2e9, 1e8],
        bytes_read=[1e6, 4e8],
        bytes_written=[4e8, 4e8],
        edges=[(0, 1)],
        edge_bytes=[4e8],
    )
    # The edge's tensor never reaches memory: its write and its read both disappear.
    assert group_boundary_bytes(g, np.array([0, 0]), 1).tolist() == [1e6 + 4e8]
    t = fused_group_times(g, Cluster.preset("p100", 1), [0, 0])
    compute = 2.1e9 / (P100_PEAK * 0.75)  # heaviest member (matmul) sets the efficiency
    memory = (1e6 + 4e8) / (P100_BW * 0.8)
    assert t.shape == (1, 1)
    assert t[0, 0] == pytest.approx(LAUNCH + max(compute, memory), rel=1e-12)
    # Unfused, the same ops cost two launches and all their traffic.
    unfused = fused_group_times(g, Cluster.preset("p100", 1), [0, 1])
    assert unfused[:, 0] == pytest.approx(op_times(g, Cluster.preset("p100", 1))[:, 0], rel=1e-12)
    assert unfused.sum() > t.sum()


def test_tensor_read_outside_the_group_is_still_written():
    # a -> b (fused with a) and a -> c (outside): a's output must still be written.
    g = chain(
        [OpKind.MATMUL, OpKind.ELEMENTWISE, OpKind.ELEMENTWISE],
        flops=[1e9, 1e6, 1e6],
        bytes_read=[10.0, 100.0, 100.0],
        bytes_written=[100.0, 7.0, 5.0],
        edges=[(0, 1), (0, 2)],
        edge_bytes=[100.0, 100.0],
    )
    b = group_boundary_bytes(g, np.array([0, 0, 1]), 2)
    assert b.tolist() == [10.0 + 100.0 + 100.0 + 7.0 - 100.0, 105.0]


def test_a_tensor_read_by_several_members_of_a_group_is_read_once():
    # a -> b, a -> c, b -> c; group {b, c}. The fused kernel reads a's 1e5-byte output once
    # (as XLA's cost analysis counts each fusion operand once), keeps b's output inside and
    # writes c's: 1e5 + 1e5 = 2e5 bytes, not 3e5.
    g = chain(
        [OpKind.ELEMENTWISE] * 3,
        flops=[0.0] * 3,
        bytes_read=[0.0, 1e5, 2e5],
        bytes_written=[1e5] * 3,
        edges=[(0, 1), (0, 2), (1, 2)],
        edge_bytes=[1e5] * 3,
    )
    assert group_boundary_bytes(g, np.array([0, 1, 1]), 2).tolist() == [1e5, 2e5]
    t = fused_group_times(g, Cluster.preset("p100", 1), [0, 1, 1])
    assert t[1, 0] == pytest.approx(LAUNCH + 2e5 / (P100_BW * 0.85), rel=1e-12)


def _slow_boundary_bytes(g, group, n_groups):
    """Per group, from the definition: the members' own traffic, less the reads the fused
    kernel does not do (a tensor made inside is never read from memory; one from outside is
    read once, however many members read it) and the writes it does not do (a tensor made
    inside and read only inside never reaches memory)."""
    out = []
    for k in range(n_groups):
        members = {int(i) for i in np.flatnonzero(group == k)}
        total = sum(float(g.bytes_read[i] + g.bytes_written[i]) for i in members)
        for t in range(g.n_tensors):
            readers = [int(d) for d in g.edge_dst[g.edge_tensor_id == t]]
            inside = [r for r in readers if r in members]
            size = float(g.tensor_bytes[t])
            if int(g.tensor_op[t]) in members:
                total -= size * len(inside)
                if len(inside) == len(readers):
                    total -= size
            elif inside:
                total -= size * (len(inside) - 1)
        out.append(max(total, 0.0))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_boundary_bytes_match_a_per_group_count(seed):
    from go_gym.generators import random_layered_graph

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    g = random_layered_graph(n, seed, width=int(rng.integers(1, 5)), max_fan_in=3)
    if seed % 2:  # several outputs per op, several readers per tensor, some reads unmodelled
        t = rng.integers(0, 2, g.n_edges)
        sizes = rng.choice([0.0, 10.0, 1e3, 5e4], (g.n_ops, 2))
        g = g.replace(
            edge_tensor=t,
            edge_bytes=sizes[g.edge_src, t],
            bytes_read=rng.choice([0.0, 1e3, 1e5], g.n_ops),
        )
    n_groups = int(rng.integers(1, n + 1))
    group = rng.integers(0, n_groups, n)
    got = group_boundary_bytes(g, group, n_groups)
    assert got == pytest.approx(_slow_boundary_bytes(g, group, n_groups), rel=1e-12, abs=1e-6)


def test_a_measured_group_is_never_faster_than_a_member():
    # 3, 4 and 5 us elementwise ops on a p100 (5 us launches): each time is all launch share,
    # so the fused kernel pays the largest share, 5 us, and no work. The old rule (sum less
    # two launches) gave 12 - 10 = 2 us, faster than the 5 us member alone.
    g = chain(
        [OpKind.ELEMENTWISE] * 3,
        flops=[0.0] * 3,
        bytes_read=[0.0] * 3,
        bytes_written=[0.0] * 3,
        edges=[(0, 1), (1, 2)],
        edge_bytes=[1.0, 1.0],
        measured=[3.0, 4.0, 5.0],
    )
    c = Cluster.preset("p100", 2)
    assert fused_group_times(g, c, [0, 0, 0]) == pytest.approx(np.full((1, 2), 5e-6), rel=1e-12)
    # A mix: 2 us (all launch share) and 30 us (5 us launch, 25 us work): 5 + 25 = 30 us.
    assert fused_group_times(g.replace(measured_us=[2.0, 30.0, 5.0]), c, [0, 0, 1])[
        :, 0
    ] == pytest.approx([30e-6, 5e-6], rel=1e-12)
    # Every member at least a launch: the sum less one launch per extra kernel, 12 + 20 + 7
    # - 2 x 5 = 29 us; singletons take their own time.
    long = g.replace(measured_us=[12.0, 20.0, 7.0])
    assert fused_group_times(long, c, [0, 0, 0])[0, 0] == pytest.approx(29e-6, rel=1e-12)
    assert fused_group_times(long, c, [0, 1, 2])[:, 1].tolist() == [12e-6, 20e-6, 7e-6]


def test_fused_measured_group_saves_launches():
    g = chain(
        [OpKind.OTHER, OpKind.OTHER, OpKind.OTHER],
        flops=[0.0] * 3,
        bytes_read=[0.0] * 3,
        bytes_written=[0.0] * 3,
        edges=[(0, 1), (1, 2)],
        edge_bytes=[1.0, 1.0],
        measured=[10.0, 20.0, 30.0],
    )
    t = fused_group_times(g, Cluster.preset("k80", 1), [0, 0, 0])
    assert t[0, 0] == pytest.approx(60e-6 - 2 * 5.7e-6, rel=1e-12)


def test_fused_group_time_validates_groups():
    g = chain([OpKind.MATMUL], [1.0], [1.0], [1.0], [], [])
    c = Cluster.preset("p100", 1)
    with pytest.raises(ValueError, match=r"group has shape \(2,\), expected \(1,\)"):
        fused_group_times(g, c, [0, 0])
    with pytest.raises(ValueError, match=r"group ids must lie in 0..0"):
        fused_group_times(g, c, [3], n_groups=1)


def test_op_time_floor_bounds_every_fusion():
    from go_gym.cluster import op_time_floor

    g = chain(
        [OpKind.PARAMETER, OpKind.ELEMENTWISE, OpKind.MATMUL],
        flops=[0.0, 9.3e9, 9.3e12],
        bytes_read=[0.0, 1e12, 1.0],
        bytes_written=[8.0, 8.0, 8.0],
        edges=[(0, 1), (1, 2)],
        edge_bytes=[8.0, 8.0],
    )
    c = Cluster.preset("p100", 2)
    # flops at the best kernel efficiency (matmul, 0.75), no memory traffic: even an
    # elementwise op fused into a matmul epilogue cannot run faster than that; it may lose its
    # launch, while the matmul heads its own kernel and keeps one (5 us on p100).
    assert op_time_floor(g, c).tolist() == [0.0, 9.3e9 / (9.3e12 * 0.75), 1.0 / 0.75 + 5e-6]
    assert (op_time_floor(g, c) <= op_times(g, c).min(axis=1)).all()
    measured = chain(
        [OpKind.ELEMENTWISE, OpKind.ELEMENTWISE, OpKind.OTHER],
        [0.0] * 3,
        [0.0] * 3,
        [0.0] * 3,
        [(0, 1), (1, 2)],
        [1.0, 1.0],
        measured=[10.0, 3.0, 4.0],
    )
    # measured: a fused LIGHT op saves at most its launch (5.7 us on k80); an OTHER op is
    # never fused and keeps its whole time
    floor = op_time_floor(measured, Cluster.preset("k80", 1))
    assert floor == pytest.approx([10e-6 - 5.7e-6, 0.0, 4e-6], abs=1e-18)


# --- immutability ------------------------------------------------------------------------------
_ARRAYS = FIGURES  # every array field of a Cluster


def _assert_frozen(c: Cluster) -> None:
    for field in _ARRAYS:
        arr = getattr(c, field)
        assert not arr.flags.writeable, field
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.setflags(write=True)


def test_cluster_arrays_cannot_be_made_writable_again():
    _assert_frozen(Cluster.preset("p100", 2))
    _assert_frozen(_two())


def test_cluster_copies_are_itself_and_pickles_are_rebuilt_frozen():
    import copy
    import pickle

    c = Cluster.preset("v100", 8)
    assert copy.copy(c) is c and copy.deepcopy(c) is c
    p = pickle.loads(pickle.dumps(c))
    _assert_frozen(p)
    assert p.name == c.name and p.device_names == c.device_names
    for field in _ARRAYS:
        assert getattr(p, field).tobytes() == getattr(c, field).tobytes(), field
    rebuild, (fields,) = c.__reduce__()
    bandwidth = np.array(c.link_bandwidth)
    bandwidth[0, 1] = -1e9
    with pytest.raises(ValueError, match=r"link_bandwidth = -1000000000.0"):
        rebuild({**fields, "link_bandwidth": bandwidth})


# --- argument checks ---------------------------------------------------------------------------
def _homogeneous(n=2, **over):
    args = dict(
        peak_flops=1e12,
        mem_bandwidth=1e11,
        memory_bytes=1e10,
        launch_overhead_s=5e-6,
        link_bandwidth=1e10,
        link_latency_s=1e-5,
    )
    args.update(over)
    return Cluster.homogeneous("x", n, **args)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: _homogeneous(1.7), r"n_devices must be an integer, got 1.7"),
        (lambda: _homogeneous("2"), r"n_devices must be an integer, got '2'"),
        (lambda: _homogeneous(True), r"n_devices must be an integer, got True"),
        (lambda: _homogeneous(None), r"n_devices must be an integer, got None"),
        (lambda: Cluster.preset("p100", 2.5), r"n_devices must be an integer, got 2.5"),
        (lambda: Cluster.preset(None), r"preset name must be a string, got None; known presets"),
        (
            lambda: _homogeneous(link_bandwidth=np.full((3, 3), 1e9)),
            r"link_bandwidth must be a number or a \(2, 2\) matrix .* got shape \(3, 3\)",
        ),
        (
            lambda: _homogeneous(link_bandwidth=[1e9, 2e9]),
            r"link_bandwidth must be a number or a \(2, 2\) matrix .* got shape \(2,\)",
        ),
        (
            lambda: _homogeneous(link_latency_s=[[0.0]]),
            r"link_latency_s must be a number or a \(2, 2\) matrix",
        ),
        (
            lambda: _homogeneous(peak_flops=[1e12, 2e12, 3e12]),
            r"peak_flops must be a number or one value per device, shape \(2,\); got shape \(3,\)",
        ),
        (lambda: _homogeneous(memory_bytes="big"), r"memory_bytes must be a number"),
    ],
)
def test_helpers_name_the_bad_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_integer_like_device_counts_and_per_device_figures_are_fine():
    assert Cluster.preset("p100", np.int64(3)).n_devices == 3
    c = _homogeneous(np.int32(2), peak_flops=[1e12, 2e12], link_bandwidth=np.full((2, 2), 1e9))
    assert c.peak_flops.tolist() == [1e12, 2e12] and c.link_bandwidth[0, 1] == 1e9


def test_cost_model_checks_argument_types():
    g = chain([OpKind.MATMUL], [1e9], [0.0], [0.0], [], [])
    c = Cluster.preset("p100", 2)
    from go_gym.cluster import op_time_floor

    with pytest.raises(TypeError, match=r"op_times\(graph, cluster\): graph must be a go_gym"):
        op_times("g", c)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"graph must be a go_gym OpGraph, got Cluster"):
        op_times(c, g)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"cluster must be a go_gym Cluster, got str"):
        op_time_floor(g, "p100")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fused_group_times\(graph, cluster\)"):
        fused_group_times(g, "p100", [0])  # type: ignore[arg-type]


def test_fused_group_ids_are_never_truncated():
    g = chain(
        [OpKind.MATMUL, OpKind.ELEMENTWISE, OpKind.ELEMENTWISE],
        flops=[1e9, 1e6, 1e6],
        bytes_read=[0.0, 0.0, 0.0],
        bytes_written=[0.0, 0.0, 0.0],
        edges=[(0, 1), (1, 2)],
        edge_bytes=[1.0, 1.0],
    )
    c = Cluster.preset("p100", 2)
    with pytest.raises(ValueError, match=r"group\[0\] = 0.5 is not an integer group id"):
        fused_group_times(g, c, [0.5, 0.5, 1.9])
    with pytest.raises(ValueError, match=r"group\[0\] = nan"):
        fused_group_times(g, c, [np.nan, 0, 1])
    with pytest.raises(ValueError, match=r"n_groups must be an integer, got 2.5"):
        fused_group_times(g, c, [0, 0, 1], 2.5)  # type: ignore[arg-type]
    whole = fused_group_times(g, c, [0.0, 0.0, 1.0])
    assert whole.tolist() == fused_group_times(g, c, [0, 0, 1]).tolist()


def test_fused_group_times_of_an_empty_graph():
    empty = OpGraph(name="e", op_names=[], op_kind=[], edge_src=[], edge_dst=[])
    assert fused_group_times(empty, Cluster.preset("p100", 2), []).shape == (0, 2)


def test_checksum_covers_the_figures_not_the_names():
    p100 = Cluster.preset("p100", 2)
    renamed = Cluster.homogeneous(
        "other",
        2,
        peak_flops=p100.peak_flops,
        mem_bandwidth=p100.mem_bandwidth,
        memory_bytes=p100.memory_bytes,
        launch_overhead_s=p100.launch_overhead_s,
        link_bandwidth=p100.link_bandwidth,
        link_latency_s=p100.link_latency_s,
    )
    assert renamed.checksum() == p100.checksum()
    assert Cluster.preset("k80", 2).checksum() != p100.checksum()
    assert Cluster.preset("p100", 4).checksum() != p100.checksum()
