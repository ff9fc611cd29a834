"""Public entry points: `simulate`, `simulate_many`, `lower_bound` and their result types.

They validate and convert inputs once, build (or fetch from the cache) the unit graph, choose
the profile's kernel parameters, and call the one numba kernel in `go_gym.sim._kernel`.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.cluster import Cluster, group_time_floor, op_time_floor, op_times
from go_gym.graph import OpGraph, downward_rank
from go_gym.sim import _kernel as K
from go_gym.sim._validate import (
    check_graph_cluster,
    check_placement,
    check_placements,
    check_priority,
    check_profile,
)
from go_gym.sim.fusion import FusionPlan, fuse
from go_gym.sim.units import (
    PLACETO_BUS_HOLD_US,
    PLACETO_BYTES_PER_US,
    Units,
    build_units,
    placeto_device_ranks,
    unfused_units,
)

__all__ = ["BatchResult", "SimResult", "Timeline", "lower_bound", "simulate", "simulate_many"]


@dataclass(frozen=True, eq=False)
class Timeline:
    """When and where every unit (op or fused group) and every transfer ran. Seconds.

    Attributes:
        unit_start: (n_units,) start time of each unit.
        unit_end: (n_units,) end time of each unit.
        unit_device: (n_units,) device of each unit.
        unit_leader: (n_units,) member op of lowest topological rank (the unit's name).
        op_unit: (n_ops,) unit of each op (``arange(n_ops)`` without fusion).
        transfer_src: (n_transfers,) sending device.
        transfer_dst: (n_transfers,) receiving device; -1 in the ``"placeto"`` profile, where
            one transfer on the source's bus feeds the consumers on every other device.
        transfer_start: (n_transfers,) start time.
        transfer_end: (n_transfers,) arrival time (without the Placeto bus hold).
        transfer_bytes: (n_transfers,) bytes moved.
        transfer_unit: (n_transfers,) unit that produced the data.
        transfer_tensor: (n_transfers,) graph tensor id (``graph.tensor_*``); -1 in
            ``"placeto"``, where a transfer carries all the unit's external outputs.
    """

    unit_start: NDArray[np.float64]
    unit_end: NDArray[np.float64]
    unit_device: NDArray[np.int64]
    unit_leader: NDArray[np.int64]
    op_unit: NDArray[np.int64]
    transfer_src: NDArray[np.int64]
    transfer_dst: NDArray[np.int64]
    transfer_start: NDArray[np.float64]
    transfer_end: NDArray[np.float64]
    transfer_bytes: NDArray[np.float64]
    transfer_unit: NDArray[np.int64]
    transfer_tensor: NDArray[np.int64]

    @property
    def op_start(self) -> NDArray[np.float64]:
        """(n_ops,) start time of each op (that of its unit)."""
        return self.unit_start[self.op_unit]

    @property
    def op_end(self) -> NDArray[np.float64]:
        """(n_ops,) end time of each op (that of its unit)."""
        return self.unit_end[self.op_unit]


@dataclass(frozen=True, eq=False)
class SimResult:
    """Outcome of one simulated step.

    Attributes:
        step_time: seconds from the start of the step to the last event.
        valid: False when a device ran out of memory or the placement broke a colocation
            constraint (the step is still fully simulated and reported).
        peak_memory: (n_devices,) highest bytes resident on each device.
        busy_time: (n_devices,) seconds each device spent running units.
        bytes_moved: total bytes sent over links (``"go"``) or buses (``"placeto"``).
        n_transfers: number of transfers.
        reason: why the result is invalid ("" when valid).
        n_units: number of units simulated (ops, or fused groups).
        timeline: start/end/device of every unit and transfer, with ``timeline=True``.
    """

    step_time: float
    valid: bool
    peak_memory: NDArray[np.float64]
    busy_time: NDArray[np.float64]
    bytes_moved: float
    n_transfers: int
    reason: str
    n_units: int
    timeline: Timeline | None = None


@dataclass(frozen=True, eq=False)
class BatchResult:
    """Outcomes of K decisions (`simulate_many`): row k is what ``simulate`` returns for k.

    Attributes:
        step_time: (K,) seconds.
        valid: (K,) bool.
        peak_memory: (K, n_devices) bytes.
        busy_time: (K, n_devices) seconds.
        bytes_moved: (K,) bytes.
        n_transfers: (K,) transfers.
        reason: K strings, "" where valid.
    """

    step_time: NDArray[np.float64]
    valid: NDArray[np.bool_]
    peak_memory: NDArray[np.float64]
    busy_time: NDArray[np.float64]
    bytes_moved: NDArray[np.float64]
    n_transfers: NDArray[np.int64]
    reason: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.step_time.shape[0])


class _Params(NamedTuple):
    """Profile parameters of the kernel, after the unit graph and the decision arrays."""

    by_priority: bool
    chan_lat: NDArray[np.float64]
    chan_bw: NDArray[np.float64]
    hold: float
    dev_evkey: NDArray[np.int64]
    chan_evkey: NDArray[np.int64]
    type_end: int
    type_arr: int
    type_chan: int
    type_dev: int


class _Profile(NamedTuple):
    """What the kernel needs to know of a profile on a cluster.

    ``switch`` is the kernel's last argument: ``(True,)`` (``placeto=True``) for the Placeto
    profile, and empty for "go", which leaves it out so that numba compiles its kernel with
    ``placeto`` as a constant (see `_kernel.simulate_core`).
    """

    params: _Params
    switch: tuple[bool, ...]
    scale: float  # kernel time units per second


_PROFILES: weakref.WeakKeyDictionary[Cluster, dict[tuple[str, bool], _Profile]] = (
    weakref.WeakKeyDictionary()
)


def _profile(cluster: Cluster, profile: str, with_priority: bool) -> _Profile:
    """The kernel's view of a profile on a cluster.

    Cached per cluster (clusters are immutable; the arrays are made read-only), since
    building it costs as much as simulating a small graph.
    """
    per_cluster = _PROFILES.setdefault(cluster, {})
    key = (profile, with_priority)
    if key not in per_cluster:
        prof = _build_profile(cluster, profile, with_priority)
        for value in prof.params:
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        per_cluster[key] = prof
    return per_cluster[key]


def _build_profile(cluster: Cluster, profile: str, with_priority: bool) -> _Profile:
    d = cluster.n_devices
    if profile == "go":
        params = _Params(
            with_priority,
            # Copies: the profile is cached and must not share memory with the cluster.
            np.array(cluster.link_latency_s, np.float64, order="C").reshape(-1),
            np.array(cluster.link_bandwidth, np.float64, order="C").reshape(-1),
            0.0,
            np.arange(d, dtype=np.int64),
            np.arange(d * d, dtype=np.int64),
            0,
            1,
            2,
            3,
        )
        return _Profile(params, (), 1.0)
    ranks = placeto_device_ranks(d)
    params = _Params(
        False,
        np.zeros(d),
        np.full(d, PLACETO_BYTES_PER_US),
        PLACETO_BUS_HOLD_US,
        ranks,
        ranks.copy(),
        0,
        0,
        1,
        2,
    )
    return _Profile(params, (True,), 1e6)


# --- validity: colocation and memory ----------------------------------------------------------------
_COLOC: dict[int, tuple[Any, NDArray[np.int64], NDArray[np.int64], dict[int, str]]] = {}


def _colocation_entry(
    graph: OpGraph,
) -> tuple[Any, NDArray[np.int64], NDArray[np.int64], dict[int, str]]:
    """The graph's colocation pairs (see `_colocation_pairs`) and its messages built so far,
    cached per graph (weakly)."""
    hit = _COLOC.get(id(graph))
    if hit is None or hit[0]() is not graph:
        idx = np.flatnonzero(graph.colocation >= 0)
        idx = idx[np.argsort(graph.colocation[idx], kind="stable")].astype(np.int64)
        same = np.flatnonzero(graph.colocation[idx][1:] == graph.colocation[idx][:-1])
        a, b = idx[same], idx[same + 1]
        a.setflags(write=False)
        b.setflags(write=False)
        if len(_COLOC) > 16:
            _COLOC.clear()
        _COLOC[id(graph)] = hit = (weakref.ref(graph), a, b, {})
    return hit


def _colocation_pairs(graph: OpGraph) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Ops ``a[j], b[j]`` that must share a device: each colocation group as a chain of pairs.

    A placement keeps every group together iff it keeps every pair together; with the ops
    of each group sorted, the first split pair names the same two ops as the first split
    neighbours in the group. Read-only arrays.
    """
    _, a, b, _ = _colocation_entry(graph)
    return a, b


def _colocation_message(graph: OpGraph, split: int) -> str:
    """The message for colocation pair ``split`` split over two devices. Memoised per graph:
    it depends on the pair alone, and formatting it took 2.2 us, as much as a tenth of a
    small graph's simulation (a search's random placements split some group every time)."""
    _, pair_a, pair_b, messages = _colocation_entry(graph)
    if split not in messages:
        a, b = int(pair_a[split]), int(pair_b[split])
        messages[split] = (
            f"colocation group {int(graph.colocation[a])} spans devices: op {a} "
            f"({str(graph.op_names[a])!r}) and op {b} ({str(graph.op_names[b])!r})"
        )
    return messages[split]


@numba.njit(cache=True)
def _first_violation(placement, pair_a, pair_b, peak, capacity):  # type: ignore[no-untyped-def]
    """The first colocation pair split over two devices and the first device over its memory
    capacity under one placement, each -1 where there is none.

    Compiled, because this runs after every simulation and NumPy needs a dozen temporaries
    for what is one short loop (they took a quarter of a small graph's ``simulate`` call).
    """
    split = -1
    for j in range(pair_a.shape[0]):
        if placement[pair_a[j]] != placement[pair_b[j]]:
            split = j
            break
    over = -1
    for d in range(capacity.shape[0]):
        if peak[d] > capacity[d]:
            over = d
            break
    return split, over


@numba.njit(cache=True)
def _first_violations(  # type: ignore[no-untyped-def]
    placements, pair_a, pair_b, peaks, capacity, split, over
):
    """`_first_violation` of every row, written into ``split`` and ``over``; returns the
    number of rows with either (writing into the caller's arrays: returning arrays would cost
    as much again)."""
    n_bad = 0
    for r in range(placements.shape[0]):
        split[r], over[r] = _first_violation(placements[r], pair_a, pair_b, peaks[r], capacity)
        if split[r] >= 0 or over[r] >= 0:
            n_bad += 1
    return n_bad


def _reason(
    graph: OpGraph, cluster: Cluster, split: int, over: int, peak: NDArray[np.float64]
) -> str:
    """Why a placement is invalid, from `_first_violation`'s indices ("" when both are -1):
    the device out of memory, then the colocation group on two devices."""
    if over < 0:  # the common invalid case under a search's random placements
        return _colocation_message(graph, split) if split >= 0 else ""
    parts = [
        f"out of memory on device {over} ({cluster.device_names[over]}): peak "
        f"{peak[over]:.6g} bytes > capacity {cluster.memory_bytes[over]:.6g}"
    ]
    if split >= 0:
        parts.append(_colocation_message(graph, split))
    return "; ".join(parts)


def _invalid_reason(
    graph: OpGraph,
    cluster: Cluster,
    placement: NDArray[np.int64],
    peak: NDArray[np.float64],
) -> str:
    """Why one (n_ops,) placement with (n_devices,) peak memory is invalid ("" when valid)."""
    pair_a, pair_b = _colocation_pairs(graph)
    split, over = _first_violation(placement, pair_a, pair_b, peak, cluster.memory_bytes)
    return _reason(graph, cluster, split, over, peak) if split >= 0 or over >= 0 else ""


def _invalid_reasons(
    graph: OpGraph,
    cluster: Cluster,
    placements: NDArray[np.int64],
    peaks: NDArray[np.float64],
) -> list[str]:
    """`_invalid_reason` of each row of (K, n_ops) placements and (K, n_devices) peaks, with
    one compiled pass over all rows; messages are built only for invalid rows."""
    pair_a, pair_b = _colocation_pairs(graph)
    k = placements.shape[0]
    split = np.empty(k, np.int64)
    over = np.empty(k, np.int64)
    reasons = [""] * k
    if _first_violations(placements, pair_a, pair_b, peaks, cluster.memory_bytes, split, over) == 0:
        return reasons
    for r, (j, d) in enumerate(zip(split.tolist(), over.tolist(), strict=True)):
        if j >= 0 or d >= 0:
            reasons[r] = _reason(graph, cluster, j, d, peaks[r])
    return reasons


# --- fusion -> units --------------------------------------------------------------------------------
def _units_for(
    graph: OpGraph,
    cluster: Cluster,
    profile: str,
    placement: NDArray[np.int64],
    priority: NDArray[np.float64] | None,
    fusion: Any,
    name: str = "fusion",
) -> tuple[Units, NDArray[np.int64], NDArray[np.float64]]:
    """Unit graph, device per unit and priority per unit for one decision."""
    if fusion is None:
        units = unfused_units(graph, cluster, profile)
        prio = priority if priority is not None else np.zeros(units.n_units)
        return units, placement, prio
    if isinstance(fusion, FusionPlan):
        plan = fusion
        if plan.n_ops != graph.n_ops:
            raise ValueError(
                f"{name} plan covers {plan.n_ops} ops, graph {graph.name!r} has {graph.n_ops}"
            )
        lead_dev = placement[plan.leader][plan.group]
        bad = np.flatnonzero(lead_dev != placement)
        if bad.size:
            i = int(bad[0])
            g = int(plan.group[i])
            raise ValueError(
                f"{name} group {g} spans devices: op {i} ({str(graph.op_names[i])!r}) is on "
                f"device {int(placement[i])}, its leader on device {int(lead_dev[i])}"
            )
    else:
        plan = fuse(graph, fusion, placement)
    units = build_units(graph, cluster, profile, plan.group.astype(np.int64), plan.n_groups)
    dev = placement[units.leader]
    if priority is None:
        prio = np.zeros(units.n_units)
    else:
        prio = np.full(units.n_units, -np.inf)
        np.maximum.at(prio, units.unit_of_op, priority)
    return units, np.ascontiguousarray(dev), prio


def _unfinished(n_done: int, n_units: int, fused: bool, where: str = "") -> None:
    """Raise for a simulation that could not run every unit: only a cyclic fusion plan can
    cause that (inputs are checked, times included, before the kernel runs)."""
    if fused:
        raise ValueError(
            f"{where}fusion plan makes the contracted graph cyclic: only {n_done} of "
            f"{n_units} groups could run"
        )
    raise RuntimeError(
        f"{where}go_gym.sim kernel ran only {n_done} of {n_units} units of an acyclic graph "
        "(please report)"
    )


# --- public API --------------------------------------------------------------------------------------
def simulate(
    graph: OpGraph,
    cluster: Cluster,
    placement: ArrayLike,
    priority: ArrayLike | None = None,
    fusion: ArrayLike | FusionPlan | None = None,
    profile: str = "go",
    timeline: bool = False,
) -> SimResult:
    """Simulate one training step of ``graph`` on ``cluster`` under the given decisions.

    See the `go_gym.sim` module docstring for the exact semantics of each profile.

    Args:
        graph: the graph.
        cluster: the devices and links (in ``"placeto"`` only its number of devices and
            memory capacities are used).
        placement: (n_ops,) device index of every op.
        priority: (n_ops,) integer priority levels (higher runs first among ready units; a
            fused group takes its members' maximum); None for first-ready-first-run.
            Not allowed with ``profile="placeto"``.
        fusion: None (no fusion), (n_ops,) fusion decisions for `fuse` (0 = do not fuse),
            or a `FusionPlan` (then it must not span devices under ``placement``).
        profile: ``"go"`` (default) or ``"placeto"``.
        timeline: also return the start/end/device of every unit and transfer.

    Returns:
        A `SimResult`; an out-of-memory placement gives ``valid=False``, never an exception.

    Raises:
        ValueError: naming the bad input: a placement of the wrong length or with a device
            out of range, a NaN or non-integer priority, a bad fusion decision, a fusion plan
            that spans devices or is cyclic, an unknown profile, a priority with the Placeto
            profile, a graph / cluster of the wrong type, or op, group or transfer times
            that are not finite (finite costs and figures whose quotient or sum overflows).
    """
    check_graph_cluster(graph, cluster)
    prof = check_profile(profile)
    pl = check_placement(graph, cluster, placement)
    if priority is not None and prof == "placeto":
        raise ValueError(
            "priority is not part of the Placeto profile (its devices run ready ops in arrival "
            "order); pass priority=None or use profile='go'"
        )
    pr = None if priority is None else check_priority(graph, priority)
    units, dev_u, prio_u = _units_for(graph, cluster, prof, pl, pr, fusion)
    params, switch, scale = _profile(cluster, prof, pr is not None)
    n_units = units.n_units
    n_dev = cluster.n_devices
    peak = np.empty(n_dev)
    busy = np.empty(n_dev)
    if timeline:
        n_pairs = units.arrays.cons_unit.shape[0]
        u_start, u_end = np.empty(n_units), np.empty(n_units)
        # Transfer records are int32 in the kernel (less memory traffic per transfer); the
        # timeline hands them out as int64.
        x_ut, x_src, x_dst = (np.empty(n_pairs, np.int32) for _ in range(3))
        x_start, x_end = np.empty(n_pairs), np.empty(n_pairs)
        step, n_x, moved, n_done = K.simulate_core(
            *units.arrays,
            dev_u,
            prio_u,
            *params,
            u_start,
            u_end,
            peak,
            busy,
            x_ut,
            x_src,
            x_dst,
            x_start,
            x_end,
            *switch,
        )
    else:
        step, n_x, moved, n_done = K.simulate_untimed(
            peak, busy, *units.arrays, dev_u, prio_u, *params, *switch
        )
    if n_done < n_units:
        _unfinished(int(n_done), n_units, fusion is not None)
    reason = _invalid_reason(graph, cluster, pl, peak)
    tl = None
    if timeline:
        n_x = int(n_x)
        ut = x_ut[:n_x]
        tl = Timeline(
            unit_start=u_start / scale,
            unit_end=u_end / scale,
            unit_device=dev_u.copy(),
            unit_leader=units.leader.copy(),
            op_unit=units.unit_of_op.copy(),
            transfer_src=x_src[:n_x].astype(np.int64),
            transfer_dst=x_dst[:n_x].astype(np.int64),
            transfer_start=x_start[:n_x] / scale,
            transfer_end=x_end[:n_x] / scale,
            transfer_bytes=units.arrays.ut_bytes[ut].copy(),
            transfer_unit=units.arrays.ut_prod[ut].copy(),
            transfer_tensor=units.ut_tensor[ut].copy(),
        )
    return SimResult(
        step_time=float(step) / scale,
        valid=not reason,
        peak_memory=peak,
        busy_time=busy if scale == 1.0 else busy / scale,
        bytes_moved=float(moved),
        n_transfers=int(n_x),
        reason=reason,
        n_units=n_units,
        timeline=tl,
    )


def simulate_many(
    graph: OpGraph,
    cluster: Cluster,
    placements: ArrayLike,
    priorities: ArrayLike | None = None,
    fusions: ArrayLike | None = None,
    profile: str = "go",
) -> BatchResult:
    """Simulate K decisions in parallel on all cores; row k equals ``simulate`` of row k.

    This is the path for agents that sample many decisions per policy step: the K
    simulations run in a numba ``prange`` over the same kernel as `simulate`. Without fusion
    all K share the cached unit graph; with fusion each row's groups are built first (in
    Python, one `fuse` per row) and the K unit graphs are then simulated in parallel.

    Args:
        graph: the graph.
        cluster: the devices and links.
        placements: (K, n_ops) device per op for each of the K decisions.
        priorities: None or (K, n_ops) integer priorities.
        fusions: None or (K, n_ops) fusion decisions.
        profile: ``"go"`` or ``"placeto"``.

    Returns:
        A `BatchResult` of K rows.

    Raises:
        ValueError: as `simulate`, naming the row and entry (e.g. ``placements[3, 17]``).
    """
    check_graph_cluster(graph, cluster)
    prof = check_profile(profile)
    pl = check_placements(graph, cluster, placements)
    k = pl.shape[0]
    if priorities is not None and prof == "placeto":
        raise ValueError(
            "priorities are not part of the Placeto profile; pass priorities=None or "
            "use profile='go'"
        )
    pr = None
    if priorities is not None:
        pr = check_priority(graph, priorities, "priorities", ndim=2)
        if pr.shape[0] != k:
            raise ValueError(f"priorities has {pr.shape[0]} rows, placements has {k}")
    params, switch, scale = _profile(cluster, prof, pr is not None)
    n_fields = len(units_fields := unfused_units(graph, cluster, prof).arrays) + 2
    if fusions is None:
        arrays: list[NDArray[Any]] = list(units_fields)
        lo = np.zeros((k, n_fields), np.int64)
        hi = np.array([len(a) for a in arrays] + [0, 0], np.int64)[None, :].repeat(k, 0)
        n_units = graph.n_ops
        lo[:, -2] = lo[:, -1] = np.arange(k) * n_units
        hi[:, -2] = hi[:, -1] = lo[:, -2] + n_units
        dev_cat = pl.reshape(-1)
        prio_cat = pr.reshape(-1) if pr is not None else np.zeros(k * n_units)
        arrays += [dev_cat, prio_cat]
    else:
        from go_gym.sim._validate import check_decision

        fz = check_decision(graph, fusions, "fusions", ndim=2)
        if fz.shape[0] != k:
            raise ValueError(f"fusions has {fz.shape[0]} rows, placements has {k}")
        if k == 0:  # nothing to build units for (or to concatenate): as without fusion
            d = cluster.n_devices
            return BatchResult(
                step_time=np.empty(0),
                valid=np.empty(0, bool),
                peak_memory=np.empty((0, d)),
                busy_time=np.empty((0, d)),
                bytes_moved=np.empty(0),
                n_transfers=np.empty(0, np.int64),
                reason=(),
            )
        per: list[list[NDArray[Any]]] = []
        for r in range(k):
            units, dev_u, prio_u = _units_for(
                graph, cluster, prof, pl[r], None if pr is None else pr[r], fz[r]
            )
            per.append([*units.arrays, dev_u, prio_u])
        lens = np.array([[len(a) for a in row] for row in per], np.int64)
        hi = np.cumsum(lens, axis=0)
        lo = hi - lens
        arrays = [np.concatenate([row[f] for row in per]) for f in range(n_fields)]
    step = np.empty(k)
    n_x = np.empty(k, np.int64)
    moved = np.empty(k)
    n_done = np.empty(k, np.int64)
    peak = np.empty((k, cluster.n_devices))
    busy = np.empty((k, cluster.n_devices))
    arrays = [np.ascontiguousarray(a) for a in arrays]
    for a in arrays:
        a.setflags(write=False)
    torch = sys.modules.get("torch")  # only if the caller uses it; go_gym.sim never imports it
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        K.simulate_batch(  # type: ignore[call-arg]  # mypy cannot count starred arguments
            step, n_x, moved, n_done, peak, busy, lo, hi, *arrays, *params, *switch
        )
    finally:
        # numba's OpenMP threading layer sets the process's OpenMP thread count when it
        # starts its threads, and torch shares that runtime: without this, a torch policy
        # asked for one thread ran on numba's count after its first batch, so its float sums
        # (and a seed's result) depended on numba's threads (quick-v0/rnnlm-2, GO seed 0:
        # 1.84 ms in one process, 1.97 ms from the runner), and two such processes
        # oversubscribed the cores (up to 10x slower). 0.13 us per call.
        if torch is not None:
            torch.set_num_threads(torch_threads)
    n_units_k = hi[:, 0] - lo[:, 0]
    if (n_done < n_units_k).any():
        r = int(np.flatnonzero(n_done < n_units_k)[0])
        _unfinished(int(n_done[r]), int(n_units_k[r]), fusions is not None, f"row {r}: ")
    reasons = tuple(_invalid_reasons(graph, cluster, pl, peak))
    return BatchResult(
        step_time=step / scale,
        valid=np.array([not r for r in reasons], bool),
        peak_memory=peak,
        busy_time=busy / scale,
        bytes_moved=moved,
        n_transfers=n_x,
        reason=reasons,
    )


def lower_bound(graph: OpGraph, cluster: Cluster, *, fused: bool = False) -> float:
    """A lower bound on the step time of any ``"go"``-profile execution. Seconds.

    ``max(critical path, total / n_devices)`` where every op takes its fastest time over all
    devices (`go_gym.cluster.op_times`): the critical path is the heaviest chain of such times
    (transfers only add to it) and no schedule can beat perfect load balance.

    Fusion saves launches and memory traffic, so fused executions can beat that bound. With
    ``fused=True`` every op instead takes `go_gym.cluster.op_time_floor` (its flops at the
    best kernel efficiency, no launch, no memory traffic; with measured times, less a launch
    for ops that can be fused away), which bounds every fusion plan too, and the bound is
    also at least the largest `go_gym.cluster.group_time_floor` (a group is never faster
    than one of its members), so it is positive whenever some kernel op takes time; the
    fusion and joint envs normalise their reward by it. The ``"placeto"`` profile adds
    device gaps and uses microsecond constants of its own, so the bound is for ``"go"``.
    """
    check_graph_cluster(graph, cluster)
    fastest = op_time_floor(graph, cluster) if fused else op_times(graph, cluster).min(axis=1)
    # The critical path: the latest earliest-finish (same arithmetic as a forward pass).
    cp = float((downward_rank(graph, fastest) + fastest).max()) if graph.n_ops else 0.0
    bound = max(cp, fastest.sum() / cluster.n_devices)
    if fused and graph.n_ops:
        bound = max(bound, float(group_time_floor(graph, cluster).max()))
    return float(bound)
