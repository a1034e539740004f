"""DeepLabV3+ (Chen et al., 2018): dilated backbone, ASPP with image pooling, decoder with a low-level skip."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50, resnet101
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3, _mobilenet_v3_conf
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.ops import Conv2dNormActivation

from seg_perception.labels import NUM_CLASSES

BACKBONES = ("mobilenet_v3_large", "resnet50", "resnet101")
ASPP_CHANNELS = 256
LOW_LEVEL_CHANNELS = 48
DECODER_CHANNELS = 256


def _dilate_mobilenet_v3(configs: list[InvertedResidualConfig], output_stride: int) -> None:
    """Replace the strides that would take ``configs`` past ``output_stride`` by dilation (in place).

    torchvision's ``InvertedResidual`` runs with stride 1 whenever its dilation is > 1; at output stride 16 this gives
    exactly ``mobilenet_v3_large(dilated=True)``.
    """
    stride, dilation = 2, 1  # after the stem
    for config in configs:
        if config.stride > 1:
            if stride * config.stride > output_stride:
                dilation *= config.stride
            else:
                stride *= config.stride
        config.dilation = dilation


def _mobilenet_v3_large_features(output_stride: int) -> tuple[nn.Module, int, int]:
    """MobileNetV3-Large returning {"low": 1/4 features (24 ch), "high": 1/output_stride features (960 ch)}."""
    configs, last_channel = _mobilenet_v3_conf("mobilenet_v3_large")
    _dilate_mobilenet_v3(configs, output_stride)
    features = MobileNetV3(configs, last_channel).features  # [stem, *inverted residual blocks, 1x1 conv]
    stride, low_level_index = 2, 0
    for block_index, config in enumerate(configs, start=1):
        if config.dilation == 1:
            stride *= config.stride
        if stride == 4:
            low_level_index = block_index
    return_layers = {str(low_level_index): "low", str(len(features) - 1): "high"}
    low_channels = configs[low_level_index - 1].out_channels
    high_channels = features[-1].out_channels
    return IntermediateLayerGetter(features, return_layers), low_channels, high_channels


def _resnet_features(name: str, output_stride: int) -> tuple[nn.Module, int, int]:
    """ResNet-50/101 returning {"low": layer1 (1/4, 256 ch), "high": layer4 (1/output_stride, 2048 ch)}."""
    builder = resnet50 if name == "resnet50" else resnet101
    resnet = builder(weights=None, replace_stride_with_dilation=[False, output_stride == 8, True])
    return IntermediateLayerGetter(resnet, {"layer1": "low", "layer4": "high"}), 256, 2048


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ with a torchvision backbone, randomly initialised.

    Args:
        num_classes: output channels.
        backbone: ``"mobilenet_v3_large"``, ``"resnet50"`` or ``"resnet101"``.
        output_stride: 16 or 8 (the last one or two backbone strides become dilations).
        atrous_rates: ASPP 3x3 dilation rates; default (6, 12, 18) at output stride 16, (12, 24, 36) at 8.

    ``forward``: images (N, 3, H, W) -> eval: logits (N, num_classes, H, W); train: ``{"out": logits, "aux": []}``.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        *,
        backbone: str = "mobilenet_v3_large",
        output_stride: int = 16,
        atrous_rates: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"DeepLabV3+ backbone must be one of {list(BACKBONES)}, got {backbone!r}")
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
        if atrous_rates is None:
            atrous_rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        if backbone == "mobilenet_v3_large":
            self.backbone, low_channels, high_channels = _mobilenet_v3_large_features(output_stride)
        else:
            self.backbone, low_channels, high_channels = _resnet_features(backbone, output_stride)
        self.aspp = ASPP(high_channels, atrous_rates, ASPP_CHANNELS)  # 1x1, 3x3 at each rate, image pooling
        self.low_level_reduce = Conv2dNormActivation(low_channels, LOW_LEVEL_CHANNELS, kernel_size=1)
        self.decoder = nn.Sequential(
            Conv2dNormActivation(ASPP_CHANNELS + LOW_LEVEL_CHANNELS, DECODER_CHANNELS, kernel_size=3),
            Conv2dNormActivation(DECODER_CHANNELS, DECODER_CHANNELS, kernel_size=3),
        )
        self.classifier = nn.Conv2d(DECODER_CHANNELS, num_classes, kernel_size=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.backbone(images)
        low_level = self.low_level_reduce(features["low"])
        context = self.aspp(features["high"])
        context = F.interpolate(context, size=low_level.shape[-2:], mode="bilinear", align_corners=False)
        decoded = self.decoder(torch.cat([context, low_level], dim=1))
        logits = self.classifier(decoded)
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return logits if not self.training else {"out": logits, "aux": []}
