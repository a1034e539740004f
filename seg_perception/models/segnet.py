"""SegNet (Badrinarayanan et al., 2017): VGG16-BN encoder; the decoder unpools with the encoder's pooling indices."""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from seg_perception.labels import NUM_CLASSES

VGG16_STAGES = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))
"""Per encoder stage: (number of 3x3 conv-BN-ReLU, width as a multiple of ``base_width``)."""


def _conv_stack(channels: list[int]) -> nn.Sequential:
    """3x3 conv-BN-ReLU layers through ``channels``: (N, channels[0], H, W) -> (N, channels[-1], H, W)."""
    return nn.Sequential(*(Conv2dNormActivation(c_in, c_out, 3) for c_in, c_out in itertools.pairwise(channels)))


class MaxUnpool2x2(nn.Module):
    """``nn.MaxUnpool2d(2, 2)`` back to the size of the tensor before pooling, exportable to ONNX.

    x (N, C, h, w) and its pooling indices (flat within each H*W plane), ``before_pool`` (N, C, H, W) with
    h = H // 2, w = W // 2 -> (N, C, H, W): each value at its index, zeros elsewhere (an odd H or W keeps its last
    row/column at zero). The legacy ONNX exporter has no symbolic for ``max_unpool2d``, so while exporting the same
    operation is written as a scatter into zeros (ONNX ScatterElements); the ONNX parity test checks that both agree.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor, indices: torch.Tensor, before_pool: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            flat = torch.zeros_like(before_pool).flatten(2).scatter(2, indices.flatten(2), x.flatten(2))
            return flat.view_as(before_pool)
        return self.unpool(x, indices, output_size=before_pool.shape[-2:])


class SegNet(nn.Module):
    """SegNet with a VGG16-BN-shaped encoder (13 conv layers, 5 max-poolings) and a mirrored decoder.

    Args:
        num_classes: output channels.
        base_width: width of the first stage (64 as in VGG16); stages use 1, 2, 4, 8, 8 times it.

    ``forward``: images (N, 3, H, W), any H, W >= 32 -> eval: logits (N, num_classes, H, W);
    train: ``{"out": logits, "aux": []}``. Sizes not divisible by 32 work because every unpooling restores the exact
    size seen before its pooling.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, *, base_width: int = 64) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        widths = [base_width * multiple for _, multiple in VGG16_STAGES]
        in_widths = [3, *widths[:-1]]
        self.encoder = nn.ModuleList(
            _conv_stack([c_in] + [c_out] * n_convs)
            for (n_convs, _), c_in, c_out in zip(VGG16_STAGES, in_widths, widths, strict=True)
        )
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)
        self.unpool = MaxUnpool2x2()
        # Decoder stage k mirrors encoder stage k: same width, its last conv maps to the next shallower width.
        out_widths = [widths[0], *widths[:-1]]
        self.decoder = nn.ModuleList(
            _conv_stack([c] * n_convs + [c_out])
            for (n_convs, _), c, c_out in zip(VGG16_STAGES, widths, out_widths, strict=True)
        )
        self.classifier = nn.Conv2d(widths[0], num_classes, kernel_size=3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        x = images
        pooled = []  # per stage: (tensor before pooling, pooling indices)
        for stage in self.encoder:
            x = stage(x)
            before_pool = x
            x, indices = self.pool(x)
            pooled.append((before_pool, indices))
        for stage, (before_pool, indices) in zip(reversed(self.decoder), reversed(pooled), strict=True):
            x = stage(self.unpool(x, indices, before_pool))
        logits = self.classifier(x)
        return logits if not self.training else {"out": logits, "aux": []}
