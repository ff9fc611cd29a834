"""The record every zoo builder returns, and the scope convention the importer relies on.

Kept apart from ``__init__`` so that the family modules can import it without a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

__all__ = ["ModelSpec", "TensorSpec", "layer_index"]

_INT_COMPONENT = re.compile(r"^\d+$")


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one model input or loss target, enough to fake it without data.

    Attributes:
        name: What the tensor is (``"tokens"``, ``"images"``...), for error messages and docs.
        shape: Full shape, batch included.
        dtype: ``torch.float32`` for continuous data, ``torch.int64`` for ids and labels.
        high: For integer tensors, values are drawn from ``[0, high)`` (vocabulary size, number
            of classes); ``None`` for float tensors.
    """

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    high: int | None = None

    def __post_init__(self) -> None:
        if any(int(d) <= 0 for d in self.shape):
            raise ValueError(
                f"TensorSpec {self.name!r}: every dimension must be > 0, got {self.shape}"
            )
        if self.dtype.is_floating_point == (self.high is not None):
            raise ValueError(
                f"TensorSpec {self.name!r}: `high` must be given for integer dtypes and only for them"
            )

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    def empty(self, device: torch.device | str = "meta") -> torch.Tensor:
        """An uninitialised tensor of this spec; on ``meta`` it allocates nothing."""
        return torch.empty(self.shape, dtype=self.dtype, device=device)

    def sample(
        self, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """A real random tensor: standard normal floats or uniform integers in ``[0, high)``."""
        if self.high is not None:
            t = torch.randint(0, self.high, self.shape, generator=generator, dtype=self.dtype)
        else:
            t = torch.randn(self.shape, generator=generator, dtype=self.dtype)
        return t.to(device)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """One benchmark workload: a plain ``torch.nn`` model plus what one training step feeds it.

    One training step is ``loss = loss_fn(model(*inputs), *targets)`` followed by the backward
    pass (and, in the importer, an optimizer update). Inputs and targets are described by
    ``input_specs`` / ``target_specs`` so an importer can build fake tensors directly
    (``make_fx(..., tracing_mode="fake")``) without allocating the real, sometimes
    gigabyte-sized, batch; :meth:`make_inputs` / :meth:`make_targets` give real tensors for
    small configs and tests.

    Attributes:
        family: Registry key of the builder (``"gnmt"``...).
        model: The module, in training mode. Built on the device the builder was given; pass
            ``device="meta"`` to a builder to get shapes without allocating weights.
        input_specs: Positional inputs of ``model.forward``.
        target_specs: Extra positional arguments of ``loss_fn`` after the model output.
        loss_fn: ``loss_fn(outputs, *targets) -> scalar tensor``; pure (no parameters).
        config: Every hyper-parameter the builder used, read-only.

    Specs compare and hash by identity (``eq=False``): two builds of the same config hold
    different module objects.
    """

    family: str
    model: nn.Module
    input_specs: tuple[TensorSpec, ...]
    target_specs: tuple[TensorSpec, ...]
    loss_fn: Callable[..., torch.Tensor]
    config: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.config, MappingProxyType):
            object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    @property
    def n_inputs(self) -> int:
        """How many leading entries of :meth:`example_inputs` go to ``model.forward``."""
        return len(self.input_specs)

    def make_inputs(
        self, seed: int = 0, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, ...]:
        """Real random model inputs; only sensible for small configs."""
        g = torch.Generator().manual_seed(seed)
        return tuple(s.sample(g, device) for s in self.input_specs)

    def make_targets(
        self, seed: int = 0, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, ...]:
        """Real random loss targets; only sensible for small configs."""
        g = torch.Generator().manual_seed(seed + 1)
        return tuple(s.sample(g, device) for s in self.target_specs)

    def example_inputs(
        self, device: torch.device | str = "meta", seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """Inputs followed by targets, as one tuple (``meta`` tensors by default).

        The first :attr:`n_inputs` entries go to the model, the rest to ``loss_fn``; see
        :meth:`step_loss`.
        """
        if torch.device(device).type == "meta":
            return tuple(s.empty("meta") for s in (*self.input_specs, *self.target_specs))
        return (*self.make_inputs(seed, device), *self.make_targets(seed, device))

    def step_loss(self, model: Callable[..., Any], *example_inputs: torch.Tensor) -> torch.Tensor:
        """The training loss of one step: ``loss_fn(model(*inputs), *targets)``.

        Args:
            model: ``self.model`` or any callable standing in for it (for instance a
                ``torch.func.functional_call`` closure over fake parameters).
            *example_inputs: Inputs then targets, as returned by :meth:`example_inputs`.
        """
        n = self.n_inputs
        if len(example_inputs) != n + len(self.target_specs):
            raise ValueError(
                f"{self.family}: expected {n} inputs + {len(self.target_specs)} targets, "
                f"got {len(example_inputs)} tensors"
            )
        return self.loss_fn(model(*example_inputs[:n]), *example_inputs[n:])

    def parameter_count(self) -> int:
        """Number of trainable parameter elements (tied parameters counted once)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def layer_index(scope: str) -> int | None:
    """Layer index of a module path, by the zoo's naming convention.

    Every zoo model keeps its repeated blocks in an ``nn.ModuleList`` (named ``layers`` or
    ``cells``), so the FIRST purely numeric component of a dotted module path is the index of
    the block the op belongs to: ``"encoder.layers.3.cell.kernel"`` -> 3,
    ``"layers.12.attn.qkv_net"`` -> 12. Paths without a numeric component (embeddings, the
    softmax, heads, stems) return ``None``.

    Args:
        scope: A dotted module path as produced by ``nn.Module.named_modules``; an empty string
            is the root module.
    """
    for part in scope.split("."):
        if _INT_COMPONENT.match(part):
            return int(part)
    return None
