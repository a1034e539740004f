"""Training configuration: YAML -> frozen, validated dataclasses, with dotted ``key=value`` overrides.

Sections: ``data``, ``model``, ``loss``, ``optim``, ``train`` and the top-level ``output_dir``
(see ``config/train/*.yaml``). Every key is checked: an unknown key, a value of the wrong type or
out of range raises ConfigError naming the dotted key (``train.batch_size: ...``).
Overrides such as ``train.iterations=2000`` or ``data.crop_size=[256,512]`` parse their value as
YAML and apply before validation.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seg_perception.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from seg_perception.labels import NUM_CLASSES


class ConfigError(ValueError):
    """A bad config file, key or value; the message names the dotted key."""


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_size(value: tuple[int, int] | None, key: str) -> None:
    if value is not None:
        _require(all(v > 0 for v in value), key, f"must be positive (height, width), got {list(value)}")


@dataclass(frozen=True)
class JitterConfig:
    """Photometric jitter of the image: factors drawn in [1 - x, 1 + x] (hue: shift in [-hue, hue])."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.0

    def __post_init__(self):
        for name in ("brightness", "contrast", "saturation"):
            _require(0.0 <= getattr(self, name) < 1.0, name, f"must be in [0, 1), got {getattr(self, name)}")
        _require(0.0 <= self.hue <= 0.5, "hue", f"must be in [0, 0.5], got {self.hue}")


@dataclass(frozen=True)
class DataConfig:
    """Cityscapes-layout root, splits and the augmentation pipeline (sizes are (height, width))."""

    root: str = "data/cityscapes"
    train_split: str = "train"
    val_split: str = "val"
    crop_size: tuple[int, int] = (512, 1024)
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip_prob: float = 0.5
    jitter: JitterConfig = field(default_factory=JitterConfig)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    workers: int = 4

    def __post_init__(self):
        splits = ("train", "val", "test")
        _require(self.train_split in splits, "train_split", f"must be one of {splits}, got {self.train_split!r}")
        _require(self.val_split in splits, "val_split", f"must be one of {splits}, got {self.val_split!r}")
        _check_size(self.crop_size, "crop_size")
        lo, hi = self.scale_range
        _require(0.0 < lo <= hi, "scale_range", f"must be 0 < min <= max, got {list(self.scale_range)}")
        _require(0.0 <= self.flip_prob <= 1.0, "flip_prob", f"must be in [0, 1], got {self.flip_prob}")
        _require(all(0.0 <= m <= 1.0 for m in self.mean), "mean", f"must be in [0, 1] (RGB), got {list(self.mean)}")
        _require(all(s > 0.0 for s in self.std), "std", f"must be positive, got {list(self.std)}")
        _require(self.workers >= 0, "workers", f"must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class ModelConfig:
    """A model of the registry: ``build_model(name, num_classes, **options)``.

    ``init_weights``: a model-zoo checkpoint to start from (fine-tuning, e.g. synthetic -> real
    Cityscapes, or a finished run continued with a new schedule); ``--resume`` overrides it.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None


@dataclass(frozen=True)
class LossConfig:
    """Loss ``type`` (ce, ohem, dice, focal, bce_dice), its parameters and the aux-head weight.

    ``bce_dice`` trains a binary drivable-area model (one output channel) whose positives are
    the train ids in ``positive_train_ids`` (default: road); the others train 19-class models.
    """

    type: Literal["ce", "ohem", "dice", "focal", "bce_dice"] = "ce"
    aux_weight: float = 1.0
    class_weights: tuple[float, ...] | None = None
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    dice_smooth: float = 1.0
    focal_gamma: float = 2.0
    focal_alpha: float | tuple[float, ...] | None = None
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    positive_train_ids: tuple[int, ...] = (0,)

    def __post_init__(self):
        _require(self.aux_weight >= 0.0, "aux_weight", f"must be >= 0, got {self.aux_weight}")
        if self.class_weights is not None:
            _require(self.type == "ce", "class_weights", f"only applies to type ce, not {self.type}")
            _require(
                len(self.class_weights) == NUM_CLASSES and min(self.class_weights) >= 0,
                "class_weights",
                f"must be {NUM_CLASSES} non-negative weights, got {list(self.class_weights)}",
            )
        _require(0.0 < self.ohem_thresh <= 1.0, "ohem_thresh", f"must be in (0, 1], got {self.ohem_thresh}")
        _require(self.ohem_min_kept >= 1, "ohem_min_kept", f"must be >= 1, got {self.ohem_min_kept}")
        _require(self.dice_smooth >= 0.0, "dice_smooth", f"must be >= 0, got {self.dice_smooth}")
        _require(self.focal_gamma >= 0.0, "focal_gamma", f"must be >= 0, got {self.focal_gamma}")
        if isinstance(self.focal_alpha, tuple):
            _require(
                len(self.focal_alpha) == NUM_CLASSES,
                "focal_alpha",
                f"must be one float or {NUM_CLASSES} per-class floats, got {len(self.focal_alpha)} values",
            )
        _require(
            all(0 <= i < NUM_CLASSES for i in self.positive_train_ids) and len(self.positive_train_ids) > 0,
            "positive_train_ids",
            f"must be train ids in 0..{NUM_CLASSES - 1}, got {list(self.positive_train_ids)}",
        )

    @property
    def num_classes(self) -> int:
        """Output channels of the model this loss trains (1 for the binary drivable head)."""
        return 1 if self.type == "bce_dice" else NUM_CLASSES


@dataclass(frozen=True)
class OptimConfig:
    """SGD or AdamW with linear warm-up then poly decay: lr_i = lr (1 - i/T)^power (times warm-up)."""

    type: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_iterations: int = 1000
    warmup_start_factor: float = 0.1
    poly_power: float = 0.9
    clip_grad_norm: float | None = None
    """Clip the gradients' total L2 norm to this before each step (None: no clipping)."""

    def __post_init__(self):
        _require(self.lr > 0.0, "lr", f"must be > 0, got {self.lr}")
        if self.clip_grad_norm is not None:
            _require(self.clip_grad_norm > 0, "clip_grad_norm", f"must be > 0, got {self.clip_grad_norm}")
        _require(0.0 <= self.momentum < 1.0, "momentum", f"must be in [0, 1), got {self.momentum}")
        _require(self.weight_decay >= 0.0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        _require(all(0.0 <= b < 1.0 for b in self.betas), "betas", f"must be in [0, 1), got {list(self.betas)}")
        _require(self.warmup_iterations >= 0, "warmup_iterations", f"must be >= 0, got {self.warmup_iterations}")
        _require(
            0.0 < self.warmup_start_factor <= 1.0,
            "warmup_start_factor",
            f"must be in (0, 1], got {self.warmup_start_factor}",
        )
        _require(self.poly_power >= 0.0, "poly_power", f"must be >= 0, got {self.poly_power}")


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings. ``batch_size`` is per process (the global batch is batch_size x world size).

    Validation runs every ``val_interval`` iterations and at the end, on full-resolution frames:
    ``val_mode`` whole (one forward per frame) or slide (``val_window`` windows, default the crop
    size, every ``val_stride`` pixels, default 2/3 of the window). Checkpoints are written every
    ``checkpoint_interval`` iterations and at the end; the newest ``keep_checkpoints`` are kept.
    """

    iterations: int = 80_000
    batch_size: int = 8
    log_interval: int = 50
    val_interval: int = 4000
    checkpoint_interval: int = 2000
    keep_checkpoints: int = 3
    val_mode: Literal["whole", "slide"] = "whole"
    val_window: tuple[int, int] | None = None
    val_stride: tuple[int, int] | None = None
    seed: int = 0
    deterministic: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    sync_bn: bool = True
    progress: bool = True

    def __post_init__(self):
        for name in ("iterations", "batch_size", "log_interval", "val_interval", "checkpoint_interval"):
            _require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        _require(self.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {self.keep_checkpoints}")
        _check_size(self.val_window, "val_window")
        _check_size(self.val_stride, "val_stride")


@dataclass(frozen=True)
class TrainingConfig:
    """The whole training configuration (one YAML file)."""

    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/train"

    def to_dict(self) -> dict:
        """Plain nested dict (lists, no tuples): YAML-dumpable and loadable with weights_only."""
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against / converted to the annotation ``tp``; ConfigError on mismatch."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for alternative in (a for a in args if a is not type(None)):
            try:
                return _convert(value, alternative, key)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[1])
        raise ConfigError(f"{key}: {' or '.join(errors)}")
    if origin is Literal:
        _require(value in args, key, f"must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is tuple:
        _require(isinstance(value, list | tuple), key, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        _require(len(value) == len(args), key, f"expected {len(args)} values, got {list(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        _require(isinstance(value, dict), key, f"expected a mapping, got {value!r}")
        return copy.deepcopy(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    ok = isinstance(value, float | int) if tp is float else isinstance(value, tp)
    _require(ok and (tp is bool or not isinstance(value, bool)), key, f"expected {_type_name(tp)}, got {value!r}")
    return float(value) if tp is float else value


def _build(cls: type, data: Any, key: str) -> Any:
    """Instance of the config dataclass ``cls`` from a mapping, with every key checked."""
    prefix = f"{key}." if key else ""
    _require(isinstance(data, dict), key or "config", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for name in data:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{prefix}{name}'{hint} (valid keys: {', '.join(names)})")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    _require(not missing, key or "config", f"missing required key(s) {[prefix + m for m in missing]}")
    values = {name: _convert(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """A copy of the raw config mapping with ``dotted.key=value`` overrides set (values parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} is not of the form dotted.key=value (e.g. train.iterations=2000)")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        *parents, last = key.split(".")
        node = data
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{'.'.join(parents[: i + 1])}' is a value, not a section")
        node[last] = value
    return data


def config_from_dict(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> TrainingConfig:
    """Validated TrainingConfig from a raw mapping plus overrides; ConfigError on any problem."""
    _require(isinstance(data, dict), "config", f"expected a mapping of sections, got {data!r}")
    return _build(TrainingConfig, apply_overrides(data, overrides), "")


def load_config(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> TrainingConfig:
    """Validated TrainingConfig from a YAML file plus overrides; ConfigError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        return config_from_dict(data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
