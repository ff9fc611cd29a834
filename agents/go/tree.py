"""Placement as device offsets along a maximum spanning tree of the op graph.

Why: the devices of a cluster are identical, so the step time does not change when they are
relabelled, and a policy that picks a device for every op independently gets no first-order
signal for a split until that symmetry is broken. It breaks it by leaning every op the same
way (the collapse onto one device), and from there a split has to be found one op at a time,
where an op that leaves alone only adds a transfer (``agents/go/EXPERIMENTS.md``).

With ``GOConfig(placement_actions="tree")`` the policy picks, for every op, an *offset*
instead: its device is its tree parent's device plus the offset, modulo the number of
devices. The tree is a maximum spanning tree of the (undirected) op graph weighted by the
bytes each edge carries, so offset 0 keeps the heaviest tensors on one device, and a single
non-zero offset moves a whole subtree, a cluster of ops tied together by heavy edges and to
the rest by light ones, in one coherent move. The offsets are relative, so they mean the same
whatever the devices are called: "stay with the parent" or "move k devices on" is a choice
the reward tells apart from the first sample on.

The map from offsets to devices is a bijection (given the decisions of colocated ops, which
follow their group's first member as the env does), so the policy is still a product of
per-node categoricals over its own actions, PPO's log-probabilities are unchanged, and any
placement (a heuristic's, for a warm start) has exactly one offset encoding.

With ``placement_actions="tree-solo"`` a leader has D - 1 more actions, which move the op
without its subtree (`PlacementTree.decode`). The map is then many-to-one; `encode` gives
the encoding by offsets alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.graph import OpGraph

#: Relative weight bonus of an edge inside one layer (a tie-break between equal tensors: an
#: LSTM cell reads its input from the layer below and its state from its own layer, both of
#: the same size; keeping the layer's chain in the tree lets one offset move the layer).
SAME_LAYER_BONUS = 1e-3


@dataclass(frozen=True)
class PlacementTree:
    """A rooted spanning forest over a graph's colocation leaders, and the offset maps.

    Attributes:
        n_devices: D, the devices offsets are taken modulo.
        leader: (n,) the op whose device each op takes (itself, or its colocation group's
            first member), as `go_gym.envs.graph_env` applies it.
        parent: (n,) each leader's tree parent, -1 for a root (one per connected component
            of the leaders' graph) and for non-leaders.
        order: (n_leaders,) leaders with every parent before its children.
    """

    n_devices: int
    leader: NDArray[np.int64]
    parent: NDArray[np.int64]
    order: NDArray[np.int64]

    @classmethod
    def build(cls, graph: OpGraph, leader: ArrayLike, n_devices: int) -> PlacementTree:
        """The maximum spanning tree (Kruskal) of the graph with colocation groups contracted.

        An edge weighs the bytes it carries (summed over the edges between two groups), with
        `SAME_LAYER_BONUS` for edges inside a layer; ties go to the earlier edge. Each
        component is rooted at its first op in topological order.
        """
        if n_devices < 1:
            raise ValueError(f"n_devices must be >= 1, got {n_devices}")
        n = graph.n_ops
        leaders: NDArray[np.int64] = np.asarray(leader, np.int64)
        if leaders.shape != (n,) or (leaders[leaders] != leaders).any():
            raise ValueError("leader must map every op to an op that leads itself")
        src, dst = leaders[graph.edge_src], leaders[graph.edge_dst]
        keep = src != dst
        src, dst = src[keep], dst[keep]
        same_layer = (graph.layer[graph.edge_src] == graph.layer[graph.edge_dst])[keep]
        weight = graph.edge_bytes[keep] * (1.0 + SAME_LAYER_BONUS * same_layer)
        lo, hi = np.minimum(src, dst), np.maximum(src, dst)
        pairs, inverse = np.unique(lo * n + hi, return_inverse=True)
        pair_weight = np.bincount(inverse, weights=weight, minlength=len(pairs))
        first_edge = np.full(len(pairs), len(src), np.int64)
        np.minimum.at(first_edge, inverse, np.arange(len(src)))
        ranked = np.lexsort((first_edge, -pair_weight))
        adjacency = _kruskal(n, pairs[ranked] // n, pairs[ranked] % n)
        parent, order = _root(n, leaders, graph.topo_order.astype(np.int64), adjacency)
        return cls(n_devices=int(n_devices), leader=leaders, parent=parent, order=order)

    @property
    def n_actions(self) -> int:
        """Choices per leader that `decode` reads: D offsets that move the op's subtree, then
        D - 1 that move the op alone (`decode`)."""
        return 2 * self.n_devices - 1

    def decode(self, actions: ArrayLike) -> NDArray[np.int64]:
        """Devices (K, n) of tree actions (K, n), each in ``[0, n_actions)``.

        Action ``k < D`` is an offset that moves the op's subtree: the op takes its parent's
        anchor device plus k (a root: k), and its children count from its device. Action
        ``D - 1 + j`` (j = 1 .. D - 1) moves the op alone: it takes its parent's anchor plus
        j, and its children count from that anchor, as if it had stayed. Every op takes
        its leader's device.

        Why solo moves: an op off the critical path that has its own heavy edges (a
        WaveNet layer's weight-gradient convolution) sits inside the tree, so an offset
        takes its subtree with it; moving it alone took two offsets at once (its own and
        its child's). Offsets alone (``< D``) decode as before.
        """
        offsets: NDArray[np.int64] = np.asarray(actions, np.int64)
        if offsets.ndim != 2 or offsets.shape[1] != len(self.leader):
            raise ValueError(f"actions must be (K, {len(self.leader)}), got {offsets.shape}")
        if offsets.size and not (0 <= offsets.min() and offsets.max() < self.n_actions):
            raise ValueError(
                f"tree actions must be in [0, {self.n_actions}), got values in "
                f"[{offsets.min()}, {offsets.max()}]"
            )
        devices = _decode(offsets, self.parent, self.order, self.n_devices)
        return devices[:, self.leader]

    def balance(self, op_weight: NDArray[np.floating]) -> NDArray[np.float64]:
        """(n,) how evenly moving each leader's subtree splits the work: ``min(f, 1 - f)``,
        where f is the subtree's share of the total ``op_weight`` (n,) (an op's weight counts
        at its leader); 0 for non-leaders (their offsets are ignored) and for roots: a root
        moves its whole component, and moving a graph's main component only renames the
        devices (the zoo graphs' other components are small: together at most 0.2% of the run
        time on go-paper-v0, and 6.5% and 6.8% over 75 and 94 of them on quick-v0's amoebanet
        and inception-v3-b2).

        Why: from one device, a non-zero offset at a leader moves exactly its subtree, so
        the leaders whose subtrees hold a sizeable share of the work are where a split
        starts: on go-paper-v0/rnnlm-8 the expert's layer split is seven such offsets, all
        among the 127 leaders of 10,163 whose balance is at least 0.05.
        """
        op_weight = np.asarray(op_weight, np.float64)
        if op_weight.shape != self.leader.shape:
            raise ValueError(f"op_weight must be ({len(self.leader)},), got {op_weight.shape}")
        n = len(self.leader)  # a weighted count is float64 (numpy's stubs say intp)
        work = np.bincount(self.leader, op_weight, n).astype(np.float64, copy=False)
        total = work.sum()
        if total <= 0:
            return np.zeros(n)
        share = _subtree_sums(work, self.parent, self.order) / total
        return np.where(self.parent >= 0, np.minimum(share, 1.0 - share), 0.0)

    def encode(self, devices: NDArray[np.integer]) -> NDArray[np.int64]:
        """Offsets (K, n) whose `decode` is ``devices`` (K, n) with colocation applied
        (non-leaders get offset 0, which `decode` ignores)."""
        devices = np.asarray(devices, np.int64)
        if devices.ndim != 2 or devices.shape[1] != len(self.leader):
            raise ValueError(f"devices must be (K, {len(self.leader)}), got {devices.shape}")
        placed = devices[:, self.leader]
        offsets = np.zeros_like(placed)
        leaders = self.order
        parents = self.parent[leaders]
        has_parent = parents >= 0
        offsets[:, leaders] = placed[:, leaders]
        offsets[:, leaders[has_parent]] = (
            placed[:, leaders[has_parent]] - placed[:, parents[has_parent]]
        )
        return offsets % self.n_devices


def _kruskal(n: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> list[list[int]]:
    """Adjacency lists of the spanning forest that takes edges (a[i], b[i]) in order,
    skipping any that would close a cycle (union-find with path halving)."""
    root = list(range(n))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    adjacency: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        ru, rv = find(u), find(v)
        if ru != rv:
            root[ru] = rv
            adjacency[u].append(v)
            adjacency[v].append(u)
    return adjacency


def _root(
    n: int, leader: NDArray[np.int64], topo_order: NDArray[np.int64], adjacency: list[list[int]]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Parents and a breadth-first order of the forest, each component rooted at its
    first leader in topological order."""
    parent = np.full(n, -1, np.int64)
    seen = np.zeros(n, bool)
    order: list[int] = []
    for start in topo_order.tolist():
        if leader[start] != start or seen[start]:
            continue
        seen[start] = True
        head = len(order)
        order.append(start)
        while head < len(order):
            u = order[head]
            head += 1
            for v in adjacency[u]:
                if not seen[v]:
                    seen[v] = True
                    parent[v] = u
                    order.append(v)
    return parent, np.array(order, np.int64)


@numba.njit(cache=True)
def _decode(
    actions: NDArray[np.int64], parent: NDArray[np.int64], order: NDArray[np.int64], d: int
) -> NDArray[np.int64]:
    out = np.zeros_like(actions)
    anchor = np.zeros_like(actions)  # the device a node's children count from
    for i in order:
        p = parent[i]
        for k in range(actions.shape[0]):
            base = 0 if p < 0 else anchor[k, p]
            a = actions[k, i]
            if a < d:  # offset: the subtree moves with the op
                out[k, i] = (base + a) % d
                anchor[k, i] = out[k, i]
            else:  # solo: the op moves, its children count from where it was
                out[k, i] = (base + a - d + 1) % d
                anchor[k, i] = base
    return out


@numba.njit(cache=True)
def _subtree_sums(
    value: NDArray[np.float64], parent: NDArray[np.int64], order: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Each node's value plus its descendants' (children come after parents in ``order``)."""
    out = value.copy()
    for j in range(len(order) - 1, -1, -1):
        i = order[j]
        if parent[i] >= 0:
            out[parent[i]] += out[i]
    return out
