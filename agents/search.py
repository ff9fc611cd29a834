"""Black-box searches over per-op decision vectors, under an exact evaluation budget.

A decision is an (n,) integer vector with values in ``0 .. n_choices-1``: devices for
placement, priority levels for scheduling, fusion decisions for fusion. A search only sees an
*evaluator*, ``evaluate(batch (K, n)) -> (K,) step times``, where an invalid decision (out of
memory) is worth a fixed penalty; `make_placement_evaluator`, `make_priority_evaluator` and
`make_fusion_evaluator` build one from `go_gym.sim.simulate_many`, so every search evaluates in
batches on all cores. The same searchers therefore work on any env's decision space.

Every search is deterministic for a given seed, never calls the evaluator on more rows than
its budget in total, accepts initial solutions (``init``: an (n,) vector or (k, n) rows, e.g.
the human-expert or m-ETF placement, evaluated first), and returns a `SearchResult` whose
curve is the best value found against evaluations used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph

if TYPE_CHECKING:
    from go_gym.sim import BatchResult

__all__ = [
    "OOM_PENALTY_S",
    "PLACEMENT_SEARCHERS",
    "SEARCHERS",
    "Evaluator",
    "SearchResult",
    "annealing",
    "boundary_descent",
    "boundary_moves",
    "brkga",
    "make_fusion_evaluator",
    "make_placement_evaluator",
    "make_priority_evaluator",
    "random_search",
]

#: Step time charged for a decision that runs out of memory: HDP's and GO's 100 s convention.
OOM_PENALTY_S = 100.0

#: ``evaluate(batch (K, n) int64) -> (K,) float64`` step times (penalty when invalid).
Evaluator = Callable[[NDArray[np.int64]], NDArray[np.float64]]


@dataclass(frozen=True)
class SearchResult:
    """What a search found.

    Attributes:
        best: (n,) the best decision found.
        best_value: its value (step time in seconds, or the penalty).
        curve_evals: (P,) evaluations used at each point of the curve (increasing).
        curve_best: (P,) best value found within that many evaluations (non-increasing).
        evaluations: evaluations used in total (never more than the budget).
    """

    best: NDArray[np.int64]
    best_value: float
    curve_evals: NDArray[np.int64]
    curve_best: NDArray[np.float64]
    evaluations: int


# ==============================================================================================
# Evaluators
# ==============================================================================================
def _rows(x: ArrayLike | None, k: int) -> NDArray[np.int64] | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.int64)
    return np.broadcast_to(a, (k, a.shape[-1])) if a.ndim == 1 else a


def _penalised(res: BatchResult, penalty: float) -> NDArray[np.float64]:
    return np.where(res.valid, res.step_time, penalty)


def _evaluator(
    graph: OpGraph,
    cluster: Cluster,
    searched: str,
    fixed: dict[str, ArrayLike | None],
    oom_penalty_s: float,
    profile: str,
) -> Evaluator:
    """Rows of ``searched`` decisions scored with `simulate_many`, the other decisions fixed
    (one (n,) vector shared by every row, or None for the simulator's default)."""
    from go_gym.sim import simulate_many

    def evaluate(batch: NDArray[np.int64]) -> NDArray[np.float64]:
        k = batch.shape[0]
        rows = {name: _rows(value, k) for name, value in fixed.items()}
        rows[searched] = batch
        placements = rows["placement"]
        if placements is None:  # the make_*_evaluator functions fix or search it
            raise ValueError("an evaluator needs the placement")
        res = simulate_many(
            graph, cluster, placements, rows["priority"], rows["fusion"], profile=profile
        )
        return _penalised(res, oom_penalty_s)

    return evaluate


def make_placement_evaluator(
    graph: OpGraph,
    cluster: Cluster,
    priority: ArrayLike | None = None,
    fusion: ArrayLike | None = None,
    *,
    oom_penalty_s: float = OOM_PENALTY_S,
    profile: str = "go",
) -> Evaluator:
    """An evaluator of placements (values = devices) under a fixed priority and fusion.

    Args:
        graph: The graph.
        cluster: The cluster.
        priority: (n,) priorities shared by every row, or None (first-ready order).
        fusion: (n,) fusion decisions shared by every row, or None (no fusion).
        oom_penalty_s: Value of an invalid (out-of-memory) placement.
        profile: Simulator profile.
    """
    fixed = {"priority": priority, "fusion": fusion}
    return _evaluator(graph, cluster, "placement", fixed, oom_penalty_s, profile)


def make_priority_evaluator(
    graph: OpGraph,
    cluster: Cluster,
    placement: ArrayLike,
    fusion: ArrayLike | None = None,
    *,
    oom_penalty_s: float = OOM_PENALTY_S,
    profile: str = "go",
) -> Evaluator:
    """An evaluator of scheduling priorities (values = levels) under a fixed placement/fusion."""
    fixed = {"placement": placement, "fusion": fusion}
    return _evaluator(graph, cluster, "priority", fixed, oom_penalty_s, profile)


def make_fusion_evaluator(
    graph: OpGraph,
    cluster: Cluster,
    placement: ArrayLike,
    priority: ArrayLike | None = None,
    *,
    oom_penalty_s: float = OOM_PENALTY_S,
    profile: str = "go",
) -> Evaluator:
    """An evaluator of fusion decisions (values = fusion priorities) under a fixed placement."""
    fixed = {"placement": placement, "priority": priority}
    return _evaluator(graph, cluster, "fusion", fixed, oom_penalty_s, profile)


# ==============================================================================================
# Budget bookkeeping
# ==============================================================================================
class _Budget:
    """Wraps an evaluator: counts rows, refuses to go over budget, tracks the best and curve."""

    def __init__(self, evaluate: Evaluator, budget: int, n: int, n_choices: int) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1 evaluation, got {budget}")
        if n < 1 or n_choices < 1:
            raise ValueError(f"need n >= 1 and n_choices >= 1, got n={n}, n_choices={n_choices}")
        self.evaluate, self.budget, self.n, self.n_choices = evaluate, int(budget), n, n_choices
        self.used = 0
        self.best: NDArray[np.int64] | None = None
        self.best_value = float("inf")
        self.curve_evals: list[int] = []
        self.curve_best: list[float] = []

    @property
    def left(self) -> int:
        return self.budget - self.used

    def __call__(self, batch: NDArray[np.int64]) -> NDArray[np.float64]:
        batch = np.ascontiguousarray(batch, dtype=np.int64)
        if batch.shape[0] > self.left:
            raise RuntimeError("search tried to exceed its evaluation budget")  # pragma: no cover
        if batch.shape[0] == 0:
            return np.zeros(0)
        values = np.asarray(self.evaluate(batch), dtype=np.float64).reshape(-1)
        if values.shape[0] != batch.shape[0]:
            raise ValueError(
                f"evaluator returned {values.shape[0]} values for {batch.shape[0]} rows"
            )
        values = np.where(np.isnan(values), np.inf, values)
        self.used += batch.shape[0]
        i = int(np.argmin(values))
        if values[i] < self.best_value or self.best is None:
            self.best_value, self.best = float(values[i]), batch[i].copy()
        self.curve_evals.append(self.used)
        self.curve_best.append(self.best_value)
        return values

    def result(self) -> SearchResult:
        assert self.best is not None
        return SearchResult(
            best=self.best,
            best_value=self.best_value,
            curve_evals=np.asarray(self.curve_evals, dtype=np.int64),
            curve_best=np.asarray(self.curve_best, dtype=np.float64),
            evaluations=self.used,
        )


def _init_rows(init: ArrayLike | None, n: int, n_choices: int) -> NDArray[np.int64]:
    """Initial solutions as (k, n) rows, validated."""
    if init is None:
        return np.zeros((0, n), np.int64)
    a = np.asarray(init)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"init must have shape ({n},) or (k, {n}), got {np.shape(init)}")
    if a.size and (a.min() < 0 or a.max() >= n_choices):
        raise ValueError(f"init holds values outside 0..{n_choices - 1}")
    return a.astype(np.int64)


# ==============================================================================================
# Random search
# ==============================================================================================
def random_search(
    evaluate: Evaluator,
    n: int,
    n_choices: int,
    budget: int,
    seed: int = 0,
    init: ArrayLike | None = None,
    *,
    batch_size: int = 64,
) -> SearchResult:
    """Uniform random decisions, evaluated ``batch_size`` at a time (the init rows first).

    The baseline every learned or guided search must beat (Bergstra & Bengio 2012).

    Args:
        evaluate: Batch evaluator (lower is better).
        n: Decision length (ops).
        n_choices: Values per position.
        budget: Evaluations allowed in total.
        seed: Seed of the NumPy generator.
        init: Initial solution(s), evaluated first.
        batch_size: Rows per evaluator call.
    """
    if batch_size < 1:  # an empty batch spends nothing: the loop would never end
        raise ValueError(f"need batch_size >= 1, got {batch_size}")
    bud = _Budget(evaluate, budget, n, n_choices)
    rng = np.random.default_rng(seed)
    first = _init_rows(init, n, n_choices)[: bud.left]
    if first.shape[0]:
        bud(first)
    while bud.left > 0:
        k = min(batch_size, bud.left)
        bud(rng.integers(0, n_choices, (k, n)))
    return bud.result()


# ==============================================================================================
# Simulated annealing
# ==============================================================================================
def annealing(
    evaluate: Evaluator,
    n: int,
    n_choices: int,
    budget: int,
    seed: int = 0,
    init: ArrayLike | None = None,
    *,
    batch_size: int = 16,
    t_start: float = 0.05,
    t_end: float = 1e-3,
    block_fraction: float = 0.05,
    order: ArrayLike | None = None,
) -> SearchResult:
    """Simulated annealing (Kirkpatrick, Gelatt & Vecchi 1983) with batched neighbourhoods.

    Each round proposes ``batch_size`` neighbours of the current decision and evaluates them
    in one batch. A neighbour either re-draws 1-3 random positions (a point move) or sets a
    contiguous block of positions, taken along ``order`` (pass ``graph.topo_order`` for
    placements: moving a run of neighbouring ops keeps them together), to one random value
    (a block move, up to ``block_fraction * n`` long). The best neighbour replaces the current
    decision if better, or with the Metropolis probability ``exp(-(log v' - log v) / T)``;
    comparing log step times makes the temperature scale-free. ``T`` falls geometrically from
    ``t_start`` to ``t_end`` over the budget.

    Args:
        evaluate: Batch evaluator (lower is better).
        n: Decision length.
        n_choices: Values per position.
        budget: Evaluations allowed in total.
        seed: Seed of the NumPy generator.
        init: Starting decision(s): the best row is the first current decision; a random one
            otherwise.
        batch_size: Neighbours per round.
        t_start: Initial temperature (relative change in step time accepted with prob. 1/e).
        t_end: Final temperature.
        block_fraction: Largest block move, as a fraction of n.
        order: Permutation of positions along which blocks are contiguous (default identity).
    """
    if batch_size < 1:
        raise ValueError(f"need batch_size >= 1, got {batch_size}")
    bud = _Budget(evaluate, budget, n, n_choices)
    rng = np.random.default_rng(seed)
    perm = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    if perm.shape != (n,):
        raise ValueError(f"order must be a permutation of {n} positions")
    rows = _init_rows(init, n, n_choices)[: bud.left]
    if rows.shape[0] == 0:
        rows = rng.integers(0, n_choices, (1, n))
    vals = bud(rows)
    i = int(np.argmin(vals))
    cur, cur_v = rows[i].copy(), float(vals[i])
    max_block = max(1, int(block_fraction * n))
    while bud.left > 0:
        k = min(batch_size, bud.left)
        cand = np.repeat(cur[None, :], k, axis=0)
        for j in range(k):
            if rng.random() < 0.5:
                pos = rng.integers(0, n, int(rng.integers(1, 4)))
                cand[j, pos] = rng.integers(0, n_choices, pos.size)
            else:
                length = int(rng.integers(1, max_block + 1))
                start = int(rng.integers(0, max(1, n - length + 1)))
                cand[j, perm[start : start + length]] = rng.integers(0, n_choices)
        v = bud(cand)
        j = int(np.argmin(v))
        progress = bud.used / bud.budget
        temp = t_start * (t_end / t_start) ** progress
        delta = np.log(max(v[j], 1e-300)) - np.log(max(cur_v, 1e-300))
        if delta <= 0 or rng.random() < np.exp(-delta / temp):
            cur, cur_v = cand[j].copy(), float(v[j])
    return bud.result()


# ==============================================================================================
# BRKGA
# ==============================================================================================
def brkga(
    evaluate: Evaluator,
    n: int,
    n_choices: int,
    budget: int,
    seed: int = 0,
    init: ArrayLike | None = None,
    *,
    population: int = 64,
    elite: float = 0.2,
    mutants: float = 0.15,
    rho: float = 0.7,
) -> SearchResult:
    """Biased random-key genetic algorithm (Gonçalves & Resende, J. Heuristics 2011), the
    search REGAL (Paliwal et al., ICLR 2020) builds on.

    An individual is a vector of n random keys in [0, 1); it decodes to the decision
    ``floor(key * n_choices)``. Each generation keeps the ``elite`` fraction of the population
    unchanged, adds ``mutants`` fresh random individuals, and fills the rest with children of
    one elite and one non-elite parent, each key taken from the elite parent with probability
    ``rho`` (biased uniform crossover). Defaults (20% elite, 15% mutants, rho 0.7) lie in
    Gonçalves & Resende's recommended ranges; REGAL uses the same scheme with its GNN
    supplying the parameters of the key distributions, which plain BRKGA draws uniformly.
    Initial decisions are encoded as keys inside their value's interval. Only new
    individuals are evaluated; when the budget cannot pay for a whole generation, only as
    many children as it can are evaluated and the population keeps the best of old and new.

    Args:
        evaluate: Batch evaluator (lower is better).
        n: Decision length.
        n_choices: Values per position.
        budget: Evaluations allowed in total.
        seed: Seed of the NumPy generator.
        init: Initial decision(s), placed in the first population.
        population: Population size (capped at the budget).
        elite: Elite fraction.
        mutants: Mutant fraction.
        rho: Probability that a child inherits a key from its elite parent.
    """
    if not (0 < elite < 1 and 0 <= mutants < 1 and elite + mutants < 1 and 0 <= rho <= 1):
        raise ValueError("need 0 < elite < 1, 0 <= mutants < 1, elite + mutants < 1, 0 <= rho <= 1")
    bud = _Budget(evaluate, budget, n, n_choices)
    rng = np.random.default_rng(seed)
    p = max(2, min(int(population), bud.budget))
    # At least one elite and one non-elite: with the whole population elite, a generation
    # would evaluate nothing and the search would never end.
    n_elite = min(max(1, round(elite * p)), p - 1)
    n_mut = min(p - n_elite - 1, round(mutants * p)) if p - n_elite > 1 else 0
    n_child = p - n_elite - n_mut

    def decode(keys: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.minimum((keys * n_choices).astype(np.int64), n_choices - 1)

    keys = rng.random((p, n))
    first = _init_rows(init, n, n_choices)[:p]
    if first.shape[0]:
        keys[: first.shape[0]] = (first + rng.random(first.shape)) / n_choices
    take = min(p, bud.left)
    keys = keys[:take]
    fit = bud(decode(keys))
    while bud.left > 0 and keys.shape[0] >= 2:
        order = np.argsort(fit, kind="stable")
        keys, fit = keys[order], fit[order]
        ne = min(n_elite, keys.shape[0] - 1)
        elites, others = keys[:ne], keys[ne:]
        mut = rng.random((n_mut, n))
        a = elites[rng.integers(0, ne, n_child)]
        b = others[rng.integers(0, others.shape[0], n_child)]
        child = np.where(rng.random((n_child, n)) < rho, a, b)
        new = np.concatenate([mut, child])[: bud.left]
        new_fit = bud(decode(new))
        # Next population: elites + the new individuals, topped up with the best of the rest.
        pool_k = np.concatenate([keys, new])
        pool_f = np.concatenate([fit, new_fit])
        keep = np.concatenate([np.arange(ne), keys.shape[0] + np.arange(new.shape[0])])
        if keep.size < p:
            rest = np.setdiff1d(np.arange(ne, keys.shape[0]), keep)
            keep = np.concatenate([keep, rest[: p - keep.size]])
        keys, fit = pool_k[keep], pool_f[keep]
    return bud.result()


# ==============================================================================================
# Boundary descent (placement only)
# ==============================================================================================
def boundary_moves(
    edge_src: NDArray[np.integer], edge_dst: NDArray[np.integer], placement: NDArray[np.integer]
) -> NDArray[np.int64]:
    """(M, 2) the distinct boundary moves (op, device) of ``placement`` (n,): for every edge
    whose ends sit on different devices, each end onto the other end's device, sorted.
    Give the edges between colocation leaders (`boundary_descent` does), so that a move
    takes a whole group."""
    src, dst = np.asarray(edge_src, np.int64), np.asarray(edge_dst, np.int64)
    placement = np.asarray(placement, np.int64)
    cross = placement[src] != placement[dst]
    ops = np.concatenate([src[cross], dst[cross]])
    devices = np.concatenate([placement[dst[cross]], placement[src[cross]]])
    return np.unique(np.stack([ops, devices], axis=1), axis=0)


def boundary_descent(
    evaluate: Evaluator,
    graph: OpGraph,
    n_devices: int,
    budget: int,
    seed: int = 0,
    init: ArrayLike | None = None,
    *,
    leader: ArrayLike | None = None,
    roles: ArrayLike | None = None,
    op_time: ArrayLike | None = None,
    batch_size: int = 16,
    max_combine: int = 4,
    balance_moves: int = 2,
) -> SearchResult:
    """Steepest descent on a placement, by moving one op next to a neighbour on another device.

    A *boundary move* takes an op at one end of an edge whose ends sit on different devices
    and puts it (with its colocation group) on the device of the other end (with ``roles``,
    also a *role move*, below). Each round scores ``batch_size`` moves from the current
    placement in one batch, in this order: the moves that improved in the previous round and
    were not taken; with ``op_time``, ``balance_moves`` *balance moves* not yet scored from
    this placement (the roles, or ops without a role, with the most run time on the busiest
    device, moved so that that time goes to the idlest device; most time first); boundary
    moves never scored, half of them (rounded up) those that save the most transfer bytes
    (`boundary_bytes_saved`), the rest at random; boundary moves scored from an earlier
    placement; any other single-op move never scored; any other single-op move scored from
    an earlier placement (at random within each). If any improved, the best ``m`` of them
    applied together (m = 2 .. ``max_combine``, distinct ops or roles, one evaluation each)
    compete with the best move alone, and the best of all becomes the current placement.
    The search stops early at a local optimum: when every move from the current placement
    has been scored and none improved.

    Why: the ops worth moving are where the placement changes device, and a move to a
    neighbour's device can save the transfer on that edge. On go-paper-v0/rnnlm-8, from a
    placement at 49.0 ms, 21% of the boundary moves improve (248 of 1,177) against 8.7% of
    random single moves (mostly by under 0.1%), and 14 of the 16 that save the most bytes
    improve; from the GO agent's placements of eight go-paper-v0 graphs, 300 evaluations of
    this descent (boundary moves at random, no balance moves) reach 0.960x their step time,
    0.977x with random single moves in place of the boundary ones. Boundary moves only ever
    trade transfers, so a device that runs too much stays so; balance moves relieve it
    (rnnlm-4/-8 with tied roles leave the heavy last layer on one device). From the GO
    agent's placements of all 14 go-paper-v0 graphs (three seeds, 300 evaluations), the
    byte-ranked half and the balance moves together reach 0.984x the step time of random
    boundary moves alone (better in 33 of 42), each alone 0.993x and 0.998x; all 16 by
    bytes, 1.006x (``benchmarks/boundary_moves.py``, ``agents/go/EXPERIMENTS.md``). This is the
    refining phase of the GO agent (``agents.make("go", env, refine_share=...)``) and, from
    the human expert's placement, the baseline ``boundary-descent``; it needs the graph, so
    it is in `PLACEMENT_SEARCHERS`, not among the black-box `SEARCHERS`.

    Args:
        evaluate: Batch evaluator of placements (lower is better).
        graph: The graph (its edges define the boundary).
        n_devices: Devices a placement may use.
        budget: Evaluations allowed in total (the start is evaluated first).
        seed: Seed of the NumPy generator.
        init: Starting placement(s); the best row starts. All ops on device 0 if None.
        leader: (n,) the op whose device each op takes (colocation, as the envs apply it):
            moves are made on leaders and their groups follow. Every op leads itself if None.
        roles: (n,) a role id per op (`agents.go.roles.role_groups`: the same op of every
            repeated block). Each boundary move of an op whose role has other leaders is
            then also proposed as a *role move*: every leader of the role moves by the same
            number of devices, so one move repairs that op in every block. None: no role
            moves.
        op_time: (n,) run time of each op (e.g. `go_gym.cluster.op_times` averaged over
            devices), which sets device loads for the balance moves. None: no balance moves.
        batch_size: Moves scored per round.
        max_combine: Most improving moves applied together in one candidate.
        balance_moves: Balance moves per round (with ``op_time``).
    """
    n, d = graph.n_ops, n_devices
    if batch_size < 1 or max_combine < 1 or balance_moves < 0:
        raise ValueError(
            "need batch_size >= 1, max_combine >= 1 and balance_moves >= 0, got "
            f"{batch_size}, {max_combine}, {balance_moves}"
        )
    lead = np.arange(n, dtype=np.int64) if leader is None else np.asarray(leader, np.int64)
    if lead.shape != (n,) or lead.min() < 0 or lead.max() >= n or (lead[lead] != lead).any():
        raise ValueError("leader must map every op to an op that leads itself")
    role = np.arange(n, dtype=np.int64) if roles is None else np.asarray(roles, np.int64)
    if role.shape != (n,) or role.min() < 0:
        raise ValueError(f"roles must be ({n},) non-negative role ids, got {role.shape}")
    if op_time is not None:
        op_time = np.asarray(op_time, np.float64)
        if op_time.shape != (n,) or not np.isfinite(op_time).all() or (op_time < 0).any():
            raise ValueError(f"op_time must be ({n},) finite times >= 0, got {op_time.shape}")
    bud = _Budget(evaluate, budget, n, d)
    rng = np.random.default_rng(seed)
    rows = _init_rows(init, n, d)[: bud.left]
    if rows.shape[0] == 0:
        rows = np.zeros((1, n), np.int64)
    rows = rows[:, lead]
    values = bud(rows)
    current, current_value = rows[int(np.argmin(values))].copy(), float(values.min())
    src, dst = lead[graph.edge_src], lead[graph.edge_dst]
    between = src != dst
    src, dst, edge_bytes = src[between], dst[between], graph.edge_bytes[between]
    # Moves are numbered: op * d + device puts one op (its group) on a device; n * d +
    # role * d + shift moves every leader of a role `shift` devices on. scored_at[move]: the
    # placement (counted by `version`) it was last scored from, -1 if never.
    is_leader = lead == np.arange(n)
    members = np.argsort(role, kind="stable")
    members = members[is_leader[members]]
    n_roles = int(role.max()) + 1
    size = np.bincount(role[is_leader], minlength=n_roles)
    start = np.concatenate([[0], np.cumsum(size)])
    n_moves = (n + n_roles) * d
    single_leader = np.concatenate([np.repeat(is_leader, d), np.zeros(n_roles * d, bool)])
    scored_at = np.full(n_moves, -1, np.int64)
    version = 0
    leaders = np.flatnonzero(is_leader)
    if op_time is not None:
        # a group runs together (weighted bincount is float64; numpy's stubs say intp)
        group_time = np.bincount(lead, op_time, n).astype(np.float64, copy=False)[leaders]
    carried = np.zeros(0, np.int64)  # improving moves of the last round, not taken

    def apply(row: NDArray[np.int64], moves: NDArray[np.int64]) -> NDArray[np.int64]:
        """``row`` with ``moves`` made in order, colocation applied."""
        row = row.copy()
        for m in moves.tolist():
            if m < n * d:
                row[m // d] = m % d
            else:
                r, shift = divmod(m - n * d, d)
                ops = members[start[r] : start[r + 1]]
                row[ops] = (row[ops] + shift) % d
        return row[lead]

    while bud.left > 0:
        k = min(batch_size, bud.left)
        ops, targets = boundary_moves(src, dst, current).T
        tied = size[role[ops]] > 1
        shifts = (targets[tied] - current[ops[tied]]) % d
        boundary = np.unique(
            np.concatenate([ops * d + targets, n * d + role[ops[tied]] * d + shifts])
        )
        movable = single_leader.copy()
        movable[: n * d] &= np.arange(n * d) % d != np.repeat(current, d)
        keep = (carried >= n * d) | movable[carried]
        carried = carried[keep][:k]
        in_boundary = np.zeros(n_moves, bool)
        in_boundary[boundary] = True
        movable[boundary] = False
        movable[carried] = in_boundary[carried] = False
        moves = [carried]
        if op_time is not None and balance_moves > 0 and d > 1:
            balance = _balance_moves(current, leaders, group_time, role, size, n, d)
            balance = balance[(scored_at[balance] < version) & ~np.isin(balance, carried)]
            balance = balance[: min(balance_moves, k - len(carried))]
            movable[balance] = in_boundary[balance] = False
            moves.append(balance)
        saved = boundary_bytes_saved(src, dst, edge_bytes, current, members, start, d)
        for pool, fresh in (
            (in_boundary, True),
            (in_boundary, False),
            (movable, True),
            (movable, False),
        ):
            want = k - sum(len(m) for m in moves)
            if want <= 0:
                break
            tier = np.flatnonzero(
                pool & ((scored_at < 0) if fresh else (scored_at >= 0) & (scored_at < version))
            )
            if pool is in_boundary and fresh:  # the best half by bytes saved, ties at random
                tier = tier[rng.permutation(len(tier))]
                tier = tier[np.argsort(-saved[tier], kind="stable")]
                top = (want + 1) // 2
                moves.append(tier[:top])
                tier = tier[top:]
                want = want - len(moves[-1])
            moves.append(rng.choice(tier, size=min(want, len(tier)), replace=False))
        batch = np.concatenate(moves).astype(np.int64)
        if len(batch) == 0:
            break  # every move from here was scored: a local optimum
        scores = bud(np.stack([apply(current, batch[j : j + 1]) for j in range(len(batch))]))
        scored_at[batch] = version
        improving = np.argsort(scores, kind="stable")
        improving = batch[improving[scores[improving] < current_value]]
        carried = np.zeros(0, np.int64)
        if len(improving) == 0:
            continue
        # the best move alone, and the best m improving moves (distinct ops or roles) together
        subject = np.where(improving < n * d, improving // d, n + (improving - n * d) // d)
        _, first = np.unique(subject, return_index=True)
        distinct = improving[np.sort(first)]
        sets = [improving[:1]] + [
            distinct[:m] for m in range(2, min(max_combine, len(distinct)) + 1)
        ]
        sets = sets[: 1 + bud.left]
        combined = np.stack([apply(current, chosen) for chosen in sets])
        found = [float(scores[batch == improving[0]][0])]
        if len(sets) > 1:
            found.extend(bud(combined[1:]).tolist())
        pick = int(np.argmin(found))
        current, current_value = combined[pick], found[pick]
        carried = improving[~np.isin(improving, sets[pick])]
        version += 1
    return bud.result()


def boundary_bytes_saved(
    edge_src: NDArray[np.int64],
    edge_dst: NDArray[np.int64],
    edge_bytes: NDArray[np.float64],
    placement: NDArray[np.int64],
    members: NDArray[np.int64],
    start: NDArray[np.int64],
    n_devices: int,
) -> NDArray[np.float64]:
    """Transfer bytes each move of `boundary_descent` takes off the links, in its numbering:
    ((n + n_roles) * d,) for the n * d single moves (op * d + device: the bytes of the op's
    edges to ops on that device, which become local, less those to ops on its own device,
    which become remote) then the role moves (role * d + shift: the sum of its members'
    single moves by that shift; edges inside a role are counted as if its other members
    stayed). ``members[start[r]:start[r + 1]]`` are the ops of role r; edges between
    colocation leaders, not inside a group."""
    n, d = len(placement), n_devices
    to_device = np.zeros((n, d))
    np.add.at(to_device, (edge_src, placement[edge_dst]), edge_bytes)
    np.add.at(to_device, (edge_dst, placement[edge_src]), edge_bytes)
    single = to_device - to_device[np.arange(n), placement][:, None]
    n_roles = len(start) - 1
    shifted = (placement[members][:, None] + np.arange(d)[None, :]) % d
    role_of = np.repeat(np.arange(n_roles), np.diff(start))
    by_role = np.zeros((n_roles, d))
    np.add.at(by_role, role_of, single[members[:, None], shifted])
    return np.concatenate([single.reshape(-1), by_role.reshape(-1)])


def _balance_moves(
    placement: NDArray[np.int64],
    leaders: NDArray[np.int64],
    group_time: NDArray[np.float64],
    role: NDArray[np.int64],
    size: NDArray[np.int64],
    n: int,
    d: int,
) -> NDArray[np.int64]:
    """`boundary_descent`'s balance moves, most run time moved first: every role (a single
    move for a leader alone in its role) with time on the busiest device, shifted by the
    devices from there to the idlest one."""
    where = placement[leaders]
    load = np.bincount(where, group_time, minlength=d)
    busiest, idlest = int(np.argmax(load)), int(np.argmin(load))
    if busiest == idlest:
        return np.zeros(0, np.int64)
    hot = where == busiest
    tied = size[role[leaders]] > 1
    n_roles = len(size)
    role_time = np.bincount(role[leaders[hot & tied]], group_time[hot & tied], minlength=n_roles)
    with_time = np.flatnonzero(role_time > 0)
    alone = leaders[hot & ~tied]
    moves = np.concatenate(
        [n * d + with_time * d + (idlest - busiest) % d, alone * d + idlest]
    ).astype(np.int64)
    time = np.concatenate([role_time[with_time], group_time[hot & ~tied]])
    return moves[np.argsort(-time, kind="stable")]


#: Every search by name (same signature: evaluate, n, n_choices, budget, seed, init).
SEARCHERS: dict[str, Callable[..., SearchResult]] = {
    "random-search": random_search,
    "annealing": annealing,
    "brkga": brkga,
}


#: Searches that read the graph, over placements only (same signature: evaluate, graph,
#: n_devices, budget, seed, init, leader).
PLACEMENT_SEARCHERS: dict[str, Callable[..., SearchResult]] = {
    "boundary-descent": boundary_descent,
}
