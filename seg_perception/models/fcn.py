"""FCN (Long et al., 2015): torchvision's ``fcn_resnet50`` / ``fcn_resnet101`` with the zoo's output contract."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import fcn_resnet50, fcn_resnet101

from seg_perception.labels import NUM_CLASSES

_TORCHVISION_BUILDERS = {"resnet50": fcn_resnet50, "resnet101": fcn_resnet101}


class FCN(nn.Module):
    """FCN head on a dilated ResNet (output stride 8), randomly initialised.

    Args:
        num_classes: output channels.
        backbone: ``"resnet50"`` or ``"resnet101"``.
        aux: add torchvision's auxiliary FCN head on ``layer3`` (1/8, 1024 channels); used in training only.

    ``forward``: images (N, 3, H, W) -> eval: logits (N, num_classes, H, W);
    train: ``{"out": logits, "aux": [layer3 logits (N, num_classes, H, W)]}`` (``"aux": []`` without ``aux``).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, *, backbone: str = "resnet50", aux: bool = True) -> None:
        super().__init__()
        if backbone not in _TORCHVISION_BUILDERS:
            raise ValueError(f"FCN backbone must be one of {sorted(_TORCHVISION_BUILDERS)}, got {backbone!r}")
        torchvision_fcn = _TORCHVISION_BUILDERS[backbone](
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux
        )
        self.backbone = torchvision_fcn.backbone  # IntermediateLayerGetter -> {"out": layer4, "aux": layer3}
        self.classifier = torchvision_fcn.classifier
        self.aux_classifier = torchvision_fcn.aux_classifier  # None without aux

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        size = images.shape[-2:]
        features = self.backbone(images)
        logits = F.interpolate(self.classifier(features["out"]), size=size, mode="bilinear", align_corners=False)
        if not self.training:
            return logits
        aux_logits = []
        if self.aux_classifier is not None:
            aux = self.aux_classifier(features["aux"])
            aux_logits.append(F.interpolate(aux, size=size, mode="bilinear", align_corners=False))
        return {"out": logits, "aux": aux_logits}
