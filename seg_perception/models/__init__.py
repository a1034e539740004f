"""Model zoo: ``build_model(name, num_classes=19, **options)``, ``list_models(task="semantic")``,
``load_checkpoint(model, path)``.

Tasks: ``"semantic"`` (fcn, unet, segnet, deeplabv3plus, bisenetv1, bisenetv2), ``"instance"`` (mask_rcnn),
``"panoptic"`` (panoptic_fpn). Every model takes images (N, 3, H, W) float32, resized and normalised by the host.

Output contract of the semantic models (logits are unnormalised class scores at the input resolution):

* eval mode (``model.eval()``): ``model(images)`` is a tensor (N, num_classes, H, W). This is what is exported to
  ONNX (legacy exporter, opset 17, dynamic N/H/W).
* train mode: ``model(images)`` is ``{"out": logits, "aux": [aux_logits, ...]}``; every auxiliary logit is also
  (N, num_classes, H, W). ``"aux"`` is an empty list for models without auxiliary heads (and with ``aux=False``),
  so a training loop can always do ``loss = ce(out["out"]) + w * sum(ce(a) for a in out["aux"])``.

Training needs batches of at least 2: several models apply BatchNorm to globally pooled 1x1 features.

Output contract of the detection models (any H and W; inside they only zero-pad to a multiple of 32; detection
label k in 1..8 is thing train id 10 + k: person, rider, car, truck, bus, train, motorcycle, bicycle):

* train mode: ``model(images, targets)``, one target dict per image: ``boxes`` (K, 4) float32 xyxy pixels,
  ``labels`` (K,) int64 in 1..8, ``masks`` (K, H, W) uint8 (K may be 0; crowd instances left out), and for
  panoptic_fpn ``semantic`` (H, W) int64 train ids, 255 ignored (crowd pixels 255) -> dict of scalar losses:
  ``loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg, loss_mask`` (+ ``loss_semantic``, already
  weighted by ``semantic_loss_weight``, 0.5); the training loss is their sum.
* eval mode: ``model(images)`` -> one dict per image: ``boxes`` (K, 4) float32 xyxy input pixels, ``scores`` (K,)
  float32, ``labels`` (K,) int64 in 1..8, ``masks`` (K, 28, 28) float32 mask-head probabilities over the box
  (pasting into the image is the host's job), and for panoptic_fpn ``semantic_logits`` (12, H, W) float32:
  channels 0..10 = stuff train ids 0..10, channel 11 = "thing".

Models (options after ``num_classes`` are keyword-only; all weights are random, nothing is ever downloaded):

* ``fcn``: torchvision FCN, ``backbone`` "resnet50" | "resnet101", ``aux`` (layer3 head, default True).
* ``unet``: U-Net, ``base_width`` (64), ``bilinear`` (False: transposed convolutions).
* ``segnet``: SegNet with max-unpooling by the encoder's pooling indices, ``base_width`` (64).
* ``deeplabv3plus``: DeepLabV3+, ``backbone`` "mobilenet_v3_large" | "resnet50" | "resnet101", ``output_stride``
  16 | 8, ``atrous_rates`` (default (6, 12, 18) at 16, (12, 24, 36) at 8).
* ``bisenetv1``: BiSeNet V1 on ResNet18, ``aux`` (two context-path heads, default True).
* ``bisenetv2``: BiSeNet V2 (the shipped model), ``detail_channels``, ``semantic_channels``, ``head_channels``,
  ``aux`` (four booster heads, default True).
* ``mask_rcnn``: Mask R-CNN, ``backbone`` "resnet50" | "resnet18", ``norm`` "group" | "batch", ``fpn_channels``,
  ``anchor_sizes``, ``roi_batch_size_per_image``, ``mask_head_channels``, ``test_proposals``, ``score_threshold``,
  ``detections_per_image`` (``num_classes`` must be 19).
* ``panoptic_fpn``: Panoptic FPN, the mask_rcnn options plus ``semantic_channels`` (128), ``semantic_loss_weight``.
"""

from __future__ import annotations

import inspect

from torch import nn

from seg_perception.labels import NUM_CLASSES
from seg_perception.model_info import TASKS
from seg_perception.models.bisenetv1 import BiSeNetV1
from seg_perception.models.bisenetv2 import BiSeNetV2
from seg_perception.models.checkpoint import (
    CheckpointError,
    ModelSpec,
    load_checkpoint,
    model_spec,
    read_checkpoint,
)
from seg_perception.models.deeplab import DeepLabV3Plus
from seg_perception.models.fcn import FCN
from seg_perception.models.mask_rcnn import MaskRCNN
from seg_perception.models.panoptic_fpn import PanopticFPN
from seg_perception.models.segnet import SegNet
from seg_perception.models.unet import UNet

__all__ = [
    "TASKS",
    "CheckpointError",
    "ModelSpec",
    "build_model",
    "list_models",
    "load_checkpoint",
    "model_spec",
    "model_task",
    "read_checkpoint",
]

_MODELS: dict[str, type[nn.Module]] = {
    "bisenetv1": BiSeNetV1,
    "bisenetv2": BiSeNetV2,
    "deeplabv3plus": DeepLabV3Plus,
    "fcn": FCN,
    "mask_rcnn": MaskRCNN,
    "panoptic_fpn": PanopticFPN,
    "segnet": SegNet,
    "unet": UNet,
}
_TASKS = {"mask_rcnn": "instance", "panoptic_fpn": "panoptic"}
"""Every other model is a semantic one."""


def model_task(name: str) -> str:
    """The task of model ``name``: "semantic", "instance" or "panoptic" (ValueError for an unknown model)."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models(None))}")
    return _TASKS.get(name, "semantic")


def list_models(task: str | None = "semantic") -> list[str]:
    """Names accepted by ``build_model`` for ``task`` (one of TASKS; None: every model), sorted."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    return sorted(name for name in _MODELS if task in (None, model_task(name)))


def build_model(name: str, num_classes: int = NUM_CLASSES, **options: object) -> nn.Module:
    """Build the randomly initialised model ``name`` with ``num_classes`` outputs (see the module docstring).

    Raises ValueError for an unknown name or a bad option value, TypeError for an option the model does not take.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models(None))}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model_class = _MODELS[name]
    accepted = _options(model_class)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"accepted options: {', '.join(accepted)}"
        )
    return model_class(num_classes, **options)


def _options(model_class: type[nn.Module]) -> list[str]:
    """Keyword options of ``model_class`` (besides num_classes), following ``**options`` into its base classes."""
    options = []
    for cls in model_class.__mro__:
        parameters = inspect.signature(cls).parameters.values()
        options += [p.name for p in parameters if p.kind == p.KEYWORD_ONLY or p.kind == p.POSITIONAL_OR_KEYWORD]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return [option for option in dict.fromkeys(options) if option != "num_classes"]
