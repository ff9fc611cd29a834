"""AmoebaNet-A: an evolved ImageNet network of normal and reduction cells (Real et al., 2019).

Real, Aggarwal, Huang and Le, "Regularized Evolution for Image Classifier Architecture Search"
(AAAI 2019, arXiv 1802.01548). The cell genotype is AmoebaNet-A's (the paper's cell figure,
transcribed in DARTS' ``genotypes.py``, Liu et al. 2019); the macro-architecture is the
NASNet/AmoebaNet ImageNet one: a 3x3 stride-2 convolution of 96 filters, two reduction "stem"
cells at F/4 and F/2 filters, then ``N`` normal cells, a reduction cell (2F), ``N`` normal cells,
a reduction cell (4F), ``N`` normal cells, ReLU, global average pooling, dropout and the
classifier. The paper's headline ImageNet model is N=6, F=190 at 331x331 (86.7M parameters);
the cell wiring (1x1 ReLU-conv-BN preprocessing, factorised reduction after a stride change,
separable convolutions applied twice) follows the DARTS re-implementation, so the parameter
count differs slightly (see ``docs/zoo_models.md``). The auxiliary head and drop-path are
omitted.

Module paths: ``stem`` (the first convolution), ``cells.{i}`` in execution order (``cells.0``
and ``cells.1`` are the stem reduction cells), ``head``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from go_gym.zoo.models.spec import ModelSpec, TensorSpec

__all__ = ["NORMAL", "NORMAL_CONCAT", "REDUCE", "REDUCE_CONCAT", "AmoebaNet", "build"]

# Each cell has 5 hidden nodes; node k sums op(a)(state[a]) and op(b)(state[b]). States 0 and
# 1 are the two cell inputs, state 2 + k is node k. Listed as (op, input) pairs, two per node.
NORMAL: tuple[tuple[str, int], ...] = (
    ("avg_pool_3x3", 0),
    ("max_pool_3x3", 1),
    ("sep_conv_3x3", 0),
    ("sep_conv_5x5", 2),
    ("sep_conv_3x3", 0),
    ("avg_pool_3x3", 3),
    ("sep_conv_3x3", 1),
    ("skip_connect", 1),
    ("skip_connect", 0),
    ("avg_pool_3x3", 1),
)
NORMAL_CONCAT: tuple[int, ...] = (4, 5, 6)
REDUCE: tuple[tuple[str, int], ...] = (
    ("avg_pool_3x3", 0),
    ("sep_conv_3x3", 1),
    ("max_pool_3x3", 0),
    ("sep_conv_7x7", 2),
    ("sep_conv_7x7", 0),
    ("avg_pool_3x3", 1),
    ("max_pool_3x3", 0),
    ("max_pool_3x3", 1),
    ("conv_7x1_1x7", 0),
    ("sep_conv_3x3", 5),
)
REDUCE_CONCAT: tuple[int, ...] = (3, 4, 6)


class ReLUConvBN(nn.Module):
    """ReLU, convolution without bias, batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c_in, H, W) -> (B, c_out, H', W')``."""
        return self.bn(self.conv(F.relu(x)))


class SepConv(nn.Module):
    """Depthwise-separable convolution applied twice (ReLU, depthwise, pointwise, BN; x2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.dw1 = nn.Conv2d(c_in, c_in, kernel, stride, pad, groups=c_in, bias=False)
        self.pw1 = nn.Conv2d(c_in, c_in, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.dw2 = nn.Conv2d(c_in, c_in, kernel, 1, pad, groups=c_in, bias=False)
        self.pw2 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``."""
        x = self.bn1(self.pw1(self.dw1(F.relu(x))))
        return self.bn2(self.pw2(self.dw2(F.relu(x))))


class Conv7x1_1x7(nn.Module):
    """ReLU, 1x7 then 7x1 convolution (stride split between them), batch norm."""

    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False)
        self.conv2 = nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c, H, W) -> (B, c, H / stride, W / stride)``."""
        return self.bn(self.conv2(self.conv1(F.relu(x))))


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two stride-2 1x1 convs, one shifted by one.

    The shifted path pads right and bottom first (as TF NASNet does), so odd sizes work.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c_in, H, W) -> (B, c_out, ceil(H / 2), ceil(W / 2))``."""
        x = F.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


class Pool(nn.Module):
    """3x3 average (padding excluded from the count) or max pooling."""

    def __init__(self, kind: str, stride: int) -> None:
        super().__init__()
        self.kind = kind
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same channels, resolution divided by ``stride``."""
        if self.kind == "avg":
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        return F.max_pool2d(x, 3, self.stride, 1)


def make_op(name: str, c: int, stride: int) -> nn.Module:
    """The cell operation ``name`` on ``c`` channels."""
    if name == "avg_pool_3x3":
        return Pool("avg", stride)
    if name == "max_pool_3x3":
        return Pool("max", stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name.startswith("sep_conv_"):
        return SepConv(c, c, int(name[-1]), stride)
    if name == "conv_7x1_1x7":
        return Conv7x1_1x7(c, stride)
    raise ValueError(f"amoebanet: unknown cell op {name!r}")


class Cell(nn.Module):
    """A normal or reduction cell; inputs are the outputs of the two previous cells."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        genotype, concat = (REDUCE, REDUCE_CONCAT) if reduction else (NORMAL, NORMAL_CONCAT)
        self.preprocess0 = (
            FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.inputs = tuple(idx for _, idx in genotype)
        self.concat = concat
        self.ops = nn.ModuleList(
            make_op(name, c, 2 if reduction and idx < 2 else 1) for name, idx in genotype
        )
        self.out_channels = len(concat) * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        """``s0`` from two cells back, ``s1`` from the previous cell -> concatenated nodes."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(self.ops) // 2):
            a, b = 2 * k, 2 * k + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class Head(nn.Module):
    """ReLU, global average pooling, dropout, classifier."""

    def __init__(self, c: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c, H, W) -> (B, classes)``."""
        return self.fc(self.dropout(F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1)))


class Stem(nn.Module):
    """3x3 stride-2 convolution (no padding) and batch norm."""

    def __init__(self, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c_out, 3, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, c_out, (H - 1) / 2, (W - 1) / 2)``."""
        return self.bn(self.conv(x))


class AmoebaNet(nn.Module):
    """AmoebaNet for ImageNet; ``forward(images) -> logits``.

    Args:
        n_normal: ``N``, normal cells per stage (three stages).
        filters: ``F``, the filter count of the first stage's cells.
        num_classes: Output classes.
        stem_filters: Filters of the first convolution.
        dropout: Drop probability before the classifier.
    """

    def __init__(
        self, n_normal: int, filters: int, num_classes: int, stem_filters: int, dropout: float
    ) -> None:
        super().__init__()
        self.stem = Stem(stem_filters)
        plan: list[tuple[int, bool]] = [(filters // 4, True), (filters // 2, True)]
        for stage in range(3):
            if stage > 0:
                plan.append((filters * 2**stage, True))
            plan.extend((filters * 2**stage, False) for _ in range(n_normal))
        cells = []
        c_pp, c_p, reduction_prev = stem_filters, stem_filters, False
        for c, reduction in plan:
            cell = Cell(c_pp, c_p, c, reduction, reduction_prev)
            cells.append(cell)
            c_pp, c_p, reduction_prev = c_p, cell.out_channels, reduction
        self.cells = nn.ModuleList(cells)
        self.head = Head(c_p, num_classes, dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 3, H, W) -> logits (B, classes)``."""
        s0 = s1 = self.stem(images)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)


def build(
    *,
    n_normal: int = 6,
    filters: int = 190,
    batch_size: int = 16,
    image_size: int = 331,
    num_classes: int = 1000,
    stem_filters: int = 96,
    dropout: float = 0.5,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Build an AmoebaNet-A workload; defaults are Real et al.'s N=6, F=190 ImageNet model.

    Args:
        n_normal: ``N``, normal cells per stage.
        filters: ``F``, filters of the first stage (stem cells use F/4 and F/2).
        batch_size: Images per batch.
        image_size: Square input resolution (>= 33 so the last stage keeps a pixel).
        num_classes: Output classes.
        stem_filters: Filters of the first convolution.
        dropout: Drop probability before the classifier.
        device: Where parameters live; ``"meta"`` allocates nothing.
    """
    if n_normal < 1 or filters < 4 or min(batch_size, num_classes, stem_filters) < 1:
        raise ValueError("amoebanet: n_normal >= 1, filters >= 4 and positive sizes required")
    if image_size < 33:
        raise ValueError(f"amoebanet: image_size must be >= 33, got {image_size}")
    with torch.device(device):
        model = AmoebaNet(n_normal, filters, num_classes, stem_filters, dropout)
    model.train()
    config = {
        "n_normal": n_normal,
        "filters": filters,
        "batch_size": batch_size,
        "image_size": image_size,
        "num_classes": num_classes,
        "stem_filters": stem_filters,
        "dropout": dropout,
        "n_cells": len(model.cells),
    }
    images = TensorSpec("images", (batch_size, 3, image_size, image_size))
    labels = TensorSpec("labels", (batch_size,), torch.int64, high=num_classes)
    return ModelSpec("amoebanet", model, (images,), (labels,), _loss, config)


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy."""
    return F.cross_entropy(logits, labels)
