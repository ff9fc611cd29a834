"""RNNLM: a stacked LSTM word language model, unrolled over time (Zaremba et al., 2014).

Zaremba, Sutskever and Vinyals, "Recurrent Neural Network Regularization" (arXiv 1409.2329),
"large" Penn Treebank model: hidden and embedding size 1500, 35 unrolled steps, batch 20,
10,000-word vocabulary, dropout 0.65 on the non-recurrent connections. The GO paper (like
ColocRL and HDP before it) varies only the depth: 2, 4 and 8 layers.

Module paths: ``embedding``, ``layers.{i}`` (one LSTM layer; its ``cell`` is called once per
time step), ``softmax`` (dropout and the output projection).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from go_gym.zoo.models._lstm import LSTMCell
from go_gym.zoo.models.spec import ModelSpec, TensorSpec

__all__ = ["RNNLM", "build"]


class LSTMLayer(nn.Module):
    """One layer of the stack for one time step: dropout on the input, then the cell."""

    def __init__(self, input_size: int, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, input) x2 states -> (h', c')``."""
        return self.cell(self.dropout(x), h, c)


class Softmax(nn.Module):
    """Dropout on the top layer's output, then the vocabulary projection (logits)."""

    def __init__(self, hidden_size: int, vocab_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, hidden) -> (batch, seq, vocab)``."""
        return self.proj(self.dropout(x))


class RNNLM(nn.Module):
    """Stacked LSTM language model, unrolled time-major like a static TensorFlow graph.

    At each time step every layer runs once (layer ``i`` at step ``t`` depends on layer
    ``i - 1`` at step ``t`` and on itself at step ``t - 1``), exactly the wavefront that
    layer-per-GPU placements pipeline. The initial state is zero (the truncated-BPTT state
    carried between batches only changes values, not the graph).

    Args:
        vocab_size: Words in the vocabulary.
        hidden_size: LSTM width, also the embedding width.
        n_layers: Depth of the stack.
        seq_len: Number of unrolled time steps.
        dropout: Drop probability on non-recurrent connections.
    """

    def __init__(
        self, vocab_size: int, hidden_size: int, n_layers: int, seq_len: int, dropout: float
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.seq_len = seq_len
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList(
            LSTMLayer(hidden_size, hidden_size, dropout) for _ in range(n_layers)
        )
        self.softmax = Softmax(hidden_size, vocab_size, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens (batch, seq) int64 -> logits (batch, seq, vocab)``."""
        emb = self.embedding(tokens)
        batch = tokens.shape[0]
        hs = [emb.new_zeros(batch, self.hidden_size) for _ in self.layers]
        cs = [emb.new_zeros(batch, self.hidden_size) for _ in self.layers]
        outputs = []
        for t in range(self.seq_len):
            x = emb[:, t]
            for i, layer in enumerate(self.layers):
                hs[i], cs[i] = layer(x, hs[i], cs[i])
                x = hs[i]
            outputs.append(x)
        return self.softmax(torch.stack(outputs, dim=1))


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy; ``logits (..., vocab)``, ``targets (...)``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def build(
    n_layers: int = 2,
    *,
    batch_size: int = 20,
    seq_len: int = 35,
    hidden_size: int = 1500,
    vocab_size: int = 10_000,
    dropout: float = 0.65,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Build an RNNLM workload; defaults are Zaremba et al.'s large PTB model.

    Args:
        n_layers: LSTM layers (the GO paper uses 2, 4 and 8).
        batch_size: Sequences per batch.
        seq_len: Unrolled time steps.
        hidden_size: LSTM and embedding width.
        vocab_size: Vocabulary size.
        dropout: Drop probability on non-recurrent connections.
        device: Where parameters live; ``"meta"`` allocates nothing.
    """
    if min(n_layers, batch_size, seq_len, hidden_size, vocab_size) < 1:
        raise ValueError("rnnlm: every size must be >= 1")
    with torch.device(device):
        model = RNNLM(vocab_size, hidden_size, n_layers, seq_len, dropout)
    model.train()
    config = {
        "n_layers": n_layers,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "hidden_size": hidden_size,
        "vocab_size": vocab_size,
        "dropout": dropout,
    }
    tokens = TensorSpec("tokens", (batch_size, seq_len), torch.int64, high=vocab_size)
    targets = TensorSpec("targets", (batch_size, seq_len), torch.int64, high=vocab_size)
    return ModelSpec("rnnlm", model, (tokens,), (targets,), lm_loss, config)
