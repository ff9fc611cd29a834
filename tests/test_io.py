"""Graph files, the JSON interchange form and networkx conversion: exact round trips and
every kind of bad input."""

from __future__ import annotations

import io
import json
import zipfile

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from go_gym import (
    GraphError,
    OpGraph,
    OpKind,
    from_networkx,
    graph_from_json,
    graph_to_json,
    load_graph,
    save_graph,
    to_networkx,
)
from go_gym.generators import random_layered_graph
from go_gym.graph import STORED_FIELDS


def assert_identical(a: OpGraph, b: OpGraph) -> None:
    """Bit-exact equality of every stored field, not just equal checksums."""
    assert a.name == b.name
    for field in STORED_FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        if x is None or y is None:
            assert x is None and y is None, field
        else:
            assert x.dtype == y.dtype, field
            assert x.tobytes() == y.tobytes() if x.dtype.kind != "U" else x.tolist() == y.tolist()


def rich_graph() -> OpGraph:
    """Multi-output tensors, unicode names and scopes, measured times, colocation."""
    return OpGraph(
        name="rich ü",
        op_names=["x", "lstm/cell:0", "h→out", "c", "loss"],
        op_kind=[OpKind.INPUT, OpKind.MATMUL, OpKind.ELEMENTWISE, OpKind.ELEMENTWISE, OpKind.LOSS],
        flops=[0.0, 1.0e9 / 3, 2.5, 0.1, 7.0],
        bytes_read=[0, 10, 20, 30, 40],
        bytes_written=[8, 24, 8, 8, 4],
        persistent_bytes=[0, 1 << 40, 0, 0, 0],
        temp_bytes=[0, 3, 0, 0, 0],
        measured_us=[0.0, 12.345678901234567, 1e-300, 3.0, 4.0],
        scope=["", "encoder.layers.0", "encoder.layers.0", "décodeur", ""],
        layer=[-1, 0, 0, 1, -1],
        colocation=[-1, 2, 2, -1, -1],
        edge_src=[0, 1, 1, 2, 3],
        edge_dst=[1, 2, 3, 4, 4],
        edge_bytes=[8.0, 16.0, 8.0, 8.0, 8.0],
        edge_tensor=[0, 0, 1, 0, 0],
    )


# --- binary files ------------------------------------------------------------------------------
def test_save_load_is_bit_exact(tmp_path):
    for g in (rich_graph(), random_layered_graph(400, seed=2)):
        path = save_graph(g, tmp_path / f"{g.checksum()[:8]}.gograph")
        assert_identical(load_graph(path), g)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "g.gograph"
    save_graph(rich_graph(), path)
    save_graph(random_layered_graph(50), path)  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["g.gograph"]
    assert load_graph(path) == random_layered_graph(50)


def test_saved_file_gets_default_permissions(tmp_path):
    import os

    path = save_graph(rich_graph(), tmp_path / "g.gograph")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_file_never_needs_pickle(tmp_path):
    path = save_graph(rich_graph(), tmp_path / "g.gograph")
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no graph file at"):
        load_graph(tmp_path / "nope.gograph")


@pytest.mark.parametrize("cut", [0, 10, 100, 0.5, 0.9])
def test_truncated_file(tmp_path, cut):
    data = save_graph(rich_graph(), tmp_path / "g.gograph").read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    bad = tmp_path / "cut.gograph"
    bad.write_bytes(data[:n])
    with pytest.raises(GraphError, match=r"cut.gograph: not a readable go_gym graph file"):
        load_graph(bad)


def test_corrupted_bytes_anywhere_give_graph_error_or_the_original(tmp_path):
    """A flipped byte either is caught (GraphError naming the file) or lies in zip metadata
    that does not reach the data (a timestamp): then the original graph loads. Never another
    exception, never a different graph."""
    g = random_layered_graph(60, 1)
    data = bytearray(save_graph(g, tmp_path / "g.gograph").read_bytes())
    rng = np.random.default_rng(0)
    caught = 0
    for i, pos in enumerate(rng.integers(0, len(data), size=60)):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        path = tmp_path / f"bad{i}.gograph"
        path.write_bytes(bytes(bad))
        try:
            loaded = load_graph(path)
        except GraphError as exc:
            assert str(exc).startswith(str(path))
            caught += 1
        else:
            assert loaded == g
    # Zip headers (timestamps, names, sizes) are a sizeable share of a file this small, so
    # only most flips reach the data; each of those must be caught.
    assert caught >= 30


def _npz(path, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _header(**over):
    header = {"format": "go_gym.graph", "version": 1, "name": "g", "n_ops": 0, "n_edges": 0}
    header.update(over)
    return np.frombuffer(json.dumps(header).encode(), np.uint8)


def test_file_of_newer_format_version(tmp_path):
    path = _npz(tmp_path / "new.gograph", header=_header(version=2))
    with pytest.raises(
        GraphError, match=r"newer go_gym \(format version 2; this go_gym reads up to 1\)"
    ):
        load_graph(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (dict(weights=np.zeros(3)), r"not a go_gym graph file \(no header\)"),
        (dict(header=np.frombuffer(b"{not json", np.uint8)), "header is not valid JSON"),
        (dict(header=_header(format="onnx")), "wrong format name"),
        (dict(header=_header(version="1")), "invalid format version '1'"),
        (dict(header=_header()), r"file lacks arrays \['names_blob'"),
    ],
)
def test_files_that_are_not_graphs(tmp_path, arrays, message):
    with pytest.raises(GraphError, match=message):
        load_graph(_npz(tmp_path / "x.gograph", **arrays))


def test_text_file_and_pickle_file_are_rejected(tmp_path):
    (tmp_path / "t.gograph").write_text("hello")
    with pytest.raises(GraphError, match="not a readable go_gym graph file"):
        load_graph(tmp_path / "t.gograph")
    # An npz holding an object array would need pickle: refused, not executed.
    buf = io.BytesIO()
    np.savez(buf, header=np.array([{"evil": 1}], dtype=object))
    (tmp_path / "p.gograph").write_bytes(buf.getvalue())
    with pytest.raises(GraphError, match="Object arrays cannot be loaded"):
        load_graph(tmp_path / "p.gograph")


def test_consistent_file_with_wrong_checksum(tmp_path):
    path = save_graph(rich_graph(), tmp_path / "g.gograph")
    with np.load(path) as npz:
        members = dict(npz.items())
    members["flops"] = members["flops"] * 2  # still a valid graph, but not the one written
    with pytest.raises(GraphError, match="checksum mismatch: the file is corrupted"):
        load_graph(_npz(tmp_path / "tampered.gograph", **members))


def test_invalid_graph_inside_a_file_names_the_op(tmp_path):
    path = save_graph(rich_graph(), tmp_path / "g.gograph")
    with np.load(path) as npz:
        members = dict(npz.items())
    members["flops"] = members["flops"].copy()
    members["flops"][3] = -1.0
    with pytest.raises(GraphError, match=r"bad.gograph: op 3 \('c'\): flops = -1.0"):
        load_graph(_npz(tmp_path / "bad.gograph", **members))


def test_80k_op_graph_file_is_compact(tmp_path):
    g = random_layered_graph(80_000, seed=1)
    path = save_graph(g, tmp_path / "big.gograph")
    assert path.stat().st_size < 8 * 2**20
    assert load_graph(path) == g


# --- JSON ------------------------------------------------------------------------------------------
def test_json_round_trip_is_bit_exact():
    for g in (rich_graph(), random_layered_graph(300, seed=5)):
        text = json.dumps(graph_to_json(g))
        assert_identical(graph_from_json(text), g)
        assert_identical(graph_from_json(json.loads(text)), g)


def test_minimal_json_form():
    g = graph_from_json(
        {
            "name": "placeto",
            "nodes": [
                {"id": "a", "name": "op0", "compute_us": 5, "out_bytes": 100},
                {"id": "b", "name": "op1", "compute_us": 7, "out_bytes": 200},
                {"id": "c", "name": "op2", "compute_us": 0, "out_bytes": 300},
            ],
            "edges": [["a", "b"], ["a", "c"], ["b", "c"]],
        }
    )
    assert g.measured_us.tolist() == [5.0, 7.0, 0.0]
    assert g.edge_bytes.tolist() == [100.0, 100.0, 200.0]  # each child reads the parent's output
    assert g.n_tensors == 2 and g.bytes_written.tolist() == [100.0, 200.0, 300.0]
    assert g.op_kind.tolist() == [int(OpKind.OTHER)] * 3


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("[1, 2", "not valid JSON"),
        ([], "must be an object"),
        ({"nodes": []}, "needs a list under 'edges'"),
        ({"nodes": [{"name": "a"}], "edges": []}, "node 0: must be an object with an 'id'"),
        ({"nodes": [{"id": 1}, {"id": 1}], "edges": []}, "node 1: duplicate id 1"),
        ({"nodes": [{"id": 1.5}], "edges": []}, "id must be an integer or a string"),
        ({"nodes": [{"id": 0}], "edges": [[0, 9]]}, r"edge 0 \[0, 9\]: unknown node id 9"),
        ({"nodes": [{"id": 0}], "edges": [[0]]}, r"edge 0: must be \[src, dst\]"),
        ({"nodes": [{"id": 0}], "edges": [{"src": 0}]}, "needs 'src' and 'dst'"),
        ({"nodes": [{"id": 0, "flops": "many"}], "edges": []}, "node 0: flops must be a number"),
        ({"nodes": [{"id": 0, "layer": 1.5}], "edges": []}, "node 0: layer must be an integer"),
        ({"nodes": [{"id": 0, "op_kind": "gemm"}], "edges": []}, "node 0: unknown op kind 'gemm'"),
        (
            {"nodes": [{"id": 0, "compute_us": 1}, {"id": 1}], "edges": []},
            "node 1: compute_us is given for some nodes but not this one",
        ),
        (
            {"nodes": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}], "edges": [[0, 1], [1, 0]]},
            "cycle through 2 ops: 'a' -> 'b' -> 'a'",
        ),
        (
            {"nodes": [{"id": 0, "out_bytes": -1}, {"id": 1}], "edges": [[0, 1]]},
            r"op 0 \('0'\): bytes_written = -1.0",
        ),
    ],
)
def test_json_errors(obj, message):
    with pytest.raises(GraphError, match=message):
        graph_from_json(obj)


# --- networkx ----------------------------------------------------------------------------------
def test_networkx_round_trip_is_bit_exact():
    for g in (rich_graph(), random_layered_graph(200, seed=3)):
        nxg = to_networkx(g)
        assert nxg.number_of_nodes() == g.n_ops and nxg.number_of_edges() == g.n_edges
        assert nx.is_directed_acyclic_graph(nxg)
        assert_identical(from_networkx(nxg), g)


def test_from_plain_digraph_with_defaults():
    d = nx.DiGraph(name="user")
    d.add_node("in", op_kind="input")
    d.add_node("mm", op_kind="matmul", flops=2e9)
    d.add_edge("in", "mm", bytes=64.0)
    g = from_networkx(d)
    assert g.name == "user" and g.op_names.tolist() == ["in", "mm"]
    assert g.op_kind.tolist() == [int(OpKind.INPUT), int(OpKind.MATMUL)]
    assert g.edge_bytes.tolist() == [64.0]
    with pytest.raises(GraphError, match="directed networkx graph"):
        from_networkx(nx.Graph())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(0, 10_000))
def test_round_trips_on_random_graphs(n, seed):
    g = random_layered_graph(n, seed=seed, width=3)
    assert_identical(graph_from_json(json.dumps(graph_to_json(g))), g)
    assert_identical(from_networkx(to_networkx(g)), g)


def test_zipfile_member_names_are_plain(tmp_path):
    path = save_graph(rich_graph(), tmp_path / "g.gograph")
    with zipfile.ZipFile(path) as z:
        assert "header.npy" in z.namelist()


# --- JSON: unknown fields, format and version, names, non-integers ----------------------------------
def _node(**fields):
    return {"id": 0, **fields}


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"nodes": [_node(compute_time=5)], "edges": []},
            r"node 0: unknown field 'compute_time'; a node has only .*compute_us",
        ),
        (
            {"nodes": [_node(flop=1, byte=2)], "edges": []},
            r"node 0: unknown fields 'flop', 'byte'",
        ),
        (
            {"nodes": [_node(), {"id": 1}], "edges": [{"src": 0, "dst": 1, "byte": 3}]},
            r"edge 0: unknown field 'byte'; an edge object has only bytes, dst, src, tensor",
        ),
        (
            {"nodes": [], "edges": [], "node_count": 0},
            r"JSON graph: unknown field 'node_count'; a JSON graph has only edges, format",
        ),
        (
            {"format": "something.else", "nodes": [], "edges": []},
            r"not a go_gym JSON graph: format is 'something.else', expected 'go_gym.graph.json'",
        ),
        (
            {"format": "go_gym.graph.json", "version": 99, "nodes": [], "edges": []},
            r"written by a newer go_gym \(format version 99; this go_gym reads up to 1\)",
        ),
        ({"version": True, "nodes": [], "edges": []}, "invalid format version True"),
        ({"version": 1.5, "nodes": [], "edges": []}, "invalid format version 1.5"),
        ({"name": None, "nodes": [], "edges": []}, "JSON graph: name must be a string, got None"),
        ({"nodes": [_node(name=None)], "edges": []}, "node 0: name must be a string, got None"),
        ({"nodes": [_node(scope=None)], "edges": []}, "node 0: scope must be a string, got None"),
        (
            {"nodes": [_node(compute_us=1, measured_us=1)], "edges": []},
            "node 0: gives both compute_us and measured_us",
        ),
        ({"nodes": [_node(op_kind=4.7)], "edges": []}, "node 0: unknown op kind 4.7"),
        ({"nodes": [_node(op_kind=None)], "edges": []}, "node 0: unknown op kind None"),
        ({"nodes": [_node(op_kind=True)], "edges": []}, "node 0: unknown op kind True"),
        (
            {"nodes": [_node(flops=10**400)], "edges": []},
            r"node 0: flops = an integer of 1329 bits is too large for a float",
        ),
        (
            {"nodes": [_node(layer=2**40)], "edges": []},
            r"node 0: layer = 1099511627776 is outside the 32-bit range",
        ),
        (
            {"nodes": [_node(), {"id": 1}], "edges": [[0, 1, 8, 10**400]]},
            r"edge 0: tensor = an integer of 1329 bits is outside the 32-bit range",
        ),
        (
            {"nodes": [_node(), {"id": 1}], "edges": [[0, True]]},
            r"edge 0 \[0, True\]: unknown node id True",
        ),
        (
            {"nodes": [_node(), {"id": 1}], "edges": [[0, 1.0]]},
            r"edge 0 \[0, 1.0\]: unknown node id 1.0",
        ),
    ],
)
def test_json_fields_are_checked(obj, message):
    with pytest.raises(GraphError, match=message):
        graph_from_json(obj)


def test_json_measured_us_is_the_alias_of_compute_us():
    nodes = [{"id": 0, "out_bytes": 8}, {"id": 1}]
    a = graph_from_json({"nodes": [dict(n, compute_us=3.0) for n in nodes], "edges": [[0, 1]]})
    b = graph_from_json({"nodes": [dict(n, measured_us=3.0) for n in nodes], "edges": [[0, 1]]})
    assert a == b and a.measured_us.tolist() == [3.0, 3.0]
    # the form graph_to_json writes still reads back, version and format included
    doc = graph_to_json(rich_graph())
    assert doc["format"] == "go_gym.graph.json" and doc["version"] == 1
    assert_identical(graph_from_json(doc), rich_graph())


# --- networkx: attribute checks ----------------------------------------------------------------
def _digraph(edge_attrs=None, **node_attrs):
    d = nx.DiGraph()
    d.add_nodes_from(["x", "y"])
    for key, values in node_attrs.items():
        for n, v in zip(["x", "y"], values, strict=True):
            d.nodes[n][key] = v
    d.add_edge("x", "y", **(edge_attrs or {}))
    return d


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (_digraph({"tensor": 1.7}), r"edge 'x' -> 'y': tensor must be an integer, got 1.7"),
        (_digraph({"tensor": "1"}), r"edge 'x' -> 'y': tensor must be an integer, got '1'"),
        (_digraph({"bytes": "big"}), r"edge 'x' -> 'y': bytes must be a number, got 'big'"),
        (_digraph({"bytes": None}), r"edge 'x' -> 'y': bytes must be a number, got None"),
        (_digraph({"index": "x"}), r"edge 'x' -> 'y': index must be an integer, got 'x'"),
        (_digraph(op_kind=["matmul", None]), r"node 'y': unknown op kind None"),
        (_digraph(op_kind=[4.7, 4]), r"node 'x': unknown op kind 4.7"),
        (_digraph(layer=[1, None]), r"node 'y': layer must be an integer, got None"),
        (_digraph(colocation=[0, 1.5]), r"node 'y': colocation must be an integer, got 1.5"),
        (_digraph(flops=[1, "x"]), r"node 'y': flops must be a number, got 'x'"),
        (_digraph(name=["a", None]), r"node 'y': name must be a string, got None"),
        (_digraph(scope=[None, ""]), r"node 'x': scope must be a string, got None"),
        (
            _digraph(compute_us=[1.0, 2.0], measured_us=[1.0, 2.0]),
            "node 'x': gives both compute_us and measured_us",
        ),
    ],
)
def test_networkx_attributes_are_checked(graph, message):
    with pytest.raises(GraphError, match=message):
        from_networkx(graph)


def test_networkx_index_of_a_multigraph_edge_is_checked():
    g = to_networkx(rich_graph())
    u, v, k = next(iter(g.edges(keys=True)))
    g.edges[u, v, k]["index"] = 0.5
    with pytest.raises(GraphError, match=rf"edge {u} -> {v} \(key {k}\): index must be"):
        from_networkx(g)


def test_networkx_accepts_the_json_name_of_measured_times_and_whole_floats():
    g = from_networkx(_digraph({"tensor": 1.0, "bytes": 8}, compute_us=[5.0, 7.0], layer=[0.0, 1]))
    assert g.measured_us.tolist() == [5.0, 7.0]
    assert g.edge_tensor.tolist() == [1] and g.layer.tolist() == [0, 1]
    # None still means "no measured time" for a node, as before
    with pytest.raises(GraphError, match="node 'y': measured_us is given for some nodes"):
        from_networkx(_digraph(measured_us=[5.0, None]))


# --- damaged files -----------------------------------------------------------------------------
def _members(tmp_path):
    path = save_graph(rich_graph(), tmp_path / "g.gograph")
    with np.load(path) as npz:
        return dict(npz.items())


def _header_of(members, **over):
    header = json.loads(members["header"].tobytes())
    header.update(over)
    return np.frombuffer(json.dumps(header).encode(), np.uint8)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda m: {"scope_index": m["scope_index"].astype(np.float64)},
            r"array 'scope_index' must be one-dimensional integers, got float64",
        ),
        (
            lambda m: {"names_offsets": m["names_offsets"].astype(np.float64)},
            r"array 'names_offsets' must be one-dimensional integers, got float64",
        ),
        (
            lambda m: {"names_blob": np.zeros((2, 2), np.uint8)},
            r"array 'names_blob' must be one-dimensional uint8",
        ),
        (
            lambda m: {"header": _header_of(m, n_ops="5")},
            r"header field 'n_ops' must be a non-negative integer, got '5'",
        ),
        (lambda m: {"header": _header_of(m, version=True)}, "invalid format version True"),
        (
            lambda m: {"header": _header_of(m, name=None)},
            "header field 'name' must be a non-empty string, got None",
        ),
        (
            lambda m: {"header": _header_of(m, has_measured_us="yes")},
            "header field 'has_measured_us' must be true or false",
        ),
    ],
)
def test_damaged_members_give_graph_errors_naming_the_file(tmp_path, damage, message):
    members = _members(tmp_path)
    members.update(damage(members))
    path = _npz(tmp_path / "bad.gograph", **members)
    with pytest.raises(GraphError, match=message) as info:
        load_graph(path)
    assert str(info.value).startswith(str(path))


def test_json_export_and_other_files_are_not_taken_for_pickles(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_to_json(rich_graph())))
    with pytest.raises(GraphError, match=r"it holds JSON text; .* go_gym.graph_from_json") as info:
        load_graph(path)
    assert "allow_pickle" not in str(info.value) and str(info.value).startswith(str(path))
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(GraphError, match=r"a.npy: not a readable .*: a single NumPy array"):
        load_graph(tmp_path / "a.npy")
    (tmp_path / "e.gograph").write_bytes(b"")
    with pytest.raises(GraphError, match=r"e.gograph: not a readable .*: the file is empty"):
        load_graph(tmp_path / "e.gograph")
