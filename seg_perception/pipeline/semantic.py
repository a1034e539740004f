"""Semantic segmentation of camera frames through one inference backend (no rclpy; torch only inside a torch
backend).

Two stages, so a node can overlap them across frames: ``infer`` (pre-process a batch of frames of any
sizes + one backend call) and ``finish`` (per frame: argmax, labels back to the frame). The drivable area and
the colour overlay come from ``FramePipeline``. Every stage reports its time in ms.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.model_input import InputMapping
from seg_perception.pipeline.base import FramePipeline
from seg_perception.pipeline.postprocess import argmax_channels, labels_to_input


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


class SemanticPipeline(FramePipeline):
    """Frames (H, W, 3) uint8 RGB -> SemanticResult (see ``FramePipeline``)."""

    def infer(self, images: Sequence[np.ndarray]) -> InferenceBatch:
        """N frames (H_i, W_i, 3) uint8 RGB -> one InferenceBatch (one backend call for a dynamic-batch model)."""
        batch, mappings, preprocess_ms = self.prepare(images)
        start = time.perf_counter()
        if self.info.dynamic:
            logits = self.backend.infer({self.info.input_name: batch})[self.info.output_name]
        else:  # a fixed-shape export takes one frame per call
            logits = np.concatenate(
                [
                    self.backend.infer({self.info.input_name: batch[i : i + 1]})[self.info.output_name]
                    for i in range(len(batch))
                ]
            )
        return InferenceBatch(logits, mappings, preprocess_ms, (time.perf_counter() - start) * 1e3)

    def finish(self, batch: InferenceBatch, index: int) -> SemanticResult:
        """Frame ``index`` of ``batch`` -> its labels at the input (or model) resolution."""
        start = time.perf_counter()
        labels = argmax_channels(batch.logits[index])
        labels = labels_to_input(labels, batch.mappings[index], full_size=self.full_size)
        return SemanticResult(labels, (time.perf_counter() - start) * 1e3)
