"""Fusion decisions: which ops `go_gym.sim.fuse` may merge with their producers.

Every fuser has the signature ``(graph, cluster, placement=None, *, levels=2) -> (n_ops,)
int64`` with values in ``0 .. levels-1`` and is listed in `FUSERS`. The decision contract is
`go_gym.sim.fuse`'s: 0 = do not fuse the op, a positive value is its fusion priority (higher
fuses first); an edge ``u -> v`` can only be fused when both ends are positive, and `fuse`
enforces the kind, device and acyclicity rules itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph
from go_gym.opkinds import FUSION_ROLE, N_OP_KINDS, FusionRole, OpKind

__all__ = ["FUSERS", "fusion_none", "fusion_xla_greedy"]

_FUSIBLE = np.array([FUSION_ROLE[OpKind(i)] != FusionRole.NEVER for i in range(N_OP_KINDS)])


def fusion_none(
    graph: OpGraph, cluster: Cluster, placement: ArrayLike | None = None, *, levels: int = 2
) -> NDArray[np.int64]:
    """No fusion: every op its own kernel (TensorFlow without XLA)."""
    del cluster, placement, levels
    return np.zeros(graph.n_ops, np.int64)


def fusion_xla_greedy(
    graph: OpGraph, cluster: Cluster, placement: ArrayLike | None = None, *, levels: int = 2
) -> NDArray[np.int64]:
    """XLA-style greedy producer-consumer fusion.

    Every op whose kind can fuse (LIGHT elementwise-like ops and HEAVY matmul/convolution/
    attention ops; see `go_gym.opkinds.FusionRole`) gets a positive decision, so `fuse` grows
    elementwise chains and attaches them to their heavy producers as epilogues wherever the
    rules allow, as XLA's ``InstructionFusion`` pass does. With ``levels > 2`` the priority
    rises with topological rank, so consumers nearer the end of the graph are visited first:
    XLA walks the computation in reverse post order, fusing each instruction's operands into
    it. With ``levels=2`` (a yes/no decision) all fusible ops get 1 and `fuse` visits them in
    topological order. The placement is not needed (`fuse` refuses cross-device merges).

    Args:
        graph: The graph.
        cluster: Unused.
        placement: Unused (taken for a uniform signature).
        levels: Number of decision values (>= 2).
    """
    del cluster, placement
    if levels < 2:
        raise ValueError(f"fusion needs at least 2 decision levels, got {levels}")
    fusible = _FUSIBLE[graph.op_kind]
    n = max(graph.n_ops, 1)
    prio = 1 + graph.topo_rank.astype(np.int64) * (int(levels) - 1) // n
    return np.where(fusible, prio, 0).astype(np.int64)


#: Every fusion baseline by name.
FUSERS: dict[str, Callable[..., NDArray[np.int64]]] = {
    "no-fusion": fusion_none,
    "xla-greedy": fusion_xla_greedy,
}
