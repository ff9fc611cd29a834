"""A slow, obviously correct pure-Python twin of `go_gym.sim.simulate`, written for reading.

It implements the semantics stated in the `go_gym.sim` module docstring directly: plain dicts,
sets and one ``heapq`` event queue of tuples, names compared as Python strings. It shares no
code with the kernel except the cost model (`op_times`, `fused_group_times`) and `fuse` (whose
legality is tested on its own). The test-suite checks kernel == twin exactly (step time,
validity, peak memory) on many random cases.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

from go_gym.cluster import Cluster, fused_group_times, op_times
from go_gym.graph import OpGraph
from go_gym.opkinds import NON_KERNEL_KINDS, OpKind
from go_gym.sim import FusionPlan, fuse

GAP_US = 5.7  # Placeto: a device is free 5.7 us after an op with c > 0 ends
BYTES_PER_US = 7600.0  # Placeto bus bandwidth
BUS_HOLD_US = 25.0  # Placeto: a bus is free 25 us after a transfer arrives


@dataclass
class RefResult:
    step_time: float  # seconds
    valid: bool
    peak_memory: list[float]
    busy_time: list[float]  # seconds
    bytes_moved: float
    unit_start: dict[int, float]  # seconds
    unit_end: dict[int, float]


def reference_simulate(
    graph: OpGraph,
    cluster: Cluster,
    placement: Any,
    priority: Any = None,
    fusion: Any = None,
    profile: str = "go",
) -> RefResult:
    n_dev = cluster.n_devices
    placement = [int(x) for x in placement]
    placeto = profile == "placeto"

    # ---- units -------------------------------------------------------------------------
    if fusion is None:
        unit_of = list(range(graph.n_ops))
    else:
        plan = fusion if isinstance(fusion, FusionPlan) else fuse(graph, fusion, placement)
        unit_of = [int(g) for g in plan.group]
    n_units = max(unit_of) + 1
    members: dict[int, list[int]] = {u: [] for u in range(n_units)}
    for op in range(graph.n_ops):
        members[unit_of[op]].append(op)
    topo_rank = [int(r) for r in graph.topo_rank]
    leader = {u: min(ops, key=lambda op: topo_rank[op]) for u, ops in members.items()}
    rank = {u: topo_rank[leader[u]] for u in members}
    name = {u: str(graph.op_names[leader[u]]) for u in members}
    device = {}
    for u, ops in members.items():
        devs = {placement[op] for op in ops}
        assert len(devs) == 1, "a group spans devices"
        device[u] = devs.pop()
    prio = {}
    if priority is not None:
        prio = {u: max(float(priority[op]) for op in ops) for u, ops in members.items()}

    # Unit run times: seconds ("go") or microseconds ("placeto").
    if fusion is None:
        go_times = op_times(graph, cluster)
    else:
        go_times = fused_group_times(graph, cluster, np.array(unit_of), n_units)
    if placeto:
        if graph.measured_us is not None:
            single = [float(x) for x in graph.measured_us]
        else:
            single = [float(x) * 1e6 for x in op_times(graph, cluster)[:, 0]]
        cost = {}
        for u, ops in members.items():
            cost[u] = single[ops[0]] if len(ops) == 1 else float(go_times[u, 0]) * 1e6
        run_time = {(u, d): cost[u] for u in members for d in range(n_dev)}
        gap = {u: (GAP_US if cost[u] > 0 else 0.0) for u in members}
    else:
        run_time = {(u, d): float(go_times[u, d]) for u in members for d in range(n_dev)}
        gap = dict.fromkeys(members, 0.0)

    # ---- tensors: (producer op, output index) -> bytes and consumer ops ------------------
    tensor_bytes: dict[tuple[int, int], float] = {}
    tensor_consumers: dict[tuple[int, int], set[int]] = {}
    for e in range(graph.n_edges):
        key = (int(graph.edge_src[e]), int(graph.edge_tensor[e]))
        tensor_bytes[key] = float(graph.edge_bytes[e])
        tensor_consumers.setdefault(key, set()).add(int(graph.edge_dst[e]))
    tensors = sorted(tensor_bytes)

    # A weight or buffer (an op at rest owning persistent bytes) already holds its outputs in
    # its persistent bytes: they take no extra memory on its own device, read or not. This is
    # a property of the producing op, not of the group it sits in.
    resident = [
        OpKind(int(graph.op_kind[op])) in NON_KERNEL_KINDS and graph.persistent_bytes[op] > 0
        for op in range(graph.n_ops)
    ]

    # Memory an op writes that nobody reads.
    consumed = [0.0] * graph.n_ops
    for key in tensors:
        consumed[key[0]] += tensor_bytes[key]
    transient = dict.fromkeys(members, 0.0)
    persistent = dict.fromkeys(members, 0.0)
    for op in range(graph.n_ops):
        unread = 0.0 if resident[op] else max(float(graph.bytes_written[op]) - consumed[op], 0.0)
        transient[unit_of[op]] += unread + float(graph.temp_bytes[op])
        persistent[unit_of[op]] += float(graph.persistent_bytes[op])

    # External data ("uts"): what a unit sends to other units, with its consumer units.
    ut_bytes: dict[Any, float] = {}
    home_bytes: dict[Any, float] = {}  # the part held on the producer's device
    ut_producer: dict[Any, int] = {}
    ut_consumers: dict[Any, list[int]] = {}
    for key in tensors:
        pu = unit_of[key[0]]
        outside = {unit_of[c] for c in tensor_consumers[key]} - {pu}
        if not outside:
            continue  # internal to a fused group: no memory, no transfer
        if placeto:  # one output per unit, all external tensors together, read by all children
            ut_bytes[pu] = ut_bytes.get(pu, 0.0) + tensor_bytes[key]
            home = 0.0 if resident[key[0]] else tensor_bytes[key]
            home_bytes[pu] = home_bytes.get(pu, 0.0) + home
            ut_producer[pu] = pu
            ut_consumers[pu] = sorted(set(ut_consumers.get(pu, [])) | outside)
        else:
            ut_bytes[key] = tensor_bytes[key]
            home_bytes[key] = 0.0 if resident[key[0]] else tensor_bytes[key]
            ut_producer[key] = pu
            ut_consumers[key] = sorted(outside)
    if placeto:  # children in name order
        for k in ut_consumers:
            ut_consumers[k].sort(key=lambda v: name[v])
    outputs: dict[int, list[Any]] = {u: [] for u in members}
    inputs: dict[int, list[Any]] = {u: [] for u in members}
    for k in sorted(ut_bytes):
        outputs[ut_producer[k]].append(k)
        for v in ut_consumers[k]:
            inputs[v].append(k)
    start_alloc = {}
    for u in members:
        out = 0.0
        for k in outputs[u]:
            out += home_bytes[k]
        start_alloc[u] = out + transient[u]

    # ---- state -----------------------------------------------------------------------------
    waiting = {u: len(inputs[u]) for u in members}
    mem = [0.0] * n_dev
    for u in range(n_units):
        mem[device[u]] += persistent[u]
    peak = list(mem)
    busy = [0.0] * n_dev
    queue: dict[int, list[tuple[Any, ...]]] = {d: [] for d in range(n_dev)}
    dev_free = [0.0] * n_dev
    arrivals = 0  # Placeto: global arrival counter of ready queues

    # Reference counts: a produced ut lives on its device until its local consumers and its
    # transfers are done; a received copy until its consumers on that device are done.
    src_left: dict[Any, int] = {}
    recv_left: dict[tuple[Any, int], int] = {}
    for k, cons in ut_consumers.items():
        s = device[ut_producer[k]]
        local = [v for v in cons if device[v] == s]
        remote_devs = {device[v] for v in cons} - {s}
        n_transfers = (1 if remote_devs else 0) if placeto else len(remote_devs)
        src_left[k] = len(local) + n_transfers
        for d in remote_devs:
            recv_left[(k, d)] = sum(1 for v in cons if device[v] == d)

    # Channels: "go" one FIFO per ordered device pair, "placeto" one bus per source device.
    channel_queue: dict[Any, list[int]] = {}
    channel_free: dict[Any, float] = {}
    transfers: list[dict[str, Any]] = []
    moved = 0.0

    events: list[tuple[Any, ...]] = []
    if placeto:
        dev_name = {d: f"/device:GPU:{d}" for d in range(n_dev)}
        bus_name = {d: f"/bus/device:GPU:{d}" for d in range(n_dev)}

    def push_dev(t: float, d: int) -> None:
        key = dev_name[d] if placeto else d
        heapq.heappush(events, (t, 2 if placeto else 3, key, "", "dev", d))

    def push_chan(t: float, c: Any) -> None:
        key = bus_name[c] if placeto else c[0] * n_dev + c[1]
        heapq.heappush(events, (t, 1 if placeto else 2, key, "", "chan", c))

    def make_ready(v: int, t: float) -> None:
        nonlocal arrivals
        d = device[v]
        if placeto:
            heapq.heappush(queue[d], (t, arrivals, v))
            arrivals += 1
        elif priority is not None:
            heapq.heappush(queue[d], (-prio[v], rank[v], v))
        else:
            heapq.heappush(queue[d], (t, rank[v], v))
        push_dev(t, d)

    def release(v: int, t: float, parent: int) -> None:
        if placeto:  # a dependency release is an event of its own, ordered by names
            heapq.heappush(events, (t, 0, name[parent], name[v], "release", v))
        else:
            waiting[v] -= 1
            if waiting[v] == 0:
                make_ready(v, t)

    def send(k: Any, src: int, dst: int, t: float) -> None:
        c = src if placeto else (src, dst)
        transfers.append({"ut": k, "src": src, "dst": dst})
        channel_queue.setdefault(c, []).append(len(transfers) - 1)
        channel_free.setdefault(c, 0.0)
        push_chan(t, c)

    for u in sorted(members, key=lambda u: rank[u]):
        if waiting[u] == 0:
            make_ready(u, 0.0)

    start: dict[int, float] = {}
    end: dict[int, float] = {}
    now = 0.0
    while events:
        event = heapq.heappop(events)
        now, kind, payload = event[0], event[4], event[5]

        if kind == "release":
            waiting[payload] -= 1
            if waiting[payload] == 0:
                make_ready(payload, now)

        elif kind == "dev":
            d = payload
            if now >= dev_free[d] and queue[d]:
                u = heapq.heappop(queue[d])[2]
                start[u] = now
                end[u] = now + run_time[(u, d)]
                dev_free[d] = end[u] + gap[u]
                busy[d] += run_time[(u, d)]
                mem[d] += start_alloc[u]
                peak[d] = max(peak[d], mem[d])
                sub = name[u] if placeto else rank[u]
                heapq.heappush(events, (end[u], 0, sub, "", "end", u))
                push_dev(dev_free[d], d)

        elif kind == "end":
            u = payload
            d = device[u]
            mem[d] -= transient[u]
            for k in inputs[u]:
                s = device[ut_producer[k]]
                if s == d:
                    src_left[k] -= 1
                    if src_left[k] == 0:
                        mem[d] -= home_bytes[k]
                else:
                    recv_left[(k, d)] -= 1
                    if recv_left[(k, d)] == 0:
                        mem[d] -= ut_bytes[k]
            for k in outputs[u]:
                sent_to: set[int] = set()
                for v in ut_consumers[k]:
                    if device[v] == d:
                        release(v, now, u)
                    elif placeto:
                        sent_to.add(device[v])
                    elif device[v] not in sent_to:
                        sent_to.add(device[v])
                        send(k, d, device[v], now)
                if placeto and sent_to:
                    send(k, d, -1, now)

        elif kind == "chan":
            c = payload
            if now >= channel_free[c] and channel_queue[c]:
                x = channel_queue[c].pop(0)
                k = transfers[x]["ut"]
                b = ut_bytes[k]
                if placeto:
                    arrive = now + (0.0 + b / BYTES_PER_US)
                    channel_free[c] = arrive + BUS_HOLD_US
                    sub = name[ut_producer[k]]
                    heapq.heappush(events, (arrive, 0, sub, "", "arrive", x))
                else:
                    s, dd = c
                    lat = float(cluster.link_latency_s[s, dd])
                    bw = float(cluster.link_bandwidth[s, dd])
                    arrive = now + (lat + b / bw)
                    channel_free[c] = arrive + 0.0
                    heapq.heappush(events, (arrive, 1, s * n_dev + dd, "", "arrive", x))
                moved += b
                push_chan(channel_free[c], c)

        elif kind == "arrive":
            tr = transfers[payload]
            k, s = tr["ut"], tr["src"]
            b = ut_bytes[k]
            if placeto:
                receivers = [v for v in ut_consumers[k] if device[v] != s]
                allocated: set[int] = set()
                for v in receivers:
                    if device[v] not in allocated:
                        allocated.add(device[v])
                        mem[device[v]] += b
                        peak[device[v]] = max(peak[device[v]], mem[device[v]])
            else:
                receivers = [v for v in ut_consumers[k] if device[v] == tr["dst"]]
                mem[tr["dst"]] += b
                peak[tr["dst"]] = max(peak[tr["dst"]], mem[tr["dst"]])
            for v in receivers:
                release(v, now, ut_producer[k])
            src_left[k] -= 1
            if src_left[k] == 0:
                mem[s] -= home_bytes[k]

    assert len(end) == n_units, "deadlock: the unit graph has a cycle"
    scale = 1e6 if placeto else 1.0
    valid = all(peak[d] <= float(cluster.memory_bytes[d]) for d in range(n_dev))
    if (graph.colocation >= 0).any():
        groups: dict[int, set[int]] = {}
        for op in range(graph.n_ops):
            if graph.colocation[op] >= 0:
                groups.setdefault(int(graph.colocation[op]), set()).add(placement[op])
        valid = valid and all(len(devs) == 1 for devs in groups.values())
    return RefResult(
        step_time=now / scale,
        valid=valid,
        peak_memory=peak,
        busy_time=[b / scale for b in busy],
        bytes_moved=moved,
        unit_start={u: t / scale for u, t in start.items()},
        unit_end={u: t / scale for u, t in end.items()},
    )
