"""Model output -> label images (numpy + OpenCV; no torch, no ROS)."""

from __future__ import annotations

import cv2
import numpy as np


def labels_from_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) class scores -> (H, W) uint8 argmax labels at ``size`` = (H, W) (nearest-neighbour)."""
    labels = logits.argmax(axis=0).astype(np.uint8)
    height, width = size
    if labels.shape != (height, width):
        labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    return labels
