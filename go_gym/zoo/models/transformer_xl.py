"""Transformer-XL: relative-position attention with segment-level memory (Dai et al., 2019).

Dai et al., "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context"
(arXiv 1901.02860), base enwik8 configuration of the official code (``run_enwik8_base.sh``):
d_model 512, 8 heads of 64, inner width 2048, dropout 0.1, segment (``tgt_len``) and memory
(``mem_len``) of 512 tokens, batch 22, a 204-symbol byte vocabulary. The GO paper varies the
depth (2, 4, 8 layers). The byte-level configuration is used rather than WikiText-103's because
its plain softmax is exact; WikiText-103's 267k vocabulary needs the adaptive softmax, whose
per-cluster token selection is data-dependent and cannot be traced shape-statically.

Module paths: ``embedding``, ``layers.{i}`` (``attn`` with the per-layer ``r_w_bias`` /
``r_r_bias`` biases, ``ff``), ``softmax``. The memory is an input tensor (the previous segment's
hidden states, no gradient); the next segment's memory is not computed (it is a cat and a
slice off the training graph's critical path).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from go_gym.zoo.models.rnnlm import lm_loss
from go_gym.zoo.models.spec import ModelSpec, TensorSpec

__all__ = ["TransformerXL", "build", "rel_shift"]


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Shift relative-position scores into absolute alignment (Dai et al., appendix B).

    ``x[i, j]`` holds the score of query ``i`` against relative distance ``klen - 1 - j``; the
    result holds it against key ``j``. Done with pad, reshape and slice, no gather.

    Args:
        x: ``(qlen, klen, batch, heads)`` scores.
    """
    qlen, klen = x.shape[0], x.shape[1]
    zero_pad = x.new_zeros((qlen, 1, *x.shape[2:]))
    padded = torch.cat([zero_pad, x], dim=1).view(klen + 1, qlen, *x.shape[2:])
    return padded[1:].view_as(x)


class RelPartialLearnableMultiHeadAttn(nn.Module):
    """Relative multi-head attention over ``[memory; segment]`` with learnable u, v biases."""

    def __init__(
        self, n_head: int, d_model: int, d_head: int, dropout: float, dropatt: float
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_head = d_head
        self.scale = 1.0 / math.sqrt(d_head)
        self.qkv_net = nn.Linear(d_model, 3 * n_head * d_head, bias=False)
        self.r_net = nn.Linear(d_model, n_head * d_head, bias=False)
        self.o_net = nn.Linear(n_head * d_head, d_model, bias=False)
        self.r_w_bias = nn.Parameter(torch.zeros(n_head, d_head))
        self.r_r_bias = nn.Parameter(torch.zeros(n_head, d_head))
        self.drop = nn.Dropout(dropout)
        self.dropatt = nn.Dropout(dropatt)
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(
        self, w: torch.Tensor, r: torch.Tensor, mem: torch.Tensor, attn_mask: torch.Tensor
    ) -> torch.Tensor:
        """``w (qlen, B, d)``, ``r (klen, d)``, ``mem (mlen, B, d)``, ``attn_mask (qlen, klen)`` bool."""
        qlen, bsz = w.shape[0], w.shape[1]
        cat = torch.cat([mem, w], dim=0)
        klen = cat.shape[0]
        w_heads = self.qkv_net(cat)
        r_head_k = self.r_net(r).view(klen, self.n_head, self.d_head)
        q, k, v = w_heads.chunk(3, dim=-1)
        q = q[-qlen:].reshape(qlen, bsz, self.n_head, self.d_head)
        k = k.reshape(klen, bsz, self.n_head, self.d_head)
        v = v.reshape(klen, bsz, self.n_head, self.d_head)
        ac = torch.einsum("ibnd,jbnd->ijbn", q + self.r_w_bias, k)
        bd = rel_shift(torch.einsum("ibnd,jnd->ijbn", q + self.r_r_bias, r_head_k))
        score = (ac + bd) * self.scale
        score = score.masked_fill(attn_mask[:, :, None, None], float("-inf"))
        prob = self.dropatt(torch.softmax(score, dim=1))
        vec = torch.einsum("ijbn,jbnd->ibnd", prob, v).reshape(qlen, bsz, self.n_head * self.d_head)
        return self.layer_norm(w + self.drop(self.o_net(vec)))


class PositionwiseFF(nn.Module):
    """Post-norm feed-forward block: ``LN(x + drop(W2 drop(relu(W1 x))))``."""

    def __init__(self, d_model: int, d_inner: int, dropout: float) -> None:
        super().__init__()
        self.core = nn.Sequential(
            nn.Linear(d_model, d_inner),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(d_inner, d_model),
            nn.Dropout(dropout),
        )
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., d_model) -> (..., d_model)``."""
        return self.layer_norm(x + self.core(x))


class DecoderLayer(nn.Module):
    """Relative attention then feed-forward."""

    def __init__(
        self, n_head: int, d_model: int, d_head: int, d_inner: int, dropout: float, dropatt: float
    ) -> None:
        super().__init__()
        self.attn = RelPartialLearnableMultiHeadAttn(n_head, d_model, d_head, dropout, dropatt)
        self.ff = PositionwiseFF(d_model, d_inner, dropout)

    def forward(
        self, x: torch.Tensor, r: torch.Tensor, mem: torch.Tensor, attn_mask: torch.Tensor
    ) -> torch.Tensor:
        """See :class:`RelPartialLearnableMultiHeadAttn`."""
        return self.ff(self.attn(x, r, mem, attn_mask))


class Embedding(nn.Module):
    """Token embedding scaled by ``sqrt(d_model)``, plus the sinusoidal relative positions."""

    def __init__(self, vocab_size: int, d_model: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.emb = nn.Embedding(vocab_size, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor, klen: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens (qlen, B) -> (word embeddings (qlen, B, d), position embeddings (klen, d))``."""
        word = self.emb(tokens) * math.sqrt(self.d_model)
        dev = word.device
        inv_freq = 1.0 / (
            10000 ** (torch.arange(0.0, self.d_model, 2.0, device=dev) / self.d_model)
        )
        pos_seq = torch.arange(klen - 1, -1, -1.0, device=dev)
        sinusoid = torch.outer(pos_seq, inv_freq)
        pos = torch.cat([sinusoid.sin(), sinusoid.cos()], dim=-1)
        return self.drop(word), self.drop(pos)


class Softmax(nn.Module):
    """Final dropout and the output projection over the vocabulary."""

    def __init__(self, d_model: int, vocab_size: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(qlen, B, d) -> (qlen, B, vocab)``."""
        return self.proj(self.drop(x))


class TransformerXL(nn.Module):
    """Transformer-XL language model for one segment; ``forward(tokens, mems) -> logits``.

    Args:
        vocab_size: Symbols in the vocabulary.
        n_layers: Decoder layers.
        d_model: Model width.
        n_head: Attention heads.
        d_head: Width of one head.
        d_inner: Feed-forward width.
        dropout: Drop probability on activations.
        dropatt: Drop probability on attention weights.
    """

    def __init__(
        self,
        vocab_size: int,
        n_layers: int,
        d_model: int,
        n_head: int,
        d_head: int,
        d_inner: int,
        dropout: float,
        dropatt: float,
    ) -> None:
        super().__init__()
        self.embedding = Embedding(vocab_size, d_model, dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(n_head, d_model, d_head, d_inner, dropout, dropatt)
            for _ in range(n_layers)
        )
        self.softmax = Softmax(d_model, vocab_size, dropout)

    def forward(self, tokens: torch.Tensor, mems: torch.Tensor) -> torch.Tensor:
        """``tokens (qlen, B) int64``, ``mems (n_layers, mlen, B, d)`` -> ``logits (qlen, B, vocab)``.

        ``mems[i]`` is the input of layer ``i`` over the previous segment.
        """
        qlen, mlen = tokens.shape[0], mems.shape[1]
        klen = qlen + mlen
        x, r = self.embedding(tokens, klen)
        # Query i may see memory and segment keys j <= i + mlen.
        ones = torch.ones(qlen, klen, dtype=torch.bool, device=x.device)
        attn_mask = torch.triu(ones, diagonal=1 + mlen)
        mems = mems.detach()
        for i, layer in enumerate(self.layers):
            x = layer(x, r, mems[i], attn_mask)
        return self.softmax(x)


def build(
    n_layers: int = 2,
    *,
    batch_size: int = 22,
    tgt_len: int = 512,
    mem_len: int = 512,
    d_model: int = 512,
    n_head: int = 8,
    d_head: int = 64,
    d_inner: int = 2048,
    vocab_size: int = 204,
    dropout: float = 0.1,
    dropatt: float = 0.0,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Build a Transformer-XL workload; defaults are the official enwik8 base model.

    Args:
        n_layers: Decoder layers (the GO paper uses 2, 4 and 8).
        batch_size: Sequences per batch.
        tgt_len: Tokens per segment.
        mem_len: Cached tokens of the previous segment per layer.
        d_model: Model width.
        n_head: Attention heads.
        d_head: Head width.
        d_inner: Feed-forward width.
        vocab_size: Vocabulary size.
        dropout: Drop probability on activations.
        dropatt: Drop probability on attention weights.
        device: Where parameters live; ``"meta"`` allocates nothing.
    """
    if (
        min(n_layers, batch_size, tgt_len, mem_len, d_model, n_head, d_head, d_inner, vocab_size)
        < 1
    ):
        raise ValueError("transformer_xl: every size must be >= 1")
    with torch.device(device):
        model = TransformerXL(
            vocab_size, n_layers, d_model, n_head, d_head, d_inner, dropout, dropatt
        )
    model.train()
    config = {
        "n_layers": n_layers,
        "batch_size": batch_size,
        "tgt_len": tgt_len,
        "mem_len": mem_len,
        "d_model": d_model,
        "n_head": n_head,
        "d_head": d_head,
        "d_inner": d_inner,
        "vocab_size": vocab_size,
        "dropout": dropout,
        "dropatt": dropatt,
    }
    inputs = (
        TensorSpec("tokens", (tgt_len, batch_size), torch.int64, high=vocab_size),
        TensorSpec("mems", (n_layers, mem_len, batch_size, d_model)),
    )
    targets = (TensorSpec("targets", (tgt_len, batch_size), torch.int64, high=vocab_size),)
    return ModelSpec("transformer_xl", model, inputs, targets, lm_loss, config)
