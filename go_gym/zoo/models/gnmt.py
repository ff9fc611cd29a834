"""GNMT: Google's LSTM encoder-decoder with attention, unrolled over time (Wu et al., 2016).

Wu et al., "Google's Neural Machine Translation System" (arXiv 1609.08144): 8 encoder and 8
decoder LSTM layers of 1024 units, the bottom encoder layer bidirectional, residual
connections from the third layer up, attention from the bottom decoder layer fed to every
decoder layer, a 32k shared wordpiece vocabulary, batches of 128 sentence pairs. The attention
is the normalized Bahdanau form and the "new" GNMT attention wiring of the TensorFlow NMT
tutorial's ``gnmt_v2`` (its WMT GNMT hyper-parameters also give the 50-token length cap used
here, and the 0.2 dropout on LSTM inputs).

Module paths: ``encoder.embedding``, ``encoder.layers.{i}`` (``layers.0`` holds the ``fw`` and
``bw`` cells of the bidirectional layer), ``decoder.embedding``, ``decoder.layers.{i}``,
``decoder.attention`` (``memory_layer`` is applied once to the encoder output, the rest at
every decoder step) and ``decoder.softmax``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from go_gym.zoo.models._lstm import LSTMCell
from go_gym.zoo.models.rnnlm import lm_loss
from go_gym.zoo.models.spec import ModelSpec, TensorSpec

__all__ = ["GNMT", "build"]

#: Wu et al.: "residual connections ... start from the third layer from the bottom".
FIRST_RESIDUAL_LAYER = 2


class BiEncoderLayer(nn.Module):
    """The bidirectional bottom encoder layer; outputs ``[fw; bw]`` of width ``2 * hidden``."""

    def __init__(self, input_size: int, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout)
        self.fw = LSTMCell(input_size, hidden_size)
        self.bw = LSTMCell(input_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, input) -> (batch, seq, 2 * hidden)``."""
        batch, seq_len = x.shape[0], x.shape[1]
        x = self.dropout(x)
        zeros = x.new_zeros(batch, self.hidden_size)
        h, c = zeros, zeros
        fw_out = []
        for t in range(seq_len):
            h, c = self.fw(x[:, t], h, c)
            fw_out.append(h)
        h, c = zeros, zeros
        bw_out: list[torch.Tensor] = [zeros] * seq_len
        for t in reversed(range(seq_len)):
            h, c = self.bw(x[:, t], h, c)
            bw_out[t] = h
        return torch.cat([torch.stack(fw_out, 1), torch.stack(bw_out, 1)], dim=-1)


class EncoderLayer(nn.Module):
    """A unidirectional encoder layer over the whole sequence, residual when ``residual``."""

    def __init__(self, input_size: int, hidden_size: int, dropout: float, residual: bool) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.residual = residual
        self.dropout = nn.Dropout(dropout)
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, input) -> (batch, seq, hidden)``."""
        batch, seq_len = x.shape[0], x.shape[1]
        xd = self.dropout(x)
        h = c = xd.new_zeros(batch, self.hidden_size)
        out = []
        for t in range(seq_len):
            h, c = self.cell(xd[:, t], h, c)
            out.append(h)
        y = torch.stack(out, 1)
        return y + x if self.residual else y


class Encoder(nn.Module):
    """Embedding, one bidirectional layer, then ``n_layers - 1`` unidirectional layers."""

    def __init__(self, vocab_size: int, hidden_size: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        layers: list[nn.Module] = [BiEncoderLayer(hidden_size, hidden_size, dropout)]
        for i in range(1, n_layers):
            width = 2 * hidden_size if i == 1 else hidden_size
            layers.append(EncoderLayer(width, hidden_size, dropout, i >= FIRST_RESIDUAL_LAYER))
        self.layers = nn.ModuleList(layers)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        """``src (batch, src_len) -> memory (batch, src_len, hidden)``."""
        x = self.embedding(src)
        for layer in self.layers:
            x = layer(x)
        return x


class NormalizedBahdanauAttention(nn.Module):
    """Additive attention with a weight-normalised score vector (GNMT's ``normed_bahdanau``).

    ``score_s = g * v / ||v|| . tanh(W_k m_s + W_q q + b)``; the context is the softmax-weighted
    sum of the encoder outputs ``m_s``. Keys ``W_k m`` are computed once per sentence by
    ``memory_layer``; the rest runs at every decoder step.
    """

    def __init__(self, query_size: int, memory_size: int, num_units: int) -> None:
        super().__init__()
        self.memory_layer = nn.Linear(memory_size, num_units, bias=False)
        self.query_layer = nn.Linear(query_size, num_units, bias=False)
        self.v = nn.Parameter(torch.empty(num_units).uniform_(-0.1, 0.1))
        self.g = nn.Parameter(torch.full((), math.sqrt(1.0 / num_units)))
        self.b = nn.Parameter(torch.zeros(num_units))

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor
    ) -> torch.Tensor:
        """``query (batch, q)``, ``keys (batch, S, units)``, ``memory (batch, S, m) -> (batch, m)``."""
        q = self.query_layer(query).unsqueeze(1)
        v = self.g * self.v / self.v.norm()
        score = torch.tanh(keys + q + self.b) @ v
        align = torch.softmax(score, dim=-1)
        return torch.bmm(align.unsqueeze(1), memory).squeeze(1)


class DecoderLayer(nn.Module):
    """One decoder layer for one step: input ``[x; context]``, residual on ``x`` if ``residual``."""

    def __init__(self, input_size: int, hidden_size: int, dropout: float, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.dropout = nn.Dropout(dropout)
        self.cell = LSTMCell(input_size + hidden_size, hidden_size)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(output, h', c')``; all ``(batch, width)``."""
        h, c = self.cell(self.dropout(torch.cat([x, context], dim=-1)), h, c)
        return (h + x if self.residual else h), h, c


class Softmax(nn.Module):
    """Vocabulary projection of the top decoder outputs (no bias, as in TF NMT)."""

    def __init__(self, hidden_size: int, vocab_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, vocab_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, hidden) -> (batch, seq, vocab)``."""
        return self.proj(x)


class Decoder(nn.Module):
    """Attention decoder, teacher-forced and unrolled over the target length.

    Step ``t``: layer 0 reads ``[y_t; context_{t-1}]``; its output queries the attention; the
    new context is concatenated to the input of every upper layer (GNMT v2 wiring).
    """

    def __init__(self, vocab_size: int, hidden_size: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.attention = NormalizedBahdanauAttention(hidden_size, hidden_size, hidden_size)
        self.layers = nn.ModuleList(
            DecoderLayer(hidden_size, hidden_size, dropout, i >= FIRST_RESIDUAL_LAYER)
            for i in range(n_layers)
        )
        self.softmax = Softmax(hidden_size, vocab_size)

    def forward(self, tgt_in: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``tgt_in (batch, tgt_len)``, ``memory (batch, S, hidden) -> logits (batch, tgt_len, vocab)``."""
        batch, tgt_len = tgt_in.shape
        y = self.embedding(tgt_in)
        keys = self.attention.memory_layer(memory)
        zeros = y.new_zeros(batch, self.hidden_size)
        hs = [zeros] * len(self.layers)
        cs = [zeros] * len(self.layers)
        context = zeros
        outputs = []
        for t in range(tgt_len):
            x, hs[0], cs[0] = self.layers[0](y[:, t], context, hs[0], cs[0])
            context = self.attention(x, keys, memory)
            for i in range(1, len(self.layers)):
                x, hs[i], cs[i] = self.layers[i](x, context, hs[i], cs[i])
            outputs.append(x)
        return self.softmax(torch.stack(outputs, dim=1))


class GNMT(nn.Module):
    """Encoder-decoder; ``forward(src, tgt_in) -> logits``.

    Args:
        vocab_size: Shared wordpiece vocabulary (separate embedding tables).
        hidden_size: LSTM, embedding and attention width.
        n_layers: Encoder layers (bottom one bidirectional) and decoder layers.
        dropout: Drop probability on LSTM inputs.
    """

    def __init__(self, vocab_size: int, hidden_size: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.encoder = Encoder(vocab_size, hidden_size, n_layers, dropout)
        self.decoder = Decoder(vocab_size, hidden_size, n_layers, dropout)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """``src (batch, src_len)``, ``tgt_in (batch, tgt_len) -> (batch, tgt_len, vocab)``."""
        return self.decoder(tgt_in, self.encoder(src))


def build(
    n_layers: int = 8,
    *,
    batch_size: int = 128,
    src_len: int = 50,
    tgt_len: int = 50,
    hidden_size: int = 1024,
    vocab_size: int = 32_000,
    dropout: float = 0.2,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Build a GNMT workload; defaults are the 8-layer system of Wu et al.

    Args:
        n_layers: Encoder and decoder depth (the GO paper uses 2, 4 and 8); at least 2.
        batch_size: Sentence pairs per batch.
        src_len: Unrolled encoder steps (every sentence padded to this length; no masking).
        tgt_len: Unrolled decoder steps.
        hidden_size: LSTM, embedding and attention width.
        vocab_size: Wordpiece vocabulary size.
        dropout: Drop probability on LSTM inputs.
        device: Where parameters live; ``"meta"`` allocates nothing.
    """
    if n_layers < 2:
        raise ValueError(f"gnmt: n_layers must be >= 2 (bidirectional + one more), got {n_layers}")
    if min(batch_size, src_len, tgt_len, hidden_size, vocab_size) < 1:
        raise ValueError("gnmt: every size must be >= 1")
    with torch.device(device):
        model = GNMT(vocab_size, hidden_size, n_layers, dropout)
    model.train()
    config = {
        "n_layers": n_layers,
        "batch_size": batch_size,
        "src_len": src_len,
        "tgt_len": tgt_len,
        "hidden_size": hidden_size,
        "vocab_size": vocab_size,
        "dropout": dropout,
    }
    inputs = (
        TensorSpec("src", (batch_size, src_len), torch.int64, high=vocab_size),
        TensorSpec("tgt_in", (batch_size, tgt_len), torch.int64, high=vocab_size),
    )
    targets = (TensorSpec("tgt_out", (batch_size, tgt_len), torch.int64, high=vocab_size),)
    return ModelSpec("gnmt", model, inputs, targets, lm_loss, config)
