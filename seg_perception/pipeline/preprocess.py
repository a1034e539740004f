"""Camera image -> model input tensor (numpy + OpenCV; no torch, no ROS)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def normalize_image(
    image: np.ndarray, size: tuple[int, int], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, h, w) float32 ``(x / 255 - mean) / std`` at ``size`` = (h, w).

    Resized bilinearly when the size differs; mean/std are per RGB channel in 0..1 units.
    """
    height, width = size
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    scale = np.float32(1.0 / 255.0) / np.asarray(std, np.float32)
    offset = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    normalised = image.astype(np.float32) * scale - offset
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])
