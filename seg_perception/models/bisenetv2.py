"""BiSeNet V2 (Yu et al., IJCV 2021): detail branch, semantic branch, bilateral guided aggregation, booster heads.

Export-friendly: every resize takes its target size from a tensor (no trace-time Python ints), global pooling is
``AdaptiveAvgPool2d(1)``, and the booster heads run in training only. Any H, W >= 32 works: both branches round odd
sizes up in the same way, so the 1/8 and 1/32 features of the two branches always line up.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from seg_perception.labels import NUM_CLASSES
from seg_perception.models.layers import SegmentationHead, upsample_to

EXPANSION = 6
"""Gather-and-expand ratio e of the paper."""
BOOSTER_CHANNELS = 128
"""Hidden width of the booster (auxiliary) heads, as in the authors' code."""


def _conv_bn(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> Conv2dNormActivation:
    """3x3 conv + BN without activation."""
    return Conv2dNormActivation(
        in_channels, out_channels, kernel_size=3, stride=stride, groups=groups, activation_layer=None
    )


def _depthwise_separable(channels: int) -> nn.Sequential:
    """3x3 depthwise conv-BN + 1x1 conv (no BN, no activation), as in the aggregation layer."""
    return nn.Sequential(
        _conv_bn(channels, channels, groups=channels), nn.Conv2d(channels, channels, kernel_size=1, bias=False)
    )


class DetailBranch(nn.Sequential):
    """Wide, shallow branch: stages S1-S3 of 2, 3, 3 conv-BN-ReLU, each starting with stride 2.

    images (N, 3, H, W) -> (N, channels[-1], H/8, W/8).
    """

    def __init__(self, channels: tuple[int, int, int]) -> None:
        layers = []
        in_channels = 3
        for n_convs, out_channels in zip((2, 3, 3), channels, strict=True):
            for index in range(n_convs):
                stride = 2 if index == 0 else 1
                layers.append(Conv2dNormActivation(in_channels, out_channels, kernel_size=3, stride=stride))
                in_channels = out_channels
        super().__init__(*layers)


class StemBlock(nn.Module):
    """Stem: 3x3 stride-2 conv, then [1x1 conv, 3x3 stride-2 conv] || 3x3 max-pool, concat, 3x3 conv.

    (N, 3, H, W) -> (N, channels, H/4, W/4).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = Conv2dNormActivation(3, channels, kernel_size=3, stride=2)
        self.conv_branch = nn.Sequential(
            Conv2dNormActivation(channels, channels // 2, kernel_size=1),
            Conv2dNormActivation(channels // 2, channels, kernel_size=3, stride=2),
        )
        self.pool_branch = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.fuse = Conv2dNormActivation(2 * channels, channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.conv_branch(x), self.pool_branch(x)], dim=1))


class GatherExpand(nn.Module):
    """Gather-and-expand layer (paper Fig. 5b/c).

    stride 1: 3x3 conv-BN-ReLU, 3x3 depthwise conv expanding e times + BN, 1x1 conv + BN, identity shortcut, ReLU.
    stride 2: the depthwise part is a stride-2 expanding depthwise conv-BN then a 3x3 depthwise conv-BN; the shortcut
    is a 3x3 stride-2 depthwise conv-BN + 1x1 conv-BN.
    (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        mid_channels = in_channels * EXPANSION
        layers = [
            Conv2dNormActivation(in_channels, in_channels, kernel_size=3),
            _conv_bn(in_channels, mid_channels, stride=stride, groups=in_channels),
        ]
        if stride == 2:
            layers.append(_conv_bn(mid_channels, mid_channels, groups=mid_channels))
        layers.append(Conv2dNormActivation(mid_channels, out_channels, kernel_size=1, activation_layer=None))
        self.residual = nn.Sequential(*layers)
        if stride == 1:
            if in_channels != out_channels:
                raise ValueError(f"a stride-1 GE layer keeps its width, got {in_channels} -> {out_channels}")
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                _conv_bn(in_channels, in_channels, stride=stride, groups=in_channels),
                Conv2dNormActivation(in_channels, out_channels, kernel_size=1, activation_layer=None),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class ContextEmbedding(nn.Module):
    """CE block: global average pool, BN, 1x1 conv-BN-ReLU, broadcast add, 3x3 conv-BN-ReLU. Keeps (N, C, h, w)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.context = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.BatchNorm2d(channels),
            Conv2dNormActivation(channels, channels, kernel_size=1),
        )
        self.conv = Conv2dNormActivation(channels, channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x + self.context(x))


class SemanticBranch(nn.Module):
    """Narrow, deep branch: stem (1/4), S3 (1/8), S4 (1/16), S5 (1/32: four GE layers + CE).

    images (N, 3, H, W) -> ([stem, S3, S4, S5 before CE] for the booster heads, S5 after CE (N, C5, H/32, W/32)).
    """

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        stem_channels, s3_channels, s4_channels, s5_channels = channels
        self.stem = StemBlock(stem_channels)
        self.stage3 = nn.Sequential(
            GatherExpand(stem_channels, s3_channels, stride=2), GatherExpand(s3_channels, s3_channels, stride=1)
        )
        self.stage4 = nn.Sequential(
            GatherExpand(s3_channels, s4_channels, stride=2), GatherExpand(s4_channels, s4_channels, stride=1)
        )
        self.stage5 = nn.Sequential(
            GatherExpand(s4_channels, s5_channels, stride=2),
            *(GatherExpand(s5_channels, s5_channels, stride=1) for _ in range(3)),
        )
        self.context_embedding = ContextEmbedding(s5_channels)

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        stem = self.stem(images)
        stage3 = self.stage3(stem)
        stage4 = self.stage4(stage3)
        stage5 = self.stage5(stage4)
        return [stem, stage3, stage4, stage5], self.context_embedding(stage5)


class BilateralGuidedAggregation(nn.Module):
    """BGA: each branch gates the other at its own resolution, then the two are summed at 1/8.

    detail (N, C, H/8, W/8), semantic (N, C, H/32, W/32) -> (N, C, H/8, W/8).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.detail_keep = _depthwise_separable(channels)
        self.detail_down = nn.Sequential(
            _conv_bn(channels, channels, stride=2), nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        )
        self.semantic_keep = _depthwise_separable(channels)
        self.semantic_up = _conv_bn(channels, channels)
        self.fuse = Conv2dNormActivation(channels, channels, kernel_size=3)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        detail_gated = self.detail_keep(detail) * torch.sigmoid(upsample_to(self.semantic_up(semantic), detail))
        semantic_gated = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        return self.fuse(detail_gated + upsample_to(semantic_gated, detail))


class BiSeNetV2(nn.Module):
    """BiSeNet V2, randomly initialised. Defaults are the paper's (C1, C2, C3) = (64, 64, 128), lambda = 1/4, e = 6.

    Args:
        num_classes: output channels.
        detail_channels: widths of detail stages S1-S3.
        semantic_channels: widths of the stem and semantic stages S3-S5; the last must equal ``detail_channels[-1]``.
        head_channels: hidden width of the segmentation head (1024 as in the authors' code).
        aux: booster heads on the stem, S3, S4 and S5 (before CE); run in training only.

    ``forward``: images (N, 3, H, W) -> eval: logits (N, num_classes, H, W);
    train: ``{"out": logits, "aux": [stem, S3, S4, S5 booster logits]}``, all at (N, num_classes, H, W)
    (``"aux": []`` without ``aux``).
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        *,
        detail_channels: tuple[int, int, int] = (64, 64, 128),
        semantic_channels: tuple[int, int, int, int] = (16, 32, 64, 128),
        head_channels: int = 1024,
        aux: bool = True,
    ) -> None:
        super().__init__()
        if len(detail_channels) != 3 or len(semantic_channels) != 4:
            raise ValueError(
                f"detail_channels needs 3 widths and semantic_channels 4, got {detail_channels}, {semantic_channels}"
            )
        if semantic_channels[-1] != detail_channels[-1]:
            raise ValueError(
                f"the last semantic width ({semantic_channels[-1]}) must equal the last detail width "
                f"({detail_channels[-1]}) for the aggregation layer"
            )
        self.detail_branch = DetailBranch(detail_channels)
        self.semantic_branch = SemanticBranch(semantic_channels)
        self.aggregation = BilateralGuidedAggregation(detail_channels[-1])
        self.head = SegmentationHead(detail_channels[-1], head_channels, num_classes)
        self.booster_heads = (
            nn.ModuleList(SegmentationHead(channels, BOOSTER_CHANNELS, num_classes) for channels in semantic_channels)
            if aux
            else None
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        detail = self.detail_branch(images)
        booster_inputs, semantic = self.semantic_branch(images)
        logits = upsample_to(self.head(self.aggregation(detail, semantic)), images)
        if not self.training:
            return logits
        aux_logits = []
        if self.booster_heads is not None:
            aux_logits = [
                upsample_to(head(x), images) for head, x in zip(self.booster_heads, booster_inputs, strict=True)
            ]
        return {"out": logits, "aux": aux_logits}
