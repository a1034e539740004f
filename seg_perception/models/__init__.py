"""Semantic-segmentation model zoo: ``build_model(name, num_classes=19, **options)``, ``list_models()``,
``load_checkpoint(model, path)``.

Output contract, the same for every model (images are float tensors (N, 3, H, W); logits are unnormalised class
scores at the input resolution):

* eval mode (``model.eval()``): ``model(images)`` is a tensor (N, num_classes, H, W). This is what is exported to
  ONNX (legacy exporter, opset 17, dynamic N/H/W).
* train mode: ``model(images)`` is ``{"out": logits, "aux": [aux_logits, ...]}``; every auxiliary logit is also
  (N, num_classes, H, W). ``"aux"`` is an empty list for models without auxiliary heads (and with ``aux=False``),
  so a training loop can always do ``loss = ce(out["out"]) + w * sum(ce(a) for a in out["aux"])``.

Training needs batches of at least 2: several models apply BatchNorm to globally pooled 1x1 features.

Models (options after ``num_classes`` are keyword-only; all weights are random, nothing is ever downloaded):

* ``fcn``: torchvision FCN, ``backbone`` "resnet50" | "resnet101", ``aux`` (layer3 head, default True).
* ``unet``: U-Net, ``base_width`` (64), ``bilinear`` (False: transposed convolutions).
* ``segnet``: SegNet with max-unpooling by the encoder's pooling indices, ``base_width`` (64).
* ``deeplabv3plus``: DeepLabV3+, ``backbone`` "mobilenet_v3_large" | "resnet50" | "resnet101", ``output_stride``
  16 | 8, ``atrous_rates`` (default (6, 12, 18) at 16, (12, 24, 36) at 8).
* ``bisenetv1``: BiSeNet V1 on ResNet18, ``aux`` (two context-path heads, default True).
* ``bisenetv2``: BiSeNet V2 (the shipped model), ``detail_channels``, ``semantic_channels``, ``head_channels``,
  ``aux`` (four booster heads, default True).
"""

from __future__ import annotations

import inspect

from torch import nn

from seg_perception.labels import NUM_CLASSES
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
from seg_perception.models.segnet import SegNet
from seg_perception.models.unet import UNet

__all__ = [
    "CheckpointError",
    "ModelSpec",
    "build_model",
    "list_models",
    "load_checkpoint",
    "model_spec",
    "read_checkpoint",
]

_MODELS: dict[str, type[nn.Module]] = {
    "bisenetv1": BiSeNetV1,
    "bisenetv2": BiSeNetV2,
    "deeplabv3plus": DeepLabV3Plus,
    "fcn": FCN,
    "segnet": SegNet,
    "unet": UNet,
}


def list_models() -> list[str]:
    """Names accepted by ``build_model``, sorted."""
    return sorted(_MODELS)


def build_model(name: str, num_classes: int = NUM_CLASSES, **options: object) -> nn.Module:
    """Build the randomly initialised model ``name`` with ``num_classes`` outputs (see the module docstring).

    Raises ValueError for an unknown name or a bad option value, TypeError for an option the model does not take.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model_class = _MODELS[name]
    accepted = [option for option in inspect.signature(model_class).parameters if option != "num_classes"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"accepted options: {', '.join(accepted)}"
        )
    return model_class(num_classes, **options)
