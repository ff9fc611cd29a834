"""`Cluster` (devices and links) with named presets, and the cost model.

The cost model turns an `OpGraph` into what the simulator consumes: the time of every op (or
fused group) on every device. It is a roofline by default,

    time = launch_overhead + max(flops / (peak_flops * compute_eff[kind]),
                                 (bytes_read + bytes_written) / (mem_bandwidth * memory_eff[kind]))

where the efficiencies per op kind (table `KIND_EFFICIENCY`) say how close real kernels of
that kind get to the device's peak: dense matmuls reach most of it, elementwise kernels are
memory-bound, gathers and copies are worse still. Ops that are tensors at rest (inputs,
parameters, constants) take no time and launch nothing. When a graph carries measured times
(`OpGraph.measured_us`) those are used as they are, on every device.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.graph import OpGraph
from go_gym.opkinds import FUSION_ROLE, N_OP_KINDS, FusionRole, OpKind, is_kernel

__all__ = [
    "KIND_EFFICIENCY",
    "PRESETS",
    "Cluster",
    "fused_group_times",
    "group_boundary_bytes",
    "group_time_floor",
    "op_time_floor",
    "op_times",
]

GB = 1e9


#: The figures of a `Cluster` that set simulated times and memory (its names do not).
FIGURES: tuple[str, ...] = (
    "peak_flops",
    "mem_bandwidth",
    "memory_bytes",
    "launch_overhead_s",
    "link_bandwidth",
    "link_latency_s",
)


@dataclass(frozen=True, eq=False, repr=False)
class Cluster:
    """Devices and the links between them. Immutable; validated at construction.

    Attributes are per device (index ``0 .. n_devices-1``) or per ordered device pair
    ``[src, dst]``; a link's diagonal entries are unused (a device never sends to itself).
    Units: FLOP/s, bytes/s, bytes and seconds.
    """

    name: str
    device_names: tuple[str, ...]  # (n_devices,)
    peak_flops: NDArray[np.float64]  # (n_devices,) FLOP/s
    mem_bandwidth: NDArray[np.float64]  # (n_devices,) bytes/s of device memory
    memory_bytes: NDArray[np.float64]  # (n_devices,) memory capacity
    launch_overhead_s: NDArray[np.float64]  # (n_devices,) fixed cost of one kernel launch
    link_bandwidth: NDArray[np.float64]  # (n_devices, n_devices) bytes/s, src -> dst
    link_latency_s: NDArray[np.float64]  # (n_devices, n_devices) seconds, src -> dst

    def __post_init__(self) -> None:
        names = tuple(str(d) for d in self.device_names)
        k = len(names)
        if k == 0:
            raise ValueError("a cluster needs at least one device")
        if len(set(names)) != k:
            raise ValueError(f"device names must be unique, got {names}")
        object.__setattr__(self, "device_names", names)
        for field in ("peak_flops", "mem_bandwidth", "memory_bytes", "launch_overhead_s"):
            arr = _vector(field, getattr(self, field), k)
            positive = field != "launch_overhead_s"
            if (arr <= 0).any() if positive else (arr < 0).any():
                i = int(np.flatnonzero(arr <= 0 if positive else arr < 0)[0])
                raise ValueError(
                    f"device {i} ({names[i]!r}): {field} = {float(arr[i])!r} is not valid"
                )
            object.__setattr__(self, field, arr)
        for field in ("link_bandwidth", "link_latency_s"):
            try:
                arr = np.array(getattr(self, field), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{field} must hold numbers: {exc}") from None
            if arr.shape != (k, k):
                raise ValueError(f"{field} has shape {arr.shape}, expected ({k}, {k})")
            off = ~np.eye(k, dtype=bool)
            vals = arr[off]
            bad = np.isnan(vals) | (vals <= 0 if field == "link_bandwidth" else vals < 0)
            bad |= np.isinf(vals) if field == "link_latency_s" else False
            if bad.any():
                s, d = np.argwhere(off)[int(np.flatnonzero(bad)[0])]
                raise ValueError(f"link {names[s]} -> {names[d]}: {field} = {float(arr[s, d])!r}")
            object.__setattr__(self, field, _read_only_view(arr))

    # --- immutability: copies are the cluster itself, pickles rebuild through validation ----
    def __copy__(self) -> Cluster:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Cluster:
        return self

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle the fields; unpickling validates them again (and freezes the arrays)."""
        return _rebuild_cluster, ({f.name: getattr(self, f.name) for f in fields(self)},)

    @property
    def n_devices(self) -> int:
        """Number of devices."""
        return len(self.device_names)

    def checksum(self) -> str:
        """SHA-256 of the figures (not the names): equal for clusters that simulate alike,
        so what is learned or cached per cluster can be keyed by it."""
        h = hashlib.sha256()
        for name in FIGURES:
            figures = np.ascontiguousarray(getattr(self, name), np.float64)
            h.update(f"{name}{figures.shape}".encode())
            h.update(figures.tobytes())
        return h.hexdigest()

    @classmethod
    def homogeneous(
        cls,
        name: str,
        n_devices: int,
        *,
        peak_flops: float,
        mem_bandwidth: float,
        memory_bytes: float,
        launch_overhead_s: float,
        link_bandwidth: float | ArrayLike,
        link_latency_s: float | ArrayLike,
        device_prefix: str = "/device:GPU:",
    ) -> Cluster:
        """A cluster of ``n_devices`` identical devices; links uniform unless given as matrices.

        Per-device figures are numbers (or one value per device); ``link_bandwidth`` and
        ``link_latency_s`` are numbers or ``(n_devices, n_devices)`` matrices indexed
        ``[src, dst]``.

        Raises:
            ValueError: naming the argument: ``n_devices`` not an integer >= 1, a figure
                that is not a number, or an array of the wrong shape; and anything the
                `Cluster` constructor rejects.
        """
        k = _device_count(n_devices)
        if k < 1:
            raise ValueError(f"n_devices must be >= 1, got {n_devices}")
        return cls(
            name=name,
            device_names=tuple(f"{device_prefix}{i}" for i in range(k)),
            peak_flops=_per_device("peak_flops", peak_flops, k),
            mem_bandwidth=_per_device("mem_bandwidth", mem_bandwidth, k),
            memory_bytes=_per_device("memory_bytes", memory_bytes, k),
            launch_overhead_s=_per_device("launch_overhead_s", launch_overhead_s, k),
            link_bandwidth=_per_link("link_bandwidth", link_bandwidth, k),
            link_latency_s=_per_link("link_latency_s", link_latency_s, k),
        )

    @classmethod
    def preset(cls, name: str, n_devices: int | None = None) -> Cluster:
        """A named preset (see `PRESETS`), optionally with another number of devices.

        Raises:
            ValueError: for an unknown preset name (the message lists the known ones) or a
                device count the preset does not support.
        """
        if not isinstance(name, str):
            raise ValueError(
                f"cluster preset name must be a string, got {name!r}; "
                f"known presets: {sorted(PRESETS)}"
            )
        key = name.lower()
        if key not in PRESETS:
            raise ValueError(f"unknown cluster preset {name!r}; known presets: {sorted(PRESETS)}")
        spec = PRESETS[key]
        k = spec["n_devices"] if n_devices is None else _device_count(n_devices)
        if not 1 <= k <= spec["max_devices"]:
            raise ValueError(
                f"preset {key!r} supports 1..{spec['max_devices']} devices, got {n_devices}"
            )
        bandwidth, latency = spec["links"](k)
        return cls.homogeneous(
            f"{key}x{k}",
            k,
            peak_flops=spec["peak_flops"],
            mem_bandwidth=spec["mem_bandwidth"],
            memory_bytes=spec["memory_bytes"],
            launch_overhead_s=spec["launch_overhead_s"],
            link_bandwidth=bandwidth,
            link_latency_s=latency,
        )

    def __repr__(self) -> str:
        return (
            f"Cluster(name={self.name!r}, n_devices={self.n_devices}, "
            f"peak_flops={self.peak_flops[0]:.3g}, memory_bytes={self.memory_bytes[0]:.3g})"
        )


def _rebuild_cluster(values: dict[str, Any]) -> Cluster:
    """Unpickle a `Cluster` (see ``Cluster.__reduce__``): through the validating constructor."""
    return Cluster(**values)


def _read_only_view(arr: NDArray[np.float64]) -> NDArray[np.float64]:
    """A read-only view of ``arr``, which owns its data: unlike ``arr`` itself, a view of a
    read-only array cannot be made writable again with ``setflags(write=True)``."""
    arr.setflags(write=False)
    return arr.view()


def _device_count(value: Any) -> int:
    """``n_devices`` as an int: an integer (Python or NumPy), never truncated from a float."""
    if isinstance(value, bool):
        raise ValueError(f"n_devices must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(
            f"n_devices must be an integer, got {value!r} ({type(value).__name__})"
        ) from None


def _numbers(field: str, value: Any) -> NDArray[np.float64]:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must be a number or an array of numbers: {exc}") from None


def _per_device(field: str, value: Any, k: int) -> NDArray[np.float64]:
    """A number for every device, or one value per device (shape (k,))."""
    arr = _numbers(field, value)
    if arr.ndim == 0:
        return np.full(k, arr[()])
    if arr.shape != (k,):
        raise ValueError(
            f"{field} must be a number or one value per device, shape ({k},); got shape {arr.shape}"
        )
    return arr


def _per_link(field: str, value: Any, k: int) -> NDArray[np.float64]:
    """A number for every link, or a (k, k) matrix indexed [src, dst]."""
    arr = _numbers(field, value)
    if arr.ndim == 0:
        return np.full((k, k), arr[()])
    if arr.shape != (k, k):
        raise ValueError(
            f"{field} must be a number or a ({k}, {k}) matrix indexed [src, dst]; got shape "
            f"{arr.shape}"
        )
    return arr.copy()


def _vector(field: str, value: Any, k: int) -> NDArray[np.float64]:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must hold numbers: {exc}") from None
    if arr.shape != (k,):
        raise ValueError(f"{field} has shape {arr.shape}, expected ({k},): one value per device")
    if np.isnan(arr).any() or np.isinf(arr).any():
        raise ValueError(f"{field} holds NaN or infinite values")
    return _read_only_view(arr)


def _check_graph_cluster(func: str, graph: Any, cluster: Any) -> None:
    """`OpGraph` and `Cluster` arguments, in that order, or a TypeError naming the mix-up."""
    if not isinstance(graph, OpGraph):
        raise TypeError(
            f"{func}(graph, cluster): graph must be a go_gym OpGraph, got {type(graph).__name__}"
        )
    if not isinstance(cluster, Cluster):
        raise TypeError(
            f"{func}(graph, cluster): cluster must be a go_gym Cluster, got "
            f"{type(cluster).__name__}"
        )


def _uniform(bandwidth: float, latency: float) -> Any:
    return lambda k: (np.full((k, k), bandwidth), np.full((k, k), latency))


def _dgx1_links(k: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """DGX-1 (V100) hybrid cube-mesh: NVLink within each group of four GPUs and between GPU i
    and i+4; other pairs go over PCIe and the CPU interconnect."""
    bw = np.full((k, k), 10 * GB)
    lat = np.full((k, k), 10e-6)
    for s in range(k):
        for d in range(k):
            if s // 4 == d // 4 or abs(s - d) == 4:
                bw[s, d], lat[s, d] = 25 * GB, 5e-6
    return bw, lat


#: Named clusters. Figures are fp32 datasheet numbers; where a source gives a range, the
#: value used is stated with it.
#:
#: - ``p100``: NVIDIA Tesla P100 PCIe 16 GB: 9.3 TFLOP/s fp32, 732 GB/s HBM2, 16 GB, on
#:   PCIe 3.0 x16 (15.75 GB/s theoretical; 12 GB/s used, as measured peer-to-peer copies reach).
#:   The GO paper's placement results were most likely measured on such machines.
#: - ``v100``: Tesla V100 SXM2 16 GB: 15.7 TFLOP/s, 900 GB/s, NVLink 2.0 at 25 GB/s per link
#:   per direction in the DGX-1 hybrid cube-mesh (`_dgx1_links`), PCIe 10 GB/s elsewhere.
#: - ``k80``: one GPU of a Tesla K80 board: 4.37 TFLOP/s (boost), 240 GB/s, 12 GB. Links use
#:   the constants of the Placeto/Park simulator (7600 bytes/µs, 25 µs per transfer) and its
#:   5.7 µs per-op device overhead, so the "go" profile on this preset is comparable with it.
#: - ``h100``: H100 SXM5 80 GB: 67 TFLOP/s fp32, 3.35 TB/s HBM3, NVLink 4 through NVSwitch at
#:   450 GB/s per direction between any pair.
#: Kernel launch overheads are the commonly measured 5 µs for CUDA launches (3 µs on H100).
PRESETS: dict[str, dict[str, Any]] = {
    "p100": dict(
        n_devices=4,
        max_devices=8,
        peak_flops=9.3e12,
        mem_bandwidth=732 * GB,
        memory_bytes=16 * GB,
        launch_overhead_s=5e-6,
        links=_uniform(12 * GB, 10e-6),
    ),
    "v100": dict(
        n_devices=8,
        max_devices=8,
        peak_flops=15.7e12,
        mem_bandwidth=900 * GB,
        memory_bytes=16 * GB,
        launch_overhead_s=5e-6,
        links=_dgx1_links,
    ),
    "k80": dict(
        n_devices=4,
        max_devices=16,
        peak_flops=4.37e12,
        mem_bandwidth=240 * GB,
        memory_bytes=12 * GB,
        launch_overhead_s=5.7e-6,
        links=_uniform(7.6 * GB, 25e-6),
    ),
    "h100": dict(
        n_devices=8,
        max_devices=8,
        peak_flops=67e12,
        mem_bandwidth=3350 * GB,
        memory_bytes=80 * GB,
        launch_overhead_s=3e-6,
        links=_uniform(450 * GB, 3e-6),
    ),
}


#: (compute efficiency, memory efficiency) per op kind: the fraction of peak FLOP/s and of
#: peak memory bandwidth a typical kernel of that kind reaches. Dense matmuls and convolutions
#: run near peak; pointwise kernels stream memory well but do little arithmetic; gathers,
#: scatters and layout changes use memory poorly. Non-kernel kinds never reach the roofline.
KIND_EFFICIENCY: dict[OpKind, tuple[float, float]] = {
    OpKind.OTHER: (0.3, 0.6),
    OpKind.INPUT: (1.0, 1.0),
    OpKind.PARAMETER: (1.0, 1.0),
    OpKind.CONSTANT: (1.0, 1.0),
    OpKind.MATMUL: (0.75, 0.8),
    OpKind.CONVOLUTION: (0.6, 0.8),
    OpKind.ATTENTION: (0.5, 0.8),
    OpKind.ELEMENTWISE: (0.25, 0.85),
    OpKind.REDUCTION: (0.2, 0.7),
    OpKind.NORMALIZATION: (0.2, 0.6),
    OpKind.SOFTMAX: (0.2, 0.6),
    OpKind.POOLING: (0.25, 0.7),
    OpKind.DATA_MOVEMENT: (0.1, 0.6),
    OpKind.EMBEDDING: (0.1, 0.5),
    OpKind.LOSS: (0.2, 0.6),
    OpKind.OPTIMIZER: (0.25, 0.8),
    OpKind.RANDOM: (0.25, 0.7),
    OpKind.COMMUNICATION: (0.1, 0.5),
}

_COMPUTE_EFF = np.array([KIND_EFFICIENCY[OpKind(i)][0] for i in range(N_OP_KINDS)])
_MEMORY_EFF = np.array([KIND_EFFICIENCY[OpKind(i)][1] for i in range(N_OP_KINDS)])
_IS_KERNEL_KIND = is_kernel(np.arange(N_OP_KINDS))
_IS_LIGHT = np.array([FUSION_ROLE[OpKind(i)] == FusionRole.LIGHT for i in range(N_OP_KINDS)])


def _roofline(
    cluster: Cluster,
    flops: NDArray[np.float64],
    mem_bytes: NDArray[np.float64],
    kind: NDArray[np.int16],
    launches: NDArray[np.float64],
) -> NDArray[np.float64]:
    """(n, n_devices) roofline times for n kernels of the given kinds."""
    compute = flops[:, None] / (cluster.peak_flops[None, :] * _COMPUTE_EFF[kind][:, None])
    memory = mem_bytes[:, None] / (cluster.mem_bandwidth[None, :] * _MEMORY_EFF[kind][:, None])
    return launches[:, None] * cluster.launch_overhead_s[None, :] + np.maximum(compute, memory)


def op_times(graph: OpGraph, cluster: Cluster) -> NDArray[np.float64]:
    """Time in seconds of every op on every device, shape (n_ops, n_devices).

    Uses the graph's measured times (the same on every device) when it carries them, the
    roofline otherwise. Inputs, parameters and constants take 0 s.
    """
    _check_graph_cluster("op_times", graph, cluster)
    kernel = is_kernel(graph.op_kind)
    if graph.measured_us is not None:
        times = np.repeat((graph.measured_us / 1e6)[:, None], cluster.n_devices, axis=1)
    else:
        times = _roofline(
            cluster,
            graph.flops,
            graph.bytes_read + graph.bytes_written,
            graph.op_kind,
            np.ones(graph.n_ops),
        )
    times[~kernel] = 0.0
    return times


def op_time_floor(graph: OpGraph, cluster: Cluster) -> NDArray[np.float64]:
    """(n_ops,) seconds below which no fusion plan can bring an op's share of a kernel.

    The floors of a group's members sum to at most the group's time on any device, so their
    critical path and their total bound every fusion plan (`go_gym.sim.lower_bound`).

    A fused group's time is at least one launch plus its members' flops at the best compute
    efficiency of any kernel kind on the fastest device (memory traffic only adds), and a
    group holds at most one op whose fusion role is HEAVY or NEVER (`FusionRole`): such an op
    always heads its own kernel and keeps its launch; a LIGHT op can be absorbed and lose it.
    So per op ``flops / (max peak * max efficiency)``, plus the smallest launch for HEAVY and
    NEVER kernel ops, sums to a floor for every group. With measured times a group of k >= 2
    kernels takes ``max_i min(m_i, L) + sum_i max(m_i - L, 0)`` (`fused_group_times`), which
    is at least the HEAVY or NEVER member's whole ``m`` plus every other member's
    ``max(m - L, 0)``: the floor is ``m`` for HEAVY and NEVER ops and ``max(m - L, 0)`` for
    LIGHT ops, with L the largest launch overhead of any device. Non-kernel ops take 0.
    """
    _check_graph_cluster("op_time_floor", graph, cluster)
    kernel = is_kernel(graph.op_kind)
    light = _IS_LIGHT[graph.op_kind]
    if graph.measured_us is not None:
        saved = np.where(light, cluster.launch_overhead_s.max(), 0.0)
        floor = np.maximum(graph.measured_us / 1e6 - saved, 0.0)
    else:
        compute = graph.flops / (cluster.peak_flops.max() * _COMPUTE_EFF[_IS_KERNEL_KIND].max())
        floor = compute + np.where(light, 0.0, cluster.launch_overhead_s.min())
    return np.where(kernel, floor, 0.0)


def group_time_floor(graph: OpGraph, cluster: Cluster) -> NDArray[np.float64]:
    """(n_ops,) seconds below which no fused group that holds the op can run, on any device.

    A group is never faster than the op alone could be made by fusion: with measured times
    a group takes at least each kernel member's measured time (`fused_group_times`); with
    the roofline it takes at least one launch (the smallest of any device) plus the op's
    flops at the best compute efficiency on the fastest device. So the largest entry bounds
    every fusion plan's step time, and it is positive as soon as some kernel op takes time,
    even where every `op_time_floor` is 0. Non-kernel ops take 0.
    """
    _check_graph_cluster("group_time_floor", graph, cluster)
    kernel = is_kernel(graph.op_kind)
    if graph.measured_us is not None:
        floor = graph.measured_us / 1e6
    else:
        compute = graph.flops / (cluster.peak_flops.max() * _COMPUTE_EFF[_IS_KERNEL_KIND].max())
        floor = compute + cluster.launch_overhead_s.min()
    return np.where(kernel, floor, 0.0).astype(np.float64)


def group_boundary_bytes(graph: OpGraph, group: NDArray[np.int64], n_groups: int) -> Any:
    """Memory traffic of each fused group: only the bytes that cross its boundary.

    A fused kernel reads each tensor from outside the group once, however many of its members
    read it, and writes only the tensors read outside it. So, starting from the members' own
    ``bytes_read + bytes_written``: each edge inside a group removes the consumer's read of
    that tensor; a tensor from outside read by m members of a group removes m - 1 of their
    reads; and each tensor whose consumers are all inside the producer's group removes the
    producer's write (it never reaches memory). Clipped at 0. Returns an array of shape
    (n_groups,).
    """
    own = np.bincount(group, graph.bytes_read + graph.bytes_written, minlength=n_groups)
    dst_group = group[graph.edge_dst]
    inside = group[graph.edge_src] == dst_group
    reads_saved = np.bincount(dst_group[inside], graph.edge_bytes[inside], n_groups)
    # Reads of one outside tensor by several members of a group: all but the first are saved.
    outside = np.flatnonzero(~inside)
    key = graph.edge_tensor_id[outside].astype(np.int64) * n_groups + dst_group[outside]
    repeat = np.ones(outside.size, bool)
    repeat[np.unique(key, return_index=True)[1]] = False
    again = outside[repeat]
    rereads_saved = np.bincount(dst_group[again], graph.edge_bytes[again], n_groups)
    # A tensor stays in registers only if no edge carrying it leaves the group.
    # (a count, not np.logical_or.at: 0.13 against 0.77 ms on gnmt-8's 60k edges)
    kept = np.bincount(graph.edge_tensor_id, ~inside, minlength=graph.n_tensors) == 0
    writes_saved = np.bincount(
        group[graph.tensor_op][kept], graph.tensor_bytes[kept], minlength=n_groups
    )
    return np.maximum(own - reads_saved - rereads_saved - writes_saved, 0.0)


def _group_ids(graph: OpGraph, group: Any) -> NDArray[np.int64]:
    """``group`` as (n_ops,) int64 group ids: integers, or floats that are whole numbers."""
    try:
        g = np.asarray(group)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"group must be one integer group id per op: {exc}") from None
    if g.shape != (graph.n_ops,):
        raise ValueError(f"group has shape {g.shape}, expected ({graph.n_ops},)")
    if g.dtype.kind == "f":
        bad = ~np.isfinite(g) | (g != np.round(g))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"group[{i}] = {float(g[i])!r} is not an integer group id")
    elif g.dtype.kind not in "iu" and g.size:
        raise ValueError(f"group must hold integer group ids, got dtype {g.dtype}")
    return g.astype(np.int64, copy=False)


def fused_group_times(
    graph: OpGraph, cluster: Cluster, group: ArrayLike, n_groups: int | None = None
) -> NDArray[np.float64]:
    """Time in seconds of each fused group on each device, shape (n_groups, n_devices).

    ``group[i]`` is the group id of op i (ids ``0 .. n_groups-1``; an unfused op is a group of
    one). A group runs as one kernel: one launch, the members' total flops, and only the bytes
    that cross its boundary (`group_boundary_bytes`). Its efficiency is that of its heaviest
    member (the op with the most flops), which is the kernel the fusion is built around.

    With measured times, each kernel member's time m_i is taken to include a launch share
    ``min(m_i, L)`` (L: the device's launch overhead) and the rest, ``max(m_i - L, 0)``, is
    work. A group of k >= 2 kernels pays one launch share, the largest, and all the work:
    ``max_i min(m_i, L) + sum_i max(m_i - L, 0)``. When every m_i >= L that is the sum less
    (k - 1) launches, so fusing measured ops saves exactly their launches; and a group is
    never faster than any of its members. A group of one kernel takes its m.
    """
    _check_graph_cluster("fused_group_times", graph, cluster)
    g = _group_ids(graph, group)
    if n_groups is None:
        k = int(g.max()) + 1 if g.size else 0
    elif isinstance(n_groups, bool):
        raise ValueError(f"n_groups must be an integer, got {n_groups!r}")
    else:
        try:
            k = operator.index(n_groups)
        except TypeError:
            raise ValueError(f"n_groups must be an integer, got {n_groups!r}") from None
    if g.size and (g.min() < 0 or g.max() >= k):
        raise ValueError(f"group ids must lie in 0..{k - 1}")
    kernel = is_kernel(graph.op_kind)
    kernels_per_group = np.bincount(g, kernel.astype(np.float64), minlength=k)
    if graph.measured_us is not None:
        m = graph.measured_us / 1e6 * kernel
        total = np.bincount(g, m, minlength=k).astype(np.float64, copy=False)
        measured = np.repeat(total[:, None], cluster.n_devices, axis=1)
        multi = np.flatnonzero(kernels_per_group >= 2)
        if multi.size:
            launch = cluster.launch_overhead_s
            member = np.flatnonzero(kernel & (kernels_per_group[g] >= 2))
            mg = g[member]
            mm = m[member][:, None]
            share = np.zeros((k, cluster.n_devices))
            np.maximum.at(share, mg, np.minimum(mm, launch[None, :]))
            work = np.zeros((k, cluster.n_devices))
            np.add.at(work, mg, np.maximum(mm - launch[None, :], 0.0))
            measured[multi] = share[multi] + work[multi]
        return measured
    # Heaviest member of each group decides the group's kind.
    order = np.lexsort((graph.flops, g))
    last = np.r_[np.flatnonzero(np.diff(g[order])), g.size - 1] if g.size else np.zeros(0, int)
    kind = np.zeros(k, np.int16)
    kind[g[order][last]] = graph.op_kind[order][last]
    flops = np.bincount(g, graph.flops, minlength=k).astype(np.float64, copy=False)
    times = _roofline(
        cluster,
        flops,
        group_boundary_bytes(graph, g, k),
        kind,
        (kernels_per_group > 0).astype(np.float64),
    )
    times[kernels_per_group == 0] = 0.0
    return times
