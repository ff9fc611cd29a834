"""WaveNet: dilated causal convolutions with gated units, residual and skip paths.

van den Oord et al., "WaveNet: A Generative Model for Raw Audio" (arXiv 1609.03499): 8-bit
mu-law audio (256 classes), stacks of dilated causal convolutions with the dilation doubling
per layer and reset per stack, gated activation ``tanh(W_f * x) * sigmoid(W_g * x)``, a 1x1
residual and a 1x1 skip convolution per layer, and an output head ReLU-1x1-ReLU-1x1-softmax over
the summed skips. The paper publishes no channel widths; these are the widely used defaults of
the TensorFlow re-implementation ``ibab/tensorflow-wavenet`` (``wavenet_params.json``): filter
width 2, 32 residual and 32 dilation channels, 512 skip channels, one-hot input, and its
training crop of 100,000 samples at batch 1.

"2 stacks x 18 layers" is read as 18 layers in all, 9 per stack (dilations 1, 2, ..., 256 per
stack), and "4 x 36" likewise as 36 layers with 9 per stack.

Module paths: ``input_conv``, ``layers.{k}`` with ``k`` counting layers across stacks
(stack ``k // layers_per_stack``, dilation ``2 ** (k % layers_per_stack)``), ``head``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from go_gym.zoo.models.spec import ModelSpec, TensorSpec

__all__ = ["CausalConv1d", "WaveNet", "build"]


class CausalConv1d(nn.Module):
    """1-D convolution that only sees the past: left-pad by ``dilation * (kernel - 1)``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        self.left_pad = dilation * (kernel_size - 1)
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c_in, T) -> (B, c_out, T)``; output ``t`` depends on inputs ``<= t`` only."""
        return self.conv(F.pad(x, (self.left_pad, 0)))


class ResidualLayer(nn.Module):
    """Gated dilated layer: returns ``(x + residual_1x1(z), skip_1x1(z))``, ``z`` the gate.

    The last layer of the network has no residual convolution: its residual output would
    feed nothing, so its weights would never receive a gradient.
    """

    def __init__(
        self,
        residual: int,
        dilation_channels: int,
        skip: int,
        kernel_size: int,
        dilation: int,
        has_residual: bool = True,
    ) -> None:
        super().__init__()
        self.dilation = dilation
        self.filter_conv = CausalConv1d(residual, dilation_channels, kernel_size, dilation)
        self.gate_conv = CausalConv1d(residual, dilation_channels, kernel_size, dilation)
        self.residual_conv = nn.Conv1d(dilation_channels, residual, 1) if has_residual else None
        self.skip_conv = nn.Conv1d(dilation_channels, skip, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(B, residual, T) -> ((B, residual, T) or None, (B, skip, T))``."""
        z = torch.tanh(self.filter_conv(x)) * torch.sigmoid(self.gate_conv(x))
        res = None if self.residual_conv is None else x + self.residual_conv(z)
        return res, self.skip_conv(z)


class Head(nn.Module):
    """ReLU, 1x1 conv, ReLU, 1x1 conv to the quantisation classes."""

    def __init__(self, skip: int, classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(skip, skip, 1)
        self.conv2 = nn.Conv1d(skip, classes, 1)

    def forward(self, skips: torch.Tensor) -> torch.Tensor:
        """``(B, skip, T) -> logits (B, classes, T)``."""
        return self.conv2(F.relu(self.conv1(F.relu(skips))))


class WaveNet(nn.Module):
    """WaveNet over one-hot mu-law samples; ``forward(samples) -> logits (B, classes, T)``.

    Args:
        n_stacks: Dilation cycles.
        n_layers: Layers in all (a multiple of ``n_stacks``).
        residual_channels: Width of the residual path.
        dilation_channels: Width of the gated filter and gate.
        skip_channels: Width of the skip path and of the head.
        classes: Quantisation levels (256 for 8-bit mu-law).
        kernel_size: Filter width of the dilated convolutions.
    """

    def __init__(
        self,
        n_stacks: int,
        n_layers: int,
        residual_channels: int,
        dilation_channels: int,
        skip_channels: int,
        classes: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.classes = classes
        per_stack = n_layers // n_stacks
        self.input_conv = CausalConv1d(classes, residual_channels, kernel_size)
        self.layers = nn.ModuleList(
            ResidualLayer(
                residual_channels,
                dilation_channels,
                skip_channels,
                kernel_size,
                2 ** (k % per_stack),
                has_residual=k < n_layers - 1,
            )
            for k in range(n_layers)
        )
        self.head = Head(skip_channels, classes)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """``samples (B, T) int64 in [0, classes)`` -> ``logits (B, classes, T)``.

        Logit ``t`` predicts sample ``t + 1`` from samples ``<= t``.
        """
        levels = torch.arange(self.classes, device=samples.device)
        dtype = self.input_conv.conv.weight.dtype
        one_hot = (samples.unsqueeze(1) == levels.view(1, -1, 1)).to(dtype)
        x = self.input_conv(one_hot)
        skips = None
        for layer in self.layers:
            res, s = layer(x)
            skips = s if skips is None else skips + s
            if res is not None:
                x = res
        return self.head(skips)


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits (B, classes, T)`` against ``targets (B, T)``."""
    return F.cross_entropy(logits, targets)


def build(
    n_stacks: int = 2,
    n_layers: int = 18,
    *,
    batch_size: int = 1,
    seq_len: int = 100_000,
    residual_channels: int = 32,
    dilation_channels: int = 32,
    skip_channels: int = 512,
    classes: int = 256,
    kernel_size: int = 2,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Build a WaveNet workload; defaults are the GO paper's 2-stack 18-layer model.

    Args:
        n_stacks: Dilation cycles.
        n_layers: Layers in all; must be a multiple of ``n_stacks``.
        batch_size: Audio crops per batch.
        seq_len: Samples per crop.
        residual_channels: Residual path width.
        dilation_channels: Gated unit width.
        skip_channels: Skip path and head width.
        classes: Quantisation levels.
        kernel_size: Dilated convolution filter width.
        device: Where parameters live; ``"meta"`` allocates nothing.
    """
    if n_stacks < 1 or n_layers < n_stacks or n_layers % n_stacks:
        raise ValueError(
            f"wavenet: n_layers ({n_layers}) must be a positive multiple of n_stacks ({n_stacks})"
        )
    if min(batch_size, seq_len, residual_channels, dilation_channels, skip_channels) < 1:
        raise ValueError("wavenet: every size must be >= 1")
    if classes < 2 or kernel_size < 1:
        raise ValueError("wavenet: classes >= 2 and kernel_size >= 1 required")
    with torch.device(device):
        model = WaveNet(
            n_stacks,
            n_layers,
            residual_channels,
            dilation_channels,
            skip_channels,
            classes,
            kernel_size,
        )
    model.train()
    per_stack = n_layers // n_stacks
    config = {
        "n_stacks": n_stacks,
        "n_layers": n_layers,
        "layers_per_stack": per_stack,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "residual_channels": residual_channels,
        "dilation_channels": dilation_channels,
        "skip_channels": skip_channels,
        "classes": classes,
        "kernel_size": kernel_size,
        "receptive_field": n_stacks * (kernel_size - 1) * (2**per_stack - 1) + kernel_size,
    }
    samples = TensorSpec("samples", (batch_size, seq_len), torch.int64, high=classes)
    targets = TensorSpec("targets", (batch_size, seq_len), torch.int64, high=classes)
    return ModelSpec("wavenet", model, (samples,), (targets,), _loss, config)
