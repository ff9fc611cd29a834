"""Inception-v3 image classifier (Szegedy et al., 2016), written out in plain ``torch.nn``.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision" (arXiv 1512.00567):
299x299 RGB input, 1000 classes, every convolution followed by batch normalisation (eps 0.001)
and ReLU, and the auxiliary classifier on the 17x17 grid used in training with weight 0.4 (as
in TF-slim's training script). The block structure and widths are those of the reference
TF-slim / torchvision implementations, so the parameter count with the auxiliary head and 1000
classes is 27,161,264 (torchvision's figure). Dropout 0.5 before the final classifier (the
paper keeps 0.8 of activations; TF-slim drops 0.2).

Module paths: the trunk is ``layers.{i}`` in execution order (see :data:`LAYER_NAMES` for the
TF-slim name of each index, e.g. ``layers.7`` is ``Mixed_5b``); ``aux_logits`` and ``head`` are
not layered.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from go_gym.zoo.models.spec import ModelSpec, TensorSpec

__all__ = ["LAYER_NAMES", "InceptionV3", "build"]

#: TF-slim end-point name of every entry of ``InceptionV3.layers``.
LAYER_NAMES: tuple[str, ...] = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "MaxPool_3a_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "MaxPool_5a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)
_AUX_AFTER = LAYER_NAMES.index("Mixed_6e")

_Size = int | tuple[int, int]


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: _Size, stride: _Size = 1, padding: _Size = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in, H, W) -> (B, out, H', W')``."""
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_ch: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_ch, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_ch, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four branches along channels."""
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 grid reduction."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_ch, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the strided branches and a max pool."""
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_ch: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_ch, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_ch, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_ch, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four 192-channel branches."""
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(bd))))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 grid reduction."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_ch, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_ch, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the strided branches and a max pool."""
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(b7)))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with expanded (split 1x3 / 3x1) filter banks."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_ch, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate 320 + 768 + 768 + 192 = 2048 channels."""
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b3, bd, bp], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17x768 grid (training-time regulariser)."""

    def __init__(self, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_ch, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 768, 17, 17) -> (B, classes)``."""
        x = F.avg_pool2d(x, 5, stride=3)
        x = self.conv1(self.conv0(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class Head(nn.Module):
    """Global average pool, dropout, fully connected classifier."""

    def __init__(self, in_ch: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, classes)``."""
        return self.fc(self.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1)))


class InceptionV3(nn.Module):
    """Inception-v3; ``forward(images) -> (logits, aux_logits)`` (aux ``None`` when disabled).

    Args:
        num_classes: Output classes.
        aux_logits: Whether to build and run the auxiliary classifier.
        dropout: Drop probability before the final classifier.
    """

    def __init__(self, num_classes: int, aux_logits: bool, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                BasicConv2d(3, 32, 3, stride=2),
                BasicConv2d(32, 32, 3),
                BasicConv2d(32, 64, 3, padding=1),
                nn.MaxPool2d(3, stride=2),
                BasicConv2d(64, 80, 1),
                BasicConv2d(80, 192, 3),
                nn.MaxPool2d(3, stride=2),
                InceptionA(192, pool_features=32),
                InceptionA(256, pool_features=64),
                InceptionA(288, pool_features=64),
                InceptionB(288),
                InceptionC(768, channels_7x7=128),
                InceptionC(768, channels_7x7=160),
                InceptionC(768, channels_7x7=160),
                InceptionC(768, channels_7x7=192),
                InceptionD(768),
                InceptionE(1280),
                InceptionE(2048),
            ]
        )
        self.aux_logits = InceptionAux(768, num_classes) if aux_logits else None
        self.head = Head(2048, num_classes, dropout)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``images (B, 3, H, W)`` with ``H, W >= 75`` (``>= 299`` with the aux head)."""
        aux = None
        x = images
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == _AUX_AFTER and self.aux_logits is not None:
                aux = self.aux_logits(x)
        return self.head(x), aux


#: TF-slim's weight of the auxiliary loss.
AUX_WEIGHT = 0.4


def classification_loss(
    outputs: tuple[torch.Tensor, torch.Tensor | None], labels: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the main logits plus 0.4 times that of the auxiliary logits."""
    logits, aux = outputs
    loss = F.cross_entropy(logits, labels)
    if aux is not None:
        loss = loss + AUX_WEIGHT * F.cross_entropy(aux, labels)
    return loss


def build(
    *,
    batch_size: int = 32,
    image_size: int = 299,
    num_classes: int = 1000,
    aux_logits: bool = True,
    dropout: float = 0.5,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Build an Inception-v3 workload (the GO paper trains it at batch 32 and 64).

    Args:
        batch_size: Images per batch.
        image_size: Square input resolution; at least 75, at least 299 with ``aux_logits``
            (the auxiliary head's 5x5 convolution needs the full 17x17 grid).
        num_classes: Output classes.
        aux_logits: Build and train the auxiliary classifier.
        dropout: Drop probability before the final classifier.
        device: Where parameters live; ``"meta"`` allocates nothing.
    """
    min_size = 299 if aux_logits else 75
    if image_size < min_size:
        raise ValueError(f"inception_v3: image_size must be >= {min_size}, got {image_size}")
    if min(batch_size, num_classes) < 1:
        raise ValueError("inception_v3: batch_size and num_classes must be >= 1")
    with torch.device(device):
        model = InceptionV3(num_classes, aux_logits, dropout)
    model.train()
    config = {
        "batch_size": batch_size,
        "image_size": image_size,
        "num_classes": num_classes,
        "aux_logits": aux_logits,
        "dropout": dropout,
        "layer_names": LAYER_NAMES,
    }
    images = TensorSpec("images", (batch_size, 3, image_size, image_size))
    labels = TensorSpec("labels", (batch_size,), torch.int64, high=num_classes)
    return ModelSpec("inception_v3", model, (images,), (labels,), classification_loss, config)
