"""Generators of simulator test cases shared by the tests in this folder and the benchmark."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from go_gym.cluster import Cluster
from go_gym.generators import random_layered_graph
from go_gym.graph import OpGraph
from go_gym.opkinds import N_OP_KINDS, OpKind


def placeto_case(n: int, seed: int, n_devices: int) -> tuple[dict[str, Any], NDArray[np.int64]]:
    """The issue's Placeto generator: (JSON graph, random placement).

    For each op i in order: ``c = int(exp(U(ln 1, ln 1000)))``, ``b = int(exp(U(ln 1e3,
    ln 4e6)))``, then for i > 0 ``k = integers(1, 4)`` parents from ``integers(max(0, i-50),
    i, size=k)``, de-duplicated and sorted; ops are named ``op{i}``; finally the placement
    ``integers(0, n_devices, size=n)`` from the same generator.
    """
    rng = np.random.default_rng(seed)
    nodes = []
    edges: list[list[int]] = []
    for i in range(n):
        c = int(np.exp(rng.uniform(np.log(1), np.log(1000))))
        b = int(np.exp(rng.uniform(np.log(1e3), np.log(4e6))))
        nodes.append({"id": i, "name": f"op{i}", "compute_us": c, "out_bytes": b})
        if i > 0:
            k = rng.integers(1, 4)
            for p in np.unique(rng.integers(max(0, i - 50), i, size=k)):
                edges.append([int(p), i])
    placement = rng.integers(0, n_devices, size=n)
    return {"name": f"placeto-{n}-s{seed}", "nodes": nodes, "edges": edges}, placement


def placeto_graph(obj: dict[str, Any]) -> OpGraph:
    """The OpGraph of a Placeto JSON graph, built directly (one output of b bytes per op)."""
    nodes = obj["nodes"]
    src = np.array([e[0] for e in obj["edges"]], np.int64)
    dst = np.array([e[1] for e in obj["edges"]], np.int64)
    b = np.array([nd["out_bytes"] for nd in nodes], float)
    return OpGraph(
        name=obj["name"],
        op_names=[nd["name"] for nd in nodes],
        op_kind=np.zeros(len(nodes), np.int64),
        measured_us=[nd["compute_us"] for nd in nodes],
        bytes_written=b,
        edge_src=src,
        edge_dst=dst,
        edge_bytes=b[src] if src.size else np.zeros(0),
    )


def tie_graph(n: int, seed: int) -> OpGraph:
    """A small random DAG built to produce ties: integer µs times (some 0), few byte sizes
    (some 0), several outputs per op, every op kind (so every fusion role appears)."""
    rng = np.random.default_rng(seed)
    src: list[int] = []
    dst: list[int] = []
    out: list[int] = []
    n_out = rng.integers(1, 3, n)
    sizes = rng.choice([0.0, 7600.0, 15200.0, 4000.0], size=(n, 2))
    for v in range(1, n):
        for u in np.unique(rng.integers(max(0, v - 6), v, size=rng.integers(0, 4))):
            src.append(int(u))
            dst.append(v)
            out.append(int(rng.integers(0, n_out[u])))
    s = np.array(src, np.int64)
    o = np.array(out, np.int64)
    written = sizes[np.arange(n), 0] + sizes[np.arange(n), 1] + rng.choice([0.0, 800.0], n)
    return OpGraph(
        name=f"ties-{n}-s{seed}",
        op_names=[f"n{int(x)}" for x in rng.permutation(n)],  # names unrelated to order
        op_kind=rng.integers(0, N_OP_KINDS, n),
        measured_us=rng.integers(0, 4, n).astype(float),
        bytes_written=written,
        persistent_bytes=rng.choice([0.0, 1000.0], n),
        temp_bytes=rng.choice([0.0, 500.0], n),
        edge_src=s,
        edge_dst=np.array(dst, np.int64),
        edge_bytes=sizes[s, o] if s.size else np.zeros(0),
        edge_tensor=o,
    )


def tie_cluster(n_devices: int, memory: float = 1e12) -> Cluster:
    """Links with round figures (1 µs latency, 7600 bytes per µs), so arrivals tie with ends."""
    return Cluster.homogeneous(
        f"ties{n_devices}",
        n_devices,
        peak_flops=1e12,
        mem_bandwidth=1e11,
        memory_bytes=memory,
        launch_overhead_s=1e-6,
        link_bandwidth=7.6e9,
        link_latency_s=1e-6,
    )


def with_parameters(graph: OpGraph, rng: np.random.Generator) -> OpGraph:
    """The same graph with some source ops turned into parameters that own their output (and
    as much again for gradient and optimizer state), as the torch importer makes them."""
    sources = np.flatnonzero(np.diff(graph.pred_ptr) == 0)
    chosen = sources[rng.random(sources.size) < 0.6]
    kind = graph.op_kind.copy()
    kind[chosen] = int(OpKind.PARAMETER)
    persistent = graph.persistent_bytes.copy()
    persistent[chosen] = 2 * graph.bytes_written[chosen]
    return graph.replace(op_kind=kind, persistent_bytes=persistent)


def random_case(seed: int) -> dict[str, Any]:
    """One random small case: graph, cluster, placement, priority, fusion (maybe None)."""
    rng = np.random.default_rng(seed)
    n_dev = int(rng.integers(1, 5))
    if rng.random() < 0.5:
        graph = random_layered_graph(
            int(rng.integers(1, 40)),
            seed,
            width=int(rng.integers(1, 7)),
            max_fan_in=int(rng.integers(1, 4)),
            locality=int(rng.integers(1, 4)),
            heavy_fraction=float(rng.uniform(0, 0.5)),
        )
        cluster = Cluster.preset(str(rng.choice(["p100", "v100", "k80", "h100"])), n_dev)
    else:
        graph = tie_graph(int(rng.integers(1, 30)), seed)
        cluster = tie_cluster(n_dev)
    if rng.random() < 0.5:
        graph = with_parameters(graph, rng)
    # Sometimes a tight memory so that some placements run out of memory.
    if rng.random() < 0.3:
        need = graph.persistent_bytes.sum() + graph.bytes_written.sum() + graph.temp_bytes.sum()
        cap = max(float(need) * rng.uniform(0.05, 0.6), 1.0)
        cluster = Cluster.homogeneous(
            "tight",
            n_dev,
            peak_flops=float(cluster.peak_flops[0]),
            mem_bandwidth=float(cluster.mem_bandwidth[0]),
            memory_bytes=cap,
            launch_overhead_s=float(cluster.launch_overhead_s[0]),
            link_bandwidth=cluster.link_bandwidth,
            link_latency_s=cluster.link_latency_s,
        )
    kind = rng.integers(0, 3)
    if kind == 0:
        placement = rng.integers(0, n_dev, graph.n_ops)
    elif kind == 1:
        placement = np.zeros(graph.n_ops, np.int64)
    else:
        placement = (np.arange(graph.n_ops) * n_dev) // max(graph.n_ops, 1)
    priority = rng.integers(-2, 4, graph.n_ops) if rng.random() < 0.5 else None
    fusion = rng.integers(0, 4, graph.n_ops) if rng.random() < 0.5 else None
    return {
        "graph": graph,
        "cluster": cluster,
        "placement": placement,
        "priority": priority,
        "fusion": fusion,
    }
