"""Settings of the semantic segmentation node: one frozen, validated dataclass (no rclpy, no torch).

The node declares one ROS parameter per field (name, default and description from here), reads the
values from ``--ros-args --params-file config/semantic.yaml`` and builds ``SegmentationConfig``;
a bad value raises ConfigError naming the parameter, so a node fails at start-up with a clear
message instead of at the first frame. Tools (demo, benchmarks) build the same dataclass.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seg_perception.backends import CALIBRATION_METHODS, GRAPH_OPTIMIZATION_LEVELS, PRECISIONS
from seg_perception.backends import KINDS as BACKENDS
from seg_perception.ground_projection import GridSpec
from seg_perception.labels import CLASS_NAMES

RESIZE_MODES = ("resize", "letterbox")
OUTPUT_RESOLUTIONS = ("input", "model")
RELIABILITIES = ("best_effort", "reliable")
INPUT_TRANSPORTS = ("raw", "compressed")
MAX_INPUT_SIDE = 8192
MAX_GRID_CELLS = 4_000_000
"""A bigger drivable grid is refused (1000 x 1000 cells of 4 cm over 40 m is 1 M)."""
"""Largest model input height or width accepted (a model input beyond it would not fit any accelerator)."""
DELIVERED_IMAGE_PIXELS = 2048 * 2048
"""Default ``max_image_pixels``: the largest frames the shipped best-effort input reliably receives through Fast DDS
with the shipped profiles (12.6 MB rgb8, 16.8 MB rgba8; measured in docs/ARCHITECTURE.md, "Large images")."""


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
    calibration_images: str = field(
        default="",
        metadata=_describe(
            "precision int8: folder of frames to calibrate on (TensorRT, ONNX Runtime on the CPU); empty: reuse a "
            "calibration cache / INT8 model of this model (the shipped model has one)"
        ),
    )
    calibration_method: str = field(
        default="minmax", metadata=_describe("ONNX Runtime INT8 calibration: minmax | entropy | percentile")
    )
    threads: int = field(default=0, metadata=_describe("ONNX Runtime intra-op threads; 0: its default"))
    intra_op_spinning: bool = field(
        default=False,
        metadata=_describe("ONNX Runtime: intra-op threads spin-wait for work (false: ~19 % less CPU, same latency)"),
    )
    opencv_threads: int = field(
        default=1,
        metadata=_describe(
            "OpenCV threads of pre- and post-processing; 0: OpenCV's default (one per core). Its idle workers "
            "spin-wait after each parallel call and slow the inference that follows (measured: INT8 BiSeNetV2 "
            "38-43 ms after a 2-thread resize vs 17-18 ms with 1 thread on 2 cores)"
        ),
    )
    graph_optimization: str = field(
        default="all", metadata=_describe("ONNX Runtime graph optimisation level: disable | basic | extended | all")
    )
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
    publish_detections: bool = field(
        default=True,
        metadata=_describe(
            "instance and panoptic models: also publish vision_msgs/Detection2DArray on detections (and "
            "vision_msgs/LabelInfo on label_info) where vision_msgs is installed"
        ),
    )
    instance_score_threshold: float = field(
        default=0.5,
        metadata=_describe("instance and panoptic models: detections scoring at least this become instances, 0..1"),
    )
    instance_overlap_threshold: float = field(
        default=0.5,
        metadata=_describe(
            "panoptic fusion: an instance is dropped when more than this fraction of its mask is already taken by "
            "higher-scoring ones, 0..1"
        ),
    )
    min_stuff_area: int = field(
        default=4096,
        metadata=_describe(
            "panoptic fusion: stuff segments smaller than this many pixels at 1024x2048 (scaled with the frame "
            "area) are void"
        ),
    )
    grid_frame: str = field(
        default="base_link", metadata=_describe("drivable_grid: frame_id of the grid (REP-103: x forward, y left)")
    )
    grid_resolution: float = field(default=0.2, metadata=_describe("drivable_grid: metres per cell"))
    grid_x_range: tuple[float, float] = field(
        default=(0.0, 40.0), metadata=_describe("drivable_grid: [min, max] metres along x (forward) in grid_frame")
    )
    grid_y_range: tuple[float, float] = field(
        default=(-20.0, 20.0), metadata=_describe("drivable_grid: [min, max] metres along y (left) in grid_frame")
    )
    grid_max_range: float = field(
        default=40.0, metadata=_describe("drivable_grid: cells farther than this from the camera are unknown (m)")
    )
    camera_pose: tuple[float, ...] = field(
        default=(1.7, 0.1, 1.5, 0.0, 0.0, 0.0),
        metadata=_describe(
            "drivable_grid: [x, y, z, roll, pitch, yaw] of the camera in grid_frame (m, rad; pitch > 0 looks down, "
            "yaw > 0 left, as Cityscapes' camera.json extrinsic), one for every camera or 6 numbers per camera in "
            "cameras order; the intrinsics come from each camera's camera_info"
        ),
    )
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
    input_transport: str = field(
        default="raw",
        metadata=_describe(
            "raw: sensor_msgs/Image on <camera>/image | compressed: sensor_msgs/CompressedImage (jpeg, png) on "
            "<camera>/image/compressed (after remapping <camera>/image, as image_transport), decoded off the executor"
        ),
    )
    subscribe_on_demand: bool = field(
        default=False,
        metadata=_describe(
            "true: subscribe to the cameras only while some output topic has a subscriber (checked every second), "
            "unsubscribe when the last one leaves | false: always subscribed"
        ),
    )
    output_reliability: str = field(default="reliable", metadata=_describe("output QoS: reliable | best_effort"))
    output_depth: int = field(default=5, metadata=_describe("output history depth"))
    max_image_pixels: int = field(
        default=DELIVERED_IMAGE_PIXELS,
        metadata=_describe(
            "larger input images are dropped as bad input; the default (2048 x 2048) is what best-effort input "
            "delivers reliably, raise it only with input_reliability: reliable"
        ),
    )
    diagnostics_period: float = field(default=1.0, metadata=_describe("seconds between /diagnostics messages"))
    log_throttle: float = field(default=5.0, metadata=_describe("seconds between repeated warnings of one kind"))

    def __post_init__(self) -> None:
        self._choice("backend", BACKENDS)
        self._choice("precision", PRECISIONS)
        self._choice("calibration_method", CALIBRATION_METHODS)
        self._choice("graph_optimization", GRAPH_OPTIMIZATION_LEVELS)
        self._choice("resize_mode", RESIZE_MODES)
        self._choice("output_resolution", OUTPUT_RESOLUTIONS)
        self._choice("input_reliability", RELIABILITIES)
        self._choice("input_transport", INPUT_TRANSPORTS)
        self._choice("output_reliability", RELIABILITIES)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if len(self.input_size) != 2:
            raise ConfigError(f"input_size: must be [height, width], got {list(self.input_size)}")
        height, width = self.input_size
        if not ((height == width == 0) or (0 < height <= MAX_INPUT_SIDE and 0 < width <= MAX_INPUT_SIDE)):
            raise ConfigError(
                f"input_size: must be [0, 0] or two integers in 1..{MAX_INPUT_SIDE}, got {list(self.input_size)}"
            )
        unknown = [name for name in self.drivable_classes if name not in CLASS_NAMES]
        if unknown or not self.drivable_classes:
            raise ConfigError(
                f"drivable_classes: unknown class names {unknown or '(empty list)'}; known: {', '.join(CLASS_NAMES)}"
            )
        for name in ("overlay_alpha", "instance_score_threshold", "instance_overlap_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.min_stuff_area < 0:
            raise ConfigError(f"min_stuff_area: must be >= 0, got {self.min_stuff_area}")
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"cameras: must be a non-empty list of unique namespaces, got {list(self.cameras)}")
        bad = [name for name in self.cameras if name and not CAMERA_NAMESPACE.fullmatch(name)]
        if bad:
            raise ConfigError(
                f"cameras: {bad} are not relative ROS namespaces (tokens of letters, digits and '_', not starting "
                "with a digit, joined by '/')"
            )
        if len(self.camera_pose) not in (6, 6 * len(self.cameras)):
            raise ConfigError(
                f"camera_pose: must be 6 numbers (every camera) or 6 per camera ({6 * len(self.cameras)}), "
                f"got {len(self.camera_pose)}"
            )
        if any(pose[2] <= 0 for pose in self.camera_poses.values()):
            raise ConfigError(f"camera_pose: z (height above the ground) must be > 0, got {list(self.camera_pose)}")
        try:
            grid = self.grid_spec
        except ValueError:
            raise ConfigError(
                f"grid_resolution, grid_x_range, grid_y_range: need resolution > 0 and [min, max] with min < max, got "
                f"{self.grid_resolution}, {list(self.grid_x_range)}, {list(self.grid_y_range)}"
            ) from None
        if grid.width * grid.height > MAX_GRID_CELLS:
            raise ConfigError(f"drivable_grid: more than {MAX_GRID_CELLS} cells; raise grid_resolution")
        for name in ("sync_slop", "sync_timeout", "log_throttle", "grid_max_range"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("queue_size", "input_depth", "output_depth", "max_image_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("threads", "opencv_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.diagnostics_period <= 0:
            raise ConfigError(f"diagnostics_period: must be > 0, got {self.diagnostics_period}")

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {getattr(self, name)!r}")

    @property
    def grid_spec(self) -> GridSpec:
        """The drivable grid's cells (ValueError for bad grid parameters)."""
        (x_min, x_max), (y_min, y_max) = self.grid_x_range, self.grid_y_range  # ValueError unless two numbers each
        return GridSpec(self.grid_resolution, x_min, x_max, y_min, y_max)

    @property
    def camera_poses(self) -> dict[str, tuple[float, ...]]:
        """{camera: (x, y, z, roll, pitch, yaw)} in grid_frame."""
        shared = len(self.camera_pose) == 6
        return {
            camera: tuple(self.camera_pose[0 if shared else 6 * i : (0 if shared else 6 * i) + 6])
            for i, camera in enumerate(self.cameras)
        }

    @property
    def drivable_train_ids(self) -> tuple[int, ...]:
        """Train ids of ``drivable_classes``."""
        return tuple(CLASS_NAMES.index(name) for name in self.drivable_classes)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> SegmentationConfig:
        """Build from plain values (ROS parameters, YAML): lists become tuples. ConfigError naming the parameter
        for an unknown name (with the nearest known one) or a value of the wrong type (None: no value, which is
        what ROS makes of an empty list)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ConfigError(unknown_parameters_message(unknown, fields))
        return cls(**{name: _typed_value(name, value, fields[name].default) for name, value in values.items()})


_TYPE_NAMES = {str: ("a", "string"), bool: ("a", "boolean"), int: ("an", "integer"), float: ("a", "number")}


def _typed_value(name: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the parameter's ``default`` (lists become tuples)."""
    if isinstance(default, tuple):
        element = type(default[0])
        kind = f"a list of {_TYPE_NAMES[element][1]}s"
        if value is None:
            raise ConfigError(f"{name}: must be {kind}, got no value (an empty list has no type in ROS parameters)")
        if not isinstance(value, (list, tuple)) or not all(_is_a(item, element) for item in value):
            raise ConfigError(f"{name}: must be {kind}, got {value!r}")
        return tuple(value)
    if not _is_a(value, type(default)):
        raise ConfigError(f"{name}: must be {' '.join(_TYPE_NAMES[type(default)])}, got {value!r}")
    return value


def _is_a(value: Any, kind: type) -> bool:
    """``isinstance`` as a ROS parameter type: bools are not integers, integers count as numbers."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def unknown_parameters_message(unknown: Iterable[str], known: Iterable[str]) -> str:
    """One line naming each unknown parameter and the nearest known name, e.g.
    ``queue_sise: unknown parameter (did you mean queue_size?)``."""
    known = sorted(known)
    parts = []
    for name in sorted(unknown):
        nearest = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name}: unknown parameter" + (f" (did you mean {nearest[0]}?)" if nearest else ""))
    return "; ".join(parts)


def parameter_defaults(config_class: type = SegmentationConfig) -> dict[str, Any]:
    """{parameter name: default as a ROS parameter value (tuples as lists)} of ``config_class``, in declaration
    order."""
    return {
        f.name: list(f.default) if isinstance(f.default, tuple) else f.default for f in dataclasses.fields(config_class)
    }


def parameter_description(name: str, config_class: type = SegmentationConfig) -> str:
    """The description of parameter ``name`` of ``config_class``."""
    return next(f.metadata["description"] for f in dataclasses.fields(config_class) if f.name == name)


def read_params_files(
    params_files: Iterable[str | Path], overrides: dict[str, str] | None = None, node_name: str = "segmentation_node"
) -> dict[str, Any]:
    """The parameter values a node named ``node_name`` (root namespace) gets from ROS params files, read without
    ROS: each file's ``/**`` section, then its ``node_name`` section, files in order, then ``overrides`` ({name:
    value in YAML syntax}, as ``-p name:=value``); later values win. ValueError naming the file for a missing or
    unparsable one."""
    values: dict[str, Any] = {}
    for file in params_files:
        try:
            sections = yaml.safe_load(Path(file).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"params file {file}: {' '.join(str(error).split())}") from None
        if not isinstance(sections, dict):
            raise ValueError(f"params file {file}: not a mapping of node names to ros__parameters")
        for key in sorted(sections, key=lambda key: key != "/**"):
            if key == "/**" or key.lstrip("/") in (node_name, f"**/{node_name}"):
                values.update((sections[key] or {}).get("ros__parameters", {}))
    values.update({name: yaml.safe_load(value) for name, value in (overrides or {}).items()})
    return values
