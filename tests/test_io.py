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
