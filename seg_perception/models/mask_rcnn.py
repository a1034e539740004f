"""Mask R-CNN (He et al. 2017) on a ResNet-FPN from torchvision's parts (RPN, RoIAlign heads, batched NMS).

Unlike torchvision's ``MaskRCNN`` the model neither resizes nor normalises: it takes a batch that the host already
resized and normalised exactly as for the semantic models, pads it with zeros to a multiple of 32 and keeps every
box and mask in input pixel coordinates. Eval-mode masks stay at the mask head's 28x28 resolution; pasting them into
the image is the host's job (``paste_masks`` in torchvision terms), which keeps the exported graph free of the
per-detection paste loop.

Classes: detection label k in 1..8 is Cityscapes train id ``THING_TRAIN_IDS[k - 1] = 10 + k`` (person, rider, car,
truck, bus, train, motorcycle, bicycle); 0 is background. Crowd (group) regions are not instances: the data side
leaves them out of the targets, so the detector sees them as background (torchvision has no crowd-ignore rule).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead

from seg_perception.labels import NUM_CLASSES, THING_TRAIN_IDS
from seg_perception.models.detection_backbone import FPN_LEVELS, SIZE_DIVISOR, norm_layer, resnet_fpn_backbone

NUM_THING_CLASSES = len(THING_TRAIN_IDS)
"""Detection labels are 1..NUM_THING_CLASSES (0 = background)."""
MASK_SIZE = 28
"""Side of the mask head's output: eval masks are (K, MASK_SIZE, MASK_SIZE)."""
BOX_HEAD_CHANNELS = 1024
ASPECT_RATIOS = (0.5, 1.0, 2.0)


def pad_to_multiple(images: torch.Tensor, divisor: int = SIZE_DIVISOR) -> torch.Tensor:
    """Zero-pad (N, C, H, W) at the bottom and right to the next multiples of ``divisor`` (ONNX-traceable)."""
    height, width = images.shape[-2:]
    return nn.functional.pad(
        images, (0, (divisor - width % divisor) % divisor, 0, (divisor - height % divisor) % divisor)
    )


class MaskRCNN(nn.Module):
    """Mask R-CNN with randomly initialised ``backbone``-FPN, ``norm`` layers in the backbone, FPN and mask head.

    Args:
        num_classes: the label table's train classes; must be 19 (the model detects its 8 thing classes).
        backbone: ``"resnet50"`` (the paper's) or ``"resnet18"`` (light).
        norm: ``"group"`` (GroupNorm) or ``"batch"`` (BatchNorm that trains).
        fpn_channels: channels of every pyramid level and of the RoI features.
        anchor_sizes: one anchor size in pixels per level P2..P6 (three aspect ratios each).
        roi_batch_size_per_image: RoIs sampled per image for the box and mask losses (a quarter positive at most).
        mask_head_channels: width of the mask head's four 3x3 convolutions.
        test_proposals: RPN proposals per image kept after NMS in eval mode.
        score_threshold, detections_per_image: eval-mode filtering after per-class NMS (IoU 0.5).

    ``forward(images, targets=None)``, images (N, 3, H, W) float32, normalised, any H and W:

    * train mode, targets: one dict per image, ``boxes`` (K, 4) float32 xyxy input pixels, ``labels`` (K,) int64
      in 1..8, ``masks`` (K, H, W) uint8 (K may be 0) -> dict of scalar losses ``loss_objectness``,
      ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``, ``loss_mask`` (sum them, weight 1 each).
    * eval mode -> one dict per image: ``boxes`` (K, 4) float32 xyxy input pixels, clipped to the image,
      ``scores`` (K,) float32 descending, ``labels`` (K,) int64 in 1..8, ``masks`` (K, 28, 28) float32
      probabilities of the detection's own class over its box (torchvision's paste convention); K may be 0.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        *,
        backbone: str = "resnet50",
        norm: str = "group",
        fpn_channels: int = 256,
        anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512),
        roi_batch_size_per_image: int = 512,
        mask_head_channels: int = 256,
        test_proposals: int = 1000,
        score_threshold: float = 0.05,
        detections_per_image: int = 100,
    ) -> None:
        super().__init__()
        if num_classes != NUM_CLASSES:
            raise ValueError(
                f"num_classes must be {NUM_CLASSES} (the Cityscapes train classes; the detector predicts the "
                f"{NUM_THING_CLASSES} thing classes among them), got {num_classes}"
            )
        fpn = resnet_fpn_backbone(backbone, norm, fpn_channels)
        if len(anchor_sizes) != len(FPN_LEVELS) + 1:
            raise ValueError(f"anchor_sizes needs one size per level P2..P6 (5), got {anchor_sizes}")
        anchors = AnchorGenerator(tuple((size,) for size in anchor_sizes), (ASPECT_RATIOS,) * len(anchor_sizes))
        num_box_classes = NUM_THING_CLASSES + 1
        detector = torchvision.models.detection.MaskRCNN(
            fpn,
            num_classes=None,
            rpn_anchor_generator=anchors,
            rpn_head=RPNHead(fpn_channels, anchors.num_anchors_per_location()[0]),
            rpn_post_nms_top_n_test=test_proposals,
            box_head=TwoMLPHead(fpn_channels * 7 * 7, BOX_HEAD_CHANNELS),
            box_predictor=FastRCNNPredictor(BOX_HEAD_CHANNELS, num_box_classes),
            box_batch_size_per_image=roi_batch_size_per_image,
            box_score_thresh=score_threshold,
            box_detections_per_img=detections_per_image,
            mask_head=MaskRCNNHeads(fpn_channels, [mask_head_channels] * 4, 1, norm_layer=norm_layer(norm)),
            mask_predictor=MaskRCNNPredictor(mask_head_channels, mask_head_channels, num_box_classes),
        )
        self.backbone = detector.backbone
        self.rpn = detector.rpn
        self.roi_heads = detector.roi_heads
        self.thing_train_ids = THING_TRAIN_IDS
        self.norm_type = norm

    def forward(
        self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        losses, detections, _ = self.detect(images, targets)
        return losses if self.training else detections

    def detect(
        self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None
    ) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        """(losses (train mode; else {}), detections (eval mode; else []), FPN features of the padded batch)."""
        if self.training:
            _check_targets(images, targets)
        height, width = images.shape[-2:]
        padded = pad_to_multiple(images)
        image_list = ImageList(padded, [(height, width)] * images.shape[0])
        features = self.backbone(padded)
        proposals, rpn_losses = self.rpn(image_list, features, targets)
        detections, roi_losses = self.roi_heads(features, proposals, image_list.image_sizes, targets)
        for detection in detections:
            detection["masks"] = detection["masks"][:, 0]  # (K, 1, 28, 28) -> (K, 28, 28)
        return {**rpn_losses, **roi_losses}, detections, features


def _check_targets(images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None) -> None:
    """ValueError unless ``targets`` holds one well-formed dict per image (see ``MaskRCNN``)."""
    if targets is None or len(targets) != images.shape[0]:
        raise ValueError(f"train mode needs one target dict per image ({images.shape[0]})")
    for index, target in enumerate(targets):
        boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
        count = labels.shape[0]
        if boxes.shape != (count, 4) or not boxes.is_floating_point() or labels.dtype != torch.int64:
            raise ValueError(f"target {index}: boxes must be float (K, 4), labels int64 (K,)")
        if masks.shape != (count, *images.shape[-2:]):
            raise ValueError(f"target {index}: masks must be (K, H, W) = {(count, *images.shape[-2:])}")
        if count and (labels.min() < 1 or labels.max() > NUM_THING_CLASSES):
            raise ValueError(f"target {index}: labels must be in 1..{NUM_THING_CLASSES}")
        if count and (boxes[:, 2:] <= boxes[:, :2]).any():
            raise ValueError(f"target {index}: every box needs x2 > x1 and y2 > y1")
