"""The go_gym simulator: one training step of a graph on a cluster, under given decisions.

Every env step, baseline, agent sample and leaderboard row is one call of this simulator, so
it is written once, as one numba kernel, and everything calls it:

- `simulate` (one decision), `simulate_many` (K decisions in parallel on all cores, the
  same kernel in a ``prange``), `fuse` (fusion decisions -> legal groups, `FusionPlan`),
  `lower_bound` (a bound on any unfused step time).
- No Gymnasium import here; inputs are validated in Python, the kernel sees only arrays.
- A plain-Python twin in ``tests/sim/reference.py`` implements the rules below for reading;
  the tests check that kernel and twin agree exactly on many random cases.

Decisions
---------
``placement[i]``: device of op i. ``priority[i]``: an integer priority level (higher runs
first among ready units); without it, a device runs its ready units first-ready-first-run.
``fusion[i]``: a fusion decision (0 = do not fuse, higher fuses first), turned into groups by
`fuse` with the placement, so a group never spans devices (rules in `go_gym.sim.fusion`).

Units
-----
The simulator runs on the contracted graph of *units*: a fused group, or a single op. A
unit's time on a device is `go_gym.cluster.fused_group_times` for a group and
`go_gym.cluster.op_times` for an op; its priority is the maximum of its members'; its
tie-break rank is the lowest topological rank among its members; its *leader* is that member,
whose name is the unit's name. Tensors produced and consumed inside one group cost neither
memory nor transfers. Colocation groups (``graph.colocation``) must sit on one device: a
placement that splits one is reported ``valid=False`` (the step is still simulated).

The "go" profile (default)
--------------------------
1. Each device runs one unit at a time, non-preemptively. A unit is ready when every tensor it
   reads from other units is present on its device: produced there (at the producer's end),
   or received there.
2. When a device is free it starts its best ready unit: with priorities the highest priority,
   ties the lowest rank; without, the unit that became ready earliest, ties the lowest rank.
3. When a unit ends, each output tensor needed on another device is sent once to each such
   device, on the channel of that ordered (source, destination) pair. A channel carries one
   transfer at a time, first in first out; a transfer takes ``link_latency_s[s, d] +
   bytes / link_bandwidth[s, d]``. Compute and transfers overlap. Later consumers on the same
   device reuse the received copy.
4. Memory per device: ``persistent_bytes`` of every op is resident from t = 0 on the op's
   device. When a unit starts it allocates its output tensors that leave the unit (distinct
   tensors, ``graph.tensor_bytes``), the bytes its members write that nobody reads
   (``max(0, bytes_written - consumed tensor bytes)`` per op) and its members' ``temp_bytes``;
   the last two are freed when it ends. An output tensor is freed on its device when its last
   local consumer has ended and its outgoing transfers have arrived; a received tensor is
   allocated on arrival and freed when its last consumer on that device ends. An op at rest
   that owns persistent bytes (a parameter or buffer op) already holds its outputs in them,
   so its outputs, read or not, take no further memory on its own device (copies elsewhere
   do); in a group, this holds for that op's outputs only, not for the other members'.
   The peak per device is the highest total reached; a peak above ``cluster.memory_bytes``
   makes the result invalid (``valid=False``, with a ``reason``), never an exception.
5. Step time = the time of the last event (= the end of the last unit).

Simultaneous events (same time) are processed in this order, which decides ties (and so peak
memory, since frees come before allocations at the same instant):

a. unit ends, by unit rank (frees, releases of local consumers, transfers queued);
b. transfer arrivals, by channel index ``s * n_devices + d`` (allocation on the receiver,
   releases, free at the sender);
c. channel starts (a channel that is idle and has a queued transfer starts its head);
d. device starts, by device index (each free device starts its best ready unit; a zero-time
   unit ends at the same instant, so its end is processed next, before later device starts).

The "placeto" profile
---------------------
Reproduces the Placeto/Park simulator that the device-placement literature has reused since
2019, including its tie rules, so results compare with published numbers. Times are computed
in microseconds with the reference's own float arithmetic and reported in seconds.

- Op time ``c`` (µs): ``graph.measured_us`` when present (whatever the op kind), else the cost
  model's time on device 0 in µs; a fused group of several ops takes its fused time on
  device 0. Only the number of devices comes from the cluster (and, for validity, its memory
  capacities); links and launch overheads are the profile's own.
- Each unit has one output of ``b`` bytes (the sum of its tensors that leave it), read by all
  its children.
- Each device runs one unit at a time; its ready queue is ordered by (time the unit became
  ready, order of arrival in any queue). A unit started at t ends at t + c; the device is
  free again at t + c + 5.7 if c > 0, else at t + c. Units without inputs arrive at t = 0 in
  rank order.
- When a unit ends, children on the same device are released at the end time. If any child is
  on another device, one transfer of b bytes is queued on the source device's single outgoing
  bus (whatever the number of remote children and devices). A bus runs its queue one at a
  time in (ready time, arrival order); a transfer started at t' releases all remote children
  at t' + b / 7600 and frees the bus at t' + b / 7600 + 25.
- One event queue ordered by time; at equal times dependency releases come first (ordered by
  (parent name, child name) as strings), then bus starts, then device starts (each ordered by
  the device name ``/device:GPU:i`` as a string, so GPU:10 sorts before GPU:2).
- Step time = the time of the last event, including a device's trailing 5.7 µs and a bus's
  trailing 25 µs. ``priority`` is not part of the profile (passing one raises ValueError).
- Memory follows the "go" rules on these event times, with b as the unit's single output
  (allocated on each remote device that has children when the transfer arrives).

`lower_bound` bounds unfused "go" executions; fusion can beat it.
"""

from go_gym.sim.fusion import FusionPlan, fuse
from go_gym.sim.simulator import (
    BatchResult,
    SimResult,
    Timeline,
    lower_bound,
    simulate,
    simulate_many,
)

__all__ = [
    "BatchResult",
    "FusionPlan",
    "SimResult",
    "Timeline",
    "fuse",
    "lower_bound",
    "simulate",
    "simulate_many",
]
