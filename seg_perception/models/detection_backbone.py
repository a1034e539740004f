"""Shared parts of the detection models (``mask_rcnn``, ``panoptic_fpn``): a randomly initialised ResNet with a
feature pyramid, and the normalisation layers every part of those models uses.

Nothing here is pretrained (no weights can be downloaded), so no layer is torchvision's FrozenBatchNorm2d: ``norm``
is ``"group"`` (GroupNorm, 32 groups; independent of the batch size, the choice for training from scratch with
small batches, He et al. 2019) or ``"batch"`` (BatchNorm2d that trains; it folds into the convolutions at export).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

RESNET_BUILDERS = {"resnet18": resnet18, "resnet50": resnet50}
"""Backbone names: ``resnet50`` is the paper's, ``resnet18`` the light one for a CPU or a Jetson."""
NORMS = ("group", "batch")
FPN_LEVELS = ("0", "1", "2", "3")
"""Keys of the pyramid levels P2..P5 (strides 4, 8, 16, 32) in the backbone's output; ``"pool"`` is P6 (stride 64,
max-pooled P5, used by the RPN only)."""
FPN_STRIDES = (4, 8, 16, 32)
SIZE_DIVISOR = 32
"""The backbone's input height and width must be multiples of this (the models pad to it)."""


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` whose ONNX export also runs on an empty batch (the mask head of a frame with zero
    detections). torch's export reshapes (N, C, H, W) to (N, G, -1) and ONNX Runtime's reshape fusion turns any
    explicit (N, G, C/G*H*W) shape back into (0, G, -1), which fails for N = 0 ("cannot be reshaped"). So while
    exporting, group statistics are averages of per-channel statistics (a constant grouped 1x1 convolution: each
    output channel averages its group's C/G channels, weights (C, C/G, 1, 1)): the same numbers, no reshape.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export():
            return super().forward(x)
        group_size = self.num_channels // self.num_groups
        group_average = torch.full((self.num_channels, group_size, 1, 1), 1.0 / group_size).to(x)

        def average(statistic: torch.Tensor) -> torch.Tensor:
            return nn.functional.conv2d(statistic.mean((2, 3), keepdim=True), group_average, groups=self.num_groups)

        centered = x - average(x)
        variance = average(centered.square())
        return centered / torch.sqrt(variance + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


def group_norm(channels: int) -> GroupNorm:
    """GroupNorm with 32 groups (fewer when ``channels`` is not a multiple of 32)."""
    return GroupNorm(math.gcd(32, channels), channels)


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """``"group"`` | ``"batch"`` -> a constructor ``channels -> normalisation module``; ValueError otherwise."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return group_norm if norm == "group" else nn.BatchNorm2d


def resnet_fpn_backbone(backbone: str, norm: str, out_channels: int = 256) -> BackboneWithFPN:
    """ResNet ``backbone`` (random weights, ``norm`` layers everywhere, last norm of each residual block zeroed)
    with an FPN of ``out_channels`` on layer1..layer4 plus a max-pooled P6.

    ``forward``: images (N, 3, H, W), H and W multiples of 32 -> ordered dict of ``out_channels``-channel maps,
    ``"0"``..``"3"`` at strides 4..32 and ``"pool"`` at 64. ValueError for an unknown backbone or norm.
    """
    if backbone not in RESNET_BUILDERS:
        raise ValueError(f"backbone must be one of {sorted(RESNET_BUILDERS)}, got {backbone!r}")
    layer = norm_layer(norm)
    resnet = RESNET_BUILDERS[backbone](weights=None, norm_layer=layer, zero_init_residual=True)
    expansion = resnet.layer1[0].expansion  # 1 for BasicBlock (resnet18), 4 for Bottleneck (resnet50)
    stage_channels = [64 * expansion * 2**stage for stage in range(4)]
    return BackboneWithFPN(
        resnet,
        return_layers={f"layer{stage + 1}": key for stage, key in enumerate(FPN_LEVELS)},
        in_channels_list=stage_channels,
        out_channels=out_channels,
        extra_blocks=LastLevelMaxPool(),
        norm_layer=layer,
    )
