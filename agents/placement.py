"""Device placers: one device per op, from the classical baselines of the placement literature.

Every placer has the signature ``place_<name>(graph, cluster, *, seed=0, ...) -> (n_ops,) int64``
and is listed in `PLACERS`. All of them respect colocation groups (ops sharing
``graph.colocation >= 0`` always land on one device) and keep weights with their readers:

- List schedulers (m-TOPO, m-ETF, m-SCT, HEFT, critical-path) do not schedule inputs,
  parameters and constants (they take no time): each is placed with the first of its consumers
  that is placed, as TensorFlow colocates a variable with its reader. A colocation group is
  pinned to the device of its first member to be placed; later members go there too.
- Op-by-op placers (random, human-expert) are repaired by `enforce_colocation` (every group on
  the device of its first member in topological order); METIS partitions the graph with each
  colocation group contracted into one vertex, so it needs no repair.

Memory (m-TOPO, m-ETF, m-SCT) is counted as Baechi does (Jeon et al., "Baechi: Fast Device
Placement of Machine Learning Graphs", SoCC 2020): an op holds its persistent bytes, scratch
and outputs for the whole step, plus one received copy of every remote tensor it reads
(`agents._common.op_resident_bytes`). This over-estimates the simulator's peak memory, so a
placement these placers call feasible never runs out of memory in `go_gym.sim`. When an op
fits on no device they put it on the device with the most free memory (the run will then be
out of memory, which the simulator reports).

Time estimates of the list schedulers model links as the simulator does: one transfer at a
time per ordered device pair, booked in the order ops are placed, and one copy of a tensor
per destination device (classic ETF and HEFT assume unlimited concurrent transfers; with
that assumption they flood PCIe links on recurrent graphs). ETF computes an op's data-ready
times when it becomes ready and does not refresh them when later bookings delay a link, so
its choice can be optimistic; the committed start time is always exact under the bookings.

Complexities (n ops, m edges, D devices): m-ETF and m-SCT's scheduling O((n + m) D log n)
with per-device heaps; HEFT and critical-path O((n + m) D) plus the insertion search, capped
at `MAX_INSERTION_SCAN` idle slots per (op, device); m-TOPO O((n + m) D); METIS is METIS.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Callable

import numpy as np
import pymetis
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linprog

from agents._common import (
    colocation_groups,
    downward_rank,
    edge_comm_mean,
    enforce_colocation,
    link_means,
    mean_times,
    op_resident_bytes,
    upward_rank,
    virtual_sources,
)
from go_gym.cluster import Cluster
from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind

__all__ = [
    "FAMILIES",
    "MAX_INSERTION_SCAN",
    "PLACERS",
    "SCT_LP_MAX_OPS",
    "model_family",
    "place_critical_path",
    "place_heft",
    "place_human_expert",
    "place_m_etf",
    "place_m_sct",
    "place_m_topo",
    "place_metis",
    "place_random",
    "place_single_device",
    "sct_favourite_children",
]

#: Idle slots HEFT / CPOP's insertion policy inspects per (op, device) before appending the op
#: after the device's last op. Real schedules have few slots wide enough, so the cap almost
#: never binds; it keeps the worst case O(n D K) instead of O(n^2 D).
MAX_INSERTION_SCAN = 64

#: m-SCT solves its LP relaxation on windows of at most this many consecutive ops in
#: topological order (edges between windows get no favourite child). HiGHS solves a window
#: of this size in about a second.
SCT_LP_MAX_OPS = 4000


def _placement(n: int) -> NDArray[np.int64]:
    return np.zeros(n, np.int64)


# ==============================================================================================
# Trivial placers
# ==============================================================================================
def place_single_device(graph: OpGraph, cluster: Cluster, *, seed: int = 0) -> NDArray[np.int64]:
    """Everything on device 0: TensorFlow's default when no device is given.

    Args:
        graph: The graph.
        cluster: The cluster (only its existence matters).
        seed: Unused; every placer takes one.
    """
    del cluster, seed
    return _placement(graph.n_ops)


def place_random(graph: OpGraph, cluster: Cluster, *, seed: int = 0) -> NDArray[np.int64]:
    """Every op on a device drawn uniformly at random (NumPy ``default_rng(seed)``), then each
    colocation group moved to the device of its first member."""
    rng = np.random.default_rng(seed)
    place = rng.integers(0, cluster.n_devices, graph.n_ops).astype(np.int64)
    return enforce_colocation(graph, place)


# ==============================================================================================
# Human expert
# ==============================================================================================
#: Model families with a human-expert placement rule, and how each is recognised in a name.
FAMILIES: dict[str, str] = {
    "rnnlm": "rnnlm",
    "gnmt": "gnmt",
    "transformer-xl": "transformer",
    "inception-v3": "inception",
    "amoebanet": "amoeba",
    "wavenet": "wavenet",
}
_RECURRENT = ("rnnlm", "gnmt")
_FIRST_WORDS = re.compile(r"(embed|emb\b|input|tokens|stem|data)")
_LAST_WORDS = re.compile(r"(softmax|loss|crit|logit|classifier|head|out_layer|output|final|aux)")


def model_family(name: str) -> str | None:
    """The zoo family of a graph name (``"go-paper-v0/gnmt-8"`` -> ``"gnmt"``), or None."""
    base = name.rsplit("/", 1)[-1].lower()
    for family, key in FAMILIES.items():
        if key in base:
            return family
    return None


def place_human_expert(
    graph: OpGraph, cluster: Cluster, *, seed: int = 0, family: str | None = None
) -> NDArray[np.int64]:
    """The placements human experts use in the device-placement literature (PAPER.md).

    - ``rnnlm``, ``gnmt`` (recurrent and seq2seq): one layer per device; with more layers than
      devices, contiguous blocks of layers. GNMT's encoder layer i and decoder layer i share
      layer label i and so a device, as in Wu et al. 2016. Ops whose scope names an attention
      or a softmax module go to the last device whatever their layer label (their own device
      when there are more devices than layers).
    - ``inception-v3``: a single device.
    - ``transformer-xl``, ``wavenet``, ``amoebanet`` and unknown families with layer labels:
      contiguous blocks of layers, the same number of layers per device
      (``device = layer * D // L``; layer l on device l when L <= D).
    - Ops without a layer label (layer -1; the zoo's importer labels every op, giving heads
      the last layer they read and embeddings the first layer that reads them): by scope, embeddings, inputs and stems on the
      first device, softmax, loss, heads and classifiers on the last; any other op inherits
      the device of its labelled predecessor (the latest in topological order), else of its
      first labelled successor, else device 0. Gradient and optimizer ops carry their forward
      op's scope and layer in the zoo, so they stay with it.
    - A graph without any layer label: a single device.

    Args:
        graph: The graph.
        cluster: The cluster.
        seed: Unused (the rule is deterministic).
        family: The model family (a key of `FAMILIES`); deduced from ``graph.name`` if None.
    """
    del seed
    n, d = graph.n_ops, cluster.n_devices
    fam = family if family is not None else model_family(graph.name)
    if fam is not None and fam not in FAMILIES:
        raise ValueError(f"unknown model family {fam!r}; known families: {sorted(FAMILIES)}")
    layer = graph.layer.astype(np.int64)
    if fam == "inception-v3" or d == 1 or not (layer >= 0).any():
        return _placement(n)
    n_layers = int(layer.max()) + 1
    place = np.full(n, -1, np.int64)
    labelled = layer >= 0
    if n_layers <= d:
        place[labelled] = layer[labelled]
    else:
        place[labelled] = layer[labelled] * d // n_layers
    if fam in _RECURRENT:  # attention and softmax (and their backward ops) on the last device
        scopes = np.char.lower(graph.scope.astype(str))
        side = (np.char.find(scopes, "attention") >= 0) | (np.char.find(scopes, "softmax") >= 0)
        place[side] = d - 1
    for v in np.flatnonzero(~labelled):
        scope = str(graph.scope[v]).lower() + " " + str(graph.op_names[v]).lower()
        if graph.op_kind[v] == OpKind.INPUT or _FIRST_WORDS.search(scope):
            place[v] = 0
        elif (
            graph.op_kind[v] == OpKind.LOSS
            or _LAST_WORDS.search(scope)
            or (fam in _RECURRENT and "attention" in scope)
        ):
            place[v] = d - 1
    # Unlabelled rest: inherit from predecessors (forward), then successors (backward).
    order = graph.topo_order
    for v in order:
        if place[v] < 0:
            preds = graph.predecessors(v)
            known = preds[place[preds] >= 0]
            if known.size:
                place[v] = place[known[np.argmax(graph.topo_rank[known])]]
    for v in order[::-1]:
        if place[v] < 0:
            succs = graph.successors(v)
            known = succs[place[succs] >= 0]
            if known.size:
                place[v] = place[known[np.argmin(graph.topo_rank[known])]]
    place[place < 0] = 0
    return enforce_colocation(graph, place)


# ==============================================================================================
# METIS
# ==============================================================================================
def place_metis(
    graph: OpGraph, cluster: Cluster, *, seed: int = 0, imbalance: float = 0.03
) -> NDArray[np.int64]:
    """METIS k-way partitioning (Karypis & Kumar 1998) through pymetis, as the GO paper's METIS.

    Vertices are colocation groups (an op without one is its own group), weighted by their
    mean op time; the graph is made undirected, parallel edges merged and weighted by the
    bytes they carry. Weights are scaled to integers summing to about 1e8 (edge weights >= 1,
    vertex weights >= 0). METIS balances compute and minimises bytes cut; like the paper's
    METIS baseline it knows nothing of memory or of the order ops run in, so it runs out of
    memory on large models and may cut the critical path. Partition ids are used as device
    ids as they come.

    Args:
        graph: The graph.
        cluster: The cluster (its device count is the number of parts).
        seed: METIS's random seed.
        imbalance: Allowed load imbalance (METIS ``ufactor = 1000 * imbalance``).
    """
    n, d = graph.n_ops, cluster.n_devices
    if d == 1 or n <= 1:
        return _placement(n)
    group, n_groups = colocation_groups(graph)
    if n_groups < d:
        return group.copy() % d
    _, w = mean_times(graph, cluster)
    vw_f = np.bincount(group, w, minlength=n_groups)
    total = vw_f.sum()
    vw = np.round(vw_f * (1e8 / total)) if total > 0 else np.ones(n_groups)
    a, b = group[graph.edge_src], group[graph.edge_dst]
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    key, inv = np.unique(lo * n_groups + hi, return_inverse=True)
    ew_f = np.bincount(inv.reshape(-1), graph.edge_bytes[keep], minlength=key.size)
    etotal = ew_f.sum()
    ew = np.maximum(1, np.round(ew_f * (1e8 / etotal)) if etotal > 0 else 1)
    u, v = key // n_groups, key % n_groups
    src = np.concatenate([u, v])
    dst = np.concatenate([v, u])
    wts = np.concatenate([ew, ew]).astype(np.int64)
    order = np.lexsort((dst, src))
    xadj = np.zeros(n_groups + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_groups), out=xadj[1:])
    opts = pymetis.Options()
    opts.seed = int(seed)
    opts.ufactor = max(1, round(1000 * imbalance))
    _, parts = pymetis.part_graph(
        d,
        pymetis.CSRAdjacency(xadj.tolist(), dst[order].tolist()),
        vweights=vw.astype(np.int64).tolist(),
        eweights=wts[order].tolist(),
        options=opts,
    )
    return np.asarray(parts, dtype=np.int64)[group]


# ==============================================================================================
# Shared list-scheduling state
# ==============================================================================================
class _State:
    """What every list placer tracks: devices of ops, finish times, pins and memory.

    Kept in Python lists (not NumPy arrays) because the placers touch single elements in
    tight loops, where list indexing is several times faster than NumPy scalar access.
    """

    def __init__(self, graph: OpGraph, cluster: Cluster, *, memory: bool) -> None:
        n, d = graph.n_ops, cluster.n_devices
        self.graph = graph
        self.n, self.d = n, d
        times, self.mean_t = mean_times(graph, cluster)
        self.times: list[list[float]] = times.tolist()
        self.lat: list[list[float]] = cluster.link_latency_s.tolist()
        self.inv_bw: list[list[float]] = (1.0 / cluster.link_bandwidth).tolist()
        self.pred_ptr: list[int] = graph.pred_ptr.tolist()
        self.pred: list[int] = graph.pred.tolist()
        self.pred_edge: list[int] = graph.pred_edge.tolist()
        self.succ_ptr: list[int] = graph.succ_ptr.tolist()
        self.succ: list[int] = graph.succ.tolist()
        self.ebytes: list[float] = graph.edge_bytes.tolist()
        self.etensor: list[int] = graph.edge_tensor_id.tolist()
        self.tbytes: list[float] = graph.tensor_bytes.tolist()
        self.virtual: list[bool] = virtual_sources(graph).tolist()
        group, n_groups = colocation_groups(graph)
        self.group: list[int] = group.tolist()
        self.pin: list[int] = [-1] * n_groups
        members: dict[int, list[int]] = {}
        sizes = np.bincount(group, minlength=n_groups)
        for v in np.flatnonzero(sizes[group] > 1).tolist():
            members.setdefault(self.group[v], []).append(v)
        self.members = members
        resident = op_resident_bytes(graph)
        self.group_bytes: list[float] = np.bincount(group, resident, minlength=n_groups).tolist()
        self.total_bytes = float(resident.sum())
        self.dev: list[int] = [-1] * n
        self.finish: list[float] = [0.0] * n
        self.memory = memory
        self.cap: list[float] = cluster.memory_bytes.tolist()
        self.used: list[float] = [0.0] * d
        # Which tensors already have a copy on each device (received or produced there).
        self.present = np.zeros((graph.n_tensors, d), bool)
        # Link channels, as the simulator has them: one transfer at a time per ordered device
        # pair. chan[a][b] is when a -> b is next free; arrival[t * d + b] when tensor t is
        # (or will be) on device b.
        self.chan: list[list[float]] = [[0.0] * d for _ in range(d)]
        self.arrival: dict[int, float] = {}

    # -- data ready times ---------------------------------------------------------------------
    def ready_times(self, v: int) -> list[float]:
        """Earliest time all of v's inputs can be on each device.

        A remote input arrives ``latency + bytes / bandwidth`` after both its producer ends and
        the link channel is free (transfers already booked on the channel go first), or when
        an earlier booked copy of the same tensor arrives.

        Known limitation: v's own inputs are each estimated as if the channel were free of
        the others, while `place` books them one after another, so when two inputs share a
        channel the choice can count on a start that is not booked (HEFT, critical-path,
        m-ETF and m-SCT choose by it). Queuing them here as `place` does changes those
        placers' step times by 0.72-1.44x per graph (geometric mean 0.92-1.05x per placer and
        suite) on quick-v0 and go-paper-v0, so it waits for a change that runs their
        committed rows, and the figures that compare with them, again.
        """
        d = self.d
        dr = [0.0] * d
        arrival, chan = self.arrival, self.chan
        for k in range(self.pred_ptr[v], self.pred_ptr[v + 1]):
            p = self.pred[k]
            dp = self.dev[p]
            if dp < 0:  # an unplaced parameter/input: it will be placed with v
                continue
            f = self.finish[p]
            e_id = self.pred_edge[k]
            b = self.ebytes[e_id]
            base = self.etensor[e_id] * d
            lat, ibw, ch = self.lat[dp], self.inv_bw[dp], chan[dp]
            for e in range(d):
                if e == dp:
                    t = f
                else:
                    a = arrival.get(base + e)
                    if a is None:
                        c = ch[e]
                        t = (f if f > c else c) + lat[e] + b * ibw[e]
                    else:
                        t = a
                if t > dr[e]:
                    dr[e] = t
        return dr

    # -- memory -------------------------------------------------------------------------------
    def need(self, v: int, d: int) -> float:
        """Bytes placing v on d adds to d: its unpinned groups (its own and its unplaced
        parameters') plus copies of remote tensors not yet on d."""
        total = 0.0
        g = self.group[v]
        if self.pin[g] < 0:
            total += self.group_bytes[g]
        seen_groups = {g}
        present = self.present
        for k in range(self.pred_ptr[v], self.pred_ptr[v + 1]):
            p = self.pred[k]
            dp = self.dev[p]
            if dp < 0:
                gp = self.group[p]
                if gp not in seen_groups and self.pin[gp] < 0:
                    seen_groups.add(gp)
                    total += self.group_bytes[gp]
            elif dp != d:
                t = self.etensor[self.pred_edge[k]]
                if not present[t, d]:
                    total += self.tbytes[t]
        # The same remote tensor read through two edges is counted twice: still an upper bound.
        return total

    def fits(self, v: int, d: int) -> bool:
        """Whether v fits on d under the conservative memory model (always True if unaware)."""
        return not self.memory or self.used[d] + self.need(v, d) <= self.cap[d]

    def most_free(self, allowed: list[int] | range) -> int:
        """The allowed device with the most free memory (lowest index on ties)."""
        return max(allowed, key=lambda e: (self.cap[e] - self.used[e], -e))

    # -- placing ------------------------------------------------------------------------------
    def place(self, v: int, d: int, start: float) -> None:
        """Put v on d from ``start`` (or later, when its inputs arrive later); book the link
        channels for its remote inputs; pin its group and its unplaced parameters' groups."""
        self.used[d] += self.need(v, d)
        self.dev[v] = d
        present, arrival, nd = self.present, self.arrival, self.d
        for k in range(self.pred_ptr[v], self.pred_ptr[v + 1]):
            p = self.pred[k]
            dp = self.dev[p]
            if dp < 0:
                self.dev[p] = d
                self._pin(self.group[p], d)
            elif dp != d:
                e_id = self.pred_edge[k]
                t = self.etensor[e_id]
                a = arrival.get(t * nd + d)
                if a is None:
                    f, c = self.finish[p], self.chan[dp][d]
                    a = (
                        (f if f > c else c)
                        + self.lat[dp][d]
                        + self.ebytes[e_id] * self.inv_bw[dp][d]
                    )
                    self.chan[dp][d] = a
                    arrival[t * nd + d] = a
                    present[t, d] = True
                if a > start:
                    start = a
        self.finish[v] = start + self.times[v][d]
        self._pin(self.group[v], d)

    def _pin(self, g: int, d: int) -> None:
        if self.pin[g] >= 0:
            return
        self.pin[g] = d
        for u in self.members.get(g, ()):
            if self.virtual[u]:
                self.dev[u] = d

    def finish_virtual(self) -> NDArray[np.int64]:
        """Place the virtual ops not yet placed (their groups' devices, else the most free
        device) and return the placement."""
        for v in range(self.n):
            if self.dev[v] < 0:
                g = self.group[v]
                if self.pin[g] >= 0:
                    self.dev[v] = self.pin[g]
                else:
                    e = self.most_free(range(self.d))
                    self.used[e] += self.group_bytes[g]
                    self.dev[v] = e
                    self._pin(g, e)
        return np.asarray(self.dev, dtype=np.int64)

    def kernel_preds_count(self) -> list[int]:
        """Number of non-virtual in-edges of every op (an op is ready when it reaches 0)."""
        cnt = [0] * self.n
        for v in range(self.n):
            c = 0
            for k in range(self.pred_ptr[v], self.pred_ptr[v + 1]):
                if not self.virtual[self.pred[k]]:
                    c += 1
            cnt[v] = c
        return cnt


# ==============================================================================================
# m-TOPO
# ==============================================================================================
def place_m_topo(
    graph: OpGraph, cluster: Cluster, *, seed: int = 0, slack: float = 1.1
) -> NDArray[np.int64]:
    """Baechi's m-TOPO (Jeon et al. 2020, section 4.1): topological fill up to a memory cap.

    Ops are visited in ``graph.topo_order`` and put on the current device until its memory
    would exceed ``min(capacity, slack * total / D)``, where ``total`` is the memory of all ops
    under the conservative model; then the placer moves on to the next device. The cap spreads
    the graph over all devices in contiguous topological blocks (m-TOPO's point: balanced
    memory, few cut edges along the order). On the last device the soft cap no longer applies;
    when an op would exceed a device's real capacity it goes to the lowest-index device where it
    fits, else to the device with the most free memory.

    Args:
        graph: The graph.
        cluster: The cluster.
        seed: Unused (deterministic).
        slack: How much above an even share of memory a device may be filled.
    """
    del seed
    st = _State(graph, cluster, memory=True)
    d = st.d
    share = slack * st.total_bytes / d
    soft = [min(c, share) for c in st.cap]
    cur = 0
    for v in graph.topo_order.tolist():
        if st.virtual[v]:
            continue
        pinned = st.pin[st.group[v]]
        if pinned >= 0:
            st.place(v, pinned, 0.0)
            continue
        while cur < d - 1 and st.used[cur] + st.need(v, cur) > soft[cur]:
            cur += 1
        target = cur
        if not st.fits(v, target):
            fitting = [e for e in range(d) if st.fits(v, e)]
            target = fitting[0] if fitting else st.most_free(range(d))
        st.place(v, target, 0.0)
    return st.finish_virtual()


# ==============================================================================================
# ETF engine (m-ETF, m-SCT)
# ==============================================================================================
def _etf(
    graph: OpGraph,
    cluster: Cluster,
    *,
    memory: bool,
    fav_parent: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """Earliest-task-first list scheduling (Hwang, Chow, Anger & Lee 1989) with Baechi's memory
    checks and, for m-SCT, favourite children.

    At every step the (ready op, device) pair with the earliest possible start is scheduled,
    where an op's start on a device is ``max(device free, data ready on that device)`` and data
    ready includes ``latency + bytes / bandwidth`` for every input made on another device. Ties
    go to the op with the larger static level (the longest computation path to an exit, as in
    ETF), then the lower topological rank, then the lower device id.

    Because ``min_v max(ready(v, d), free(d)) = max(min_v ready(v, d), free(d))``, each device
    keeps a heap of ops not yet ready there (by data-ready time) and a heap of ops already ready
    there (by static level); the best pair is found among D heap tops. An op that does not fit
    on a device in memory is struck off that device; if it fits nowhere it goes to the device
    with the most free memory. With ``fav_parent``, an op whose favourite parent is placed on d
    is only offered to d, ahead of every other op ready there (the SCT rule: a favourite child
    runs right after its parent); if it does not fit there it is offered to every device.
    Colocation overrides both restrictions: when placing an op pins a colocation group (its
    own, or a parameter's it reads), the group's ready members held to another device, or
    struck off the pinned one for memory, are offered to the pinned device (without this an
    optimizer update whose favourite parent went to one device, while the forward op reading
    its weight went to another, was never placed).
    """
    st = _State(graph, cluster, memory=memory)
    n, d = st.n, st.d
    sl = upward_rank(graph, st.mean_t).tolist()
    rank = graph.topo_rank.tolist()
    remaining = st.kernel_preds_count()
    virtual = st.virtual
    done = [False] * n
    banned = bytearray(n * d)
    n_banned = [0] * n
    only = [-1] * n  # favourite-child restriction (soft)
    drs: list[list[float] | None] = [None] * n
    free = [0.0] * d
    pend: list[list[tuple[float, float, int, int]]] = [[] for _ in range(d)]
    avail: list[list[tuple[float, int, int]]] = [[] for _ in range(d)]
    fav = None if fav_parent is None else fav_parent.tolist()
    inf = float("inf")

    def ok(v: int, e: int) -> bool:
        if done[v] or banned[v * d + e]:
            return False
        p = st.pin[st.group[v]]
        if p >= 0:
            return p == e
        return only[v] < 0 or only[v] == e

    def push(v: int, devices: list[int] | range) -> None:
        dr = drs[v]
        assert dr is not None
        key = -inf if only[v] >= 0 else -sl[v]  # favourite children run first on their device
        for e in devices:
            heapq.heappush(pend[e], (dr[e], key, rank[v], v))

    def make_ready(v: int) -> None:
        drs[v] = st.ready_times(v)
        p = st.pin[st.group[v]]
        if p >= 0:
            push(v, [p])
            return
        if fav is not None and fav[v] >= 0:
            e = st.dev[fav[v]]
            if e >= 0 and st.fits(v, e):
                only[v] = e
                push(v, [e])
                return
        push(v, range(d))

    def reoffer(g: int, e: int) -> None:
        """Group ``g`` was just pinned to ``e``: offer e its ready members that are not in e's
        heap (held to a favourite parent's other device, or struck off e for memory), which
        would otherwise wait for ever on devices the pin now rules out."""
        for u in st.members.get(g, ()):
            if done[u] or drs[u] is None:
                continue  # placed, or not ready yet (make_ready will see the pin)
            if banned[u * d + e]:  # colocation wins over memory: try e once more
                banned[u * d + e] = 0
                n_banned[u] -= 1
            elif only[u] < 0 or only[u] == e:
                continue  # already offered to e
            only[u] = -1
            push(u, [e])

    def commit(v: int, e: int) -> None:
        dr = drs[v]
        assert dr is not None
        start = max(dr[e], free[e])
        # The groups this placement pins (`_State.place`): v's, and its unplaced inputs'.
        fresh = [g for g in (st.group[v],) if st.pin[g] < 0 and g in st.members]
        for k in range(st.pred_ptr[v], st.pred_ptr[v + 1]):
            p = st.pred[k]
            g = st.group[p]
            if st.dev[p] < 0 and st.pin[g] < 0 and g in st.members and g not in fresh:
                fresh.append(g)
        st.place(v, e, start)
        free[e] = st.finish[v]
        done[v] = True
        for g in fresh:
            reoffer(g, e)
        for k in range(st.succ_ptr[v], st.succ_ptr[v + 1]):
            w = st.succ[k]
            remaining[w] -= 1
            if remaining[w] == 0:
                make_ready(w)

    for v in graph.topo_order.tolist():
        if not virtual[v] and remaining[v] == 0:
            make_ready(v)
    to_place = sum(1 for v in range(n) if not virtual[v])
    placed = 0
    while placed < to_place:
        best: tuple[float, float, int, int] | None = None
        best_dev = -1
        for e in range(d):
            pe, ae, fe = pend[e], avail[e], free[e]
            while pe and pe[0][0] <= fe:
                item = heapq.heappop(pe)
                if ok(item[3], e):
                    heapq.heappush(ae, (item[1], item[2], item[3]))
            while ae and not ok(ae[0][2], e):
                heapq.heappop(ae)
            if ae:
                cand = (fe, ae[0][0], ae[0][1], e)
            else:
                while pe and not ok(pe[0][3], e):
                    heapq.heappop(pe)
                if not pe:
                    continue
                cand = (pe[0][0], pe[0][1], pe[0][2], e)
            if best is None or cand < best:
                best, best_dev = cand, e
        if best is None:  # pragma: no cover - every unplaced ready op sits in some heap
            raise RuntimeError("ETF ran out of ready ops before placing every op")
        e = best_dev
        v = heapq.heappop(avail[e])[2] if avail[e] else heapq.heappop(pend[e])[3]
        if st.fits(v, e):
            commit(v, e)
            placed += 1
            continue
        # Does not fit on e.
        banned[v * d + e] = 1
        n_banned[v] += 1
        pinned = st.pin[st.group[v]]
        if pinned >= 0:  # colocation is a hard constraint: it wins over memory
            commit(v, pinned)
            placed += 1
        elif only[v] >= 0:  # favourite child that does not fit with its parent: free it
            only[v] = -1
            push(v, [x for x in range(d) if not banned[v * d + x]])
        elif n_banned[v] == d:
            commit(v, st.most_free(range(d)))
            placed += 1
    return st.finish_virtual()


def place_m_etf(graph: OpGraph, cluster: Cluster, *, seed: int = 0) -> NDArray[np.int64]:
    """Baechi's m-ETF (Jeon et al. 2020, section 4.2): ETF list scheduling that skips devices
    without enough memory for the op (see `_etf`). Deterministic; ``seed`` is unused."""
    del seed
    return _etf(graph, cluster, memory=True)


# ==============================================================================================
# m-SCT
# ==============================================================================================
def _sct_lp(
    p: NDArray[np.float64],
    src: NDArray[np.int64],
    dst: NDArray[np.int64],
    c: NDArray[np.float64],
    n: int,
) -> NDArray[np.float64]:
    """Hanen & Munier's small-communication-time LP relaxation on n ops and edges src->dst.

    Variables: start times s (n), edge indicators x (m) in [0, 1] (0 = "favourite": the child
    runs right after its parent on the same device, no communication), makespan W::

        min W + eps * sum c x
        s_j >= s_i + p_i + c_ij x_ij          for every edge i -> j
        sum_j x_ij >= outdeg(i) - 1           (at most one favourite child)
        sum_i x_ij >= indeg(j) - 1            (at most one favourite parent)
        W >= s_i + p_i                        for every exit op
        s >= 0, 0 <= x <= 1

    The tiny ``eps`` term (1e-6 of the makespan scale) only breaks ties among optimal vertices
    in favour of favourites on heavy edges, which the plain LP leaves arbitrary.
    Returns x.
    """
    m = src.size
    n_var = n + m + 1
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[NDArray[np.float64]] = []
    rhs: list[NDArray[np.float64]] = []
    r0 = 0
    er = np.arange(m)
    # precedence: s_i - s_j + c x <= -p_i
    rows += [er, er, er]
    cols += [src, dst, n + er]
    vals += [np.ones(m), -np.ones(m), c]
    rhs.append(-p[src])
    r0 = m
    for ends in (src, dst):
        deg = np.bincount(ends, minlength=n)
        multi = deg >= 2
        row_of = np.full(n, -1, np.int64)
        row_of[multi] = r0 + np.arange(int(multi.sum()))
        sel = multi[ends]
        rows.append(row_of[ends[sel]])
        cols.append(n + er[sel])
        vals.append(-np.ones(int(sel.sum())))
        rhs.append(-(deg[multi] - 1).astype(np.float64))
        r0 += int(multi.sum())
    exits = np.flatnonzero(np.bincount(src, minlength=n) == 0)
    ex = r0 + np.arange(exits.size)
    rows += [ex, ex]
    cols += [exits, np.full(exits.size, n + m)]
    vals += [np.ones(exits.size), -np.ones(exits.size)]
    rhs.append(-p[exits])
    r0 += exits.size
    a = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, n_var)
    )
    scale = max(float(p.sum()), 1e-12)
    obj = np.zeros(n_var)
    obj[n + m] = 1.0
    cs = c.sum()
    if cs > 0:
        obj[n : n + m] = 1e-6 * scale * c / cs
    bounds = np.zeros((n_var, 2))
    bounds[:, 1] = np.inf
    bounds[n : n + m, 1] = 1.0
    res = linprog(obj, A_ub=a, b_ub=np.concatenate(rhs), bounds=bounds, method="highs")
    if res.status != 0 or res.x is None:  # pragma: no cover - the LP is always feasible
        return np.ones(m)
    return np.asarray(res.x[n : n + m])


def sct_favourite_children(
    graph: OpGraph, cluster: Cluster, *, max_ops: int = SCT_LP_MAX_OPS
) -> NDArray[np.int64]:
    """The favourite parent of every op from the SCT LP relaxation, or -1 (Hanen & Munier 1995).

    Op and edge costs are means over devices and device pairs (op time; latency + bytes /
    bandwidth). Parameters, inputs and constants are left out (they take no time and follow
    their consumer anyway), parallel edges between two ops are merged (bytes summed). The LP is
    solved on consecutive windows of at most ``max_ops`` kernel ops in topological order; edges
    between windows are left without a favourite. An edge is a favourite when its LP value is
    below 0.5 (Hanen & Munier's rounding), which gives each op at most one favourite child and
    one favourite parent.

    Returns:
        (n_ops,) the favourite parent of each op (the op it should follow on the same device),
        -1 where there is none.
    """
    n = graph.n_ops
    _, w = mean_times(graph, cluster)
    c_edge = edge_comm_mean(graph, cluster)
    virtual = virtual_sources(graph)
    fav = np.full(n, -1, np.int64)
    if cluster.n_devices == 1:
        return fav
    kernel_order = graph.topo_order[~virtual[graph.topo_order]].astype(np.int64)
    window = np.full(n, -1, np.int64)
    local = np.full(n, -1, np.int64)
    window[kernel_order] = np.arange(kernel_order.size) // max_ops
    local[kernel_order] = np.arange(kernel_order.size) % max_ops
    s_all, d_all = graph.edge_src.astype(np.int64), graph.edge_dst.astype(np.int64)
    same = (window[s_all] >= 0) & (window[s_all] == window[d_all])
    for win in range(int(window.max()) + 1 if kernel_order.size else 0):
        sel = same & (window[s_all] == win)
        ops = kernel_order[win * max_ops : (win + 1) * max_ops]
        if not sel.any():
            continue
        ls, ld = local[s_all[sel]], local[d_all[sel]]
        key, inv = np.unique(ls * ops.size + ld, return_inverse=True)
        c = np.zeros(key.size)
        np.maximum.at(c, inv.reshape(-1), c_edge[sel])
        # Merged edges: the largest latency+bytes cost plus the other tensors' bytes.
        extra = np.bincount(inv.reshape(-1), graph.edge_bytes[sel], minlength=key.size)
        lat, bw = link_means(cluster)
        c = np.maximum(c, lat + extra / bw)
        es, ed = key // ops.size, key % ops.size
        x = _sct_lp(w[ops], es, ed, c, ops.size)
        favs = x < 0.5
        fav[ops[ed[favs]]] = ops[es[favs]]
    return fav


def place_m_sct(
    graph: OpGraph, cluster: Cluster, *, seed: int = 0, max_lp_ops: int = SCT_LP_MAX_OPS
) -> NDArray[np.int64]:
    """Baechi's m-SCT (Jeon et al. 2020, section 4.3): m-ETF plus favourite children.

    The favourite child of each op comes from Hanen & Munier's LP relaxation for scheduling
    with small communication times, solved with SciPy's HiGHS (`sct_favourite_children`; on
    windows of ``max_lp_ops`` ops). During ETF scheduling a ready op whose favourite parent is
    placed on device d may only start on d, and before any other op ready there (Hanen & Munier's
    rule that a favourite child runs right after its parent), so the pair shares a device and
    skips the transfer; if it does not fit in d's memory it may go anywhere. Everything else
    is m-ETF.

    Args:
        graph: The graph.
        cluster: The cluster.
        seed: Unused (HiGHS and ETF are deterministic).
        max_lp_ops: Largest LP window, in ops.
    """
    del seed
    fav = sct_favourite_children(graph, cluster, max_ops=max_lp_ops)
    return _etf(graph, cluster, memory=True, fav_parent=fav)


# ==============================================================================================
# HEFT and critical-path (CPOP)
# ==============================================================================================
def _insertion_schedule(
    graph: OpGraph, cluster: Cluster, order: list[int], forced: dict[int, int]
) -> NDArray[np.int64]:
    """Place ops in ``order`` (kernel ops, predecessors first) on the device of earliest finish,
    with HEFT's insertion policy: an op may fill an idle slot between two scheduled ops if the
    slot is long enough and its inputs are ready by then (Topcuoglu et al. 2002, section 4.1).
    ``forced`` maps ops to a fixed device (CPOP's critical path). Memory is ignored."""
    st = _State(graph, cluster, memory=False)
    d = st.d
    starts: list[list[float]] = [[] for _ in range(d)]
    ends: list[list[float]] = [[] for _ in range(d)]
    for v in order:
        dr = st.ready_times(v)
        pinned = st.pin[st.group[v]]
        if pinned >= 0:
            devices: list[int] | range = [pinned]
        elif v in forced:
            devices = [forced[v]]
        else:
            devices = range(d)
        tv = st.times[v]
        best_eft, best_e, best_s, best_i = float("inf"), -1, 0.0, 0
        for e in devices:
            s, i = _earliest_slot(starts[e], ends[e], dr[e], tv[e])
            if s + tv[e] < best_eft:
                best_eft, best_e, best_s, best_i = s + tv[e], e, s, i
        st.place(v, best_e, best_s)
        if tv[best_e] > 0:
            starts[best_e].insert(best_i, st.finish[v] - tv[best_e])
            ends[best_e].insert(best_i, st.finish[v])
    return st.finish_virtual()


def _earliest_slot(
    starts: list[float], ends: list[float], ready: float, dur: float
) -> tuple[float, int]:
    """Earliest start >= ready of a ``dur``-long run between busy intervals [starts, ends)
    (sorted, disjoint), and the index to insert it at. Inspects at most MAX_INSERTION_SCAN
    idle slots, then appends after the last interval."""
    i = bisect.bisect_right(ends, ready)
    s = ready
    for _ in range(MAX_INSERTION_SCAN):
        if i == len(starts) or s + dur <= starts[i]:
            return s, i
        s = max(ready, ends[i])
        i += 1
    last = len(ends)
    return max(ready, ends[-1]), last


def place_heft(graph: OpGraph, cluster: Cluster, *, seed: int = 0) -> NDArray[np.int64]:
    """HEFT (Topcuoglu, Hariri & Wu, IEEE TPDS 2002): upward-rank order, insertion-based
    earliest-finish-time device choice.

    Ranks use each op's mean time over devices and each edge's mean transfer time over device
    pairs; ops are taken in decreasing upward rank (ties: topological rank) and each goes to
    the device where it would finish first, allowed to fill an idle slot. Memory-unaware, as
    published. Deterministic; ``seed`` is unused.
    """
    del seed
    _, w = mean_times(graph, cluster)
    ru = upward_rank(graph, w, edge_comm_mean(graph, cluster))
    virtual = virtual_sources(graph)
    ops = np.flatnonzero(~virtual)
    order = ops[np.lexsort((graph.topo_rank[ops], -ru[ops]))]
    return _insertion_schedule(graph, cluster, order.tolist(), {})


def _kernel_indegree(graph: OpGraph, virtual: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Number of in-edges of every op that come from kernel (non-virtual) ops."""
    real = ~virtual[graph.edge_src]
    return np.bincount(graph.edge_dst[real], minlength=graph.n_ops).astype(np.int64)


def _cpop_order(graph: OpGraph, priority: NDArray[np.float64]) -> list[int]:
    """Kernel ops in the order of a ready queue that always pops the highest priority."""
    virtual = virtual_sources(graph)
    rem = _kernel_indegree(graph, virtual).tolist()
    pr = priority.tolist()
    rank = graph.topo_rank.tolist()
    heap = [(-pr[v], rank[v], v) for v in range(graph.n_ops) if not virtual[v] and rem[v] == 0]
    heapq.heapify(heap)
    ptr, succ = graph.succ_ptr.tolist(), graph.succ.tolist()
    order: list[int] = []
    while heap:
        _, _, v = heapq.heappop(heap)
        order.append(v)
        for k in range(ptr[v], ptr[v + 1]):
            u = succ[k]
            rem[u] -= 1
            if rem[u] == 0:
                heapq.heappush(heap, (-pr[u], rank[u], u))
    return order


def place_critical_path(graph: OpGraph, cluster: Cluster, *, seed: int = 0) -> NDArray[np.int64]:
    """CPOP, Critical-Path-On-a-Processor (Topcuoglu, Hariri & Wu 2002, section 4.2).

    Priority = upward rank + downward rank (mean costs). The critical path is followed from
    the entry op of highest priority through the successor of highest priority; all its ops go
    to the one device that runs them fastest in total (device 0 on identical devices). The
    other ops are taken from a ready queue by priority and go to the device of earliest finish,
    with insertion, as in HEFT. Memory-unaware, as published. Deterministic; ``seed`` unused.
    """
    del seed
    times, w = mean_times(graph, cluster)
    c = edge_comm_mean(graph, cluster)
    pr = upward_rank(graph, w, c) + downward_rank(graph, w, c)
    virtual = virtual_sources(graph)
    kernel = np.flatnonzero(~virtual)
    if kernel.size == 0:
        return _placement(graph.n_ops)
    # Follow the critical path among kernel ops.
    entries = kernel[_kernel_indegree(graph, virtual)[kernel] == 0]
    v = int(entries[np.lexsort((graph.topo_rank[entries], -pr[entries]))[0]])
    path = [v]
    while True:
        succ = graph.successors(v)
        if succ.size == 0:
            break
        v = int(succ[np.lexsort((graph.topo_rank[succ], -pr[succ]))[0]])
        path.append(v)
    cp_dev = int(np.argmin(times[path].sum(axis=0)))
    forced = dict.fromkeys(path, cp_dev)
    return _insertion_schedule(graph, cluster, _cpop_order(graph, pr), forced)


# ==============================================================================================
# Registry
# ==============================================================================================
#: Every placement baseline by name; each returns one device per op.
PLACERS: dict[str, Callable[..., NDArray[np.int64]]] = {
    "single-device": place_single_device,
    "human-expert": place_human_expert,
    "metis": place_metis,
    "m-topo": place_m_topo,
    "m-etf": place_m_etf,
    "m-sct": place_m_sct,
    "heft": place_heft,
    "critical-path": place_critical_path,
    "random": place_random,
}
