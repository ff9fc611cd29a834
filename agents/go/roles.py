"""Ops that play the same role in repeated blocks, so one placement choice can move them all.

Why: with tree actions, the moves a good placement needs are often the same move in every
repeated block. On go-paper-v0/rnnlm-8 a run that had put each LSTM layer on its own device
had also moved every layer's weight branch 5 devices away from the rest of its layer; setting
those eight offsets back to 0 at once gives 48.6 ms, the expert's layer split (48.3 ms), but
no single one of them does (``agents/go/EXPERIMENTS.md``). Per-op samples almost never draw eight moves together.
With ``GOConfig(tie_roles=True)`` the ops of one role take one choice: one offset moves the
same subtree in every block.

A role is (op kind, module path with its first integer component replaced by ``*``, rank
among the ops of that kind and module in topological order): ``layers.3.cell`` and
``layers.5.cell`` are the same module path, so the first ``sigmoid`` of one is tied to the
first ``sigmoid`` of the other; ``cells.2.ops.1`` and ``cells.4.ops.1`` tie, ``cells.2.ops.1``
and ``cells.2.ops.3`` do not. Ops with no module path, and colocated ops that follow their
group's leader, keep a role of their own.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from numpy.typing import NDArray

from go_gym.graph import OpGraph

#: A module-path component that is an integer: a block's index in a repeated container.
_BLOCK_INDEX = re.compile(r"(?<![^.])\d+(?![^.])")


def role_groups(graph: OpGraph, leader: NDArray[np.integer]) -> NDArray[np.int64]:
    """(n,) the role of each op, numbered 0.. in order of first appearance in topological
    order (so the first op of a role is its lowest-ranked one)."""
    n = graph.n_ops
    leader = np.asarray(leader, np.int64)
    if leader.shape != (n,):
        raise ValueError(f"leader must have shape ({n},), got {leader.shape}")
    rank: Counter[tuple[int, str]] = Counter()
    ids: dict[tuple[int, str, int], int] = {}
    groups = np.empty(n, np.int64)
    count = 0
    for v in graph.topo_order:
        scope = str(graph.scope[v])
        if leader[v] == v and scope:
            module = (int(graph.op_kind[v]), scope)
            key = (module[0], _BLOCK_INDEX.sub("*", scope, count=1), rank[module])
            rank[module] += 1
            if key in ids:
                groups[v] = ids[key]
                continue
            ids[key] = count
        groups[v] = count
        count += 1
    return groups
