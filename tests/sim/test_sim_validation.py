"""Bad input raises a ValueError that names what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from go_gym.sim import fuse, lower_bound, simulate, simulate_many

G = random_layered_graph(100, 0, name="x")
C = Cluster.preset("p100", 4)
OK = np.zeros(100, np.int64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"placement": np.zeros(99)}, r"placement has 99 entries, graph 'x' has 100 ops"),
        (
            {"placement": np.r_[np.zeros(17), 5, np.zeros(82)]},
            r"placement\[17\] = 5 is out of range for a cluster of 4 devices",
        ),
        (
            {"placement": np.r_[np.zeros(3), -1, np.zeros(96)]},
            r"placement\[3\] = -1 is out of range",
        ),
        (
            {"placement": np.r_[np.zeros(3), 0.5, np.zeros(96)]},
            r"placement\[3\] is 0.5, not a device index",
        ),
        ({"placement": np.r_[np.zeros(3), np.nan, np.zeros(96)]}, r"placement\[3\] is NaN"),
        ({"placement": np.zeros((2, 100))}, r"placement must be 1-dimensional"),
        ({"placement": ["a"] * 100}, r"placement must hold numbers"),
        ({"priority": np.r_[np.zeros(3), np.nan, np.zeros(96)]}, r"priority\[3\] is NaN"),
        (
            {"priority": np.r_[np.zeros(3), 1.5, np.zeros(96)]},
            r"priority\[3\] is 1.5, not an integer",
        ),
        ({"priority": np.r_[np.zeros(3), np.inf, np.zeros(96)]}, r"priority\[3\] is inf"),
        ({"priority": np.zeros(7)}, r"priority has 7 entries, graph 'x' has 100 ops"),
        ({"fusion": np.r_[np.zeros(5), -1, np.zeros(94)]}, r"fusion\[5\] = -1 is negative"),
        ({"fusion": np.r_[np.zeros(5), 0.5, np.zeros(94)]}, r"fusion\[5\] is 0.5"),
        ({"fusion": np.zeros(3)}, r"fusion has 3 entries"),
        ({"profile": "nope"}, r"unknown simulation profile 'nope'"),
    ],
)
def test_simulate_rejects(kwargs: dict, message: str) -> None:
    args = {"graph": G, "cluster": C, "placement": OK, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate(**args)


def test_wrong_types() -> None:
    with pytest.raises(ValueError, match="graph must be a go_gym OpGraph"):
        simulate("x", C, OK)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cluster must be a go_gym Cluster"):
        simulate(G, None, OK)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cluster must be a go_gym Cluster"):
        lower_bound(G, "p100")  # type: ignore[arg-type]


def test_integer_valued_floats_and_lists_are_fine() -> None:
    a = simulate(G, C, OK.astype(float).tolist(), priority=np.arange(100.0), fusion=[1.0] * 100)
    b = simulate(G, C, OK, priority=np.arange(100), fusion=np.ones(100, np.int64))
    assert a.step_time == b.step_time


def test_simulate_many_rejects() -> None:
    with pytest.raises(ValueError, match=r"placements\[1, 17\] = 5 is out of range"):
        p = np.zeros((3, 100), np.int64)
        p[1, 17] = 5
        simulate_many(G, C, p)
    with pytest.raises(ValueError, match=r"placements must be 2-dimensional"):
        simulate_many(G, C, OK)
    with pytest.raises(ValueError, match=r"priorities has 2 rows, placements has 3"):
        simulate_many(G, C, np.zeros((3, 100)), priorities=np.zeros((2, 100)))
    with pytest.raises(ValueError, match=r"fusions\[0, 2\] = -3 is negative"):
        f = np.zeros((3, 100))
        f[0, 2] = -3
        simulate_many(G, C, np.zeros((3, 100)), fusions=f)
    with pytest.raises(ValueError, match="Placeto"):
        simulate_many(G, C, np.zeros((3, 100)), priorities=np.zeros((3, 100)), profile="placeto")


def test_fuse_rejects() -> None:
    with pytest.raises(ValueError, match=r"fusion has 3 entries, graph 'x' has 100 ops"):
        fuse(G, [1, 2, 3])
    with pytest.raises(ValueError, match=r"placement\[0\] = -2 is negative"):
        fuse(G, np.ones(100), placement=np.r_[-2, np.zeros(99)])


def test_colocation_violation_is_invalid_not_an_error() -> None:
    g = OpGraph(
        name="coloc",
        op_names=["a", "b", "c"],
        op_kind=[7, 7, 7],
        edge_src=[0, 1],
        edge_dst=[1, 2],
        colocation=[0, -1, 0],
    )
    assert simulate(g, C, [1, 0, 1]).valid
    r = simulate(g, C, [1, 0, 2])
    assert not r.valid
    assert "colocation group 0 spans devices" in r.reason


def test_placement_checks_copy_only_when_needed() -> None:
    from go_gym.sim._validate import check_placement

    own = np.zeros(G.n_ops, np.int64)
    assert check_placement(G, C, own) is own  # no copy of a fitting array
    frozen = own.copy()
    frozen.setflags(write=False)
    checked = check_placement(G, C, frozen)
    assert checked.flags.writeable and checked is not frozen  # one kernel signature
    assert check_placement(G, C, own.astype(np.float64)).dtype == np.int64


# --- times that overflow are refused at the boundary, never "cyclic" ----------------------------
def _chain(n: int = 3, **fields) -> OpGraph:
    args = dict(
        name="chain",
        op_names=[f"o{i}" for i in range(n)],
        op_kind=[4] * n,
        edge_src=list(range(n - 1)),
        edge_dst=list(range(1, n)),
        flops=[1e9] * n,
        edge_bytes=[1e6] * (n - 1),
    )
    args.update(fields)
    return OpGraph(**args)


def _cluster(**over) -> Cluster:
    args = dict(
        peak_flops=1e12,
        mem_bandwidth=1e11,
        memory_bytes=1e10,
        launch_overhead_s=0.0,
        link_bandwidth=1e9,
        link_latency_s=0.0,
    )
    args.update(over)
    return Cluster.homogeneous("x", 2, **args)


@pytest.mark.parametrize(
    ("graph", "cluster", "message"),
    [
        (
            _chain(bytes_read=[1e308] * 3, bytes_written=[1e308] * 3),
            _cluster(),
            r"op 0 \('o0'\)\)? takes inf s on device 0 \(/device:GPU:0\): op and group times "
            "must be finite",
        ),
        (_chain(), _cluster(peak_flops=1e-320), r"op 0 \('o0'\)\)? takes inf s"),
        (_chain(), _cluster(link_bandwidth=1e-320), r"transfer times must be finite"),
        (
            _chain(20, flops=[1e10] * 20, edge_bytes=[1.0] * 19),
            _cluster(peak_flops=1e-297),  # every op 1.3e307 s: finite, but not their sum
            r"beyond what floating point can time",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the cost model's
def test_times_that_overflow_are_refused(graph, cluster, message: str) -> None:
    placement = np.arange(graph.n_ops) % 2
    calls = [
        lambda: simulate(graph, cluster, placement),
        lambda: simulate(graph, cluster, placement, timeline=True),
        lambda: simulate(graph, cluster, placement, fusion=np.ones(graph.n_ops, np.int64)),
        lambda: simulate_many(graph, cluster, placement[None, :]),
        lambda: simulate_many(
            graph, cluster, placement[None, :], fusions=np.ones((1, graph.n_ops))
        ),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "cyclic" not in str(info.value)


def test_placeto_times_that_overflow_are_refused() -> None:
    g = _chain(measured_us=[1e308, 1e308, 1e308])
    with pytest.raises(ValueError, match="beyond what floating point can time"):
        simulate(g, _cluster(), [0, 1, 0], profile="placeto")


def test_a_cyclic_fusion_plan_is_still_named() -> None:
    from go_gym.sim import FusionPlan

    g = OpGraph(
        name="k", op_names=["x", "y", "z"], op_kind=[7, 7, 4], edge_src=[2, 1], edge_dst=[1, 0]
    )
    plan = FusionPlan.from_groups(g, [0, 1, 0])  # {x, z} around y: a cycle once contracted
    with pytest.raises(ValueError, match="fusion plan makes the contracted graph cyclic"):
        simulate(g, C, [0, 0, 0], fusion=plan)


# --- empty batches, ragged and huge inputs -----------------------------------------------------------
def test_simulate_many_of_no_rows_with_fusions() -> None:
    empty = np.zeros((0, 100), np.int64)
    plain = simulate_many(G, C, empty)
    fused = simulate_many(G, C, empty, fusions=empty)
    for field in ("step_time", "valid", "peak_memory", "busy_time", "bytes_moved", "n_transfers"):
        a, b = getattr(plain, field), getattr(fused, field)
        assert a.shape == b.shape and a.dtype == b.dtype, field
    assert len(fused) == 0 and fused.reason == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"placement": np.zeros(100, bool)}, r"placement must hold integers, got booleans"),
        ({"priority": np.ones(100, bool)}, r"priority must hold integers, got booleans"),
        ({"fusion": np.ones(100, bool)}, r"fusion must hold integers, got booleans"),
    ],
)
def test_booleans_are_not_decisions(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(**{"graph": G, "cluster": C, "placement": OK, **kwargs})
    with pytest.raises(ValueError, match="fusion must hold integers, got booleans"):
        fuse(G, np.ones(100, bool))


def test_ragged_and_huge_decisions_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"placement must be a 1-dimensional array of numbers"):
        simulate(G, C, [0, [0], *([0] * 98)])
    with pytest.raises(ValueError, match=r"placements must be a 2-dimensional array .* equal"):
        simulate_many(G, C, [[0] * 100, [0] * 99])
    huge = np.zeros(100, np.uint64)
    huge[7] = 2**63
    with pytest.raises(ValueError, match=r"placement\[7\] = 9223372036854775808 is too large"):
        simulate(G, C, huge)


# --- immutability of what the simulator caches ------------------------------------------------------
def test_cached_profile_does_not_share_the_cluster_memory() -> None:
    from go_gym.sim.simulator import _profile

    params = _profile(C, "go", False).params
    assert not np.shares_memory(params.chan_bw, C.link_bandwidth)
    assert not np.shares_memory(params.chan_lat, C.link_latency_s)


def test_fusion_plans_stay_frozen() -> None:
    import copy
    import pickle

    plan = fuse(G, np.ones(100, np.int64))
    assert copy.copy(plan) is plan and copy.deepcopy(plan) is plan
    for p in (plan, pickle.loads(pickle.dumps(plan))):
        for field in ("group", "leader", "members_ptr", "members"):
            arr = getattr(p, field)
            assert arr.tolist() == getattr(plan, field).tolist()
            with pytest.raises(ValueError, match="WRITEABLE"):
                arr.setflags(write=True)
    again = pickle.loads(pickle.dumps(plan))
    assert simulate(G, C, OK, fusion=again).step_time == simulate(G, C, OK, fusion=plan).step_time
