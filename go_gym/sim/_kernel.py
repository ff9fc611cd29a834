"""The event-driven simulation kernel (numba). Private: call it through `go_gym.sim.simulate`.

One kernel serves every profile. Most of what differs between ``"go"`` and ``"placeto"`` is
passed in as data (unit times and device gaps, per-channel latency / bandwidth / hold, the
keys that order simultaneous events); the rest is chosen by the switch ``placeto``:

- ready queues: "go" orders a device's ready units by (time it became ready, topological
  rank), or by (-priority, rank) when ``by_priority``; "placeto" by (time it became ready,
  arrival counter);
- transfers: "go" makes one per (tensor, destination device) on channel ``src * D + dst``;
  "placeto" one per unit output on its source device's single bus (channel ``src``);
- starting work: eager in "go", by start events in "placeto" (below).

The semantics are specified in the `go_gym.sim` module docstring; ``tests/sim/reference.py``
is the plain Python twin that the kernel is checked against.

Data structures, all preallocated arrays:

- the event queue, ordered by (time, key) where ``key = type * KM + subkey`` encodes which
  kind of event goes first at equal times and the tie-break inside a kind; key and action
  share one int64 word (see ``EV_SHIFT``). It holds O(devices + channels) events, a handful
  on clusters of up to ``RING_MAX_DEVICES`` devices, and there it is a sorted ring buffer:
  an event later than everything queued goes after the tail, any other is placed by a scan
  from the head (which an event earlier than everything, such as a unit followed at once by
  the next on its device, stops at once), and a pop takes the head. A binary heap makes one
  data-dependent, hard to predict comparison per level on every push and pop; the ring makes
  about one per event, and measured 3-8% less kernel time on the zoo and random graphs on 8
  devices (8-22% on 16). Under a random placement on 8 devices new events land 1-2 places
  from the head on average and 4-5 from the tail: the scan from the head (it replaced one
  from the tail, with the front as a special case) moves fewer entries, ~100 of the ~870
  instructions per op went to those moves, and it measured 0.95x on random and most zoo
  graphs (1.01-1.02x on WaveNet's, where more events are the latest). A unit's end and a
  transfer's arrival go into the ring where they are created; buffering them and inserting
  them in a loop after the event cost that loop's exit, whose trip count (0-3) the branch
  predictor cannot guess: 3-5% of the kernel's time. Larger clusters keep hundreds of
  transfers in flight, which would make insertion long, and use a binary heap in the same
  arrays;
- one ready heap per device (segments of one array, sized by the units placed there);
- one FIFO per channel (a linked list through the transfer records);
- per received copy of a tensor ("go": one per tensor and destination device), the list of
  its consumers there (linked through ``plink``), so an arrival releases them directly: it
  used to scan the tensor's consumers for those on its device, one unpredictable branch
  per consumer (1.4 of the ~15 mispredicted branches per op under a random placement).

The start and end times of units and transfers are written only when the caller wants a
timeline (full-size arrays; empty ones otherwise): 1-2% of the kernel's time at 80k ops.

Two ways of starting work, ``eager`` or not (``eager = not placeto``):

- ``eager=False`` ("placeto"): device and channel starts are events of their own in the queue,
  ordered by time, kind and device name, exactly as in the reference simulator.
- ``eager=True`` ("go", no device gaps, no bus hold): a channel that is idle when a transfer
  is queued (or when its previous transfer arrives) starts its FIFO head at once, right
  there in the event's processing (not in step 5 after it: that loop's unpredictable exit
  cost 2-6% of the kernel's time), and a device that may start marks itself and starts
  once every event at the current time has been processed, devices in index order. This is the same order as start events ordered
  after ends and arrivals (a channel's head does not depend on when it is read; a device
  start waits for all same-time releases; a zero-time unit's end is processed before the
  next device starts), but it keeps two queue operations per unit and per transfer out of
  the queue. The twin uses explicit start events, and the tests check they agree.

Queue and heap operations are written out inline, or in a helper numba inlines itself
(``inline="always"``, `_ring_insert`): numba keeps atomic reference-count updates around
array arguments of ordinary helper calls inside this loop, which doubled its cost. Even
inlined helpers cost once they take more arrays: one that queues an event (four arrays)
made the kernel 1.12x slower, one that starts a transfer (eleven) 1.8x, so the few lines
that start a transfer and queue its arrival are written out where they are needed.
Indices known to be non-negative go through `_unsigned_index` (uint32), which keeps numba's
negative-index wraparound code out of the loop; together with the packed heap words this cut
the instructions per 80k-op simulation by about 30% (callgrind), with bit-identical results.

Whether a release makes a unit ready (its dependency count reaches zero) and whether a use
frees a tensor (its reference count does) are data, which the branch predictor guesses
badly under a random placement. Both are computed by arithmetic on the comparison instead
of a branch: the released unit is always written after the ready list's end, which only
advances when the count is zero (``n_ready += dep[v] == 0``), and the freed bytes are
multiplied by it (``mem -= nbytes * (ref == 0)``, exact: the bytes are finite and
``x - 0.0 == x``); only the Placeto profile's arrival, which walks all the tensor's
consumers, keeps its branch. 0.93-0.96x on random graphs of 1k-80k ops and on zoo graphs
(0.98x on the 248-op transformer-xl-2), 0.86-0.88x on contiguous blocks with 2-10% of the
ops moved at random (A/B in one process); slower only where the predictor learns a whole
small simulation by heart (one decision repeated: 1.21x at 1k ops, 0.85-0.87x at 10k and
80k). An earlier attempt with selects (``v if c else w``) measured 1.02-1.08x slower: numba
compiled the selects back into branches.
"""

from __future__ import annotations

import inspect

import numba
import numpy as np

# Event actions (low two bits of the heap payload).
A_END = 0  # a unit ends on its device
A_ARR = 1  # a transfer arrives
A_CHAN = 2  # a channel (link / bus) may start its next transfer
A_DEV = 3  # a device may start its next ready unit

# Packed 64-bit heap entries: ``(ordering key << 32) | payload``. An event's payload is its
# action (``index * 4 + kind``), a ready unit's is its id. Comparing the packed word compares
# the ordering key first; the payload only breaks ties between entries whose keys are equal,
# and there are none: an event key names its unit, channel or device (a device or channel
# has at most one pending event of a kind at a time, or identical ones), and a ready key's
# second part (topological rank or arrival counter) is unique. So every priority queue pops
# exactly the same sequence as with separate payload arrays, and each heap move shifts one
# word fewer. Keys and payloads must stay below 2**31 (checked on entry).
EV_SHIFT = 32
EV_MASK = (1 << 32) - 1


def _unsigned_index(i):  # type: ignore[no-untyped-def]
    """``i`` (known to be >= 0) as uint32, so numba indexes with it without a wraparound check.

    Numba adds ``if i < 0: i += len`` to every index of a signed type; with the index and the
    array's length both kept around, that costs several instructions and a register per
    array in the hot loop. A uint32 index has none, and uint32 mixed with int64 in arithmetic
    stays int64 (uint64 would turn into float64). Every use below is on a value that is a
    valid index already (ids and offsets read from the unit graph or the kernel's own lists),
    so no result changes. In plain Python (``NUMBA_DISABLE_JIT=1``) it is the identity.
    """
    return i


if not numba.config.DISABLE_JIT:  # type: ignore[attr-defined]  # numba sets it at run time

    @numba.njit(inline="always")
    def _unsigned_index(i):  # type: ignore[no-untyped-def]
        return np.uint32(i)


_ix = _unsigned_index

# Clusters of up to this many devices queue events in a sorted ring, larger ones in a heap.
RING_MAX_DEVICES = 16


@numba.njit(inline="always")
def _ring_insert(ht, hk, head, hsize, mask, et, ek):  # type: ignore[no-untyped-def]
    """Insert event (et, ek) into the sorted ring ht/hk[head : head + hsize]; returns the head.

    After the tail when it is the latest, else by a scan from the head (entries earlier than
    it move one slot forward; an infinite time in the free slot after the tail stops the
    scan). Inlined into `simulate_core` (as fast as the code written out there).
    """
    if hsize >= mask:  # one slot stays free for the sentinel
        raise RuntimeError("go_gym.sim kernel: event queue overflow (please report)")
    tail = _ix((head + hsize) & mask)
    last = _ix((head + hsize - 1) & mask)
    if hsize > 0 and (et > ht[last] or (et == ht[last] and ek > hk[last])):
        ht[tail] = et  # the latest: appended at the tail
        hk[tail] = ek
        return head
    ht[tail] = np.inf  # stops the scan after the tail
    j = head
    head = (head - 1) & mask
    while True:
        jj = _ix(j & mask)
        pa = ht[jj]
        if pa > et or (pa == et and hk[jj] > ek):
            break
        pj = _ix((j - 1) & mask)
        ht[pj] = pa
        hk[pj] = hk[jj]
        j += 1
    pj = _ix((j - 1) & mask)
    ht[pj] = et
    hk[pj] = ek
    return head


@numba.njit(cache=True)
def simulate_core(  # type: ignore[no-untyped-def]
    times,
    gap,
    qrank,
    evkey,
    persistent,
    start_alloc,
    transient,
    in_ptr,
    in_pair,
    out_ptr,
    out_ut,
    ut_prod,
    ut_bytes,
    ut_home,
    cons_ptr,
    cons_unit,
    pair_ut,
    sources,
    dev_in,
    prio,
    by_priority,
    chan_lat,
    chan_bw,
    hold,
    dev_evkey,
    chan_evkey,
    type_end,
    type_arr,
    type_chan,
    type_dev,
    u_start,
    u_end,
    peak,
    busy,
    x_ut,
    x_src,
    x_dst,
    x_start,
    x_end,
    placeto=False,
):
    """Simulate one decision on one unit graph; fills the output arrays (``u_start`` to
    ``x_end``) in place.

    Returns ``(step_time, n_transfers, bytes_moved, n_units_run)`` in the kernel's time unit.
    ``n_units_run < n_units`` means the unit graph has a cycle (deadlock).

    ``placeto`` selects the Placeto profile's rules (see the module docstring). Callers of
    the "go" profile leave it out: numba then compiles the kernel with ``placeto`` as the
    constant False, without the Placeto branches: 0.98x the time of the kernel that reads
    it at run time on random graphs of 1k-80k ops, 0.955-0.98x on zoo graphs (A/B in one
    process). The price is a second compiled kernel per caller for the Placeto profile.
    """
    n_units = times.shape[0]
    n_dev = times.shape[1]
    n_ut = ut_prod.shape[0]
    n_pairs = cons_unit.shape[0]
    n_chan = chan_lat.shape[0]
    record = u_start.shape[0] > 0  # a timeline is wanted (u_start, u_end, x_start, x_end)
    eager = not placeto  # see the module docstring
    km = max(n_units, max(n_chan, n_dev)) + 1
    if 4 * km >= 1 << 31 or 4 * (n_pairs + km) >= 1 << 31:
        raise ValueError("go_gym.sim kernel: graph too large for 32-bit event keys")

    # --- per-decision prepass: dependency counts and run times ------------------------------
    # Internal arrays are int32 (half the cache footprint of int64).
    dev = np.empty(n_units, np.int32)
    dep = np.empty(n_units, np.int32)
    dur_u = np.empty(n_units, np.float64)  # run time of each unit on its device
    for u in range(n_units):
        dev[u] = dev_in[u]
        dep[u] = in_ptr[u + 1] - in_ptr[u]
        dur_u[u] = times[u, dev_in[u]]
    # Set when the producer of a ut ends (its consumers are walked then anyway), before any
    # of them can run: rep[p] is -1 if pair p is local, else the first pair of the same ut
    # on the same device (where the received copy's reference count lives).
    rep = np.empty(n_pairs, np.int32)
    recv_ref = np.zeros(n_pairs, np.int32)  # consumers left of a received copy (at its rep)
    src_ref = np.empty(n_ut, np.int32)  # local consumers + transfers left of a produced ut
    stamp = np.full(n_dev, -1, np.int64)  # last ut sent to each device
    first = np.zeros(n_dev, np.int64)  # its first pair there
    lastp = np.zeros(n_dev, np.int64)  # its last pair so far
    plink = np.empty(n_pairs, np.int32)  # next pair served by the same received copy, or -1

    # --- ready heaps: one segment per device --------------------------------------------------
    qoff = np.zeros(n_dev + 1, np.int64)
    for u in range(n_units):
        qoff[dev[u] + 1] += 1
    for d in range(n_dev):
        qoff[d + 1] += qoff[d]
    qn = np.zeros(n_dev, np.int64)
    qk1 = np.empty(n_units, np.float64)
    qk2 = np.empty(n_units, np.int64)  # (second key << 32) | unit, see EV_SHIFT

    # --- memory: parameters resident from t = 0 -------------------------------------------------
    mem = np.zeros(n_dev, np.float64)
    for u in range(n_units):
        mem[dev[u]] += persistent[u]
    for d in range(n_dev):
        peak[d] = mem[d]
        busy[d] = 0.0

    # --- event queue, devices, channels ---------------------------------------------------------
    # The event queue: a ring buffer sorted by (time, key), earliest at ``head``, or on
    # larger clusters a binary heap in ht[:hsize] (see the module docstring).
    ring = n_dev <= RING_MAX_DEVICES
    cap = 64
    while cap < 4 * (n_dev + n_chan) + 64:
        cap *= 2
    mask = cap - 1
    ht = np.empty(cap, np.float64)
    hk = np.empty(cap, np.int64)  # (ordering key << 32) | action, see EV_SHIFT
    head = 0
    hsize = 0
    # Events created while processing one event, queued before the next pop.
    pend_t = np.empty(n_dev + n_chan + 8, np.float64)
    pend_k = np.empty(n_dev + n_chan + 8, np.int64)
    n_pend = 0
    dev_free = np.zeros(n_dev, np.float64)
    dev_sched = np.full(n_dev, -1.0)  # time of the pending device event (non-eager), or -1
    dirty = np.zeros(n_dev, np.bool_)  # eager: device to check once time t is done
    n_dirty = 0
    last_dirty = 0  # the device marked last (the only one when n_dirty == 1)
    to_start = np.empty(n_dev, np.int64)  # devices that try to start a unit now
    ch_free = np.zeros(n_chan, np.float64)
    ch_sched = np.full(n_chan, -1.0)
    ch_head = np.full(n_chan, -1, np.int64)
    ch_tail = np.full(n_chan, -1, np.int64)
    ch_try = np.empty(n_chan + 1, np.int64)  # channels that try to start a transfer now
    x_next = np.empty(n_pairs, np.int32)
    x_rep = np.empty(n_pairs, np.int32)  # first pair served by a transfer ("go")
    n_x = 0
    counter = 0
    moved = 0.0
    step = 0.0
    n_done = 0

    # Units released by the current event, made ready in release order after it. A release
    # writes its unit at ``ready[n_ready]`` whether or not it counts (see the module
    # docstring); that slot exists, since the unit is not in the list yet (n_ready < n_units).
    ready = np.empty(max(n_units, 1), np.int32)
    n_ready = 0
    for i in range(sources.shape[0]):
        ready[n_ready] = sources[i]
        n_ready += 1
    t = 0.0

    while True:
        # 1. Released units join their device's ready heap (push, inline).
        for i in range(n_ready):
            v = _ix(ready[i])
            dv = _ix(dev[v])
            if not placeto:  # (time it became ready or -priority, topological rank)
                key1 = -prio[v] if by_priority else t
                key2 = (qrank[v] << EV_SHIFT) | np.int64(v)
            else:  # (time it became ready, arrival counter)
                key1 = t
                key2 = (counter << EV_SHIFT) | np.int64(v)
                counter += 1
            base = _ix(qoff[dv])
            j = _ix(qn[dv])
            while j > 0:
                parent = _ix((j - 1) >> 1)
                pa = qk1[base + parent]
                pb = qk2[base + parent]
                if pa < key1 or (pa == key1 and pb <= key2):
                    break
                qk1[base + j] = pa
                qk2[base + j] = pb
                j = parent
            qk1[base + j] = key1
            qk2[base + j] = key2
            qn[dv] += 1
            if t >= dev_free[dv]:
                if eager:
                    if not dirty[dv]:
                        dirty[dv] = True
                        n_dirty += 1
                        last_dirty = dv
                elif dev_sched[dv] != t:
                    dev_sched[dv] = t
                    pend_t[n_pend] = t
                    pend_k[n_pend] = ((type_dev * km + dev_evkey[dv]) << EV_SHIFT) | (
                        dv * 4 + A_DEV
                    )
                    n_pend += 1
        n_ready = 0

        # 2. Other new events join the queue (device and channel start events of "placeto";
        #    every event on a cluster large enough for the heap): see the module docstring.
        for i in range(n_pend):
            et = pend_t[i]
            ek = pend_k[i]
            if hsize >= cap:
                raise RuntimeError("go_gym.sim kernel: event queue overflow (please report)")
            if not ring:  # heap push (sift up)
                j = _ix(hsize)
                while j > 0:
                    parent = _ix((j - 1) >> 1)
                    pa = ht[parent]
                    pb = hk[parent]
                    if pa < et or (pa == et and pb <= ek):
                        break
                    ht[j] = pa
                    hk[j] = pb
                    j = parent
                ht[j] = et
                hk[j] = ek
            else:
                head = _ring_insert(ht, hk, head, hsize, mask, et, ek)
            hsize += 1
        n_pend = 0

        n_start = 0
        n_try = 0
        next_t = ht[_ix(head)] if hsize > 0 else np.inf
        if n_dirty > 0 and next_t > t:
            # 3a. Eager: every event at time t is done; waiting devices start, by index.
            if n_dirty == 1:
                # The common case, without a scan of every device: that scan's branch is
                # unpredictable under a random placement and cost 5-9% of the kernel's time.
                dirty[last_dirty] = False
                to_start[0] = last_dirty
                n_start = 1
            else:
                for d in range(n_dev):
                    if dirty[d]:
                        dirty[d] = False
                        to_start[n_start] = d
                        n_start += 1
            n_dirty = 0
        elif hsize == 0:
            break
        else:
            # 3b. Next event: the head of the queue (with a heap: pop, sift down).
            t = next_t
            action = hk[_ix(head)] & EV_MASK
            hsize -= 1
            if ring:
                head = (head + 1) & mask
            else:
                lt = ht[hsize]
                lk = hk[hsize]
                j = _ix(0)
                while True:
                    c = _ix(2 * j + 1)
                    if c >= hsize:
                        break
                    ca = ht[c]
                    cb = hk[c]
                    c1 = _ix(c + 1)
                    if c1 < hsize:
                        da = ht[c1]
                        db = hk[c1]
                        if da < ca or (da == ca and db < cb):
                            c = c1
                            ca = da
                            cb = db
                    if ca < lt or (ca == lt and cb < lk):
                        ht[j] = ca
                        hk[j] = cb
                        j = c
                    else:
                        break
                if hsize > 0:
                    ht[j] = lt
                    hk[j] = lk
            step = t
            kind = action & 3
            idx = _ix(action >> 2)

            # 4. Process it.
            if kind == A_END:
                u = idx
                d = _ix(dev[u])
                n_done += 1
                if eager and qn[d] > 0 and not dirty[d]:
                    # Free now with units waiting (units released below mark it themselves).
                    dirty[d] = True
                    n_dirty += 1
                    last_dirty = d
                mem[d] -= transient[u]
                for q in range(_ix(in_ptr[u]), _ix(in_ptr[u + 1])):
                    p = _ix(in_pair[q])
                    ut = _ix(pair_ut[p])
                    r = rep[p]
                    if r < 0:
                        src_ref[ut] -= 1
                        mem[d] -= ut_home[ut] * (src_ref[ut] == 0)
                    else:
                        r = _ix(r)
                        recv_ref[r] -= 1
                        mem[d] -= ut_bytes[ut] * (recv_ref[r] == 0)
                for o in range(_ix(out_ptr[u]), _ix(out_ptr[u + 1])):
                    ut = _ix(out_ut[o])
                    last = cons_ptr[ut + 1] - 1
                    any_remote = False
                    n_local = 0
                    n_xfer = 0
                    for p in range(_ix(cons_ptr[ut]), _ix(last + 1)):
                        v = _ix(cons_unit[p])
                        dv = _ix(dev[v])
                        c = -1
                        if dv == d:
                            rep[p] = -1
                            n_local += 1
                            dep[v] -= 1
                            ready[n_ready] = v
                            n_ready += dep[v] == 0
                        else:
                            if stamp[dv] != ut:  # first consumer there: one received copy
                                stamp[dv] = ut
                                first[dv] = p
                                n_xfer += 1
                                if not placeto:
                                    c = d * n_dev + dv
                            else:
                                plink[_ix(lastp[dv])] = p
                            lastp[dv] = p
                            plink[p] = -1
                            r = _ix(first[dv])
                            rep[p] = r
                            recv_ref[r] += 1
                            if placeto:
                                any_remote = True
                        if c == -1 and any_remote and p == last:
                            c = d  # Placeto: one transfer on the bus, after the local releases
                            dv = -1
                        if c >= 0:
                            x = n_x
                            n_x += 1
                            x_ut[x] = ut
                            x_src[x] = d
                            x_dst[x] = dv
                            x_rep[x] = p
                            if eager and t >= ch_free[c] and ch_head[c] == -1:
                                # An idle channel starts it now (see step 5).
                                nbytes = ut_bytes[ut]
                                arrive = t + (chan_lat[c] + nbytes / chan_bw[c])
                                ch_free[c] = arrive + hold
                                if record:
                                    x_start[x] = t
                                    x_end[x] = arrive
                                moved += nbytes
                                sub = evkey[u] if placeto else chan_evkey[c]
                                ek = ((type_arr * km + sub) << EV_SHIFT) | (x * 4 + A_ARR)
                                if ring:
                                    head = _ring_insert(ht, hk, head, hsize, mask, arrive, ek)
                                    hsize += 1
                                else:
                                    pend_t[n_pend] = arrive
                                    pend_k[n_pend] = ek
                                    n_pend += 1
                                continue
                            x_next[x] = -1
                            if ch_tail[c] == -1:
                                ch_head[c] = x
                            else:
                                x_next[ch_tail[c]] = x
                            ch_tail[c] = x
                            if not eager and t >= ch_free[c] and ch_sched[c] != t:
                                ch_sched[c] = t
                                pend_t[n_pend] = t
                                pend_k[n_pend] = ((type_chan * km + chan_evkey[c]) << EV_SHIFT) | (
                                    c * 4 + A_CHAN
                                )
                                n_pend += 1
                    if placeto and n_xfer > 0:
                        n_xfer = 1
                    src_ref[ut] = n_local + n_xfer

            elif kind == A_ARR:
                x = idx
                ut = _ix(x_ut[x])
                s = _ix(x_src[x])
                nbytes = ut_bytes[ut]
                if not placeto:
                    dd = _ix(x_dst[x])
                    mem[dd] += nbytes
                    if mem[dd] > peak[dd]:
                        peak[dd] = mem[dd]
                    p = x_rep[x]
                    while p >= 0:  # the consumers this copy serves (usually one)
                        v = _ix(cons_unit[_ix(p)])
                        dep[v] -= 1
                        ready[n_ready] = v
                        n_ready += dep[v] == 0
                        p = plink[_ix(p)]
                    c = s * n_dev + dd
                    x = ch_head[c]
                    if x != -1 and t >= ch_free[c]:  # its next one starts now ("go" is eager)
                        x = _ix(x)
                        ch_head[c] = x_next[x]
                        if ch_head[c] == -1:
                            ch_tail[c] = -1
                        nb = ut_bytes[_ix(x_ut[x])]
                        arrive = t + (chan_lat[c] + nb / chan_bw[c])
                        ch_free[c] = arrive + hold
                        if record:
                            x_start[x] = t
                            x_end[x] = arrive
                        moved += nb
                        ek = ((type_arr * km + chan_evkey[c]) << EV_SHIFT) | (x * 4 + A_ARR)
                        if ring:
                            head = _ring_insert(ht, hk, head, hsize, mask, arrive, ek)
                            hsize += 1
                        else:
                            pend_t[n_pend] = arrive
                            pend_k[n_pend] = ek
                            n_pend += 1
                else:
                    for p in range(_ix(cons_ptr[ut]), _ix(cons_ptr[ut + 1])):
                        if rep[p] == p:
                            dv = _ix(dev[_ix(cons_unit[p])])
                            mem[dv] += nbytes
                            if mem[dv] > peak[dv]:
                                peak[dv] = mem[dv]
                    for p in range(_ix(cons_ptr[ut]), _ix(cons_ptr[ut + 1])):
                        if rep[p] >= 0:
                            v = _ix(cons_unit[p])
                            dep[v] -= 1
                            if dep[v] == 0:
                                ready[n_ready] = v
                                n_ready += 1
                src_ref[ut] -= 1
                mem[s] -= ut_home[ut] * (src_ref[ut] == 0)

            elif kind == A_CHAN:
                c = idx
                if ch_sched[c] == t:
                    ch_sched[c] = -1.0
                ch_try[n_try] = c
                n_try += 1

            else:  # A_DEV
                d = idx
                if dev_sched[d] == t:
                    dev_sched[d] = -1.0
                to_start[n_start] = d
                n_start += 1

        # 5. Channels that may start their next transfer now.
        for i in range(n_try):
            c = _ix(ch_try[i])
            x = ch_head[c]
            if t >= ch_free[c] and x != -1:
                x = _ix(x)
                ch_head[c] = x_next[x]
                if ch_head[c] == -1:
                    ch_tail[c] = -1
                ut = _ix(x_ut[x])
                nbytes = ut_bytes[ut]
                arrive = t + (chan_lat[c] + nbytes / chan_bw[c])
                free = arrive + hold
                ch_free[c] = free
                if record:
                    x_start[x] = t
                    x_end[x] = arrive
                moved += nbytes
                sub = evkey[_ix(ut_prod[ut])] if placeto else chan_evkey[c]
                ek = ((type_arr * km + sub) << EV_SHIFT) | (x * 4 + A_ARR)
                if ring:  # straight into the queue (see the module docstring)
                    head = _ring_insert(ht, hk, head, hsize, mask, arrive, ek)
                    hsize += 1
                else:
                    pend_t[n_pend] = arrive
                    pend_k[n_pend] = ek
                    n_pend += 1
                if not eager:
                    ch_sched[c] = free
                    pend_t[n_pend] = free
                    pend_k[n_pend] = ((type_chan * km + chan_evkey[c]) << EV_SHIFT) | (
                        c * 4 + A_CHAN
                    )
                    n_pend += 1

        # 6. Devices that may start their best ready unit now (pop, inline).
        zero_started = False
        for i in range(n_start):
            d = _ix(to_start[i])
            if zero_started:
                # A zero-time unit started before: its end (at t) comes first, then the
                # remaining devices, as with start events ordered after end events.
                if not dirty[d]:
                    dirty[d] = True
                    n_dirty += 1
                    last_dirty = d
                continue
            if t >= dev_free[d] and qn[d] > 0:
                base = _ix(qoff[d])
                u = _ix(qk2[base] & EV_MASK)
                size = qn[d] - 1
                qn[d] = size
                la1 = qk1[base + size]
                lb1 = qk2[base + size]
                j = _ix(0)
                while True:
                    c = _ix(2 * j + 1)
                    if c >= size:
                        break
                    ca = qk1[base + c]
                    cb = qk2[base + c]
                    c1 = _ix(c + 1)
                    if c1 < size:
                        da = qk1[base + c1]
                        db = qk2[base + c1]
                        if da < ca or (da == ca and db < cb):
                            c = c1
                            ca = da
                            cb = db
                    if ca < la1 or (ca == la1 and cb < lb1):
                        qk1[base + j] = ca
                        qk2[base + j] = cb
                        j = c
                    else:
                        break
                if size > 0:
                    qk1[base + j] = la1
                    qk2[base + j] = lb1
                dur = dur_u[u]
                end = t + dur
                free = end if eager else end + gap[u]  # "go" (eager) has no device gaps
                dev_free[d] = free
                if record:
                    u_start[u] = t
                    u_end[u] = end
                busy[d] += dur
                mem[d] += start_alloc[u]
                if mem[d] > peak[d]:
                    peak[d] = mem[d]
                ek = ((type_end * km + evkey[u]) << EV_SHIFT) | (u * 4 + A_END)
                if ring:  # straight into the queue (see the module docstring)
                    head = _ring_insert(ht, hk, head, hsize, mask, end, ek)
                    hsize += 1
                else:
                    pend_t[n_pend] = end
                    pend_k[n_pend] = ek
                    n_pend += 1
                if end == t:
                    zero_started = True
                if not eager:
                    dev_sched[d] = free
                    pend_t[n_pend] = free
                    pend_k[n_pend] = ((type_dev * km + dev_evkey[d]) << EV_SHIFT) | (d * 4 + A_DEV)
                    n_pend += 1

    return step, n_x, moved, n_done


# The number of `simulate_core`'s inputs: its arguments before the first output.
_core_py = getattr(simulate_core, "py_func", simulate_core)  # plain under NUMBA_DISABLE_JIT
N_INPUTS = list(inspect.signature(_core_py).parameters).index("u_start")


@numba.njit(cache=True)
def simulate_untimed(peak, busy, *inputs):  # type: ignore[no-untyped-def]
    """`simulate_core` without a timeline, for single calls: ``inputs`` are its arguments
    before the outputs, and then the switch ``placeto`` if given; its transfer records go
    to scratch arrays made here, and its start/end times nowhere (empty arrays, which turn
    their recording off: see the module docstring).

    Allocating in compiled code costs a fraction of a ``np.empty`` from Python, and the call
    has seven arguments fewer: 4.75 -> 4.37 us per call on a 2-op graph, 25.0 -> 24.3 us on
    transformer-xl-2, the same at 10k and 80k ops (A/B in one process). Allocating inside
    `simulate_core` itself, into its argument names, made its loop up to 1.4x slower.
    """
    n_pairs = inputs[15].shape[0]  # cons_unit
    untimed = np.empty(0, np.float64)
    return simulate_core(
        *inputs[:N_INPUTS],
        untimed,
        untimed,
        peak,
        busy,
        np.empty(n_pairs, np.int32),
        np.empty(n_pairs, np.int32),
        np.empty(n_pairs, np.int32),
        untimed,
        untimed,
        *inputs[N_INPUTS:],  # the switch, if given
    )


@numba.njit(cache=True, parallel=True)
def simulate_batch(  # type: ignore[no-untyped-def]
    step,
    n_xfer,
    moved,
    n_done,
    peak,
    busy,
    lo,
    hi,
    times,
    gap,
    qrank,
    evkey,
    persistent,
    start_alloc,
    transient,
    in_ptr,
    in_pair,
    out_ptr,
    out_ut,
    ut_prod,
    ut_bytes,
    ut_home,
    cons_ptr,
    cons_unit,
    pair_ut,
    sources,
    dev,
    prio,
    by_priority,
    chan_lat,
    chan_bw,
    hold,
    dev_evkey,
    chan_evkey,
    type_end,
    type_arr,
    type_chan,
    type_dev,
    placeto=False,
):
    """K simulations in parallel (``prange``), each `simulate_core` on its own slices.

    Instance k uses ``field[lo[k, f] : hi[k, f]]`` of every concatenated input field f (in the
    order of the arguments, ``dev`` and ``prio`` last), so K decisions may share one unit
    graph (all rows equal) or each bring its own (fusion). ``placeto`` is passed on as given
    (left out, it stays a compile-time constant: see `simulate_core`).
    """
    n_dev = peak.shape[1]
    for k in numba.prange(lo.shape[0]):
        # Not through `simulate_untimed`: called here, it made simulate_many up to 1.25x
        # slower on some graphs (amoebanet, inception-v3-b64, gnmt-4), in two runs.
        n_pairs = hi[k, 15] - lo[k, 15]
        untimed = np.empty(0, np.float64)  # no start/end times (see `simulate_untimed`)
        pk = np.empty(n_dev, np.float64)
        bz = np.empty(n_dev, np.float64)
        st, nx, mv, nd = simulate_core(
            times[lo[k, 0] : hi[k, 0]],
            gap[lo[k, 1] : hi[k, 1]],
            qrank[lo[k, 2] : hi[k, 2]],
            evkey[lo[k, 3] : hi[k, 3]],
            persistent[lo[k, 4] : hi[k, 4]],
            start_alloc[lo[k, 5] : hi[k, 5]],
            transient[lo[k, 6] : hi[k, 6]],
            in_ptr[lo[k, 7] : hi[k, 7]],
            in_pair[lo[k, 8] : hi[k, 8]],
            out_ptr[lo[k, 9] : hi[k, 9]],
            out_ut[lo[k, 10] : hi[k, 10]],
            ut_prod[lo[k, 11] : hi[k, 11]],
            ut_bytes[lo[k, 12] : hi[k, 12]],
            ut_home[lo[k, 13] : hi[k, 13]],
            cons_ptr[lo[k, 14] : hi[k, 14]],
            cons_unit[lo[k, 15] : hi[k, 15]],
            pair_ut[lo[k, 16] : hi[k, 16]],
            sources[lo[k, 17] : hi[k, 17]],
            dev[lo[k, 18] : hi[k, 18]],
            prio[lo[k, 19] : hi[k, 19]],
            by_priority,
            chan_lat,
            chan_bw,
            hold,
            dev_evkey,
            chan_evkey,
            type_end,
            type_arr,
            type_chan,
            type_dev,
            untimed,
            untimed,
            pk,
            bz,
            np.empty(n_pairs, np.int32),
            np.empty(n_pairs, np.int32),
            np.empty(n_pairs, np.int32),
            untimed,
            untimed,
            placeto,
        )
        step[k] = st
        n_xfer[k] = nx
        moved[k] = mv
        n_done[k] = nd
        for d in range(n_dev):
            peak[k, d] = pk[d]
            busy[k, d] = bz[d]
