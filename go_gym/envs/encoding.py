"""Observation encoding: an `OpGraph` on a `Cluster` as a Dict of fixed-shape arrays.

A graph is encoded once (when an env first sees it); every reset and step returns a copy of
those arrays (Gymnasium requires fresh arrays per call, since users may keep and modify them),
which is a memcpy, not a re-encoding. Indices are int32 to keep that copy small. Padding to ``max_nodes`` / ``max_edges`` (multi-graph
envs) fills with zeros and marks real entries in ``node_mask`` / ``edge_mask``; padded edges
point at node 0 and must be ignored through the mask.

Node features (columns of ``node_features``, all float32 and roughly in [0, 1]):

=====  ======================================================================================
col    meaning
=====  ======================================================================================
0      log1p(flops) / 30
1      log1p(bytes_read) / 30
2      log1p(bytes_written) / 30
3      log1p(persistent_bytes) / 30
4      log1p(temp_bytes) / 30
5      time on the fastest device / critical path length
6      depth / (max depth + 1)
7      topological rank / n_ops
8      log1p(in-degree) / 5
9      log1p(out-degree) / 5
10     layer / (max layer + 1), or -0.1 when the op has no layer label
11     upward rank (longest compute path from the op to any sink, inclusive) / critical path
12     downward rank (longest compute path from any source to the op, exclusive) / c. path
13     1 if the op is on a critical path, else 0
14     1 if the op owns parameters (persistent_bytes > 0), else 0
=====  ======================================================================================

Edge features: [log1p(bytes) / 30, transfer time over the slowest link / critical path].
Device features: [peak FLOP/s / 1e14, memory bandwidth / 1e12, memory / 1e11,
launch overhead / 1e-5]. Graph features: [log1p(n_ops) / 12, log1p(total flops) / 40,
parameter memory / cluster memory, log1p(critical path in µs) / 20, n_devices / 16].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from go_gym.cluster import Cluster, op_times
from go_gym.graph import OpGraph, downward_rank, upward_rank
from go_gym.opkinds import N_OP_KINDS

N_NODE_FEATURES = 15
N_EDGE_FEATURES = 2
N_DEVICE_FEATURES = 4
N_GRAPH_FEATURES = 5


@dataclass(frozen=True)
class EncodedGraph:
    """The encoded arrays of one graph, padded to the env's sizes."""

    observation: dict[str, NDArray]  # the static part of every observation
    n_ops: int
    n_edges: int


def observation_space(
    max_nodes: int, max_edges: int, n_devices: int, extra: dict[str, spaces.Space] | None = None
) -> spaces.Dict:
    """The Dict space of `encode` for the given sizes (plus env-specific extra entries)."""
    inf = np.float32(np.inf)
    entries: dict[str, spaces.Space] = {
        "node_features": spaces.Box(-inf, inf, (max_nodes, N_NODE_FEATURES), np.float32),
        "op_kind": spaces.Box(0, N_OP_KINDS - 1, (max_nodes,), np.int32),
        "edge_index": spaces.Box(0, max(max_nodes - 1, 0), (2, max_edges), np.int32),
        "edge_features": spaces.Box(-inf, inf, (max_edges, N_EDGE_FEATURES), np.float32),
        "device_features": spaces.Box(-inf, inf, (n_devices, N_DEVICE_FEATURES), np.float32),
        "graph_features": spaces.Box(-inf, inf, (N_GRAPH_FEATURES,), np.float32),
        "node_mask": spaces.Box(0, 1, (max_nodes,), np.int8),
        "edge_mask": spaces.Box(0, 1, (max_edges,), np.int8),
    }
    entries.update(extra or {})
    return spaces.Dict(entries)


def encode(graph: OpGraph, cluster: Cluster, max_nodes: int, max_edges: int) -> EncodedGraph:
    """Encode ``graph`` on ``cluster``, padded to ``max_nodes`` ops and ``max_edges`` edges."""
    n, m = graph.n_ops, graph.n_edges
    if n > max_nodes or m > max_edges:
        raise ValueError(
            f"graph {graph.name!r} ({n} ops, {m} edges) does not fit the env's padding "
            f"({max_nodes} ops, {max_edges} edges)"
        )
    times = op_times(graph, cluster)
    fastest = times.min(axis=1)
    up, down = upward_rank(graph, fastest), downward_rank(graph, fastest)
    critical = max(float(up.max()) if n else 0.0, 1e-12)
    indeg = np.diff(graph.pred_ptr).astype(np.float64)
    outdeg = np.diff(graph.succ_ptr).astype(np.float64)
    max_layer = max(int(graph.layer.max()) if n else 0, 0)
    layer = np.where(graph.layer >= 0, graph.layer / (max_layer + 1), -0.1)

    nodes = np.zeros((max_nodes, N_NODE_FEATURES), np.float32)
    nodes[:n] = np.stack(
        [
            np.log1p(graph.flops) / 30,
            np.log1p(graph.bytes_read) / 30,
            np.log1p(graph.bytes_written) / 30,
            np.log1p(graph.persistent_bytes) / 30,
            np.log1p(graph.temp_bytes) / 30,
            fastest / critical,
            graph.depth / (int(graph.depth.max()) + 1 if n else 1),
            graph.topo_rank / max(n, 1),
            np.log1p(indeg) / 5,
            np.log1p(outdeg) / 5,
            layer,
            up / critical,
            down / critical,
            np.isclose(up + down, critical, rtol=1e-9, atol=0.0),
            graph.persistent_bytes > 0,
        ],
        axis=1,
    )
    slowest = np.where(np.eye(cluster.n_devices, dtype=bool), np.inf, cluster.link_bandwidth).min()
    latency = cluster.link_latency_s.max() if cluster.n_devices > 1 else 0.0
    transfer = (
        (latency + graph.edge_bytes / slowest) if np.isfinite(slowest) else 0 * graph.edge_bytes
    )
    edges = np.zeros((max_edges, N_EDGE_FEATURES), np.float32)
    edges[:m, 0] = np.log1p(graph.edge_bytes) / 30
    edges[:m, 1] = transfer / critical
    edge_index = np.zeros((2, max_edges), np.int32)
    edge_index[0, :m] = graph.edge_src
    edge_index[1, :m] = graph.edge_dst
    devices = np.stack(
        [
            cluster.peak_flops / 1e14,
            cluster.mem_bandwidth / 1e12,
            cluster.memory_bytes / 1e11,
            cluster.launch_overhead_s / 1e-5,
        ],
        axis=1,
    ).astype(np.float32)
    graph_features = np.array(
        [
            np.log1p(n) / 12,
            np.log1p(graph.flops.sum()) / 40,
            graph.persistent_bytes.sum() / cluster.memory_bytes.sum(),
            np.log1p(critical * 1e6) / 20,
            cluster.n_devices / 16,
        ],
        np.float32,
    )
    op_kind = np.zeros(max_nodes, np.int32)
    op_kind[:n] = graph.op_kind
    node_mask = np.zeros(max_nodes, np.int8)
    node_mask[:n] = 1
    edge_mask = np.zeros(max_edges, np.int8)
    edge_mask[:m] = 1
    observation: dict[str, NDArray] = {
        "node_features": nodes,
        "op_kind": op_kind,
        "edge_index": edge_index,
        "edge_features": edges,
        "device_features": devices,
        "graph_features": graph_features,
        "node_mask": node_mask,
        "edge_mask": edge_mask,
    }
    for array in observation.values():
        array.setflags(write=False)
    return EncodedGraph(observation=observation, n_ops=n, n_edges=m)
