"""Op fusion: per-op fusion decisions -> legal fused groups (`fuse`, `FusionPlan`).

A fusion decision is one non-negative integer per op: 0 means "do not fuse this op", a
positive value is the op's fusion priority (higher fuses first). `fuse` turns it into groups
with one greedy producer-consumer pass; every group it returns is legal by construction:

Order of the pass
    Consumer ops ``v`` with a positive decision are visited by decreasing decision (ties: lower
    topological rank first). For each, its producers ``u`` (one entry per edge) with a positive
    decision are tried by decreasing decision, ties lower topological rank, and the group of
    ``u`` is merged with the group of ``v`` when all of the rules below allow it. Each
    candidate edge is therefore tried exactly once.

Kind rules (`go_gym.opkinds.FusionRole`)
    - NEVER ops (inputs, parameters, constants, embeddings, optimizer updates, communication,
      OTHER) and ops with decision 0 stay alone.
    - LIGHT ops (elementwise, reductions, normalisation, softmax, pooling, data movement, loss,
      random) chain with each other in any connected shape.
    - A HEAVY op (matmul, convolution, attention) may absorb LIGHT consumers as an epilogue: a
      group holding a HEAVY op ``h`` only ever grows by merging, on its consumer side, a
      LIGHT-only group whose every member is reachable from the merged consumer inside that
      group (the group is "rooted" at it). So every member of a HEAVY group is reachable from
      ``h`` inside the group, and nothing is fused in front of ``h`` (no prologue).
    - Two HEAVY ops never share a group.

Device rule
    With a placement, ``u`` and ``v`` must be on the same device, so a group never spans
    devices.

Acyclicity rule (a sufficient condition, O(1) per candidate)
    Merging the producer group A with the consumer group B along edge ``u -> v`` is allowed only
    if that edge is A's only edge to other groups, or B's only edge from other groups (counted
    over graph edges, so two tensors ``u -> v`` count twice). Then every path from A to B is
    the edge itself, so the contracted graph stays acyclic. Each group keeps its counts of
    external in- and out-edges, updated in O(1) on a merge (exactly one edge joined the two
    groups and none went back), so the whole pass is near-linear: it runs in milliseconds on
    80k ops. The rule is conservative: it can refuse a merge that would have been acyclic (an
    op whose output feeds its epilogue and, say, the backward pass, into an epilogue op with
    another input), never accept a cyclic one.

Groups are numbered by their member of lowest topological rank (so group ids follow the
topological order), and that member is the group's leader (its name is the group's name in
the Placeto profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.graph import OpGraph
from go_gym.opkinds import FUSION_ROLE, N_OP_KINDS, FusionRole, OpKind
from go_gym.sim._validate import check_decision, check_placement

__all__ = ["FusionPlan", "fuse"]

_ROLE = np.array([int(FUSION_ROLE[OpKind(i)]) for i in range(N_OP_KINDS)], np.int64)


@dataclass(frozen=True, eq=False)
class FusionPlan:
    """Legal fused groups of one graph: the output of `fuse`. Immutable.

    Attributes:
        group: (n_ops,) group id of each op, ``0 .. n_groups-1``, numbered by each group's
            lowest topological rank.
        n_groups: number of groups (unfused ops are groups of one).
        leader: (n_groups,) member op of lowest topological rank.
        members_ptr: (n_groups+1,) CSR offsets into ``members``.
        members: (n_ops,) member ops of each group, in topological order.
    """

    group: NDArray[np.int32]
    n_groups: int
    leader: NDArray[np.int32]
    members_ptr: NDArray[np.int64]
    members: NDArray[np.int32]

    # Immutable: copies are the plan itself; a pickle gives read-only arrays again.
    def __copy__(self) -> FusionPlan:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FusionPlan:
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _frozen_plan, (
            self.group,
            self.n_groups,
            self.leader,
            self.members_ptr,
            self.members,
        )

    @property
    def n_ops(self) -> int:
        """Number of ops of the graph the plan belongs to."""
        return int(self.group.shape[0])

    def group_members(self, g: int) -> NDArray[np.int32]:
        """Member ops of group ``g`` in topological order (a view)."""
        return self.members[self.members_ptr[g] : self.members_ptr[g + 1]]

    @classmethod
    def from_groups(cls, graph: OpGraph, group: ArrayLike) -> FusionPlan:
        """A plan from raw group labels (any integers), renumbered in topological order.

        Only the numbering is normalised: the caller vouches for legality. `simulate` still
        rejects a plan whose group spans devices or whose contracted graph has a cycle.

        Raises:
            ValueError: if ``group`` does not hold one integer per op.
        """
        g = np.asarray(group)
        if g.shape != (graph.n_ops,):
            raise ValueError(f"fusion group has shape {g.shape}, expected ({graph.n_ops},)")
        if g.dtype.kind not in "iu":
            raise ValueError(f"fusion group must hold integers, got dtype {g.dtype}")
        _, labels = np.unique(g, return_inverse=True)
        return _plan(graph, labels.reshape(-1).astype(np.int64))


def _plan(graph: OpGraph, labels: NDArray[np.int64]) -> FusionPlan:
    """Renumber arbitrary labels ``0..k-1`` by lowest topological rank and build the CSR."""
    k = int(labels.max()) + 1 if labels.size else 0
    min_rank = np.full(k, graph.n_ops, np.int64)
    np.minimum.at(min_rank, labels, graph.topo_rank.astype(np.int64))
    present = min_rank < graph.n_ops
    order = np.argsort(min_rank, kind="stable")[: int(present.sum())]
    new_id = np.full(k, -1, np.int64)
    new_id[order] = np.arange(order.size)
    group = new_id[labels].astype(np.int32)
    n_groups = int(order.size)
    leader = graph.topo_order[min_rank[order]].astype(np.int32)
    by_topo = graph.topo_order.astype(np.int64)
    members = by_topo[np.argsort(group[by_topo], kind="stable")].astype(np.int32)
    members_ptr = np.zeros(n_groups + 1, np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=members_ptr[1:])
    return _frozen_plan(group, n_groups, leader, members_ptr, members, copy=False)


def _frozen_plan(
    group: Any, n_groups: int, leader: Any, members_ptr: Any, members: Any, copy: bool = True
) -> FusionPlan:
    """A `FusionPlan` holding read-only views of arrays it owns: a view of a read-only array
    cannot be made writable again. ``copy=False`` when the arrays are fresh ones that nothing
    else holds (as `_plan` builds them); unpickling copies."""

    def frozen(arr: Any, dtype: Any) -> Any:
        own = np.array(arr, dtype=dtype, order="C") if copy else arr
        own.setflags(write=False)
        return own.view()

    return FusionPlan(
        frozen(group, np.int32),
        int(n_groups),
        frozen(leader, np.int32),
        frozen(members_ptr, np.int64),
        frozen(members, np.int32),
    )


def fuse(graph: OpGraph, decision: ArrayLike, placement: ArrayLike | None = None) -> FusionPlan:
    """Turn per-op fusion decisions into legal fused groups (see the module docstring).

    Args:
        graph: the graph.
        decision: (n_ops,) non-negative integers; 0 = do not fuse, higher = fuse first.
        placement: optional (n_ops,) device per op; when given, no group spans devices.
            `simulate` always passes its placement.

    Returns:
        The `FusionPlan`; ops that were not merged are groups of one.

    Raises:
        ValueError: naming the bad entry of ``decision`` or ``placement``.
    """
    if not isinstance(graph, OpGraph):
        raise ValueError(f"graph must be a go_gym OpGraph, got {type(graph).__name__}")
    dec = check_decision(graph, decision)
    if placement is None:
        dev = np.zeros(graph.n_ops, np.int64)
    else:
        dev = check_placement(graph, None, placement)
    role = np.where(dec > 0, _ROLE[graph.op_kind], int(FusionRole.NEVER)).astype(np.int64)
    rank = graph.topo_rank.astype(np.int64)
    fusable = np.flatnonzero(role != int(FusionRole.NEVER))
    # Consumers by (-decision, rank); each one's producer edges by (-decision[u], rank[u]).
    visit = fusable[np.lexsort((rank[fusable], -dec[fusable]))].astype(np.int64)
    pred = graph.pred.astype(np.int64)
    owner = np.repeat(np.arange(graph.n_ops), np.diff(graph.pred_ptr))
    pred_order = np.lexsort((rank[pred], -dec[pred], owner)).astype(np.int64)
    labels = _fuse_kernel(
        visit,
        graph.pred_ptr,
        pred[pred_order],
        role,
        dev,
        np.diff(graph.pred_ptr).astype(np.int64),
        np.diff(graph.succ_ptr).astype(np.int64),
    )
    return _plan(graph, labels)


@numba.njit(cache=True)
def _find(parent: Any, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True)
def _fuse_kernel(visit, pred_ptr, pred_sorted, role, dev, indeg, outdeg):  # type: ignore[no-untyped-def]
    """Greedy union-find pass; returns a group label per op (the union-find root)."""
    n = role.shape[0]
    parent = np.arange(n)
    heavy = role == 2
    root_op = np.arange(n)  # op every member is reachable from, or -1
    ext_in = indeg.copy()
    ext_out = outdeg.copy()
    for i in range(visit.shape[0]):
        v = visit[i]
        for q in range(pred_ptr[v], pred_ptr[v + 1]):
            u = pred_sorted[q]
            if role[u] == 0 or dev[u] != dev[v]:
                continue
            a = _find(parent, u)
            b = _find(parent, v)
            if a == b or heavy[b]:
                continue
            if heavy[a] and root_op[b] != v:
                continue
            if ext_out[a] != 1 and ext_in[b] != 1:
                continue
            parent[b] = a
            ext_out[a] = ext_out[a] + ext_out[b] - 1
            ext_in[a] = ext_in[a] + ext_in[b] - 1
            if not (root_op[a] >= 0 and root_op[b] == v):
                root_op[a] = -1
    labels = np.empty(n, np.int64)
    for i in range(n):
        labels[i] = _find(parent, i)
    return labels
