"""An LSTM cell stepped one time step at a time, shared by the RNNLM and GNMT builders.

``nn.LSTM`` runs a whole sequence in one fused kernel, which would hide the per-timestep
structure the placement benchmark is about (the TensorFlow graphs of the GO paper are
statically unrolled). This cell follows TensorFlow's ``BasicLSTMCell``: one kernel over the
concatenation ``[x, h]``, gate order ``i, j, f, o`` and a constant forget-gate bias of 1.0.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMCell(nn.Module):
    """One LSTM step: ``(x, h, c) -> (h', c')``.

    Parameters: ``kernel.weight`` of shape ``(4 * hidden, input + hidden)`` and
    ``kernel.bias`` of shape ``(4 * hidden,)``, i.e. ``4 * hidden * (input + hidden + 1)``
    elements in all.

    Args:
        input_size: Width of ``x``.
        hidden_size: Width of ``h`` and ``c``.
        forget_bias: Added to the forget gate pre-activation (TensorFlow's default 1.0), so
            that an untrained cell keeps its state.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.forget_bias = forget_bias
        self.kernel = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one time step; all tensors are ``(batch, width)``."""
        gates = self.kernel(torch.cat([x, h], dim=-1))
        i, j, f, o = gates.chunk(4, dim=-1)
        c_new = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h_new = torch.tanh(c_new) * torch.sigmoid(o)
        return h_new, c_new
