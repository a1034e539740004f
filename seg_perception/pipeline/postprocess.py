"""Model output -> label images, drivable-area masks and colour overlays (numpy + OpenCV; no torch, no ROS)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from seg_perception.labels import IGNORE_TRAIN_ID, TRAIN_ID_COLORS
from seg_perception.pipeline.preprocess import InputMapping


def labels_from_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) class scores -> (H, W) uint8 argmax labels at ``size`` = (H, W) (nearest-neighbour)."""
    labels = logits.argmax(axis=0).astype(np.uint8)
    height, width = size
    if labels.shape != (height, width):
        labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    return labels


def labels_to_input(labels: np.ndarray, mapping: InputMapping, full_size: bool = True) -> np.ndarray:
    """(h, w) labels at the model size -> the frame's region, resized (nearest) to the input size when
    ``full_size``, else left at its size inside the model input."""
    top, left, height, width = mapping.region
    region = labels[top : top + height, left : left + width]
    if not full_size or region.shape == mapping.input_size:
        return np.ascontiguousarray(region)
    in_h, in_w = mapping.input_size
    return cv2.resize(region, (in_w, in_h), interpolation=cv2.INTER_NEAREST)


def drivable_mask(labels: np.ndarray, train_ids: Sequence[int]) -> np.ndarray:
    """(H, W) train ids -> (H, W) uint8 mask, 255 where the label is one of ``train_ids``, else 0."""
    lut = np.zeros(256, np.uint8)
    lut[list(train_ids)] = 255
    return lut[labels]


def colour_overlay(image: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    """(H, W, 3) uint8 RGB + (H, W) train ids -> (H, W, 3) uint8: class colours blended in with weight
    ``alpha``; unlabeled pixels (255) keep the image."""
    if image.shape[:2] != labels.shape:
        image = cv2.resize(image, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_LINEAR)
    blended = cv2.addWeighted(image, 1.0 - alpha, TRAIN_ID_COLORS[labels], alpha, 0.0)
    unlabeled = labels == IGNORE_TRAIN_ID
    blended[unlabeled] = image[unlabeled]
    return blended
