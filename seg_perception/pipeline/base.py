"""What the task pipelines (semantic, panoptic) share: the model input size, pre-processing a batch of frames into
one model input, and the drivable area and colour overlay of a frame's labels (numpy + OpenCV; no torch, no rclpy).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from seg_perception.backends import InferenceBackend
from seg_perception.model_info import ModelInfo
from seg_perception.model_input import InputMapping, fit_image, normalize_batch
from seg_perception.pipeline.config import ConfigError, SegmentationConfig
from seg_perception.pipeline.postprocess import colour_overlay, drivable_mask


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


class FramePipeline:
    """Frames (H, W, 3) uint8 RGB through ``backend``, fed as ``info`` (the model sidecar) says; ``config``: input
    size and resize mode, output resolution, drivable classes, overlay alpha (and the task's own settings).
    ConfigError when the model cannot take the requested input size. The pipeline does not own the backend.

    Subclasses: ``infer(images) -> batch`` (pre-processing + the model) and ``finish(batch, index) -> result``.
    """

    def __init__(self, backend: InferenceBackend, info: ModelInfo, config: SegmentationConfig) -> None:
        self.backend, self.info, self.config = backend, info, config
        self.model_size = model_input_size(info, config)
        self._pad_rgb = tuple(round(255 * m) for m in info.mean)
        self._drivable_ids = config.drivable_train_ids

    @property
    def full_size(self) -> bool:
        """Outputs at the frame's resolution (else at its region of the model input)."""
        return self.config.output_resolution == "input"

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, tuple[InputMapping, ...], float]:
        """N frames of any sizes -> (N, 3, h, w) float32 normalised model input, how each maps back, and the ms."""
        start = time.perf_counter()
        fitted, mappings = zip(
            *(fit_image(image, self.model_size, self.config.resize_mode, self._pad_rgb) for image in images),
            strict=True,
        )
        batch = normalize_batch(fitted, self.info.mean, self.info.std)
        return batch, tuple(mappings), (time.perf_counter() - start) * 1e3

    def drivable(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) train ids -> (H, W) uint8 drivable-area mask, 255 on the configured drivable classes."""
        return drivable_mask(labels, self._drivable_ids)

    def overlay(self, image: np.ndarray, result) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame + its result (``result.labels`` (h, w) train ids) -> the colour overlay at the
        labels' resolution."""
        return colour_overlay(image, result.labels, self.config.overlay_alpha)
