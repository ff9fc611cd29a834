"""Bad input raises a ValueError that names what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
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
    from go_gym.graph import OpGraph

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
