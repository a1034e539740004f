"""Pasting mask-head outputs into the image on the host (numpy + OpenCV, no torch).

The detection models return each mask as (M, M) probabilities (M = 28) over its box; this places them in the
image exactly as torchvision's ``paste_masks_in_image`` does (the mask padded by one cell, the box grown by the
same factor and rounded toward zero, a bilinear resize with half-pixel centres), so a host paste of ONNX outputs
equals a torch eager paste.
"""

from __future__ import annotations

import cv2
import numpy as np


def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int) -> tuple[tuple[slice, slice], np.ndarray]:
    """One (M, M) float32 mask over ``box`` (x1, y1, x2, y2 pixels) -> (window, probabilities): the image region
    ``(rows, columns)`` slices it covers, clipped to ``height`` x ``width``, and the float32 probabilities there
    (shape of the window, possibly empty)."""
    size = mask.shape[-1]
    padded = np.pad(mask.astype(np.float32, copy=False), 1)
    scale = (size + 2) / size
    centre_x, centre_y = (box[0] + box[2]) * 0.5, (box[1] + box[3]) * 0.5
    half_w, half_h = (box[2] - box[0]) * 0.5 * scale, (box[3] - box[1]) * 0.5 * scale
    x0, y0, x1, y1 = np.array([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], np.float32)
    x0, y0, x1, y1 = (int(v) for v in (x0, y0, x1, y1))  # toward zero, as torch's .to(int64)
    resized = cv2.resize(padded, (max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)), interpolation=cv2.INTER_LINEAR)
    left, top = max(x0, 0), max(y0, 0)
    right, bottom = max(min(x1 + 1, width), left), max(min(y1 + 1, height), top)
    return (slice(top, bottom), slice(left, right)), resized[top - y0 : bottom - y0, left - x0 : right - x0]


def paste_masks(masks: np.ndarray, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(K, M, M) float32 masks and (K, 4) boxes -> (K, height, width) float32 probabilities, 0 outside each box.

    Memory grows as K x height x width; per-detection consumers should use ``paste_mask``.
    """
    pasted = np.zeros((len(masks), height, width), np.float32)
    for canvas, mask, box in zip(pasted, masks, boxes, strict=True):
        window, probabilities = paste_mask(mask, box, height, width)
        canvas[window] = probabilities
    return pasted
