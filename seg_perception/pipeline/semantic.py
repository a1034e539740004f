"""Semantic segmentation of camera frames through one inference backend (no rclpy; torch only inside a torch
backend).

Two stages, so a node can overlap them across frames: ``infer`` (pre-process a batch of frames of any
sizes + one backend call) and ``finish`` (per frame: argmax, labels back to the frame, drivable area).
``colour_overlay`` is the third, optional output. Every stage reports its time in ms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg_perception.backends import InferenceBackend, UnsupportedPrecisionError, create_backend
from seg_perception.model_info import ModelInfo, read_model_info
from seg_perception.pipeline.config import ConfigError, SegmentationConfig
from seg_perception.pipeline.postprocess import argmax_channels, colour_overlay, drivable_mask, labels_to_input
from seg_perception.pipeline.preprocess import InputMapping, fit_image, normalize_batch

SHIPPED_MODEL = Path("models") / "bisenetv2_synth.onnx"
"""The default model, relative to the package's share folder (or the source checkout)."""
SHIPPED_CHECKPOINT = SHIPPED_MODEL.with_suffix(".pt")
"""The default for the torch backend: the same model's PyTorch checkpoint."""
LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceBatch:
    """Output of ``SemanticPipeline.infer``: logits (N, C, h, w) float32 for N frames and how each maps back."""

    logits: np.ndarray
    mappings: tuple[InputMapping, ...]
    preprocess_ms: float
    infer_ms: float


@dataclass(frozen=True)
class SemanticResult:
    """One frame's labels (H, W) uint8 train ids (255 unlabeled) and the time it took to make them."""

    labels: np.ndarray
    postprocess_ms: float


class SemanticPipeline:
    """Frames (H, W, 3) uint8 RGB -> SemanticResult, through ``backend`` fed as ``info`` (the model sidecar) says.

    ``config``: input size and resize mode, output resolution, drivable classes, overlay alpha. ConfigError
    when the model cannot take the requested input size. The pipeline does not own the backend.
    """

    def __init__(self, backend: InferenceBackend, info: ModelInfo, config: SegmentationConfig) -> None:
        self.backend, self.info, self.config = backend, info, config
        self.model_size = model_input_size(info, config)
        self._pad_rgb = tuple(round(255 * m) for m in info.mean)
        self._drivable_ids = config.drivable_train_ids

    def infer(self, images: Sequence[np.ndarray]) -> InferenceBatch:
        """N frames (H_i, W_i, 3) uint8 RGB -> one InferenceBatch (one backend call for a dynamic-batch model)."""
        start = time.perf_counter()
        fitted, mappings = zip(
            *(fit_image(image, self.model_size, self.config.resize_mode, self._pad_rgb) for image in images),
            strict=True,
        )
        batch = normalize_batch(fitted, self.info.mean, self.info.std)
        preprocessed = time.perf_counter()
        if self.info.dynamic:
            logits = self.backend.infer({self.info.input_name: batch})[self.info.output_name]
        else:  # a fixed-shape export takes one frame per call
            logits = np.concatenate(
                [
                    self.backend.infer({self.info.input_name: batch[i : i + 1]})[self.info.output_name]
                    for i in range(len(batch))
                ]
            )
        done = time.perf_counter()
        return InferenceBatch(logits, tuple(mappings), (preprocessed - start) * 1e3, (done - preprocessed) * 1e3)

    def finish(self, batch: InferenceBatch, index: int) -> SemanticResult:
        """Frame ``index`` of ``batch`` -> its labels at the input (or model) resolution."""
        start = time.perf_counter()
        labels = argmax_channels(batch.logits[index])
        labels = labels_to_input(labels, batch.mappings[index], full_size=self.config.output_resolution == "input")
        return SemanticResult(labels, (time.perf_counter() - start) * 1e3)

    def drivable(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) train ids -> (H, W) uint8 drivable-area mask, 255 on the configured drivable classes."""
        return drivable_mask(labels, self._drivable_ids)

    def overlay(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame + its labels -> the colour overlay at the labels' resolution."""
        return colour_overlay(image, labels, self.config.overlay_alpha)


def model_input_size(info: ModelInfo, config: SegmentationConfig) -> tuple[int, int]:
    """(H, W) the model runs at: ``config.input_size``, or the exported size for [0, 0]. ConfigError when a
    fixed-size model cannot take the requested size."""
    requested = tuple(config.input_size)
    size = info.input_size if requested == (0, 0) else requested
    if not info.dynamic and size != info.input_size:
        raise ConfigError(
            f"input_size: the model was exported at a fixed {info.input_size[0]}x{info.input_size[1]}, "
            f"not {size[0]}x{size[1]} (export with --dynamic or use [0, 0])"
        )
    return size


def check_model(backend: InferenceBackend, info: ModelInfo, size: tuple[int, int]) -> None:
    """Check at start-up that ``backend`` is the model ``info`` (the sidecar) describes: its input and output
    names, the input's rank and channels, and, by one warm-up inference on a zero frame at ``size`` (H, W), the
    class count of the output (N, num_classes, h, w). ValueError saying what does not match."""
    inputs = {spec.name: spec for spec in backend.input_specs}
    outputs = [spec.name for spec in backend.output_specs]
    if list(inputs) != [info.input_name]:
        raise ValueError(f"the sidecar names input {info.input_name!r}, the model has input(s) {list(inputs)}")
    if info.output_name not in outputs:
        raise ValueError(f"the sidecar names output {info.output_name!r}, the model has output(s) {outputs}")
    shape = inputs[info.input_name].shape
    if len(shape) != 4 or shape[1] not in (None, 3):
        raise ValueError(f"the model input {inputs[info.input_name]} is not (N, 3, H, W) images")
    frame = np.zeros((1, 3, *size), np.float32)
    try:
        logits = backend.infer({info.input_name: frame})[info.output_name]
    except Exception as error:  # any backend failure at this size means the node cannot run
        raise ValueError(f"the model does not run at {size[0]}x{size[1]}: {error}") from None
    if logits.ndim != 4 or logits.shape[:2] != (1, info.num_classes):
        raise ValueError(
            f"the model's {info.output_name!r} is {tuple(logits.shape)} for one frame, the sidecar says "
            f"(1, {info.num_classes}, H, W) ({info.num_classes} classes)"
        )


def resolve_model_path(config: SegmentationConfig, share_dirs: Sequence[Path]) -> Path:
    """``config.model_path``, or the shipped model (its checkpoint for the torch backend) found in the first of
    ``share_dirs`` that holds it.

    FileNotFoundError naming the places searched.
    """
    if config.model_path:
        path = Path(config.model_path).expanduser()
        if path.is_dir():
            raise FileNotFoundError(f"model_path: {path} is a directory, not a model file")
        if not path.is_file():
            raise FileNotFoundError(f"model_path: {path} does not exist")
        return path
    shipped = SHIPPED_CHECKPOINT if config.backend == "torch" else SHIPPED_MODEL
    for folder in share_dirs:
        if (folder / shipped).is_file():
            return folder / shipped
    raise FileNotFoundError(f"model_path is empty and no {shipped} in {', '.join(map(str, share_dirs))}")


def open_backend(config: SegmentationConfig, model_path: Path) -> tuple[InferenceBackend, ModelInfo]:
    """Load ``model_path`` into the backend ``config`` names and check it against its sidecar (``check_model``, one
    warm-up inference at the model input size); returns (backend, model info).

    Raises FileNotFoundError / ValueError for a missing, unreadable or mismatching model (or sidecar), ConfigError
    for an input size the model cannot take, and BackendUnavailableError when the backend cannot run here; the
    messages name the file and the reason.
    """
    options: dict[str, object] = {}
    if config.backend in ("auto", "onnxruntime") and config.threads:
        options["intra_op_threads"] = config.threads
    if config.backend in ("auto", "tensorrt"):
        if config.engine_cache_dir:
            options["cache_dir"] = config.engine_cache_dir
        if config.calibration_images:
            options["calibration_images"] = config.calibration_images
    try:
        backend = create_backend(
            config.backend, model_path, device=config.device, precision=config.precision, **options
        )
    except UnsupportedPrecisionError as error:
        LOGGER.warning("%s; falling back to fp32", error)
        backend = create_backend(config.backend, model_path, device=config.device, precision="fp32", **options)
    try:
        if backend.name == "torch":
            from seg_perception.models.checkpoint import checkpoint_model_info

            info = checkpoint_model_info(model_path, tuple(config.input_size))
        else:
            info = read_model_info(model_path)
        try:
            check_model(backend, info, model_input_size(info, config))
        except ValueError as error:
            if isinstance(error, ConfigError):
                raise
            raise ValueError(f"{model_path}: {error}") from None
    except BaseException:
        backend.close()
        raise
    return backend, info
