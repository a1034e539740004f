"""Panoptic FPN (Kirillov et al. 2019): the zoo's Mask R-CNN plus a semantic branch on the same pyramid.

Semantic branch channels (``SEMANTIC_CHANNELS`` = 12): channel c < 11 is stuff train id c (road, sidewalk,
building, wall, fence, pole, traffic light, traffic sign, vegetation, terrain, sky); channel 11 (``THING_CHANNEL``)
is "thing", every pixel of the 8 instance classes. Semantic targets are given as Cityscapes train ids (0..18,
255 ignored) and mapped to these channels inside the model; crowd regions arrive as 255 (the data side sets them),
so they count in no loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

from seg_perception.labels import CLASS_NAMES, IGNORE_TRAIN_ID, NUM_CLASSES, THING_TRAIN_IDS
from seg_perception.models.detection_backbone import FPN_LEVELS, FPN_STRIDES, norm_layer
from seg_perception.models.mask_rcnn import MaskRCNN

STUFF_TRAIN_IDS = tuple(train_id for train_id in range(NUM_CLASSES) if train_id not in THING_TRAIN_IDS)
THING_CHANNEL = len(STUFF_TRAIN_IDS)
SEMANTIC_CHANNELS = THING_CHANNEL + 1
SEMANTIC_CLASS_NAMES = (*(CLASS_NAMES[i] for i in STUFF_TRAIN_IDS), "thing")
"""One name per semantic-branch channel."""
_INVALID = -1


class SemanticFPNHead(nn.Module):
    """The paper's semantic branch: per level P2..P5, 3x3 conv-norm-ReLU blocks each followed by a bilinear 2x
    upsampling until 1/4 scale (one block without upsampling at P2), the levels summed, a 1x1 classifier.

    ``forward``: FPN features ``"0"``..``"3"`` (N, in_channels, H/4, W/4) .. (N, in_channels, H/32, W/32) of a
    padded batch -> logits (N, num_classes, H/4, W/4).
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 128, norm: str = "group") -> None:
        super().__init__()
        layer = norm_layer(norm)
        self.level_heads = nn.ModuleList()
        for stride in FPN_STRIDES:
            blocks: list[nn.Module] = []
            for block in range(max(1, int(math.log2(stride // FPN_STRIDES[0])))):
                blocks.append(Conv2dNormActivation(in_channels if block == 0 else channels, channels, norm_layer=layer))
                if stride > FPN_STRIDES[0]:
                    blocks.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.level_heads.append(nn.Sequential(*blocks))
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        levels = [head(features[key]) for key, head in zip(FPN_LEVELS, self.level_heads, strict=True)]
        return self.classifier(sum(levels[1:], levels[0]))


class PanopticFPN(MaskRCNN):
    """Mask R-CNN (every ``MaskRCNN`` option applies) with a semantic FPN branch of ``semantic_channels`` width.

    ``semantic_loss_weight`` scales ``loss_semantic`` (cross-entropy over the non-ignored pixels, 0 when all are
    ignored); the five Mask R-CNN losses keep weight 1, so the training loss is the sum of the returned dict.

    ``forward(images, targets=None)`` as ``MaskRCNN``, plus:

    * train mode: each target also holds ``semantic`` (H, W) int64 Cityscapes train ids, 255 ignored; the losses
      gain ``loss_semantic`` (already weighted).
    * eval mode: each image's dict also holds ``semantic_logits`` (12, H, W) float32 (channel order: module doc),
      so stacking them gives (N, 12, H, W).
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        *,
        semantic_channels: int = 128,
        semantic_loss_weight: float = 0.5,
        **mask_rcnn_options,
    ) -> None:
        super().__init__(num_classes, **mask_rcnn_options)
        if semantic_loss_weight < 0:
            raise ValueError(f"semantic_loss_weight must be >= 0, got {semantic_loss_weight}")
        self.semantic_head = SemanticFPNHead(
            self.backbone.out_channels, SEMANTIC_CHANNELS, semantic_channels, self.norm_type
        )
        self.semantic_loss_weight = semantic_loss_weight
        lookup = torch.full((256,), _INVALID, dtype=torch.int64)
        lookup[list(STUFF_TRAIN_IDS)] = torch.arange(len(STUFF_TRAIN_IDS))
        lookup[list(THING_TRAIN_IDS)] = THING_CHANNEL
        lookup[IGNORE_TRAIN_ID] = IGNORE_TRAIN_ID
        self.register_buffer("train_id_to_channel", lookup, persistent=False)
        self.register_buffer("valid_train_ids", torch.nonzero(lookup != _INVALID)[:, 0], persistent=False)

    def forward(
        self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        losses, detections, features = self.detect(images, targets)
        height, width = images.shape[-2:]
        logits = F.interpolate(self.semantic_head(features), scale_factor=4, mode="bilinear", align_corners=False)
        logits = logits[..., :height, :width]
        if self.training:
            if any(target["semantic"].shape != (height, width) for target in targets):
                raise ValueError(f"semantic targets must be (H, W) = {(height, width)}")
            semantic = torch.stack([self.semantic_target(target["semantic"]) for target in targets])
            losses["loss_semantic"] = self.semantic_loss_weight * _mean_cross_entropy(logits, semantic)
            return losses
        for detection, image_logits in zip(detections, logits, strict=True):
            detection["semantic_logits"] = image_logits
        return detections

    def semantic_target(self, train_ids: torch.Tensor) -> torch.Tensor:
        """Train ids (any shape, int64, 0..18 or 255) -> semantic-branch channels (same shape, 0..11 or 255);
        ValueError for any other value or dtype."""
        if train_ids.dtype != torch.int64 or not torch.isin(train_ids, self.valid_train_ids).all():
            raise ValueError(f"semantic targets must be int64 train ids in 0..{NUM_CLASSES - 1} or {IGNORE_TRAIN_ID}")
        return self.train_id_to_channel[train_ids]


def _mean_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (N, C, H, W) logits against (N, H, W) classes averaged over non-ignored pixels (0 if none)."""
    total = F.cross_entropy(logits, target, ignore_index=IGNORE_TRAIN_ID, reduction="sum")
    return total / (target != IGNORE_TRAIN_ID).sum().clamp(min=1)
