"""Graph files and interchange: a safe binary format, a plain JSON form, networkx at the edge.

Binary format (``.gograph``): a zip of NumPy ``.npy`` arrays (``numpy.savez_compressed``),
read back with ``allow_pickle=False`` so a file can never execute code. One member,
``header``, is a UTF-8 JSON document stored as a uint8 array::

    {"format": "go_gym.graph", "version": 1, "name": ..., "n_ops": ..., "n_edges": ...,
     "has_measured_us": ..., "checksum": <OpGraph.checksum()>}

Strings are stored as one UTF-8 buffer plus offsets (names) or as a table of distinct values
plus an index (scopes, which repeat), since NumPy's fixed-width unicode arrays would take four
bytes per character. Loading rebuilds the `OpGraph` through its constructor (so a file gets
exactly the validation a graph built in code gets) and compares the checksum, so a file that
was corrupted yet still parses is caught too. Writes go to a temporary file that is renamed
into place: an interrupted save never leaves a half-written graph behind.

JSON form (what other tools can write by hand)::

    {"name": "g",
     "nodes": [{"id": 0, "name": "a", "compute_us": 12.0, "out_bytes": 4096}, ...],
     "edges": [[0, 1], ...]}

Each node has one output tensor of ``out_bytes`` read by all its children, and ``compute_us``
is its measured time (give it for every node or for none). Optional node fields: ``op_kind``
(a name such as ``"matmul"`` or an id), ``flops``, ``bytes_read``, ``bytes_written`` (default:
``out_bytes``), ``persistent_bytes``, ``temp_bytes``, ``scope``, ``layer``, ``colocation``.
An edge may also be ``[src, dst, bytes, tensor]`` to carry one of several outputs; that is the
form `graph_to_json` writes, so any `OpGraph` survives a JSON round trip bit for bit.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from go_gym.graph import GraphError, OpGraph
from go_gym.opkinds import OpKind, parse_op_kind

__all__ = [
    "FORMAT_VERSION",
    "from_networkx",
    "graph_from_json",
    "graph_to_json",
    "load_graph",
    "save_graph",
    "to_networkx",
]

FORMAT_NAME = "go_gym.graph"
FORMAT_VERSION = 1
JSON_FORMAT_NAME = "go_gym.graph.json"

_NUMERIC_FIELDS = (
    "op_kind",
    "flops",
    "bytes_read",
    "bytes_written",
    "persistent_bytes",
    "temp_bytes",
    "layer",
    "colocation",
    "edge_src",
    "edge_dst",
    "edge_bytes",
    "edge_tensor",
)


# --- binary files ------------------------------------------------------------------------------
def _encode_strings(values: NDArray[np.str_]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    encoded = [s.encode("utf-8") for s in values.tolist()]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


def _decode_strings(blob: NDArray[np.uint8], offsets: NDArray[np.int64]) -> list[str]:
    if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != blob.size:
        raise GraphError("string table offsets do not match its data")
    if (np.diff(offsets) < 0).any():
        raise GraphError("string table offsets are not increasing")
    data = blob.tobytes()
    bounds = offsets.tolist()
    try:
        return [data[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]
    except UnicodeDecodeError as exc:
        raise GraphError(f"string table is not valid UTF-8: {exc}") from None


def save_graph(graph: OpGraph, path: str | os.PathLike[str]) -> Path:
    """Write ``graph`` to ``path`` in the ``.gograph`` format (atomically). Returns the path."""
    if not isinstance(graph, OpGraph):
        raise TypeError(f"save_graph expects an OpGraph, got {type(graph).__name__}")
    path = Path(path)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": graph.name,
        "n_ops": graph.n_ops,
        "n_edges": graph.n_edges,
        "has_measured_us": graph.measured_us is not None,
        "checksum": graph.checksum(),
    }
    arrays: dict[str, Any] = {  # Any: numpy's stubs read **arrays as savez's allow_pickle
        "header": np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    }
    arrays["names_blob"], arrays["names_offsets"] = _encode_strings(graph.op_names)
    scopes, scope_index = np.unique(graph.scope, return_inverse=True)
    arrays["scopes_blob"], arrays["scopes_offsets"] = _encode_strings(scopes)
    arrays["scope_index"] = scope_index.astype(np.int32).reshape(-1)
    for field in _NUMERIC_FIELDS:
        arrays[field] = getattr(graph, field)
    if graph.measured_us is not None:
        arrays["measured_us"] = graph.measured_us
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        # mkstemp creates 0600 files; give the graph the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_graph(path: str | os.PathLike[str]) -> OpGraph:
    """Read a ``.gograph`` file written by `save_graph`.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        GraphError: if the file is truncated, corrupted, not a go_gym graph, written by a
            newer format version, or describes an invalid graph. The message starts with
            the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no graph file at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            members = dict(npz.items())
    # Reading is the trust boundary: zipfile, zlib and NumPy's header parser each raise their
    # own exception types on damaged input, and every one of them means the same thing here.
    except Exception as exc:
        raise GraphError(
            f"{path}: not a readable go_gym graph file (truncated, corrupted or another "
            f"format): {type(exc).__name__}: {exc}"
        ) from None
    try:
        return _graph_from_members(members)
    except GraphError as exc:
        raise GraphError(f"{path}: {exc}") from None


def _graph_from_members(members: dict[str, NDArray[Any]]) -> OpGraph:
    if "header" not in members:
        raise GraphError("not a go_gym graph file (no header)")
    try:
        header = json.loads(members["header"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraphError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise GraphError("not a go_gym graph file (wrong format name in header)")
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise GraphError(f"header has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise GraphError(
            f"written by a newer go_gym (format version {version}; this go_gym reads up to "
            f"{FORMAT_VERSION}): upgrade go_gym to read it"
        )
    required = ["names_blob", "names_offsets", "scopes_blob", "scopes_offsets", "scope_index"]
    missing = [k for k in [*required, *_NUMERIC_FIELDS] if k not in members]
    if header.get("has_measured_us") and "measured_us" not in members:
        missing.append("measured_us")
    if missing:
        raise GraphError(f"file lacks arrays {missing}")
    names = _decode_strings(members["names_blob"], members["names_offsets"])
    scope_table = np.array(
        _decode_strings(members["scopes_blob"], members["scopes_offsets"]), dtype=np.str_
    )
    scope_index = members["scope_index"]
    if scope_index.size and (scope_index.min() < 0 or scope_index.max() >= scope_table.size):
        raise GraphError("scope index points outside the scope table")
    graph = OpGraph(
        name=str(header.get("name", "")),
        op_names=names,
        scope=scope_table[scope_index] if scope_index.size else np.zeros(0, np.str_),
        measured_us=members.get("measured_us") if header.get("has_measured_us") else None,
        **{field: members[field] for field in _NUMERIC_FIELDS},
    )
    if graph.n_ops != header.get("n_ops") or graph.n_edges != header.get("n_edges"):
        raise GraphError(
            f"header says {header.get('n_ops')} ops and {header.get('n_edges')} edges, "
            f"arrays hold {graph.n_ops} and {graph.n_edges}"
        )
    if graph.checksum() != header.get("checksum"):
        raise GraphError("checksum mismatch: the file is corrupted")
    return graph


# --- JSON interchange ------------------------------------------------------------------------
def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GraphError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def graph_from_json(obj: Mapping[str, Any] | str) -> OpGraph:
    """Build an `OpGraph` from the JSON form (a parsed object or JSON text); see module doc.

    Raises:
        GraphError: naming the node or edge at fault (missing or duplicate id, unknown node
            in an edge, a non-numeric cost, compute_us given for some nodes only, ...), or
            anything the `OpGraph` constructor rejects.
    """
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise GraphError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise GraphError(f"a JSON graph must be an object, got {type(obj).__name__}")
    for key in ("nodes", "edges"):
        if not isinstance(obj.get(key), list):
            raise GraphError(f"a JSON graph needs a list under {key!r}")
    nodes: list[Any] = obj["nodes"]
    index: dict[Any, int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in _JSON_NODE_FIELDS}
    names: list[str] = []
    out_bytes: list[float] = []
    measured: list[float | None] = []
    for i, node in enumerate(nodes):
        where = f"node {i}"
        if not isinstance(node, Mapping) or "id" not in node:
            raise GraphError(f"{where}: must be an object with an 'id'")
        node_id = node["id"]
        if not isinstance(node_id, int | str) or isinstance(node_id, bool):
            raise GraphError(f"{where}: id must be an integer or a string, got {node_id!r}")
        if node_id in index:
            raise GraphError(f"{where}: duplicate id {node_id!r}")
        index[node_id] = i
        where = f"node {node_id!r}"
        names.append(str(node.get("name", node_id)))
        out_bytes.append(_number(where, "out_bytes", node.get("out_bytes", 0)))
        measured.append(
            _number(where, "compute_us", node["compute_us"]) if "compute_us" in node else None
        )
        try:
            cols["op_kind"].append(int(parse_op_kind(node.get("op_kind", OpKind.OTHER))))
        except ValueError as exc:
            raise GraphError(f"{where}: {exc}") from None
        for key in ("flops", "bytes_read", "persistent_bytes", "temp_bytes"):
            cols[key].append(_number(where, key, node.get(key, 0)))
        cols["bytes_written"].append(
            _number(where, "bytes_written", node.get("bytes_written", out_bytes[-1]))
        )
        for key in ("layer", "colocation"):
            value = node.get(key, -1)
            if isinstance(value, bool) or not isinstance(value, int):
                raise GraphError(f"{where}: {key} must be an integer, got {value!r}")
            cols[key].append(value)
        cols["scope"].append(str(node.get("scope", "")))
    if any(m is None for m in measured) and not all(m is None for m in measured):
        missing = next(nodes[i]["id"] for i, m in enumerate(measured) if m is None)
        raise GraphError(f"node {missing!r}: compute_us is given for some nodes but not this one")
    measured_us = [m for m in measured if m is not None] or None  # every node's, or none

    src, dst, e_bytes, e_tensor = [], [], [], []
    for e, edge in enumerate(obj["edges"]):
        fields = _edge_fields(e, edge)
        for end in fields[:2]:
            if end not in index:
                raise GraphError(f"edge {e} {list(fields[:2])!r}: unknown node id {end!r}")
        s, d = index[fields[0]], index[fields[1]]
        src.append(s)
        dst.append(d)
        e_bytes.append(out_bytes[s] if fields[2] is None else fields[2])
        e_tensor.append(fields[3])
    return OpGraph(
        name=str(obj.get("name") or "graph"),
        op_names=names,
        measured_us=measured_us,
        edge_src=np.array(src, np.int64),
        edge_dst=np.array(dst, np.int64),
        edge_bytes=np.array(e_bytes, np.float64),
        edge_tensor=np.array(e_tensor, np.int64),
        **cols,
    )


_JSON_NODE_FIELDS = (
    "op_kind",
    "flops",
    "bytes_read",
    "bytes_written",
    "persistent_bytes",
    "temp_bytes",
    "scope",
    "layer",
    "colocation",
)


def _edge_fields(e: int, edge: Any) -> tuple[Any, Any, float | None, int]:
    """(src id, dst id, bytes or None, tensor) from ``[s, d]``, ``[s, d, bytes, tensor]`` or a
    ``{"src", "dst", "bytes", "tensor"}`` object."""
    if isinstance(edge, Mapping):
        if "src" not in edge or "dst" not in edge:
            raise GraphError(f"edge {e}: an edge object needs 'src' and 'dst'")
        edge = [edge["src"], edge["dst"], edge.get("bytes"), edge.get("tensor", 0)]
    if not isinstance(edge, list | tuple) or len(edge) not in (2, 4):
        raise GraphError(f"edge {e}: must be [src, dst] or [src, dst, bytes, tensor], got {edge!r}")
    nbytes = None if len(edge) == 2 or edge[2] is None else _number(f"edge {e}", "bytes", edge[2])
    tensor = 0 if len(edge) == 2 else edge[3]
    if isinstance(tensor, bool) or not isinstance(tensor, int):
        raise GraphError(f"edge {e}: tensor must be an integer, got {tensor!r}")
    return edge[0], edge[1], nbytes, tensor


def _op_records(graph: OpGraph) -> list[dict[str, Any]]:
    """Every per-op field of ``graph`` as plain Python values, one dict per op (the shared
    core of the JSON and networkx forms); ``measured_us`` only when the graph has it."""
    columns: dict[str, list[Any]] = {
        "name": graph.op_names.tolist(),
        "op_kind": [OpKind(k) for k in graph.op_kind.tolist()],
        "flops": graph.flops.tolist(),
        "bytes_read": graph.bytes_read.tolist(),
        "bytes_written": graph.bytes_written.tolist(),
        "persistent_bytes": graph.persistent_bytes.tolist(),
        "temp_bytes": graph.temp_bytes.tolist(),
        "scope": graph.scope.tolist(),
        "layer": graph.layer.tolist(),
        "colocation": graph.colocation.tolist(),
    }
    if graph.measured_us is not None:
        columns["measured_us"] = graph.measured_us.tolist()
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def graph_to_json(graph: OpGraph) -> dict[str, Any]:
    """The JSON form of ``graph`` (node ids are op indices; edges in the full 4-field form).

    ``json.dumps`` of the result and `graph_from_json` of that give back an equal graph.
    """
    out_bytes = graph.bytes_written.tolist()
    nodes = []
    for i, record in enumerate(_op_records(graph)):
        record["op_kind"] = record["op_kind"].name.lower()
        if "measured_us" in record:
            record["compute_us"] = record.pop("measured_us")
        nodes.append({"id": i, "out_bytes": out_bytes[i], **record})
    edges = [
        [int(s), int(d), float(b), int(t)]
        for s, d, b, t in zip(
            graph.edge_src, graph.edge_dst, graph.edge_bytes, graph.edge_tensor, strict=True
        )
    ]
    return {
        "format": JSON_FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": graph.name,
        "nodes": nodes,
        "edges": edges,
    }


# --- networkx ------------------------------------------------------------------------------------
def to_networkx(graph: OpGraph) -> nx.MultiDiGraph:
    """A ``networkx.MultiDiGraph``: nodes are op indices with every per-op field as attributes
    (``op_kind`` as an `OpKind`); one edge per graph edge, keyed by its output tensor index,
    with attributes ``bytes`` and ``index`` (its edge id, which `from_networkx` uses to keep
    the edge order, so the round trip is exact). The graph attribute ``name`` holds the graph's name."""
    g = nx.MultiDiGraph(name=graph.name)
    for i, record in enumerate(_op_records(graph)):
        g.add_node(i, **record)
    for e, (s, d, b, t) in enumerate(
        zip(graph.edge_src, graph.edge_dst, graph.edge_bytes, graph.edge_tensor, strict=True)
    ):
        g.add_edge(int(s), int(d), key=int(t), bytes=float(b), index=e)
    return g


def from_networkx(g: nx.DiGraph, name: str | None = None) -> OpGraph:
    """Build an `OpGraph` from a networkx ``DiGraph`` or ``MultiDiGraph``.

    Nodes may be any hashables (ops are numbered in ``g.nodes`` order); node attributes use
    the names of `to_networkx` and default like the JSON form (``name`` defaults to
    ``str(node)``). Edge attribute ``bytes`` defaults to 0; the output tensor is the edge
    key of a multigraph, else the ``tensor`` attribute (default 0).
    """
    if not isinstance(g, nx.DiGraph):
        raise GraphError(f"from_networkx expects a directed networkx graph, got {type(g).__name__}")
    nodes = list(g.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    data = [g.nodes[n] for n in nodes]

    def col(key: str, default: Any) -> list[Any]:
        return [d.get(key, default) for d in data]

    measured = col("measured_us", None)
    has_measured = any(m is not None for m in measured)
    if has_measured and any(m is None for m in measured):
        missing = nodes[measured.index(None)]
        raise GraphError(f"node {missing!r}: measured_us is given for some nodes but not this one")
    try:
        kinds = [int(parse_op_kind(k)) for k in col("op_kind", OpKind.OTHER)]
    except ValueError as exc:
        raise GraphError(str(exc)) from None
    # (src, dst, output tensor, attributes): a multigraph's integer key is the tensor index.
    if g.is_multigraph():
        edges = [
            (u, v, d.get("tensor", k if isinstance(k, int) else 0), d)
            for u, v, k, d in g.edges(keys=True, data=True)
        ]
    else:
        edges = [(u, v, d.get("tensor", 0), d) for u, v, d in g.edges(data=True)]
    # networkx lists edges by adjacency; restore the original order when it was recorded.
    if edges and all("index" in d for *_, d in edges):
        edges.sort(key=lambda edge: edge[3]["index"])
    return OpGraph(
        name=name or str(g.graph.get("name") or "graph"),
        op_names=[str(d.get("name", n)) for n, d in zip(nodes, data, strict=True)],
        op_kind=kinds,
        flops=col("flops", 0.0),
        bytes_read=col("bytes_read", 0.0),
        bytes_written=col("bytes_written", 0.0),
        persistent_bytes=col("persistent_bytes", 0.0),
        temp_bytes=col("temp_bytes", 0.0),
        measured_us=measured if has_measured else None,
        scope=[str(s) for s in col("scope", "")],
        layer=col("layer", -1),
        colocation=col("colocation", -1),
        edge_src=np.array([index[u] for u, _, _, _ in edges], np.int64),
        edge_dst=np.array([index[v] for _, v, _, _ in edges], np.int64),
        edge_bytes=np.array([d.get("bytes", 0.0) for _, _, _, d in edges], np.float64),
        edge_tensor=np.array([t for _, _, t, _ in edges], np.int64),
    )
