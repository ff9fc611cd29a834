"""Shared graphs and clusters for the agent tests: small instances whose optimum is known."""

from __future__ import annotations

import numpy as np
import pytest

from go_gym.cluster import Cluster
from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind

MM = int(OpKind.MATMUL)


def small_cluster(
    n_devices: int = 2, memory_bytes: float = 1e12, bandwidth: float = 1e9, latency: float = 1e-5
) -> Cluster:
    """Identical devices (1 TFLOP/s, 1 TB/s, no launch overhead) on uniform links."""
    return Cluster.homogeneous(
        "test",
        n_devices,
        peak_flops=1e12,
        mem_bandwidth=1e12,
        memory_bytes=memory_bytes,
        launch_overhead_s=0.0,
        link_bandwidth=bandwidth,
        link_latency_s=latency,
    )


def make_graph(
    name: str,
    n: int,
    edges: list[tuple[int, int]],
    flops: list[float] | float,
    edge_bytes: list[float] | float,
    persistent: list[float] | float = 0.0,
    **kw: object,
) -> OpGraph:
    """A graph of matmul ops with the given edges, flops and tensor sizes."""
    src = [e[0] for e in edges]
    dst = [e[1] for e in edges]
    eb = np.broadcast_to(np.asarray(edge_bytes, float), (len(edges),))
    out = np.zeros(n)
    out[src] = eb
    return OpGraph(
        name=name,
        op_names=[f"op{i}" for i in range(n)],
        op_kind=kw.pop("op_kind", [MM] * n),  # type: ignore[arg-type]
        flops=np.broadcast_to(np.asarray(flops, float), (n,)),
        bytes_written=out,
        persistent_bytes=np.broadcast_to(np.asarray(persistent, float), (n,)),
        edge_src=src,
        edge_dst=dst,
        edge_bytes=eb,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def chain() -> OpGraph:
    """Five heavy ops in a chain with 100 MB tensors: optimum all on one device."""
    return make_graph("chain", 5, [(i, i + 1) for i in range(4)], 1e10, 1e8)


@pytest.fixture
def fork_join() -> OpGraph:
    """A source, two heavy independent branches, a join; 1 KB tensors: branches split."""
    return make_graph("fork-join", 4, [(0, 1), (0, 2), (1, 3), (2, 3)], [1e8, 1e11, 1e11, 1e8], 1e3)


@pytest.fixture
def two_chains() -> OpGraph:
    """Two independent chains of three heavy ops: optimum one chain per device."""
    edges = [(0, 1), (1, 2), (3, 4), (4, 5)]
    return make_graph("two-chains", 6, edges, 1e10, 1e8)
