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
is its measured time (give it for every node or for none; ``measured_us``, the name `OpGraph`
and `to_networkx` use, is accepted for it). Optional node fields: ``name`` (a string; default:
the id), ``op_kind`` (a name such as ``"matmul"`` or an integer id), ``flops``, ``bytes_read``,
``bytes_written`` (default: ``out_bytes``), ``persistent_bytes``, ``temp_bytes``, ``scope`` (a
string), ``layer``, ``colocation`` (integers). An edge may also be ``[src, dst, bytes,
tensor]`` (or an object with ``src``, ``dst`` and optional ``bytes`` and ``tensor``) to carry one
of several outputs; that is the form `graph_to_json` writes, so any `OpGraph` survives a JSON
round trip bit for bit. Top-level fields: ``nodes``, ``edges``, and optionally ``name``,
``format`` (``"go_gym.graph.json"``) and ``version`` (a newer version than this go_gym reads is
refused, as `load_graph` refuses newer files). Any other field, at any level, is an error
naming it (a misspelt field would otherwise be silently dropped).
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
    unreadable = (
        f"{path}: not a readable go_gym graph file (truncated, corrupted or another format)"
    )
    with open(path, "rb") as f:
        start = f.read(64)
    if not start.startswith(_ZIP_MAGIC):
        # np.load would try pickle on anything that is not .npy/.npz, and its error advises
        # allow_pickle=True: never the right advice for a graph file.
        if start.lstrip()[:1] in (b"{", b"["):
            raise GraphError(
                f"{unreadable}: it holds JSON text; a graph in go_gym's JSON form is read with "
                f"go_gym.graph_from_json(open({str(path)!r}).read())"
            )
        if not start:
            what = "the file is empty"
        elif start.startswith(b"\x93NUMPY"):
            what = "a single NumPy array (.npy)"
        else:
            what = "no zip archive"
        raise GraphError(f"{unreadable}: {what}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            members = dict(npz.items())
    # Reading is the trust boundary: zipfile, zlib and NumPy's header parser each raise their
    # own exception types on damaged input, and every one of them means the same thing here.
    except Exception as exc:
        raise GraphError(f"{unreadable}: {type(exc).__name__}: {exc}") from None
    try:
        return _graph_from_members(members)
    except GraphError as exc:
        raise GraphError(f"{path}: {exc}") from None
    # Members are checked one by one below; this is the net for a damage nobody foresaw, so
    # that it still reads as a bad file and names it.
    except (TypeError, ValueError, IndexError, OverflowError, KeyError, AttributeError) as exc:
        raise GraphError(f"{path}: malformed graph file: {type(exc).__name__}: {exc}") from None


_ZIP_MAGIC = b"PK\x03\x04"


def _check_version(version: Any, where: str = "header") -> None:
    """The format version of a file or JSON document: an integer this go_gym can read."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise GraphError(f"{where} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise GraphError(
            f"written by a newer go_gym (format version {version}; this go_gym reads up to "
            f"{FORMAT_VERSION}): upgrade go_gym to read it"
        )


def _member(members: dict[str, NDArray[Any]], key: str, *, blob: bool = False) -> NDArray[Any]:
    """A one-dimensional member array: uint8 bytes (``blob``) or integers."""
    arr = members[key]
    ok = arr.dtype == np.uint8 if blob else arr.dtype.kind in "iu"
    if arr.ndim != 1 or not ok:
        raise GraphError(
            f"array {key!r} must be one-dimensional {'uint8' if blob else 'integers'}, got "
            f"{arr.dtype} with shape {arr.shape}"
        )
    return arr


def _graph_from_members(members: dict[str, NDArray[Any]]) -> OpGraph:
    if "header" not in members:
        raise GraphError("not a go_gym graph file (no header)")
    try:
        header = json.loads(members["header"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraphError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise GraphError("not a go_gym graph file (wrong format name in header)")
    _check_version(header.get("version"))
    for key in ("n_ops", "n_edges"):
        value = header.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GraphError(f"header field {key!r} must be a non-negative integer, got {value!r}")
    if not isinstance(header.get("name"), str) or not header["name"]:
        raise GraphError(
            f"header field 'name' must be a non-empty string, got {header.get('name')!r}"
        )
    if not isinstance(header.get("has_measured_us", False), bool):
        raise GraphError(
            f"header field 'has_measured_us' must be true or false, got "
            f"{header['has_measured_us']!r}"
        )
    required = ["names_blob", "names_offsets", "scopes_blob", "scopes_offsets", "scope_index"]
    missing = [k for k in [*required, *_NUMERIC_FIELDS] if k not in members]
    if header.get("has_measured_us") and "measured_us" not in members:
        missing.append("measured_us")
    if missing:
        raise GraphError(f"file lacks arrays {missing}")
    names = _decode_strings(
        _member(members, "names_blob", blob=True), _member(members, "names_offsets")
    )
    scope_table = np.array(
        _decode_strings(
            _member(members, "scopes_blob", blob=True), _member(members, "scopes_offsets")
        ),
        dtype=np.str_,
    )
    scope_index = _member(members, "scope_index")
    if scope_index.size and (scope_index.min() < 0 or scope_index.max() >= scope_table.size):
        raise GraphError("scope index points outside the scope table")
    graph = OpGraph(
        name=header["name"],
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
def _shown(value: Any) -> str:
    """``repr`` of a value for a message, short even for a huge integer."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def _number(where: str, key: str, value: Any) -> float:
    """A cost or size: a real number (Python or NumPy; not a bool, not a string) as a float."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise GraphError(f"{where}: {key} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise GraphError(
            f"{where}: {key} = {_shown(value)} is too large for a float (at most ~1.8e308)"
        ) from None


def _integer(where: str, key: str, value: Any, *, whole_floats: bool = False) -> int:
    """An id or label: an integer (Python or NumPy; not a bool) in the 32-bit range; with
    ``whole_floats`` also a float that is a whole number. Never truncated."""
    if isinstance(value, float | np.floating) and whole_floats and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise GraphError(f"{where}: {key} must be an integer, got {value!r}")
    value = int(value)
    if not -(2**31) <= value < 2**31:
        raise GraphError(f"{where}: {key} = {_shown(value)} is outside the 32-bit range")
    return value


def _name(where: str, value: Any) -> str:
    """An op (or graph) name: a string, or an integer written as one (as ids are)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    raise GraphError(f"{where}: name must be a string, got {value!r}")


def _scope(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise GraphError(f"{where}: scope must be a string, got {value!r}")
    return value


def _kind(where: str, value: Any) -> int:
    try:
        return int(parse_op_kind(value))
    except ValueError as exc:
        raise GraphError(f"{where}: {exc}") from None


def _measured(where: str, node: Mapping[Any, Any], *, none_is_absent: bool) -> float | None:
    """A node's measured time in µs from ``compute_us`` or ``measured_us`` (the two names
    the JSON form and `OpGraph` / networkx use for it), or None if it has none."""
    keys = [k for k in ("compute_us", "measured_us") if k in node]
    if none_is_absent:
        keys = [k for k in keys if node[k] is not None]
    if len(keys) == 2:
        raise GraphError(
            f"{where}: gives both compute_us and measured_us (two names of one measured "
            "time): give one"
        )
    return _number(where, keys[0], node[keys[0]]) if keys else None


def _no_unknown(where: str, obj: Mapping[Any, Any], known: frozenset[str], what: str) -> None:
    extra = [k for k in obj if k not in known]
    if extra:
        s = "s" if len(extra) > 1 else ""
        raise GraphError(
            f"{where}: unknown field{s} {', '.join(map(repr, extra))}; {what} has only "
            f"{', '.join(sorted(known))}"
        )


def graph_from_json(obj: Mapping[str, Any] | str) -> OpGraph:
    """Build an `OpGraph` from the JSON form (a parsed object or JSON text); see module doc.

    Raises:
        GraphError: naming the node or edge at fault (missing or duplicate id, unknown node
            in an edge, a non-numeric cost, compute_us given for some nodes only, a field
            the form does not have, ...), a document of another format or of a newer format
            version, or anything the `OpGraph` constructor rejects.
    """
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise GraphError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise GraphError(f"a JSON graph must be an object, got {type(obj).__name__}")
    _no_unknown("JSON graph", obj, _JSON_TOP_FIELDS, "a JSON graph")
    if "format" in obj and obj["format"] != JSON_FORMAT_NAME:
        raise GraphError(
            f"not a go_gym JSON graph: format is {obj['format']!r}, expected {JSON_FORMAT_NAME!r}"
        )
    if "version" in obj:
        _check_version(obj["version"], "JSON graph")
    for key in ("nodes", "edges"):
        if not isinstance(obj.get(key), list):
            raise GraphError(f"a JSON graph needs a list under {key!r}")
    graph_name = _name("JSON graph", obj["name"]) if "name" in obj else ""
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
        _no_unknown(where, node, _JSON_NODE_KEYS, "a node")
        names.append(_name(where, node["name"]) if "name" in node else str(node_id))
        out_bytes.append(_number(where, "out_bytes", node.get("out_bytes", 0)))
        measured.append(_measured(where, node, none_is_absent=False))
        cols["op_kind"].append(_kind(where, node.get("op_kind", OpKind.OTHER)))
        for key in ("flops", "bytes_read", "persistent_bytes", "temp_bytes"):
            cols[key].append(_number(where, key, node.get(key, 0)))
        cols["bytes_written"].append(
            _number(where, "bytes_written", node.get("bytes_written", out_bytes[-1]))
        )
        for key in ("layer", "colocation"):
            cols[key].append(_integer(where, key, node.get(key, -1)))
        cols["scope"].append(_scope(where, node.get("scope", "")))
    if any(m is None for m in measured) and not all(m is None for m in measured):
        missing = next(nodes[i]["id"] for i, m in enumerate(measured) if m is None)
        raise GraphError(f"node {missing!r}: compute_us is given for some nodes but not this one")
    measured_us = [m for m in measured if m is not None] or None  # every node's, or none

    src, dst, e_bytes, e_tensor = [], [], [], []
    for e, edge in enumerate(obj["edges"]):
        fields = _edge_fields(e, edge)
        for end in fields[:2]:
            # Ids are ints or strings: True or 1.0 would otherwise find node 1 by equality.
            if not isinstance(end, int | str) or isinstance(end, bool) or end not in index:
                raise GraphError(f"edge {e} {list(fields[:2])!r}: unknown node id {end!r}")
        s, d = index[fields[0]], index[fields[1]]
        src.append(s)
        dst.append(d)
        e_bytes.append(out_bytes[s] if fields[2] is None else fields[2])
        e_tensor.append(fields[3])
    return OpGraph(
        name=graph_name or "graph",
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
_JSON_TOP_FIELDS = frozenset({"format", "version", "name", "nodes", "edges"})
_JSON_NODE_KEYS = frozenset(
    {"id", "name", "compute_us", "measured_us", "out_bytes", *_JSON_NODE_FIELDS}
)
_JSON_EDGE_KEYS = frozenset({"src", "dst", "bytes", "tensor"})


def _edge_fields(e: int, edge: Any) -> tuple[Any, Any, float | None, int]:
    """(src id, dst id, bytes or None, tensor) from ``[s, d]``, ``[s, d, bytes, tensor]`` or a
    ``{"src", "dst", "bytes", "tensor"}`` object."""
    if isinstance(edge, Mapping):
        if "src" not in edge or "dst" not in edge:
            raise GraphError(f"edge {e}: an edge object needs 'src' and 'dst'")
        _no_unknown(f"edge {e}", edge, _JSON_EDGE_KEYS, "an edge object")
        edge = [edge["src"], edge["dst"], edge.get("bytes"), edge.get("tensor", 0)]
    if not isinstance(edge, list | tuple) or len(edge) not in (2, 4):
        raise GraphError(f"edge {e}: must be [src, dst] or [src, dst, bytes, tensor], got {edge!r}")
    nbytes = None if len(edge) == 2 or edge[2] is None else _number(f"edge {e}", "bytes", edge[2])
    tensor = 0 if len(edge) == 2 else _integer(f"edge {e}", "tensor", edge[3])
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
    ``str(node)``); ``compute_us``, the JSON form's name of the measured time, is accepted for
    ``measured_us``. Costs and sizes must be numbers, ``layer``, ``colocation``, ``tensor`` and
    ``index`` integers (or floats that are whole numbers), ``name`` and ``scope`` strings;
    other attributes are ignored (networkx graphs often carry drawing or tool attributes).
    Edge attribute ``bytes`` defaults to 0; the output tensor is the edge key of a multigraph,
    else the ``tensor`` attribute (default 0).

    Raises:
        GraphError: naming the node or edge whose attribute is wrong, or anything the
            `OpGraph` constructor rejects.
    """
    if not isinstance(g, nx.DiGraph):
        raise GraphError(f"from_networkx expects a directed networkx graph, got {type(g).__name__}")
    nodes = list(g.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    names: list[str] = []
    kinds: list[int] = []
    scopes: list[str] = []
    measured: list[float | None] = []
    floats: dict[str, list[float]] = {k: [] for k in _COST_FIELDS}
    labels: dict[str, list[int]] = {"layer": [], "colocation": []}
    for n in nodes:
        d = g.nodes[n]
        where = f"node {n!r}"
        names.append(_name(where, d["name"]) if "name" in d else str(n))
        kinds.append(_kind(where, d.get("op_kind", OpKind.OTHER)))
        for key, values in floats.items():
            values.append(_number(where, key, d.get(key, 0.0)))
        for key, ids in labels.items():
            ids.append(_integer(where, key, d.get(key, -1), whole_floats=True))
        scopes.append(_scope(where, d.get("scope", "")))
        measured.append(_measured(where, d, none_is_absent=True))
    has_measured = any(m is not None for m in measured)
    if has_measured and any(m is None for m in measured):
        missing = nodes[measured.index(None)]
        raise GraphError(f"node {missing!r}: measured_us is given for some nodes but not this one")
    # (src, dst, output tensor, bytes, attributes): a multigraph's integer key is the tensor.
    edges: list[tuple[int, int, int, float, Any]] = []
    keyed = g.is_multigraph()
    for u, v, *key, d in g.edges(keys=True, data=True) if keyed else g.edges(data=True):
        where = f"edge {u!r} -> {v!r}" + (f" (key {key[0]!r})" if keyed else "")
        if "tensor" in d:
            tensor = _integer(where, "tensor", d["tensor"], whole_floats=True)
        elif keyed and isinstance(key[0], int | np.integer) and not isinstance(key[0], bool):
            tensor = _integer(where, "key (the output tensor)", key[0])
        else:
            tensor = 0
        nbytes = _number(where, "bytes", d.get("bytes", 0.0))
        edges.append((index[u], index[v], tensor, nbytes, (where, d)))
    # networkx lists edges by adjacency; restore the original order when it was recorded.
    if edges and all("index" in d for *_, (_, d) in edges):
        order = [_integer(w, "index", d["index"], whole_floats=True) for *_, (w, d) in edges]
        edges = [edge for _, edge in sorted(zip(order, edges, strict=True), key=lambda x: x[0])]
    return OpGraph(
        name=name or str(g.graph.get("name") or "graph"),
        op_names=names,
        op_kind=kinds,
        measured_us=[m for m in measured if m is not None] if has_measured else None,
        scope=scopes,
        edge_src=np.array([e[0] for e in edges], np.int64),
        edge_dst=np.array([e[1] for e in edges], np.int64),
        edge_tensor=np.array([e[2] for e in edges], np.int64),
        edge_bytes=np.array([e[3] for e in edges], np.float64),
        **floats,
        **labels,
    )


_COST_FIELDS = ("flops", "bytes_read", "bytes_written", "persistent_bytes", "temp_bytes")
