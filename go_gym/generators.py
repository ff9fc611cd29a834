"""Seeded synthetic graphs: layered random DAGs with realistic, heavy-tailed costs.

Used by tests (many small random graphs), scale benchmarks (80k ops) and transfer training.
The same ``(n_ops, seed, ...)`` always gives the same graph, bit for bit.

Real training graphs have a few very expensive ops (matmuls, convolutions) among many cheap
ones, tensors whose sizes span several orders of magnitude, mostly-local connectivity (an op
reads what was computed a few steps before it) and parameters owned by the heavy ops. The
generator draws each of these from log-uniform / log-normal distributions so a sample looks
like that, not like a uniform random DAG.
"""

from __future__ import annotations

import numpy as np

from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind

__all__ = ["random_layered_graph"]

_HEAVY = (OpKind.MATMUL, OpKind.CONVOLUTION)
_LIGHT = (
    OpKind.ELEMENTWISE,
    OpKind.ELEMENTWISE,
    OpKind.ELEMENTWISE,
    OpKind.REDUCTION,
    OpKind.NORMALIZATION,
    OpKind.DATA_MOVEMENT,
    OpKind.SOFTMAX,
)


def random_layered_graph(
    n_ops: int,
    seed: int = 0,
    *,
    width: int = 8,
    max_fan_in: int = 3,
    locality: int = 4,
    heavy_fraction: float = 0.15,
    n_layers: int = 8,
    name: str | None = None,
) -> OpGraph:
    """A random layered DAG of ``n_ops`` ops with heavy-tailed costs and sizes.

    Ops are laid out in levels of about ``width`` ops; each op after the first level reads
    1..``max_fan_in`` tensors from the previous ``locality`` levels (always at least one from
    the level just before it, so depth grows with ``n_ops / width``). About ``heavy_fraction``
    of the ops are matmuls or convolutions with 1e7..1e11 flops and their own parameters; the
    rest are memory-bound ops. Level ``l`` gets layer label ``l * n_layers // n_levels`` and
    scope ``"block{layer}"``, so layer-wise placements work on synthetic graphs too.

    Args:
        n_ops: number of ops (>= 1).
        seed: seed of the NumPy generator; the graph is a pure function of all arguments.
        width: mean ops per level.
        max_fan_in: most inputs an op reads.
        locality: how many levels back an op may read from.
        heavy_fraction: share of matmul/convolution ops.
        n_layers: number of distinct layer labels.
        name: graph name; defaults to ``"synthetic-{n_ops}-s{seed}"``.
    """
    if n_ops < 1:
        raise ValueError(f"n_ops must be >= 1, got {n_ops}")
    if width < 1 or max_fan_in < 1 or locality < 1 or n_layers < 1:
        raise ValueError("width, max_fan_in, locality and n_layers must all be >= 1")
    if not 0.0 <= heavy_fraction <= 1.0:
        raise ValueError(f"heavy_fraction must lie in [0, 1], got {heavy_fraction}")
    rng = np.random.default_rng(seed)

    # Levels of random size around `width`.
    sizes: list[int] = []
    while sum(sizes) < n_ops:
        sizes.append(int(rng.integers(max(1, width // 2), width + width // 2 + 1)))
    sizes[-1] -= sum(sizes) - n_ops
    level = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)])

    heavy = rng.random(n_ops) < heavy_fraction
    kind = np.where(
        heavy,
        rng.choice(np.array(_HEAVY, dtype=np.int16), n_ops),
        rng.choice(np.array(_LIGHT, dtype=np.int16), n_ops),
    ).astype(np.int16)
    kind[: sizes[0]] = OpKind.INPUT
    heavy[: sizes[0]] = False

    # Output sizes: log-uniform 4 KB .. 64 MB, larger for heavy ops.
    out_bytes = np.exp(rng.uniform(np.log(4e3), np.log(6.4e7), n_ops))
    out_bytes = np.round(out_bytes / 4.0) * 4.0
    flops = np.where(
        heavy,
        np.exp(rng.uniform(np.log(1e7), np.log(1e11), n_ops)),
        out_bytes / 4.0 * rng.uniform(1.0, 8.0, n_ops),
    )
    flops[: sizes[0]] = 0.0
    persistent = np.where(heavy, np.exp(rng.uniform(np.log(1e4), np.log(2e8), n_ops)), 0.0)
    persistent = np.round(persistent / 4.0) * 4.0

    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    for lv in range(1, len(sizes)):
        members = np.arange(starts[lv], starts[lv + 1])
        lo = starts[max(0, lv - locality)]
        prev_lo, prev_hi = starts[lv - 1], starts[lv]
        for op in members:
            first = rng.integers(prev_lo, prev_hi)
            extra = rng.integers(lo, prev_hi, size=int(rng.integers(0, max_fan_in)))
            parents = np.unique(np.concatenate([[first], extra]))
            src.append(parents)
            dst.append(np.full(parents.shape, op))
    edge_src = np.concatenate(src) if src else np.zeros(0, np.int64)
    edge_dst = np.concatenate(dst) if dst else np.zeros(0, np.int64)
    edge_bytes = out_bytes[edge_src]

    bytes_read = np.bincount(edge_dst, edge_bytes, minlength=n_ops) + persistent / 3.0
    n_levels = len(sizes)
    layer = (level * n_layers // n_levels).astype(np.int32)
    return OpGraph(
        name=name or f"synthetic-{n_ops}-s{seed}",
        op_names=[f"op{i}" for i in range(n_ops)],
        op_kind=kind,
        flops=flops,
        bytes_read=bytes_read,
        bytes_written=out_bytes,
        persistent_bytes=persistent,
        temp_bytes=np.where(kind == OpKind.CONVOLUTION, out_bytes / 2.0, 0.0),
        scope=[f"block{int(x)}" for x in layer],
        layer=layer,
        edge_src=edge_src,
        edge_dst=edge_dst,
        edge_bytes=edge_bytes,
    )
