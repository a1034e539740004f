"""Settings of the semantic segmentation node: one frozen, validated dataclass (no rclpy, no torch).

The node declares one ROS parameter per field (name, default and description from here), reads the
values from ``--ros-args --params-file config/semantic.yaml`` and builds ``SegmentationConfig``;
a bad value raises ConfigError naming the parameter, so a node fails at start-up with a clear
message instead of at the first frame. Tools (demo, benchmarks) build the same dataclass.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from seg_perception.labels import CLASS_NAMES

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16", "int8")
RESIZE_MODES = ("resize", "letterbox")
OUTPUT_RESOLUTIONS = ("input", "model")
RELIABILITIES = ("best_effort", "reliable")


CAMERA_NAMESPACE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
"""A relative ROS namespace (the ROS 2 name grammar); '' is allowed separately (the node's own namespace)."""


class ConfigError(ValueError):
    """A bad node setting; the message starts with the parameter's name."""


def _describe(text: str) -> dict[str, str]:
    return {"description": text}


@dataclass(frozen=True)
class SegmentationConfig:
    """Every node parameter; see each field's ``description`` metadata (also the ROS parameter descriptor)."""

    model_path: str = field(
        default="",
        metadata=_describe(
            "ONNX model with its .onnx.json sidecar (tensorrt, onnxruntime) or a model-zoo checkpoint .pt (torch); "
            "empty: the shipped models/bisenetv2_synth.onnx of this package"
        ),
    )
    backend: str = field(default="auto", metadata=_describe("auto | tensorrt | onnxruntime | torch"))
    device: str = field(default="auto", metadata=_describe("auto | cpu | cuda | cuda:N"))
    precision: str = field(
        default="fp32", metadata=_describe("fp32 | fp16 | int8; a backend that cannot run it falls back to fp32")
    )
    engine_cache_dir: str = field(
        default="", metadata=_describe("TensorRT engine cache folder; empty: ~/.cache/seg_perception/engines")
    )
    calibration_images: str = field(default="", metadata=_describe("folder of images for TensorRT INT8 calibration"))
    threads: int = field(default=0, metadata=_describe("ONNX Runtime intra-op threads; 0: its default"))
    input_size: tuple[int, int] = field(
        default=(0, 0), metadata=_describe("model input [height, width]; [0, 0]: the size the model was exported at")
    )
    resize_mode: str = field(
        default="resize", metadata=_describe("resize (stretch to the model size) | letterbox (keep aspect, pad)")
    )
    output_resolution: str = field(
        default="input", metadata=_describe("input (masks at the camera resolution) | model (at the model size)")
    )
    drivable_classes: tuple[str, ...] = field(
        default=("road",), metadata=_describe("class names that count as drivable area (Cityscapes train classes)")
    )
    publish_overlay: bool = field(
        default=True, metadata=_describe("publish the colour overlay (computed only while someone subscribes)")
    )
    overlay_alpha: float = field(default=0.5, metadata=_describe("weight of the class colours in the overlay, 0..1"))
    cameras: tuple[str, ...] = field(
        default=("",),
        metadata=_describe(
            "camera namespaces, one topic set each (<camera>/image -> <camera>/semantic/mask, ...); "
            "'' is the node's own namespace"
        ),
    )
    sync_slop: float = field(
        default=0.01, metadata=_describe("seconds: frames of several cameras this close in stamp share one model call")
    )
    sync_timeout: float = field(
        default=0.05, metadata=_describe("seconds to wait for the other cameras' frames before running a partial batch")
    )
    queue_size: int = field(
        default=2, metadata=_describe("bound of the queue between inference and publishing (frames batches)")
    )
    input_reliability: str = field(
        default="best_effort", metadata=_describe("image subscription QoS: best_effort (sensor data) | reliable")
    )
    input_depth: int = field(default=1, metadata=_describe("image subscription history depth"))
    output_reliability: str = field(default="reliable", metadata=_describe("output QoS: reliable | best_effort"))
    output_depth: int = field(default=5, metadata=_describe("output history depth"))
    max_image_pixels: int = field(
        default=4096 * 4096, metadata=_describe("larger input images are dropped as bad input")
    )
    diagnostics_period: float = field(default=1.0, metadata=_describe("seconds between /diagnostics messages"))
    log_throttle: float = field(default=5.0, metadata=_describe("seconds between repeated warnings of one kind"))

    def __post_init__(self) -> None:
        self._choice("backend", BACKENDS)
        self._choice("precision", PRECISIONS)
        self._choice("resize_mode", RESIZE_MODES)
        self._choice("output_resolution", OUTPUT_RESOLUTIONS)
        self._choice("input_reliability", RELIABILITIES)
        self._choice("output_reliability", RELIABILITIES)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if len(self.input_size) != 2:
            raise ConfigError(f"input_size: must be [height, width], got {list(self.input_size)}")
        height, width = self.input_size
        if not ((height == width == 0) or (height > 0 and width > 0)):
            raise ConfigError(f"input_size: must be [0, 0] or two positive integers, got {list(self.input_size)}")
        unknown = [name for name in self.drivable_classes if name not in CLASS_NAMES]
        if unknown or not self.drivable_classes:
            raise ConfigError(
                f"drivable_classes: unknown class names {unknown or '(empty list)'}; known: {', '.join(CLASS_NAMES)}"
            )
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ConfigError(f"overlay_alpha: must be in [0, 1], got {self.overlay_alpha}")
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"cameras: must be a non-empty list of unique namespaces, got {list(self.cameras)}")
        bad = [name for name in self.cameras if name and not CAMERA_NAMESPACE.fullmatch(name)]
        if bad:
            raise ConfigError(
                f"cameras: {bad} are not relative ROS namespaces (tokens of letters, digits and '_', not starting "
                "with a digit, joined by '/')"
            )
        for name in ("sync_slop", "sync_timeout", "log_throttle"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("queue_size", "input_depth", "output_depth", "max_image_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ConfigError(f"threads: must be >= 0, got {self.threads}")
        if self.diagnostics_period <= 0:
            raise ConfigError(f"diagnostics_period: must be > 0, got {self.diagnostics_period}")

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {getattr(self, name)!r}")

    @property
    def drivable_train_ids(self) -> tuple[int, ...]:
        """Train ids of ``drivable_classes``."""
        return tuple(CLASS_NAMES.index(name) for name in self.drivable_classes)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> SegmentationConfig:
        """Build from plain values (ROS parameters, YAML): lists become tuples; unknown keys raise ConfigError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"{', '.join(unknown)}: unknown parameter(s); known: {', '.join(sorted(fields))}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def parameter_defaults() -> dict[str, Any]:
    """{parameter name: default as a ROS parameter value (tuples as lists)}, in declaration order."""
    return {
        f.name: list(f.default) if isinstance(f.default, tuple) else f.default
        for f in dataclasses.fields(SegmentationConfig)
    }


def parameter_description(name: str) -> str:
    """The description of parameter ``name``."""
    return next(f.metadata["description"] for f in dataclasses.fields(SegmentationConfig) if f.name == name)
