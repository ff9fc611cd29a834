"""OpGraph: construction, derived structure and every validation error."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from go_gym import GraphError, OpGraph, OpKind
from go_gym.generators import random_layered_graph
from go_gym.graph import STORED_FIELDS
from go_gym.opkinds import parse_op_kind


def make(n: int = 3, src=(0, 1), dst=(1, 2), **kw) -> OpGraph:
    args = dict(
        name="g",
        op_names=[f"op{i}" for i in range(n)],
        op_kind=[int(OpKind.ELEMENTWISE)] * n,
        edge_src=list(src),
        edge_dst=list(dst),
    )
    args.update(kw)
    return OpGraph(**args)


@st.composite
def dags(draw, max_ops: int = 25):
    """Random DAGs: edges only from a lower to a higher index, then ops shuffled."""
    n = draw(st.integers(1, max_ops))
    pairs = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    perm = draw(st.permutations(range(n)))
    edges = [(perm[a], perm[b]) for a, b in pairs if a < b]
    return n, edges


def test_defaults_and_sizes():
    g = make()
    assert (g.n_ops, g.n_edges, g.n_tensors) == (3, 2, 2)
    assert g.flops.tolist() == [0.0, 0.0, 0.0]
    assert g.layer.tolist() == [-1, -1, -1] and g.colocation.tolist() == [-1, -1, -1]
    assert g.scope.tolist() == ["", "", ""] and g.measured_us is None
    assert g.op_kind.dtype == np.int16 and g.edge_src.dtype == np.int32


def test_arrays_are_read_only_and_inputs_copied():
    flops = np.array([1.0, 2.0, 3.0])
    g = make(flops=flops)
    flops[0] = 99.0
    assert g.flops[0] == 1.0
    for field in ("flops", "edge_src", "topo_order", "succ", "op_names", "tensor_bytes"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(g, field)[0] = 0
    with pytest.raises(AttributeError):
        g.name = "other"  # type: ignore[misc]


def test_topological_order_keeps_program_order_when_valid():
    # A diamond given in program order: Kahn's lowest-index rule returns it unchanged.
    g = make(4, src=(0, 0, 1, 2), dst=(1, 2, 3, 3))
    assert g.topo_order.tolist() == [0, 1, 2, 3]
    assert g.depth.tolist() == [0, 1, 1, 2]
    # Reverse numbering: the order follows the edges, not the indices.
    h = make(3, src=(2, 1), dst=(1, 0))
    assert h.topo_order.tolist() == [2, 1, 0]
    assert h.topo_rank.tolist() == [2, 1, 0]


def test_tensors_are_shared_by_consumers_of_the_same_output():
    # op0 has two outputs: tensor 0 read by op1 and op2, tensor 1 read by op2.
    g = make(
        3,
        src=(0, 0, 0),
        dst=(1, 2, 2),
        edge_tensor=(0, 0, 1),
        edge_bytes=(8.0, 8.0, 16.0),
    )
    assert g.n_tensors == 2
    assert g.tensor_op.tolist() == [0, 0]
    assert g.tensor_bytes.tolist() == [8.0, 16.0]
    assert g.edge_tensor_id.tolist() == [0, 0, 1]


@settings(max_examples=150, deadline=None)
@given(dags())
def test_derived_structure_matches_networkx(dag):
    n, edges = dag
    g = make(n, src=[a for a, _ in edges], dst=[b for _, b in edges])
    ref = nx.DiGraph()
    ref.add_nodes_from(range(n))
    ref.add_edges_from(edges)
    rank = {v: i for i, v in enumerate(g.topo_order.tolist())}
    assert sorted(rank) == list(range(n))
    assert all(rank[a] < rank[b] for a, b in edges)
    assert g.topo_rank.tolist() == [rank[v] for v in range(n)]
    for v in range(n):
        assert sorted(g.successors(v).tolist()) == sorted(ref.successors(v))
        assert sorted(g.predecessors(v).tolist()) == sorted(ref.predecessors(v))
        # depth = longest path (in edges) from any source
        longest = max((g.depth[u] + 1 for u in ref.predecessors(v)), default=0)
        assert g.depth[v] == longest
    for k in range(g.n_edges):  # CSR edge ids point back at the right edges
        assert g.edge_src[g.succ_edge[k]] == np.searchsorted(g.succ_ptr, k, side="right") - 1


def test_checksum_and_equality():
    a, b = make(flops=[1, 2, 3]), make(flops=[1, 2, 3])
    assert a == b and hash(a) == hash(b) and a.checksum() == b.checksum()
    assert a != make(flops=[1, 2, 4])
    assert a != make(flops=[1, 2, 3], measured_us=[1, 1, 1])


def test_op_index():
    g = make()
    assert g.op_index("op2") == 2
    with pytest.raises(KeyError, match="no op named 'nope'"):
        g.op_index("nope")


# --- every error path names what is wrong ----------------------------------------------------
def test_cycle_names_the_ops_on_it():
    with pytest.raises(GraphError, match=r"cycle through 3 ops: 'op1' -> 'op2' -> 'op3' -> 'op1'"):
        make(4, src=(0, 1, 2, 3), dst=(1, 2, 3, 1))


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_any_back_edge_is_reported_as_a_cycle_of_real_edges(dag, data):
    n, edges = dag
    if not edges:
        return
    a, b = data.draw(st.sampled_from(edges))
    bad = [*edges, (b, a)]
    with pytest.raises(GraphError, match="cycle") as info:
        make(n, src=[s for s, _ in bad], dst=[d for _, d in bad])
    names = [part.strip(" '") for part in str(info.value).split(":", 1)[1].split("->")]
    ids = [int(x[2:]) for x in names]
    assert ids[0] == ids[-1]
    assert all((u, v) in set(bad) for u, v in itertools.pairwise(ids))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(src=(0, 5), dst=(1, 2)),
            r"edge 1 \(op 5 -> op 2 \('op2'\)\): source 5 is out of range",
        ),
        (dict(src=(0, 1), dst=(1, -1)), r"destination -1 is out of range"),
        (dict(src=(0, 1), dst=(1, 1)), r"edge 1 \(op 1 \('op1'\) -> op 1 \('op1'\)\): self loop"),
        (dict(src=(0, 0), dst=(1, 1)), r"edge 1 .*duplicate edge"),
        (dict(src=(0, 1, 2), dst=(1, 2)), r"edge_src has 3 entries but edge_dst has 2"),
        (dict(flops=[1.0, float("nan"), 0.0]), r"op 1 \('op1'\): flops = nan"),
        (dict(bytes_read=[1.0, 1.0, float("inf")]), r"op 2 \('op2'\): bytes_read = inf"),
        (dict(persistent_bytes=[0, -4, 0]), r"op 1 \('op1'\): persistent_bytes = -4.0"),
        (dict(temp_bytes=[0, 0]), r"temp_bytes has shape \(2,\), expected \(3,\)"),
        (dict(measured_us=[1, 2, float("nan")]), r"op 2 \('op2'\): measured_us = nan"),
        (dict(edge_bytes=[1.0, -1.0]), r"edge 1: edge_bytes = -1.0"),
        (dict(edge_tensor=[0, -2]), r"edge_tensor = -2"),
        (dict(op_kind=[7, 7, 99]), r"op 2 \('op2'\): op_kind 99 is not an OpKind id"),
        (dict(op_kind=[7, 7]), r"op_kind has 2 entries, expected 3"),
        (dict(layer=[0, -2, 1]), r"op 1 \('op1'\): layer = -2"),
        (dict(colocation=[0, 1]), r"colocation has 2 entries, expected 3"),
        (dict(scope=["a", "b"]), r"scope has 2 entries but the graph has 3 ops"),
        (dict(op_names=["a", "b", "a"]), r"op name 'a' is used by more than one op"),
        (dict(src=(0.5, 1), dst=(1, 2)), r"edge_src\[0\] = 0.5 is not an integer"),
        (dict(name=""), r"graph name must be a non-empty string"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(GraphError, match=message):
        make(**kwargs)


def test_conflicting_bytes_for_one_tensor():
    with pytest.raises(GraphError, match=r"edge_bytes 9.0 disagrees .* output 0 of the same op"):
        make(3, src=(0, 0), dst=(1, 2), edge_bytes=(8.0, 9.0))


def test_graph_error_is_a_value_error():
    assert issubclass(GraphError, ValueError)


def test_empty_and_single_op_graphs():
    g = make(1, src=(), dst=())
    assert g.n_edges == 0 and g.topo_order.tolist() == [0] and g.n_tensors == 0


def test_parse_op_kind():
    assert parse_op_kind("MatMul") is OpKind.MATMUL
    assert parse_op_kind(5) is OpKind.CONVOLUTION
    with pytest.raises(ValueError, match="unknown op kind 'gemm'; known kinds: other, input"):
        parse_op_kind("gemm")


def test_generator_is_deterministic_and_realistic():
    a, b = random_layered_graph(500, seed=7), random_layered_graph(500, seed=7)
    assert a == b
    assert a != random_layered_graph(500, seed=8)
    assert a.n_ops == 500 and a.n_edges >= 499 - 12  # every op past the first level has a parent
    heavy = np.isin(a.op_kind, [OpKind.MATMUL, OpKind.CONVOLUTION])
    assert 0.05 < heavy.mean() < 0.3
    assert (a.persistent_bytes[~heavy] == 0).all() and (a.persistent_bytes[heavy] > 0).all()
    # heavy-tailed: the top 10% of ops hold most of the flops
    top = np.sort(a.flops)[::-1][: a.n_ops // 10].sum()
    assert top > 0.8 * a.flops.sum()
    assert set(a.layer.tolist()) == set(range(8))


@pytest.mark.parametrize(
    "bad", [dict(n_ops=0), dict(n_ops=5, width=0), dict(n_ops=5, heavy_fraction=2.0)]
)
def test_generator_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        random_layered_graph(**bad)


def test_replace_changes_fields_and_revalidates():
    g = make(flops=[1, 2, 3])
    h = g.replace(flops=[1, 2, 4], name="h")
    assert h.name == "h" and h.flops.tolist() == [1.0, 2.0, 4.0] and g.flops[2] == 3.0
    assert h.edge_src.tolist() == g.edge_src.tolist()
    with pytest.raises(GraphError, match=r"flops = -1\.0"):
        g.replace(flops=[1, 2, -1])
    with pytest.raises(TypeError, match=r"does not store: \['topo_order'\]"):
        g.replace(topo_order=[0, 1, 2])


# --- immutability: copies, pickles, setflags ---------------------------------------------------
def _array_fields(g: OpGraph) -> dict[str, np.ndarray]:
    import dataclasses

    return {
        f.name: getattr(g, f.name)
        for f in dataclasses.fields(g)
        if isinstance(getattr(g, f.name), np.ndarray)
    }


def _assert_frozen(g: OpGraph) -> None:
    arrays = _array_fields(g)
    assert "measured_us" in arrays and "topo_order" in arrays and "edge_tensor_id" in arrays
    for field, arr in arrays.items():
        assert not arr.flags.writeable, field
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.setflags(write=True)  # a view of a read-only array: never writable again


def test_arrays_cannot_be_made_writable_again():
    g = make(flops=[1.0, 2.0, 3.0], measured_us=[1.0, 2.0, 3.0])
    _assert_frozen(g)
    assert g.flops.tolist() == [1.0, 2.0, 3.0]


def test_copies_are_the_graph_itself_and_pickles_are_rebuilt_frozen():
    import copy
    import pickle

    g = make(4, src=(0, 0, 1, 2), dst=(1, 2, 3, 3), measured_us=[10.0, 10.0, 10.0, 10.0])
    assert copy.copy(g) is g and copy.deepcopy(g) is g
    assert copy.deepcopy({"graph": g})["graph"] is g
    p = pickle.loads(pickle.dumps(g))
    assert p == g and p is not g and p.checksum() == g.checksum()
    _assert_frozen(p)
    for field, arr in _array_fields(g).items():
        other = getattr(p, field)
        assert arr.dtype == other.dtype and arr.tolist() == other.tolist(), field
    # A pickle holds the stored fields only and is rebuilt through the validating
    # constructor: a tampered one is refused like any bad graph.
    rebuild, (name, fields) = g.__reduce__()
    assert set(fields) == set(STORED_FIELDS) and name == "g"
    fields = dict(fields, measured_us=[10.0, float("nan"), 10.0, 10.0])
    with pytest.raises(GraphError, match=r"op 1 \('op1'\): measured_us = nan"):
        rebuild(name, fields)


def test_pickled_graph_simulates_like_the_original():
    import pickle

    from go_gym.cluster import Cluster
    from go_gym.sim import simulate

    g = random_layered_graph(60, seed=4)
    p = pickle.loads(pickle.dumps(g))
    cluster = Cluster.preset("p100", 2)
    placement = np.arange(60) % 2
    assert simulate(p, cluster, placement).step_time == simulate(g, cluster, placement).step_time


def test_async_vector_env_pickles_graphs():
    import gymnasium as gym

    g = random_layered_graph(40, seed=1)
    envs = gym.make_vec(
        "GOPlacement-v0", num_envs=2, vectorization_mode="async", graph=g, n_devices=2
    )
    try:
        envs.reset(seed=0)
        *_, info = envs.step(np.zeros((2, g.n_ops), np.int64))
        assert np.all(info["step_time"] > 0)
    finally:
        envs.close()


# --- neighbours ------------------------------------------------------------------------------
def test_successors_and_predecessors_check_the_op_index():
    g = make(3, src=(2,), dst=(0,))
    assert g.successors(2).tolist() == [0] and g.predecessors(0).tolist() == [2]
    assert g.successors(np.int32(2)).tolist() == [0]
    for bad in (-1, -2, 3):
        with pytest.raises(IndexError, match=rf"op {bad} is out of range: graph 'g' has 3 ops"):
            g.successors(bad)
        with pytest.raises(IndexError, match=r"valid: 0\.\.2"):
            g.predecessors(bad - 1 if bad < 0 else bad)
    with pytest.raises(TypeError, match="op must be an op index"):
        g.successors(1.0)  # type: ignore[arg-type]


# --- integers are never truncated, booleans are not integers -----------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(op_kind=[4.7, 7, 7]), r"op_kind\[0\] = 4.7 is not an integer"),
        (dict(op_kind=[True, True, True]), r"op_kind must hold integers, got dtype bool"),
        (dict(src=(False, True), dst=(1, 2)), r"edge_src must hold integers, got dtype bool"),
        (dict(edge_tensor=[True, False]), r"edge_tensor must hold integers, got dtype bool"),
        (dict(src=([0], 1), dst=(1, 2)), r"edge_src must be a sequence of integers"),
    ],
)
def test_non_integers_are_errors(kwargs, message):
    with pytest.raises(GraphError, match=message):
        make(**kwargs)


def test_parse_op_kind_never_truncates():
    assert parse_op_kind(4.0) is OpKind.MATMUL and parse_op_kind(np.int16(4)) is OpKind.MATMUL
    for bad in (4.7, None, True, [4], float("nan")):
        with pytest.raises(ValueError, match=r"unknown op kind .*; known kinds: other"):
            parse_op_kind(bad)  # type: ignore[arg-type]
