"""Model-zoo checkpoints: read safely (``weights_only=True``) and tell what model they hold.

A checkpoint is a raw state_dict or ``{"model": state_dict, "config": {...}, ...}`` (seg-train's):
``config["model"]`` = {"name", "options"} names the model, ``config["loss"]["type"] == "bce_dice"``
means one binary output channel, ``config["data"]`` (or a top-level ``"normalization"``) holds the
input mean/std. A shipped checkpoint may store its large weights as int8 (``export.weight_compression``):
``INT8_WEIGHTS`` {name: int8 tensor} and ``INT8_SCALES`` {name: float32 (C,) per dim-0 channel} beside
``"model"``, which then holds the rest; loading expands them to float32 (weight = int8 * scale).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seg_perception.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from seg_perception.labels import CLASS_NAMES, NUM_CLASSES, THING_TRAIN_IDS


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read or does not fit the model; the message names the file."""


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint holds: enough to build the model and feed it."""

    name: str
    options: dict = field(default_factory=dict)
    num_classes: int = NUM_CLASSES
    class_names: tuple[str, ...] = CLASS_NAMES
    """One name per output channel."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    """Input normalisation, RGB in 0..1 units: (x / 255 - mean) / std."""


def read_checkpoint(path: str | Path):
    """The object saved in ``path``, read with ``torch.load(..., map_location="cpu", weights_only=True)``.

    Raises FileNotFoundError for a missing file and CheckpointError for an unreadable or non-weights one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for corrupt or non-weights-only files
        raise CheckpointError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from error


INT8_WEIGHTS = "model_int8"
INT8_SCALES = "model_int8_scales"


def expand_int8_weights(checkpoint: Mapping) -> dict:
    """``checkpoint`` with its ``INT8_WEIGHTS`` (if any) dequantised into ``"model"`` (float32)."""
    quantized, scales = checkpoint.get(INT8_WEIGHTS, {}), checkpoint.get(INT8_SCALES, {})
    if set(quantized) != set(scales):
        raise CheckpointError(f"int8 weights {sorted(set(quantized) ^ set(scales))} lack their scales (or vice versa)")
    expanded = {
        name: values.float() * scales[name].reshape(-1, *([1] * (values.dim() - 1)))
        for name, values in quantized.items()
    }
    rest = {key: value for key, value in checkpoint.items() if key not in (INT8_WEIGHTS, INT8_SCALES)}
    return rest | {"model": {**checkpoint.get("model", {}), **expanded}} if quantized else rest


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load weights from ``path`` (a raw state_dict or ``{"model": state_dict, ...}``) into ``model``, strictly.

    Returns ``model``. Raises FileNotFoundError for a missing file and CheckpointError for an unreadable,
    non-weights or mismatching one.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, Mapping) and INT8_WEIGHTS in checkpoint:
        checkpoint = expand_int8_weights(checkpoint)
    if isinstance(checkpoint, Mapping) and "model" in checkpoint:
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        raise CheckpointError(
            f"checkpoint {path} holds neither a state_dict nor {{'model': state_dict}} "
            f"(got {type(checkpoint).__name__})"
        )
    try:
        model.load_state_dict(checkpoint)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path} does not fit {type(model).__name__}: {error}") from error
    return model


def model_spec(path: str | Path, model: str | None = None, options: Mapping | None = None) -> ModelSpec:
    """The ModelSpec of checkpoint ``path``; ``model`` names the model of a raw state_dict (it must agree with a
    trained config), ``options`` override the trained options (``num_classes`` included).

    Raises FileNotFoundError / CheckpointError for an unreadable file or malformed metadata and ValueError when
    no model is named or the names disagree.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    metadata = checkpoint if isinstance(checkpoint, Mapping) and "model" in checkpoint else {}
    config = _section(metadata, "config", path)
    model_config = _section(config, "model", path)
    trained_name = model_config.get("name")
    name = model or trained_name
    if name is None:
        raise ValueError(f"checkpoint {path} names no model: give --model")
    if trained_name is not None and name != trained_name:
        raise ValueError(f"--model {name} but checkpoint {path} holds a {trained_name} model")
    merged = {**_section(model_config, "options", path), **dict(options or {})}
    loss = _section(config, "loss", path)
    num_classes = merged.pop("num_classes", 1 if loss.get("type") == "bce_dice" else NUM_CLASSES)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    mean, std = _normalization(metadata, config, path)
    return ModelSpec(name, merged, num_classes, _class_names(num_classes, loss), mean, std)


def _section(mapping: Mapping, key: str, path: Path) -> Mapping:
    """``mapping[key]`` as a mapping ({} when absent); CheckpointError when it is something else."""
    value = mapping.get(key, {})
    if not isinstance(value, Mapping):
        raise CheckpointError(f"checkpoint {path}: {key!r} is a {type(value).__name__}, expected a mapping")
    return value


def _normalization(metadata: Mapping, config: Mapping, path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) in 0..1 RGB units: checkpoint "normalization", else config data, else ImageNet."""
    source = metadata.get("normalization") or _section(config, "data", path)
    if not isinstance(source, Mapping):
        raise CheckpointError(f"checkpoint {path}: 'normalization' must be {{'mean': [...], 'std': [...]}}")
    mean, std = source.get("mean", IMAGENET_MEAN), source.get("std", IMAGENET_STD)
    for key, values in (("mean", mean), ("std", std)):
        if not (
            isinstance(values, (list, tuple))
            and len(values) == 3
            and all(isinstance(v, (int, float)) for v in values)
            and (key == "mean" or min(values) > 0)
        ):
            raise CheckpointError(f"checkpoint {path}: normalization {key} must be 3 numbers (std > 0), got {values}")
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _class_names(num_classes: int, loss: Mapping) -> tuple[str, ...]:
    """One name per output channel: the Cityscapes train classes, the positives of a binary model, or class_<i>."""
    if num_classes == NUM_CLASSES:
        return CLASS_NAMES
    positives = loss.get("positive_train_ids")
    if num_classes == 1 and positives:
        return ("+".join(CLASS_NAMES[i] for i in positives),)
    return tuple(f"class_{i}" for i in range(num_classes))


def model_info(spec: ModelSpec, input_size: tuple[int, int], checkpoint: str = ""):
    """The ModelInfo (what an ONNX sidecar says) of the model ``spec`` describes, traced at ``input_size`` (H, W):
    its task's graph contract (see ``seg_perception.model_info``): output names, one class name per output channel
    (the semantic branch's for panoptic_fpn, the thing classes for mask_rcnn) and the thing train ids."""
    from seg_perception.model_info import DETECTION_OUTPUTS, INPUT_NAME, OUTPUT_NAME, SEMANTIC_LOGITS_NAME, ModelInfo
    from seg_perception.models import model_task
    from seg_perception.models.panoptic_fpn import SEMANTIC_CLASS_NAMES

    task = model_task(spec.name)
    class_names, output, things = spec.class_names, OUTPUT_NAME, ()
    if task != "semantic":
        things = THING_TRAIN_IDS
        class_names = SEMANTIC_CLASS_NAMES if task == "panoptic" else tuple(CLASS_NAMES[i] for i in THING_TRAIN_IDS)
        output = SEMANTIC_LOGITS_NAME if task == "panoptic" else DETECTION_OUTPUTS[-1]
    return ModelInfo(
        model=spec.name,
        options=spec.options,
        num_classes=len(class_names),
        class_names=class_names,
        input_name=INPUT_NAME,
        output_name=output,
        input_size=(int(input_size[0]), int(input_size[1])),
        dynamic=True,
        opset=0,
        mean=spec.mean,
        std=spec.std,
        checkpoint=checkpoint,
        task=task,
        thing_train_ids=things,
    )


def checkpoint_model_info(path: str | Path, input_size: tuple[int, int] | None = None):
    """The ModelInfo (as an ONNX sidecar would give it) of checkpoint ``path``, for running it with the torch
    backend: ``input_size`` (H, W), else the checkpoint's training crop ``config.data.crop_size``.

    ValueError when neither gives an input size; see ``model_spec`` for the other errors.
    """
    path = Path(path)
    spec = model_spec(path)
    if not input_size or not all(input_size):
        checkpoint = read_checkpoint(path)
        config = _section(checkpoint, "config", path) if isinstance(checkpoint, Mapping) else {}
        crop = _section(config, "data", path).get("crop_size")
        if not (isinstance(crop, (list, tuple)) and len(crop) == 2):
            raise ValueError(f"checkpoint {path} records no training crop size: give the input size")
        input_size = (int(crop[0]), int(crop[1]))
    return model_info(spec, input_size, str(path.resolve()))
