"""The op-kind vocabulary: one stable id per kind of op found in aten training graphs.

Ids are part of the graph file format and of every observation an env emits, so they never
change meaning: new kinds are appended at the end, never inserted or renumbered.

Each kind also carries the facts that the cost model and the fusion rules need (whether it
launches a kernel, how it fuses), so that there is exactly one table to read.
"""

from __future__ import annotations

import enum

import numpy as np
from numpy.typing import NDArray


class OpKind(enum.IntEnum):
    """Kind of an op. The integer value is the stable id stored in graph files."""

    OTHER = 0  #: anything not covered below (counted as a generic kernel)
    INPUT = 1  #: a data input of the step (images, tokens, labels); no kernel
    PARAMETER = 2  #: a trainable tensor (weights); owns persistent bytes; no kernel
    CONSTANT = 3  #: a constant or buffer (position tables, running stats); no kernel
    MATMUL = 4  #: mm, bmm, addmm, linear and their backward matmuls
    CONVOLUTION = 5  #: convolution forward and its input/weight gradients
    ATTENTION = 6  #: a fused attention kernel (scaled dot-product attention)
    ELEMENTWISE = 7  #: pointwise maths: add, mul, relu, sigmoid, tanh, gelu, where, ...
    REDUCTION = 8  #: sum, mean, max, argmax and other reductions over dimensions
    NORMALIZATION = 9  #: batch/layer/group norm forward and backward
    SOFTMAX = 10  #: softmax, log-softmax and their backward
    POOLING = 11  #: max/avg pooling forward and backward
    DATA_MOVEMENT = 12  #: cat, stack, copy, transpose/permute that copy, pad, slice-scatter
    EMBEDDING = 13  #: embedding lookups (row gathers) and their dense backward
    LOSS = 14  #: losses: cross entropy, nll, mse
    OPTIMIZER = 15  #: parameter updates: sgd step, adam moments and step
    RANDOM = 16  #: random number generation (dropout masks)
    COMMUNICATION = 17  #: explicit send/recv/all-reduce ops in imported graphs


#: Kinds that are tensors at rest rather than kernels: they take no time and no launch.
NON_KERNEL_KINDS: frozenset[OpKind] = frozenset({OpKind.INPUT, OpKind.PARAMETER, OpKind.CONSTANT})

_IS_KERNEL = np.array([OpKind(i) not in NON_KERNEL_KINDS for i in range(len(OpKind))])


def is_kernel(op_kind: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Per op: does it launch a kernel (False for inputs, parameters and constants)?"""
    return _IS_KERNEL[op_kind]


class FusionRole(enum.IntEnum):
    """How a kind takes part in fusion (see `go_gym.sim.fuse`).

    - LIGHT ops (elementwise, reductions, data movement, ...) chain with each other.
    - HEAVY ops (matmul, convolution, attention) may absorb LIGHT consumers as an epilogue,
      but two HEAVY ops never share a group.
    - NEVER ops are not fused at all (inputs, parameters, optimizer updates, communication).
    """

    NEVER = 0
    LIGHT = 1
    HEAVY = 2


FUSION_ROLE: dict[OpKind, FusionRole] = {
    OpKind.OTHER: FusionRole.NEVER,
    OpKind.INPUT: FusionRole.NEVER,
    OpKind.PARAMETER: FusionRole.NEVER,
    OpKind.CONSTANT: FusionRole.NEVER,
    OpKind.MATMUL: FusionRole.HEAVY,
    OpKind.CONVOLUTION: FusionRole.HEAVY,
    OpKind.ATTENTION: FusionRole.HEAVY,
    OpKind.ELEMENTWISE: FusionRole.LIGHT,
    OpKind.REDUCTION: FusionRole.LIGHT,
    OpKind.NORMALIZATION: FusionRole.LIGHT,
    OpKind.SOFTMAX: FusionRole.LIGHT,
    OpKind.POOLING: FusionRole.LIGHT,
    OpKind.DATA_MOVEMENT: FusionRole.LIGHT,
    OpKind.EMBEDDING: FusionRole.NEVER,
    OpKind.LOSS: FusionRole.LIGHT,
    OpKind.OPTIMIZER: FusionRole.NEVER,
    OpKind.RANDOM: FusionRole.LIGHT,
    OpKind.COMMUNICATION: FusionRole.NEVER,
}

N_OP_KINDS: int = len(OpKind)


def parse_op_kind(value: str | int | OpKind) -> OpKind:
    """Return the OpKind for a name (case-insensitive, e.g. ``"matmul"``) or an id.

    An id is an integer (Python or NumPy), or a float that is a whole number; a fractional
    float is never truncated to an id, and a bool is not an id.

    Raises:
        ValueError: naming the unknown value and listing the known kinds (also for a value of
            another type, such as None).
    """
    if isinstance(value, OpKind):
        return value
    if isinstance(value, str):
        try:
            return OpKind[value.strip().upper()]
        except KeyError:
            pass
    elif isinstance(value, bool | np.bool_):
        pass
    elif isinstance(value, int | np.integer) or (
        isinstance(value, float | np.floating) and float(value).is_integer()
    ):
        try:
            return OpKind(int(value))
        except ValueError:
            pass
    known = ", ".join(k.name.lower() for k in OpKind)
    raise ValueError(f"unknown op kind {value!r}; known kinds: {known}")
