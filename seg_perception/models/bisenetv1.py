"""BiSeNet (V1, Yu et al., 2018): spatial path + ResNet18 context path with attention refinement, feature fusion."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import Conv2dNormActivation

from seg_perception.labels import NUM_CLASSES
from seg_perception.models.layers import SegmentationHead, upsample_to

CONTEXT_CHANNELS = 128
FUSION_CHANNELS = 256


class AttentionRefinement(nn.Module):
    """ARM: 3x3 conv-BN-ReLU to ``out_channels``, then channel attention (global pool, 1x1 conv, BN, sigmoid).

    (N, in_channels, h, w) -> (N, out_channels, h, w).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv2dNormActivation(in_channels, out_channels, kernel_size=3)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(x)


class ContextPath(nn.Module):
    """ResNet18 with ARMs on its 1/16 and 1/32 features plus global context.

    images (N, 3, H, W) -> (context at 1/8, context at 1/16), both (N, 128, ., .).
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = IntermediateLayerGetter(
            resnet18(weights=None), {"layer2": "stride8", "layer3": "stride16", "layer4": "stride32"}
        )
        self.global_context = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), Conv2dNormActivation(512, CONTEXT_CHANNELS, kernel_size=1)
        )
        self.refine32 = AttentionRefinement(512, CONTEXT_CHANNELS)
        self.refine16 = AttentionRefinement(256, CONTEXT_CHANNELS)
        self.smooth32 = Conv2dNormActivation(CONTEXT_CHANNELS, CONTEXT_CHANNELS, kernel_size=3)
        self.smooth16 = Conv2dNormActivation(CONTEXT_CHANNELS, CONTEXT_CHANNELS, kernel_size=3)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(images)
        stride32 = self.refine32(features["stride32"]) + self.global_context(features["stride32"])
        context16 = self.smooth32(upsample_to(stride32, features["stride16"]))
        stride16 = self.refine16(features["stride16"]) + context16
        context8 = self.smooth16(upsample_to(stride16, features["stride8"]))
        return context8, context16


class FeatureFusion(nn.Module):
    """FFM: concat, 1x1 conv-BN-ReLU, SE-style channel attention added back (x + x * attention).

    spatial (N, Cs, h, w), context (N, Cc, h, w) -> (N, out_channels, h, w).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = Conv2dNormActivation(in_channels, out_channels, kernel_size=1)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.fuse(torch.cat([spatial, context], dim=1))
        return x + x * self.attention(x)


class BiSeNetV1(nn.Module):
    """BiSeNet V1 with a ResNet18 context path, randomly initialised.

    Args:
        num_classes: output channels.
        aux: auxiliary heads on the context path's 1/8 and 1/16 outputs; run in training only.

    ``forward``: images (N, 3, H, W) -> eval: logits (N, num_classes, H, W);
    train: ``{"out": logits, "aux": [1/8 context logits, 1/16 context logits]}``, all at (N, num_classes, H, W)
    (``"aux": []`` without ``aux``).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, *, aux: bool = True) -> None:
        super().__init__()
        self.spatial_path = nn.Sequential(  # three stride-2 conv-BN-ReLU: 1/8, 128 channels
            Conv2dNormActivation(3, 64, kernel_size=7, stride=2),
            Conv2dNormActivation(64, 64, kernel_size=3, stride=2),
            Conv2dNormActivation(64, 128, kernel_size=3, stride=2),
        )
        self.context_path = ContextPath()
        self.fusion = FeatureFusion(128 + CONTEXT_CHANNELS, FUSION_CHANNELS)
        self.head = SegmentationHead(FUSION_CHANNELS, FUSION_CHANNELS, num_classes)
        self.aux_heads = (
            nn.ModuleList(SegmentationHead(CONTEXT_CHANNELS, 64, num_classes) for _ in range(2)) if aux else None
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        spatial = self.spatial_path(images)
        context8, context16 = self.context_path(images)
        fused = self.fusion(spatial, context8)  # both 1/8: the two paths round odd sizes up alike
        logits = upsample_to(self.head(fused), images)
        if not self.training:
            return logits
        aux_logits = []
        if self.aux_heads is not None:
            aux_logits = [
                upsample_to(head(x), images) for head, x in zip(self.aux_heads, (context8, context16), strict=True)
            ]
        return {"out": logits, "aux": aux_logits}
