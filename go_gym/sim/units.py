"""The contracted "unit" graph the simulator kernel runs on, built once per graph and fusion.

A unit is what a device runs in one go: a fused group, or a single op when there is no
fusion. Everything here is static with respect to placement and priority, so it is built in
NumPy once and reused by every simulation of the same (graph, cluster, profile, fusion). The
unfused unit graph of a (graph, cluster, profile) is cached (see `unfused_units`), because
computing op times for 80k ops x 8 devices alone costs milliseconds.

Unit tensors ("uts") are the data a unit sends to other units:

- ``"go"`` profile: one ut per graph tensor (``graph.tensor_*``) that has at least one consumer
  outside its producer's unit; tensors whose consumers are all inside the producer's group
  are internal and cost neither memory nor transfers.
- ``"placeto"`` profile: one ut per unit that has consumers in other units, its size the sum
  of that unit's external tensors (Placeto graphs have one output per op, read by all
  children).

A "pair" is one (ut, consumer unit) dependency; a unit is ready when all its pairs are
satisfied. Pairs of a ut are stored in consumer order: the consumer's name rank in the
``"placeto"`` profile (releases are processed in child-name order), unit id otherwise.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from go_gym.cluster import Cluster, fused_group_times, op_times
from go_gym.graph import OpGraph
from go_gym.opkinds import is_kernel

__all__ = ["PLACETO_BUS_HOLD_US", "PLACETO_BYTES_PER_US", "PLACETO_DEVICE_GAP_US", "UnitGraph"]

#: Placeto/Park constants, in microseconds and bytes.
PLACETO_DEVICE_GAP_US = 5.7
PLACETO_BYTES_PER_US = 7600.0
PLACETO_BUS_HOLD_US = 25.0


class UnitGraph(NamedTuple):
    """Static arrays of one contracted graph, in the order the kernel takes them.

    Times are in the kernel's unit of time: seconds for ``"go"``, microseconds for
    ``"placeto"`` (so the Placeto arithmetic is reproduced bit for bit). Index arrays (CSR
    pointers included) are int32: the kernel reads them on every event, and half the bytes
    means fewer cache misses on large graphs (the kernel refuses graphs near 2**31 pairs).
    """

    times: NDArray[np.float64]  # (U, D) run time of each unit on each device
    gap: NDArray[np.float64]  # (U,) idle gap a device keeps after the unit ends
    qrank: NDArray[np.int64]  # (U,) tie-break rank among ready units (lowest topo rank)
    evkey: NDArray[np.int64]  # (U,) rank ordering simultaneous end events of units
    persistent: NDArray[np.float64]  # (U,) bytes resident for the whole step
    start_alloc: NDArray[np.float64]  # (U,) bytes allocated at unit start (outputs + transient)
    transient: NDArray[np.float64]  # (U,) bytes freed at unit end (temp + unconsumed outputs)
    in_ptr: NDArray[np.int32]  # (U+1,) CSR: pairs each unit waits for
    in_pair: NDArray[np.int32]  # (P,)
    out_ptr: NDArray[np.int32]  # (U+1,) CSR: uts each unit produces
    out_ut: NDArray[np.int32]  # (T,)
    ut_prod: NDArray[np.int32]  # (T,) producing unit of each ut
    ut_bytes: NDArray[np.float64]  # (T,) size of each ut
    ut_home: NDArray[np.float64]  # (T,) bytes of each ut held on its producer's device
    cons_ptr: NDArray[np.int32]  # (T+1,) CSR: pairs of each ut (pair id = position)
    cons_unit: NDArray[np.int32]  # (P,) consumer unit of each pair
    pair_ut: NDArray[np.int32]  # (P,) ut of each pair
    sources: NDArray[np.int32]  # units without inputs, in qrank order (arrival order at t=0)


class Units(NamedTuple):
    """A `UnitGraph` plus what the Python side needs to map results back to ops."""

    arrays: UnitGraph
    n_units: int
    unit_of_op: NDArray[np.int64]  # (n_ops,)
    leader: NDArray[np.int64]  # (U,) member op of lowest topological rank
    ut_tensor: NDArray[np.int64]  # (T,) graph tensor id of each ut ("go"); -1 ("placeto")


def placeto_unit_us(
    graph: OpGraph, cluster: Cluster, group: NDArray[np.int64] | None, n_units: int
) -> NDArray[np.float64]:
    """Placeto op times ``c`` in µs: measured times, else the cost model on device 0.

    A unit of one op takes exactly the op's ``measured_us`` (whatever its kind), or its
    cost-model time on device 0 times 1e6 when the graph has no measured times. A fused group
    of several ops takes ``fused_group_times(...)[g, 0] * 1e6``.
    """
    if graph.measured_us is not None:
        single = graph.measured_us.astype(np.float64)
    else:
        single = op_times(graph, cluster)[:, 0] * 1e6
    if group is None:
        return single.copy()
    sizes = np.bincount(group, minlength=n_units)
    c = fused_group_times(graph, cluster, group, n_units)[:, 0] * 1e6
    lone = sizes[group] == 1
    c[group[lone]] = single[lone]
    return c


def build_units(
    graph: OpGraph,
    cluster: Cluster,
    profile: str,
    group: NDArray[np.int64] | None = None,
    n_groups: int = 0,
) -> Units:
    """Contract ``graph`` by ``group`` (None: no fusion) into the kernel's unit arrays.

    With fusion, group ids must already be numbered by their lowest member topological rank
    (as `fuse` numbers them), so the unit id is the unit's tie-break rank.
    """
    n = graph.n_ops
    d = cluster.n_devices
    if group is None:
        g = np.arange(n, dtype=np.int64)
        u_count = n
        qrank = graph.topo_rank.astype(np.int64)
        leader = np.arange(n, dtype=np.int64)
    else:
        g = np.asarray(group, dtype=np.int64)
        u_count = int(n_groups)
        qrank = np.arange(u_count, dtype=np.int64)
        # Leader: the member of lowest topological rank.
        min_rank = np.full(u_count, n, np.int64)
        np.minimum.at(min_rank, g, graph.topo_rank.astype(np.int64))
        leader = graph.topo_order[min_rank].astype(np.int64)

    # --- times (kernel units) and device gaps -------------------------------------------------
    if profile == "go":
        if group is None:
            times = op_times(graph, cluster)
        else:
            times = fused_group_times(graph, cluster, g, u_count)
        gap = np.zeros(u_count)
        evkey = qrank  # the same array: one stream of memory reads fewer in the kernel
    else:
        c = placeto_unit_us(graph, cluster, None if group is None else g, u_count)
        times = np.repeat(c[:, None], d, axis=1)
        gap = np.where(c > 0, PLACETO_DEVICE_GAP_US, 0.0)
        evkey = _string_ranks(graph.op_names[leader])
    times = np.ascontiguousarray(times, dtype=np.float64)

    # --- memory ---------------------------------------------------------------------------------
    # An op at rest that owns persistent bytes (a weight, a buffer) already holds its outputs
    # there: allocating them again at its unit's start would count every weight twice. This
    # is per producing op, not per unit: the other members of a group that holds such an op
    # still allocate their outputs. Copies sent to other devices are still allocated where
    # they arrive.
    resident_op = ~is_kernel(graph.op_kind) & (graph.persistent_bytes > 0)
    consumed = np.bincount(graph.tensor_op, graph.tensor_bytes, minlength=n)
    unconsumed = np.where(resident_op, 0.0, np.maximum(graph.bytes_written - consumed, 0.0))
    transient = np.bincount(g, unconsumed + graph.temp_bytes, minlength=u_count)
    persistent = np.bincount(g, graph.persistent_bytes, minlength=u_count)

    # --- external (tensor, consumer unit) pairs -------------------------------------------------
    e_t = graph.edge_tensor_id.astype(np.int64)
    e_cu = g[graph.edge_dst]
    e_pu = g[graph.edge_src]
    ext = e_cu != e_pu
    key = np.unique(e_t[ext] * u_count + e_cu[ext])  # sorted by tensor, then consumer unit
    p_tensor = key // u_count
    p_cons = key % u_count
    if profile == "go":
        tensors, p_ut = np.unique(p_tensor, return_inverse=True)
        ut_tensor = tensors.astype(np.int64)
        ut_prod = g[graph.tensor_op[ut_tensor]]
        ut_bytes = graph.tensor_bytes[ut_tensor].astype(np.float64)
        ut_home = np.where(resident_op[graph.tensor_op[ut_tensor]], 0.0, ut_bytes)
        p_ut = p_ut.reshape(-1).astype(np.int64)
    else:
        # One ut per producing unit: its external tensors' bytes summed in tensor order.
        p_prod = g[graph.tensor_op[p_tensor]]
        t_ext = np.unique(p_tensor)
        t_prod = g[graph.tensor_op[t_ext]]
        ut_prod = np.unique(t_prod).astype(np.int64)
        ut_of_unit = np.full(u_count, -1, np.int64)
        ut_of_unit[ut_prod] = np.arange(ut_prod.size)
        ut_bytes = np.bincount(
            ut_of_unit[t_prod], graph.tensor_bytes[t_ext], minlength=ut_prod.size
        ).astype(np.float64)
        # Held on the producer's device: the tensors not already held by a resident op.
        at_home = np.where(resident_op[graph.tensor_op[t_ext]], 0.0, graph.tensor_bytes[t_ext])
        ut_home = np.bincount(ut_of_unit[t_prod], at_home, minlength=ut_prod.size).astype(
            np.float64
        )
        ut_tensor = np.full(ut_prod.size, -1, np.int64)
        # Pairs: distinct (producer unit, consumer unit), in consumer name order.
        pk = np.unique(ut_of_unit[p_prod] * u_count + p_cons)
        p_ut = pk // u_count
        p_cons = pk % u_count
        o = np.lexsort((evkey[p_cons], p_ut))
        p_ut, p_cons = p_ut[o], p_cons[o]
    n_ut = ut_prod.size
    cons_ptr = np.zeros(n_ut + 1, np.int64)
    np.cumsum(np.bincount(p_ut, minlength=n_ut), out=cons_ptr[1:])
    in_pair = np.argsort(p_cons, kind="stable").astype(np.int64)
    in_ptr = np.zeros(u_count + 1, np.int64)
    np.cumsum(np.bincount(p_cons, minlength=u_count), out=in_ptr[1:])
    out_ut = np.argsort(ut_prod, kind="stable").astype(np.int64)
    out_ptr = np.zeros(u_count + 1, np.int64)
    np.cumsum(np.bincount(ut_prod, minlength=u_count), out=out_ptr[1:])
    start_alloc = np.bincount(ut_prod, ut_home, minlength=u_count) + transient

    indeg = np.diff(in_ptr)
    src_units = np.flatnonzero(indeg == 0)
    sources = src_units[np.argsort(qrank[src_units], kind="stable")].astype(np.int64)

    arrays = UnitGraph(
        times=times,
        gap=np.ascontiguousarray(gap, dtype=np.float64),
        qrank=np.ascontiguousarray(qrank, dtype=np.int64),
        evkey=np.ascontiguousarray(evkey, dtype=np.int64),
        persistent=persistent.astype(np.float64),
        start_alloc=start_alloc.astype(np.float64),
        transient=transient.astype(np.float64),
        in_ptr=in_ptr.astype(np.int32),
        in_pair=in_pair.astype(np.int32),
        out_ptr=out_ptr.astype(np.int32),
        out_ut=out_ut.astype(np.int32),
        ut_prod=np.ascontiguousarray(ut_prod, dtype=np.int32),
        ut_bytes=np.ascontiguousarray(ut_bytes, dtype=np.float64),
        ut_home=np.ascontiguousarray(ut_home, dtype=np.float64),
        cons_ptr=cons_ptr.astype(np.int32),
        cons_unit=np.ascontiguousarray(p_cons, dtype=np.int32),
        pair_ut=np.ascontiguousarray(p_ut, dtype=np.int32),
        sources=sources.astype(np.int32),
    )
    _check_finite_times(graph, cluster, profile, arrays, leader, fused=group is not None)
    for arr in arrays:
        arr.setflags(write=False)
    return Units(arrays, u_count, g, leader, ut_tensor)


def _check_finite_times(
    graph: OpGraph,
    cluster: Cluster,
    profile: str,
    arrays: UnitGraph,
    leader: NDArray[np.int64],
    *,
    fused: bool,
) -> None:
    """Refuse a unit graph whose times overflow, before the kernel sees it.

    Every cost and figure may be finite while a time made of them is not (bytes_read +
    bytes_written over 1.8e308, a link of 1e-320 bytes/s): the kernel's event queue cannot
    order infinite times. Checked: every unit's time on every device, the slowest transfer
    on any link, and a bound on their sum, which bounds every event time of any placement
    (at every instant before the end some device or link is busy).
    """
    unit = "s" if profile == "go" else "us"
    times = arrays.times
    # One pass (times are >= 0, and a NaN or an inf makes the maximum NaN or inf); the
    # largest time for every unit bounds the busy time of any placement. Python floats from
    # here on: an overflow gives inf without a warning.
    worst = float(times.max()) if times.size else 0.0
    total = worst * times.shape[0]
    if profile != "go":
        total += PLACETO_DEVICE_GAP_US * times.shape[0]
    if not math.isfinite(total):
        bad = ~np.isfinite(times)
        if bad.any():
            u, d = (int(x) for x in np.argwhere(bad)[0])
            op = int(leader[u])
            name = repr(str(graph.op_names[op]))
            what = f"fused group {u} (led by op {op} ({name}))" if fused else f"op {op} ({name})"
            raise ValueError(
                f"{what} takes {float(times[u, d])!r} {unit} on device {d} "
                f"({cluster.device_names[d]}): op and group times must be finite; the graph's "
                "costs or the cluster's figures are too extreme (e.g. bytes_read + "
                "bytes_written overflows, or peak_flops / mem_bandwidth is too small)"
            )
    n_pairs = arrays.cons_unit.shape[0]
    slowest = 0.0
    if n_pairs:
        biggest = float(arrays.ut_bytes.max())
        if profile == "go":
            latency, bandwidth = _slowest_link(cluster)
            slowest = latency + biggest / bandwidth  # bounds every link's time for it
        else:
            slowest = biggest / PLACETO_BYTES_PER_US + PLACETO_BUS_HOLD_US
        if not math.isfinite(slowest):
            raise ValueError(
                f"a transfer of {biggest!r} bytes takes {slowest!r} {unit}: transfer times "
                "must be finite; the graph's tensor bytes or the cluster's link_bandwidth "
                "are too extreme"
            )
    total += n_pairs * slowest
    if not math.isfinite(2.0 * total):  # with a margin for rounding in the kernel's sums
        raise ValueError(
            f"the ops and transfers of one step may take up to {total!r} {unit} in all, "
            "beyond what floating point can time: the graph's costs or the cluster's figures "
            "are too extreme to simulate"
        )


_LINKS: weakref.WeakKeyDictionary[Cluster, tuple[float, float]] = weakref.WeakKeyDictionary()


def _slowest_link(cluster: Cluster) -> tuple[float, float]:
    """(largest latency, smallest bandwidth) over the links between distinct devices (a
    link's diagonal entries are unused), cached per cluster (clusters are immutable)."""
    hit = _LINKS.get(cluster)
    if hit is None:
        k = cluster.n_devices
        off = ~np.eye(k, dtype=bool)
        hit = (
            float(cluster.link_latency_s[off].max()) if k > 1 else 0.0,
            float(cluster.link_bandwidth[off].min()) if k > 1 else math.inf,
        )
        _LINKS[cluster] = hit
    return hit


def _string_ranks(names: NDArray[np.str_]) -> NDArray[np.int64]:
    """Rank of each string in code-point order (Python's ``str`` comparison); names unique."""
    order = np.argsort(names, kind="stable")
    rank = np.empty(names.shape[0], np.int64)
    rank[order] = np.arange(names.shape[0])
    return rank


def placeto_device_ranks(n_devices: int) -> NDArray[np.int64]:
    """Rank of ``/device:GPU:i`` among all device names compared as strings (GPU:10 < GPU:2)."""
    names = np.array([f"/device:GPU:{i}" for i in range(n_devices)])
    return _string_ranks(names)


# --- cache of unfused unit graphs -----------------------------------------------------------------
_CACHE: OrderedDict[tuple[int, int, str], tuple[Any, Any, Units]] = OrderedDict()
_CACHE_SIZE = 8


def unfused_units(graph: OpGraph, cluster: Cluster, profile: str) -> Units:
    """The unfused unit graph of (graph, cluster, profile), cached by object identity.

    Graphs and clusters are immutable, so identity is a safe key as long as the object is
    alive; the weak references guard against a new object reusing a dead one's ``id``.
    """
    key = (id(graph), id(cluster), profile)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is graph and hit[1]() is cluster:
        _CACHE.move_to_end(key)
        return hit[2]
    units = build_units(graph, cluster, profile)
    _CACHE[key] = (weakref.ref(graph), weakref.ref(cluster), units)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return units
