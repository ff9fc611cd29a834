"""Shared pieces of the heuristics: cost estimates, ranks, colocation groups and memory needs.

Everything here is static with respect to a placement decision and cheap (NumPy or one numba
pass over the topological order), so placers on 80k-op graphs spend their time deciding, not
preparing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from go_gym import opkinds
from go_gym.cluster import Cluster, op_times
from go_gym.graph import OpGraph, downward_rank, upward_rank

__all__ = [
    "colocation_groups",
    "downward_rank",
    "edge_comm_mean",
    "enforce_colocation",
    "is_kernel",
    "link_means",
    "op_resident_bytes",
    "upward_rank",
    "virtual_sources",
]


def is_kernel(graph: OpGraph) -> NDArray[np.bool_]:
    """(n_ops,) True for ops that launch a kernel (not inputs, parameters or constants)."""
    return opkinds.is_kernel(graph.op_kind)


def virtual_sources(graph: OpGraph) -> NDArray[np.bool_]:
    """(n_ops,) non-kernel ops without inputs: parameters, inputs and constants.

    They take no time, so list schedulers do not schedule them: each is placed with the first
    of its consumers that gets placed (TensorFlow colocates a variable with its reader the same
    way), which keeps weights next to the forward op that owns them.
    """
    return ~is_kernel(graph) & (np.diff(graph.pred_ptr) == 0)


def link_means(cluster: Cluster) -> tuple[float, float]:
    """(mean latency in s, mean bandwidth in bytes/s) over all ordered pairs of distinct devices.

    HEFT's "average communication cost" (Topcuoglu et al. 2002, eq. 2) uses these means.
    Returns (0, inf) on a one-device cluster, where nothing is ever sent.
    """
    k = cluster.n_devices
    if k == 1:
        return 0.0, float("inf")
    off = ~np.eye(k, dtype=bool)
    return float(cluster.link_latency_s[off].mean()), float(cluster.link_bandwidth[off].mean())


def edge_comm_mean(graph: OpGraph, cluster: Cluster) -> NDArray[np.float64]:
    """(n_edges,) average time in seconds to send each edge's tensor between two devices."""
    lat, bw = link_means(cluster)
    if cluster.n_devices == 1:
        return np.zeros(graph.n_edges)
    return lat + graph.edge_bytes / bw


def colocation_groups(graph: OpGraph) -> tuple[NDArray[np.int64], int]:
    """Dense colocation group of every op: ops sharing ``graph.colocation >= 0`` share a group,
    every other op is a group of its own. Returns (group (n_ops,), n_groups)."""
    n = graph.n_ops
    col = graph.colocation.astype(np.int64)
    key = np.where(col >= 0, col, -1 - np.arange(n, dtype=np.int64))
    _, group = np.unique(key, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    return group, int(group.max()) + 1 if n else 0


def enforce_colocation(graph: OpGraph, placement: NDArray[np.int64]) -> NDArray[np.int64]:
    """Move every colocation group to the device of its first member in topological order.

    Placers that decide op by op (random, METIS after contraction is exact already) use this
    as a final repair; it is the identity when no op has a colocation group.
    """
    out = np.asarray(placement, dtype=np.int64).copy()
    col = graph.colocation
    if not (col >= 0).any():
        return out
    group, n_groups = colocation_groups(graph)
    first = np.full(n_groups, -1, np.int64)
    for v in graph.topo_order[::-1]:  # last write wins: the first member in topo order
        first[group[v]] = v
    return out[first[group]]


def op_resident_bytes(graph: OpGraph) -> NDArray[np.float64]:
    """(n_ops,) an upper bound on the device memory an op ever holds on the device it runs on.

    Persistent bytes (weights, gradients, optimizer state), scratch memory, and every output
    (the larger of ``bytes_written`` and the bytes of its consumed tensors), as if nothing
    were ever freed. This is the conservative per-op memory the Baechi paper uses for its
    memory-constrained placers (Jeon et al. 2020, section 4: an op's memory stays allocated
    for the whole step), so a placement whose per-device sums fit cannot run out of memory
    in the simulator, whatever the schedule. Received copies of remote tensors are added by
    the placers themselves (they depend on the placement).
    """
    consumed = np.bincount(graph.tensor_op, graph.tensor_bytes, minlength=graph.n_ops)
    return graph.persistent_bytes + graph.temp_bytes + np.maximum(graph.bytes_written, consumed)


def mean_times(graph: OpGraph, cluster: Cluster) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(times (n_ops, n_devices), mean over devices (n_ops,)) of every op, from the cost model."""
    t = op_times(graph, cluster)
    return t, t.mean(axis=1)
