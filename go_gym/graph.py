"""`OpGraph`: one computational graph (a training step) as an immutable record of NumPy arrays.

Every simulator, env, agent and file format in go_gym shares this one type. It is validated
once, at construction, and never changes afterwards: all arrays are read-only, and everything
derived from them (topological order, CSR adjacency, depth levels, tensors) is computed once
in the constructor, so hot paths can index straight into plain arrays.

Ops are identified by their index ``0 .. n_ops-1``; edges by theirs ``0 .. n_edges-1``.
An edge ``e`` carries output tensor ``edge_tensor[e]`` of op ``edge_src[e]`` to op
``edge_dst[e]``. Several edges may carry the same tensor (one producer, many consumers); such
a tensor is moved to another device once per destination device, which is why graphs keep the
tensor identity and not just per-edge bytes.
"""

from __future__ import annotations

import hashlib
import heapq
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.opkinds import N_OP_KINDS

__all__ = ["GraphError", "OpGraph", "downward_rank", "upward_rank"]


class GraphError(ValueError):
    """A graph (or a graph file) is malformed. The message names the offending op or edge."""


@dataclass(frozen=True, eq=False, init=False, repr=False)
class OpGraph:
    """An immutable computational graph: per-op costs and labels, per-edge tensors.

    Build one with ``OpGraph(name=..., op_names=..., op_kind=..., edge_src=..., edge_dst=...)``;
    every other per-op or per-edge array is optional and defaults to zeros (costs), ``""``
    (scopes), ``-1`` (layers, colocation groups) or ``None`` (measured times). Inputs are
    copied, converted to the dtypes below, validated, and frozen.

    Raises:
        GraphError: on arrays of mismatched length, ids out of range, self loops, duplicate
            edges, negative / NaN / infinite costs or sizes, an edge whose bytes disagree with
            another edge carrying the same tensor, or a cycle (the message names its ops).
    """

    name: str
    # --- per op -----------------------------------------------------------------------------
    op_names: NDArray[np.str_]  # (n_ops,) unique, human-readable op names
    op_kind: NDArray[np.int16]  # (n_ops,) OpKind ids
    flops: NDArray[np.float64]  # (n_ops,) floating-point operations of the op
    bytes_read: NDArray[np.float64]  # (n_ops,) bytes the op reads from device memory
    bytes_written: NDArray[np.float64]  # (n_ops,) bytes the op writes (its outputs)
    persistent_bytes: NDArray[np.float64]  # (n_ops,) weights + gradients + optimizer state owned
    temp_bytes: NDArray[np.float64]  # (n_ops,) scratch memory held only while the op runs
    measured_us: NDArray[np.float64] | None  # (n_ops,) measured run time in µs, or None
    scope: NDArray[np.str_]  # (n_ops,) module path, e.g. "encoder.layers.0.attn"; "" if unknown
    layer: NDArray[np.int32]  # (n_ops,) layer index within the model; -1 if unknown
    colocation: NDArray[np.int32]  # (n_ops,) colocation group id; -1 for none
    # --- per edge ---------------------------------------------------------------------------
    edge_src: NDArray[np.int32]  # (n_edges,) producing op
    edge_dst: NDArray[np.int32]  # (n_edges,) consuming op
    edge_bytes: NDArray[np.float64]  # (n_edges,) bytes of the tensor the edge carries
    edge_tensor: NDArray[np.int32]  # (n_edges,) which output of edge_src the edge carries
    # --- derived once -----------------------------------------------------------------------
    topo_order: NDArray[np.int32]  # (n_ops,) ops in topological order (lowest index first)
    topo_rank: NDArray[np.int32]  # (n_ops,) position of each op in topo_order
    depth: NDArray[np.int32]  # (n_ops,) longest path (in edges) from any source op
    succ_ptr: NDArray[np.int64]  # (n_ops+1,) CSR offsets into succ / succ_edge
    succ: NDArray[np.int32]  # (n_edges,) successor ops, grouped by source op
    succ_edge: NDArray[np.int32]  # (n_edges,) the edge id of each succ entry
    pred_ptr: NDArray[np.int64]  # (n_ops+1,) CSR offsets into pred / pred_edge
    pred: NDArray[np.int32]  # (n_edges,) predecessor ops, grouped by destination op
    pred_edge: NDArray[np.int32]  # (n_edges,) the edge id of each pred entry
    tensor_op: NDArray[np.int32]  # (n_tensors,) producer of each distinct consumed tensor
    tensor_bytes: NDArray[np.float64]  # (n_tensors,) size of each distinct consumed tensor
    edge_tensor_id: NDArray[np.int32]  # (n_edges,) index into tensor_op / tensor_bytes

    def __init__(
        self,
        *,
        name: str,
        op_names: Sequence[str] | ArrayLike,
        op_kind: ArrayLike,
        edge_src: ArrayLike,
        edge_dst: ArrayLike,
        flops: ArrayLike | None = None,
        bytes_read: ArrayLike | None = None,
        bytes_written: ArrayLike | None = None,
        persistent_bytes: ArrayLike | None = None,
        temp_bytes: ArrayLike | None = None,
        measured_us: ArrayLike | None = None,
        scope: Sequence[str] | ArrayLike | None = None,
        layer: ArrayLike | None = None,
        colocation: ArrayLike | None = None,
        edge_bytes: ArrayLike | None = None,
        edge_tensor: ArrayLike | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"graph name must be a non-empty string, got {name!r}")
        names = _str_array("op_names", op_names)
        n = names.shape[0]
        src = _int_array("edge_src", edge_src)
        dst = _int_array("edge_dst", edge_dst)
        if src.shape != dst.shape:
            raise GraphError(f"edge_src has {src.shape[0]} entries but edge_dst has {dst.shape[0]}")
        m = src.shape[0]

        def per_op(field: str, value: Any, default: float) -> NDArray[np.float64]:
            arr = np.full(n, default) if value is None else _float_array(field, value, n, "op")
            _check_finite_nonnegative(field, arr, names, "op")
            return arr

        fields: dict[str, Any] = {
            "name": name,
            "op_names": names,
            "op_kind": _kind_array(op_kind, n, names),
            "flops": per_op("flops", flops, 0.0),
            "bytes_read": per_op("bytes_read", bytes_read, 0.0),
            "bytes_written": per_op("bytes_written", bytes_written, 0.0),
            "persistent_bytes": per_op("persistent_bytes", persistent_bytes, 0.0),
            "temp_bytes": per_op("temp_bytes", temp_bytes, 0.0),
            "measured_us": None if measured_us is None else per_op("measured_us", measured_us, 0.0),
            "scope": np.full(n, "", dtype=np.str_)
            if scope is None
            else _str_array("scope", scope, n),
            "layer": np.full(n, -1, np.int32)
            if layer is None
            else _label_array("layer", layer, n, names),
            "colocation": np.full(n, -1, np.int32)
            if colocation is None
            else _label_array("colocation", colocation, n, names),
        }
        if len(set(names.tolist())) != n:
            uniq, counts = np.unique(names, return_counts=True)
            raise GraphError(f"op name {str(uniq[counts > 1][0])!r} is used by more than one op")

        e_bytes = (
            np.zeros(m) if edge_bytes is None else _float_array("edge_bytes", edge_bytes, m, "edge")
        )
        e_tensor = (
            np.zeros(m, np.int32)
            if edge_tensor is None
            else _int_array("edge_tensor", edge_tensor, m)
        )
        _check_edges(src, dst, e_bytes, e_tensor, names)
        fields.update(
            edge_src=src, edge_dst=dst, edge_bytes=e_bytes, edge_tensor=e_tensor.astype(np.int32)
        )
        fields.update(_derive(n, src, dst, e_bytes, e_tensor, names))
        for key, value in fields.items():
            if isinstance(value, np.ndarray):
                value = _read_only_view(value)
            object.__setattr__(self, key, value)

    # --- immutability: copies are the graph itself, pickles rebuild through the constructor --
    def __copy__(self) -> OpGraph:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> OpGraph:
        return self

    def __reduce__(self) -> tuple[Any, tuple[str, dict[str, Any]]]:
        """Pickle the stored fields only; unpickling validates them again and derives the
        rest, so a pickled graph (e.g. sent to a vector env's worker) is as frozen and as
        checked as the original."""
        return _rebuild, (self.name, {key: getattr(self, key) for key in STORED_FIELDS})

    # --- sizes and summaries ------------------------------------------------------------------
    @property
    def n_ops(self) -> int:
        """Number of ops."""
        return int(self.op_names.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.edge_src.shape[0])

    @property
    def n_tensors(self) -> int:
        """Number of distinct tensors carried by edges."""
        return int(self.tensor_op.shape[0])

    def successors(self, op: int) -> NDArray[np.int32]:
        """Ops that consume an output of ``op`` (a view into the CSR arrays).

        Raises:
            IndexError: if ``op`` is not an op index ``0 .. n_ops-1`` (no negative indexing).
        """
        i = self._op_arg(op)
        return self.succ[self.succ_ptr[i] : self.succ_ptr[i + 1]]

    def predecessors(self, op: int) -> NDArray[np.int32]:
        """Ops whose outputs ``op`` consumes (a view into the CSR arrays).

        Raises:
            IndexError: if ``op`` is not an op index ``0 .. n_ops-1`` (no negative indexing).
        """
        i = self._op_arg(op)
        return self.pred[self.pred_ptr[i] : self.pred_ptr[i + 1]]

    def _op_arg(self, op: Any) -> int:
        if isinstance(op, bool):
            raise TypeError(f"op must be an op index (an integer), got {op!r}")
        try:
            i = operator.index(op)
        except TypeError:
            raise TypeError(f"op must be an op index (an integer), got {op!r}") from None
        if not 0 <= i < self.n_ops:
            raise IndexError(
                f"op {i} is out of range: graph {self.name!r} has {self.n_ops} ops "
                f"(valid: 0..{self.n_ops - 1})"
            )
        return i

    def op_index(self, op_name: str) -> int:
        """Index of the op called ``op_name``; raises KeyError naming it if there is none."""
        hits = np.flatnonzero(self.op_names == op_name)
        if hits.size == 0:
            raise KeyError(f"graph {self.name!r} has no op named {op_name!r}")
        return int(hits[0])

    def replace(self, **changes: Any) -> OpGraph:
        """A new graph with some stored fields (or ``name``) changed, validated like any other.

        ``dataclasses.replace`` cannot be used (the constructor derives half the fields), so this
        rebuilds from the stored fields: e.g. ``graph.replace(colocation=groups)``.
        """
        unknown = set(changes) - {"name", *STORED_FIELDS}
        if unknown:
            raise TypeError(f"OpGraph.replace got fields it does not store: {sorted(unknown)}")
        fields: dict[str, Any] = {"name": self.name}
        fields.update({key: getattr(self, key) for key in STORED_FIELDS})
        fields.update(changes)
        return OpGraph(**fields)

    def checksum(self) -> str:
        """SHA-256 over every stored (non-derived) field: equal checksums mean equal graphs.

        Computed once (the graph is immutable): envs, agents and trainers key their caches
        by it on every reset, predict and iteration, and it costs ~8 ms at 30k ops."""
        cached: str | None = self.__dict__.get("_checksum")
        if cached is None:
            cached = self._compute_checksum()
            object.__setattr__(self, "_checksum", cached)
        return cached

    def _compute_checksum(self) -> str:
        h = hashlib.sha256()
        h.update(self.name.encode())
        for key in STORED_FIELDS:
            value = getattr(self, key)
            h.update(key.encode())
            if value is None:
                h.update(b"<none>")
            elif value.dtype.kind == "U":
                h.update("\x00".join(value.tolist()).encode())
            else:
                h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpGraph):
            return NotImplemented
        return self.checksum() == other.checksum()

    def __hash__(self) -> int:
        return hash(self.checksum())

    def __repr__(self) -> str:
        return (
            f"OpGraph(name={self.name!r}, n_ops={self.n_ops}, n_edges={self.n_edges}, "
            f"flops={self.flops.sum():.3g}, persistent_bytes={self.persistent_bytes.sum():.3g})"
        )


#: The fields a graph file stores; everything else is derived by the constructor.
STORED_FIELDS: tuple[str, ...] = (
    "op_names",
    "op_kind",
    "flops",
    "bytes_read",
    "bytes_written",
    "persistent_bytes",
    "temp_bytes",
    "measured_us",
    "scope",
    "layer",
    "colocation",
    "edge_src",
    "edge_dst",
    "edge_bytes",
    "edge_tensor",
)


def _rebuild(name: str, fields: dict[str, Any]) -> OpGraph:
    """Unpickle an `OpGraph` (see ``OpGraph.__reduce__``): through the validating constructor."""
    return OpGraph(name=name, **fields)


def _read_only_view(arr: NDArray[Any]) -> NDArray[Any]:
    """A read-only view of an array that owns read-only data.

    ``setflags(write=True)`` succeeds on a read-only array that owns its data (or whose
    memory belongs to a writable array or to numba), but never on a view of a read-only
    owner; arrays that do not own their memory are copied first so that nothing writable
    stays behind them.
    """
    if arr.base is not None:
        arr = arr.copy()
    arr.setflags(write=False)
    return arr.view()


# --- validation helpers ----------------------------------------------------------------------
def _op(names: NDArray[np.str_], i: int) -> str:
    return f"op {i} ({str(names[i])!r})"


def _str_array(field: str, value: Any, n: int | None = None) -> NDArray[np.str_]:
    try:
        arr = np.array(value, dtype=np.str_)
    except (TypeError, ValueError) as exc:
        raise GraphError(f"{field} must be a sequence of strings: {exc}") from None
    if arr.ndim != 1:
        raise GraphError(f"{field} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise GraphError(f"{field} has {arr.shape[0]} entries but the graph has {n} ops")
    return arr


def _int_array(field: str, value: Any, n: int | None = None) -> NDArray[np.int32]:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise GraphError(f"{field} must be a sequence of integers: {exc}") from None
    if arr.size == 0:
        arr = arr.astype(np.int64).reshape(0)
    if arr.ndim != 1:
        raise GraphError(f"{field} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GraphError(f"{field}[{i}] = {float(arr[i])!r} is not an integer")
    elif arr.dtype.kind not in "iu":  # booleans are not ids, kinds or labels
        raise GraphError(f"{field} must hold integers, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise GraphError(f"{field} has {arr.shape[0]} entries, expected {n}")
    if arr.size and (arr.max() > np.iinfo(np.int32).max or arr.min() < np.iinfo(np.int32).min):
        raise GraphError(f"{field} holds values outside the 32-bit range")
    return arr.astype(np.int32)


def _float_array(field: str, value: Any, n: int, what: str) -> NDArray[np.float64]:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GraphError(f"{field} must hold numbers: {exc}") from None
    if arr.ndim != 1 or arr.shape[0] != n:
        raise GraphError(f"{field} has shape {arr.shape}, expected ({n},): one value per {what}")
    return arr


def _check_finite_nonnegative(
    field: str, arr: NDArray[np.float64], names: NDArray[np.str_], what: str
) -> None:
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = _op(names, i) if what == "op" else f"{what} {i}"
        raise GraphError(f"{where}: {field} = {float(arr[i])!r} (must be finite and >= 0)")


def _kind_array(value: Any, n: int, names: NDArray[np.str_]) -> NDArray[np.int16]:
    arr = _int_array("op_kind", value, n)
    bad = (arr < 0) | (arr >= N_OP_KINDS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GraphError(
            f"{_op(names, i)}: op_kind {int(arr[i])} is not an OpKind id (0..{N_OP_KINDS - 1})"
        )
    return arr.astype(np.int16)


def _label_array(field: str, value: Any, n: int, names: NDArray[np.str_]) -> NDArray[np.int32]:
    arr = _int_array(field, value, n)
    bad = arr < -1
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GraphError(f"{_op(names, i)}: {field} = {int(arr[i])} (must be >= -1)")
    return arr


def _check_edges(
    src: NDArray[np.int32],
    dst: NDArray[np.int32],
    e_bytes: NDArray[np.float64],
    e_tensor: NDArray[np.int32],
    names: NDArray[np.str_],
) -> None:
    n = names.shape[0]

    def edge(e: int) -> str:
        s, d = int(src[e]), int(dst[e])
        sname = _op(names, s) if 0 <= s < n else f"op {s}"
        dname = _op(names, d) if 0 <= d < n else f"op {d}"
        return f"edge {e} ({sname} -> {dname})"

    for field, ids in (("source", src), ("destination", dst)):
        bad = (ids < 0) | (ids >= n)
        if bad.any():
            e = int(np.flatnonzero(bad)[0])
            raise GraphError(f"{edge(e)}: {field} {int(ids[e])} is out of range 0..{n - 1}")
    loops = src == dst
    if loops.any():
        e = int(np.flatnonzero(loops)[0])
        raise GraphError(f"{edge(e)}: self loop")
    _check_finite_nonnegative("edge_bytes", e_bytes, names, "edge")
    if (e_tensor < 0).any():
        e = int(np.flatnonzero(e_tensor < 0)[0])
        raise GraphError(f"{edge(e)}: edge_tensor = {int(e_tensor[e])} (must be >= 0)")
    if src.size == 0:
        return
    key = np.stack([src, dst, e_tensor]).astype(np.int64)
    order = np.lexsort(key[::-1])
    same = np.all(key[:, order[1:]] == key[:, order[:-1]], axis=0)
    if same.any():
        e = int(order[1:][same][0])
        raise GraphError(f"{edge(e)}: duplicate edge (same source, destination and tensor)")
    # Every edge carrying the same tensor must agree on its size.
    tkey = np.lexsort((e_tensor, src))
    s_t = np.stack([src[tkey], e_tensor[tkey]])
    same_t = np.all(s_t[:, 1:] == s_t[:, :-1], axis=0)
    differ = same_t & (e_bytes[tkey][1:] != e_bytes[tkey][:-1])
    if differ.any():
        e = int(tkey[1:][differ][0])
        raise GraphError(
            f"{edge(e)}: edge_bytes {float(e_bytes[e])!r} disagrees with another edge carrying "
            f"output {int(e_tensor[e])} of the same op"
        )


# --- derived structure -------------------------------------------------------------------------
def _csr(n: int, key: NDArray[np.int32], other: NDArray[np.int32]) -> tuple[Any, Any, Any]:
    order = np.argsort(key, kind="stable").astype(np.int32)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(key, minlength=n), out=ptr[1:])
    return ptr, other[order].astype(np.int32), order


@numba.njit(cache=True)
def _kahn(
    n: int, succ_ptr: NDArray[np.int64], succ: NDArray[np.int32], indegree: NDArray[np.int64]
) -> tuple[NDArray[np.int32], NDArray[np.int32], int]:
    """Kahn's algorithm, always taking the lowest-index ready op (so program order is kept).

    Returns (order, depth, count); count < n means the remaining ops lie on or behind a cycle.
    """
    remaining = indegree.copy()
    depth = np.zeros(n, np.int32)
    order = np.empty(n, np.int32)
    heap = [np.int64(x) for x in range(0)]
    for v in range(n):
        if remaining[v] == 0:
            heap.append(np.int64(v))
    heapq.heapify(heap)
    count = 0
    while len(heap) > 0:
        v = heapq.heappop(heap)
        order[count] = v
        count += 1
        for k in range(succ_ptr[v], succ_ptr[v + 1]):
            w = succ[k]
            if depth[v] + 1 > depth[w]:
                depth[w] = depth[v] + 1
            remaining[w] -= 1
            if remaining[w] == 0:
                heapq.heappush(heap, np.int64(w))
    return order, depth, count


def _find_cycle(
    n: int, order: NDArray[np.int32], count: int, pred_ptr: Any, pred: Any
) -> list[int]:
    """Ops on one cycle, in edge order, among the ops Kahn's algorithm could not order."""
    blocked = np.ones(n, bool)
    blocked[order[:count]] = False
    v = int(np.flatnonzero(blocked)[0])
    seen: dict[int, int] = {}
    path: list[int] = []
    while v not in seen:
        seen[v] = len(path)
        path.append(v)
        preds = pred[pred_ptr[v] : pred_ptr[v + 1]]
        v = int(next(p for p in preds if blocked[p]))
    cycle = path[seen[v] :][::-1]  # walked backwards along predecessors
    start = cycle.index(min(cycle))  # report from the lowest-index op, for a stable message
    return cycle[start:] + cycle[:start]


def _derive(
    n: int,
    src: NDArray[np.int32],
    dst: NDArray[np.int32],
    e_bytes: NDArray[np.float64],
    e_tensor: NDArray[np.int32],
    names: NDArray[np.str_],
) -> dict[str, NDArray[Any]]:
    succ_ptr, succ, succ_edge = _csr(n, src, dst)
    pred_ptr, pred, pred_edge = _csr(n, dst, src)
    indegree = np.diff(pred_ptr)
    order, depth, count = _kahn(n, succ_ptr, succ, indegree)
    if count < n:
        cycle = _find_cycle(n, order, count, pred_ptr, pred)
        shown = " -> ".join(repr(str(names[i])) for i in [*cycle, cycle[0]])
        raise GraphError(f"graph has a cycle through {len(cycle)} ops: {shown}")
    rank = np.empty(n, np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    # Distinct tensors, numbered in (producer, output index) order.
    if src.size:
        tkey = src.astype(np.int64) * (int(e_tensor.max()) + 1) + e_tensor
        _, first, inverse = np.unique(tkey, return_index=True, return_inverse=True)
        tensor_op = src[first].astype(np.int32)
        tensor_bytes = e_bytes[first].astype(np.float64)
        edge_tensor_id = inverse.astype(np.int32).reshape(-1)
    else:
        tensor_op = np.zeros(0, np.int32)
        tensor_bytes = np.zeros(0, np.float64)
        edge_tensor_id = np.zeros(0, np.int32)
    return {
        "topo_order": order,
        "topo_rank": rank,
        "depth": depth,
        "succ_ptr": succ_ptr,
        "succ": succ,
        "succ_edge": succ_edge,
        "pred_ptr": pred_ptr,
        "pred": pred,
        "pred_edge": pred_edge,
        "tensor_op": tensor_op,
        "tensor_bytes": tensor_bytes,
        "edge_tensor_id": edge_tensor_id,
    }


# --- longest paths ---------------------------------------------------------------------------
@numba.njit(cache=True)
def _upward(order, succ_ptr, succ, succ_edge, w, c):  # type: ignore[no-untyped-def]
    rank = np.zeros(w.shape[0])
    for i in range(order.shape[0] - 1, -1, -1):
        v = order[i]
        best = 0.0
        for k in range(succ_ptr[v], succ_ptr[v + 1]):
            r = c[succ_edge[k]] + rank[succ[k]]
            if r > best:
                best = r
        rank[v] = w[v] + best
    return rank


@numba.njit(cache=True)
def _downward(order, pred_ptr, pred, pred_edge, w, c):  # type: ignore[no-untyped-def]
    rank = np.zeros(w.shape[0])
    for i in range(order.shape[0]):
        v = order[i]
        best = 0.0
        for k in range(pred_ptr[v], pred_ptr[v + 1]):
            p = pred[k]
            r = rank[p] + w[p] + c[pred_edge[k]]
            if r > best:
                best = r
        rank[v] = best
    return rank


def _costs(graph: OpGraph, w: ArrayLike, c: ArrayLike | None) -> tuple[Any, Any]:
    ww = np.ascontiguousarray(w, dtype=np.float64)
    if ww.shape != (graph.n_ops,):
        raise ValueError(f"w has shape {ww.shape}, expected ({graph.n_ops},): one cost per op")
    cc = np.zeros(graph.n_edges) if c is None else np.ascontiguousarray(c, dtype=np.float64)
    if cc.shape != (graph.n_edges,):
        raise ValueError(f"c has shape {cc.shape}, expected ({graph.n_edges},): one per edge")
    return ww, cc


def upward_rank(graph: OpGraph, w: ArrayLike, c: ArrayLike | None = None) -> NDArray[np.float64]:
    """Longest path from each op to an exit op, the op included (HEFT's upward rank).

    ``rank_u(v) = w(v) + max over successors s of (c(v, s) + rank_u(s))`` (Topcuoglu et al.
    2002, eq. 3), with ``w`` the cost of each op and ``c`` of each edge (zeros by default: the
    computation-only b-level). One O(n + m) pass; the encoder, the lower bound and the
    list-scheduling baselines all use this one implementation.
    """
    ww, cc = _costs(graph, w, c)
    return _upward(graph.topo_order, graph.succ_ptr, graph.succ, graph.succ_edge, ww, cc)


def downward_rank(graph: OpGraph, w: ArrayLike, c: ArrayLike | None = None) -> NDArray[np.float64]:
    """Longest path from an entry op to each op, the op excluded (CPOP's downward rank):
    ``rank_d(v) = max over predecessors p of (rank_d(p) + w(p) + c(p, v))`` (eq. 4); so
    ``rank_d + w`` is each op's earliest finish with unlimited devices."""
    ww, cc = _costs(graph, w, c)
    return _downward(graph.topo_order, graph.pred_ptr, graph.pred, graph.pred_edge, ww, cc)
