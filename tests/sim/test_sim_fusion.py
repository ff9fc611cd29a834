"""`fuse`: legality by construction, checked with networkx on many random graphs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from go_gym.opkinds import FUSION_ROLE, FusionRole, OpKind
from go_gym.sim import FusionPlan, fuse, simulate
from tests.sim.sim_cases import tie_graph

ROLE = np.array([int(FUSION_ROLE[OpKind(i)]) for i in range(len(OpKind))])


def assert_legal(g: OpGraph, plan: FusionPlan, decision: np.ndarray, placement: np.ndarray) -> None:
    group = plan.group
    assert group.shape == (g.n_ops,)
    assert set(np.unique(group).tolist()) == set(range(plan.n_groups))
    # Contracted graph is acyclic.
    contracted = nx.DiGraph()
    contracted.add_nodes_from(range(plan.n_groups))
    for s, d in zip(g.edge_src.tolist(), g.edge_dst.tolist(), strict=True):
        if group[s] != group[d]:
            contracted.add_edge(int(group[s]), int(group[d]))
    assert nx.is_directed_acyclic_graph(contracted)
    # Group ids follow the topological order of their leaders.
    assert (np.diff(g.topo_rank[plan.leader]) > 0).all()
    full = nx.DiGraph()
    full.add_nodes_from(range(g.n_ops))
    full.add_edges_from(zip(g.edge_src.tolist(), g.edge_dst.tolist(), strict=True))
    role = np.where(decision > 0, ROLE[g.op_kind], int(FusionRole.NEVER))
    for k in range(plan.n_groups):
        members = plan.group_members(k)
        assert (group[members] == k).all()
        assert len(set(placement[members].tolist())) == 1, "group spans devices"
        if len(members) == 1:
            continue
        assert (role[members] != FusionRole.NEVER).all(), "NEVER / undecided op fused"
        heavy = members[role[members] == FusionRole.HEAVY]
        assert len(heavy) <= 1, "two heavy ops in one group"
        inside = full.subgraph(members.tolist())
        assert nx.is_weakly_connected(inside)
        if len(heavy) == 1:  # epilogue only: every member reachable from the heavy op
            reach = nx.descendants(inside, int(heavy[0])) | {int(heavy[0])}
            assert reach == set(members.tolist())


@pytest.mark.parametrize("seed", range(40))
def test_fusion_is_legal_on_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    if seed % 2:
        g = random_layered_graph(
            int(rng.integers(2, 300)), seed, heavy_fraction=float(rng.uniform(0, 0.6))
        )
    else:
        g = tie_graph(int(rng.integers(2, 120)), seed)
    for _ in range(5):
        n_dev = int(rng.integers(1, 4))
        placement = rng.integers(0, n_dev, g.n_ops)
        decision = rng.integers(0, 4, g.n_ops) * (rng.random(g.n_ops) < 0.8)
        plan = fuse(g, decision, placement)
        assert_legal(g, plan, decision, placement)


def test_fusion_merges_a_lot_when_allowed() -> None:
    # Sanity: on a layered graph with everything allowed, fusion does reduce the units.
    g = random_layered_graph(2000, 1, heavy_fraction=0.2)
    plan = fuse(g, np.ones(g.n_ops, np.int64))
    assert plan.n_groups < 0.8 * g.n_ops
    assert_legal(g, plan, np.ones(g.n_ops), np.zeros(g.n_ops, np.int64))


def chain(kinds: list[OpKind]) -> OpGraph:
    n = len(kinds)
    return OpGraph(
        name="chain",
        op_names=[f"o{i}" for i in range(n)],
        op_kind=[int(k) for k in kinds],
        flops=np.full(n, 1e6),
        bytes_written=np.full(n, 1e3),
        edge_src=list(range(n - 1)),
        edge_dst=list(range(1, n)),
        edge_bytes=np.full(n - 1, 1e3),
    )


E, M, C, P = OpKind.ELEMENTWISE, OpKind.MATMUL, OpKind.CONVOLUTION, OpKind.PARAMETER


@pytest.mark.parametrize(
    ("kinds", "groups"),
    [
        ([E, E, E], [0, 0, 0]),  # light ops chain together
        ([M, E, E], [0, 0, 0]),  # a matmul absorbs its elementwise epilogue
        ([E, M, E], [0, 1, 1]),  # ... but no prologue
        ([M, C], [0, 1]),  # two heavy ops never share a group
        ([M, E, C, E], [0, 0, 1, 1]),
        ([P, E, E], [0, 1, 1]),  # parameters are never fused
    ],
)
def test_kind_rules(kinds: list[OpKind], groups: list[int]) -> None:
    g = chain(kinds)
    assert fuse(g, np.ones(g.n_ops, np.int64)).group.tolist() == groups


def test_zero_decision_and_devices_keep_ops_apart() -> None:
    g = chain([E, E, E, E])
    assert fuse(g, [1, 1, 0, 1]).group.tolist() == [0, 0, 1, 2]
    assert fuse(g, [1, 1, 1, 1], placement=[0, 0, 1, 1]).group.tolist() == [0, 0, 1, 1]


def test_acyclicity_rule_refuses_a_cycle() -> None:
    # a -> b -> c and a -> c: fusing a with c alone would put b both after and before them.
    g = OpGraph(
        name="diamond",
        op_names=["a", "b", "c"],
        op_kind=[int(E)] * 3,
        edge_src=[0, 1, 0],
        edge_dst=[1, 2, 2],
        edge_bytes=[1.0, 1.0, 1.0],
    )
    plan = fuse(g, [1, 0, 1])  # b may not fuse, so a and c must stay apart
    assert plan.n_groups == 3


def test_plan_checks_in_simulate() -> None:
    g = chain([E, E, E])
    c = Cluster.preset("p100", 2)
    plan = FusionPlan.from_groups(g, [5, 5, 7])
    assert plan.group.tolist() == [0, 0, 1]
    assert simulate(g, c, [0, 0, 1], fusion=plan).n_units == 2
    with pytest.raises(ValueError, match="spans devices"):
        simulate(g, c, [0, 1, 1], fusion=plan)
    cyclic = FusionPlan.from_groups(g, [0, 1, 0])  # o0 and o2 around o1
    with pytest.raises(ValueError, match="cyclic"):
        simulate(g, c, [0, 0, 0], fusion=cyclic)
