"""Building blocks shared by several models of the zoo."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of x (N, C, h, w) to the spatial size of ``like`` (taken from the tensor, ONNX-dynamic)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class SegmentationHead(nn.Sequential):
    """3x3 conv-BN-ReLU, dropout, 1x1 classifier: (N, in_channels, h, w) -> (N, num_classes, h, w)."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__(
            Conv2dNormActivation(in_channels, mid_channels, kernel_size=3),
            nn.Dropout(0.1),
            nn.Conv2d(mid_channels, num_classes, kernel_size=1),
        )
