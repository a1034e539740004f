"""U-Net (Ronneberger et al., 2015) with BatchNorm and padded 3x3 convolutions (output at input resolution)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

from seg_perception.labels import NUM_CLASSES

DEPTH = 4
"""Number of 2x down-sampling steps (the bottleneck is at 1/16)."""


class DoubleConv(nn.Sequential):
    """Two 3x3 conv-BN-ReLU: (N, in_channels, H, W) -> (N, out_channels, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            Conv2dNormActivation(in_channels, out_channels, kernel_size=3),
            Conv2dNormActivation(out_channels, out_channels, kernel_size=3),
        )


class UpBlock(nn.Module):
    """2x up-sampling to the skip's size, concatenation with the skip, DoubleConv.

    (N, in_channels, h, w), skip (N, in_channels // 2, H, W) with H in {2h, 2h + 1} -> (N, in_channels // 2, H, W).
    ``bilinear``: bilinear resize + 1x1 conv-BN-ReLU halving the channels; otherwise a 2x2 stride-2 transposed
    convolution (the original U-Net), zero-padded by one row/column where max-pooling dropped an odd one.
    """

    def __init__(self, in_channels: int, bilinear: bool) -> None:
        super().__init__()
        out_channels = in_channels // 2
        self.bilinear = bilinear
        if bilinear:
            self.reduce = Conv2dNormActivation(in_channels, out_channels, kernel_size=1)
        else:
            self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.bilinear:
            x = self.reduce(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))
        else:
            x = self.up(x)
            x = F.pad(x, [0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2]])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Classic U-Net, depth 4, widths ``base_width * (1, 2, 4, 8, 16)``.

    Args:
        num_classes: output channels.
        base_width: channels of the first level (64 in the paper).
        bilinear: bilinear up-sampling + 1x1 conv instead of transposed convolutions.

    ``forward``: images (N, 3, H, W), any H, W >= 16 -> eval: logits (N, num_classes, H, W);
    train: ``{"out": logits, "aux": []}``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, *, base_width: int = 64, bilinear: bool = False) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        widths = [base_width * 2**level for level in range(DEPTH + 1)]
        self.stem = DoubleConv(3, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[level], widths[level + 1])) for level in range(DEPTH)
        )
        self.up = nn.ModuleList(UpBlock(widths[level + 1], bilinear) for level in reversed(range(DEPTH)))
        self.classifier = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        x = self.stem(images)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            x = up(x, skip)
        logits = self.classifier(x)
        return logits if not self.training else {"out": logits, "aux": []}
