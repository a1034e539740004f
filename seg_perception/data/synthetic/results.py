"""What the generator returns: one frame in memory (``SynthFrame``) and a written split (``SynthSummary``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from seg_perception.labels import CLASS_NAMES, ID_TO_TRAIN_ID, IGNORE_TRAIN_ID, NUM_CLASSES


@dataclass
class SynthFrame:
    """One rendered frame, in memory.

    image: (H, W, 3) uint8 RGB; label_ids: (H, W) uint8 Cityscapes label ids; instance_ids: (H, W)
    uint16, ``label_id * 1000 + k`` on thing instances and the plain label id elsewhere; objects: the
    ``gtFine_polygons.json`` objects (``{"label", "polygon": [[x, y], ...]}``) in drawing order;
    instance_tracks: instance id -> track id, stable over the sequence; camera: ``camera.json`` content.
    """

    image: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray
    objects: list[dict]
    instance_tracks: dict[int, int]
    camera: dict

    def polygons_json(self) -> dict:
        """The ``gtFine_polygons.json`` document."""
        height, width = self.label_ids.shape
        return {"imgHeight": height, "imgWidth": width, "objects": self.objects}


@dataclass
class SynthSummary:
    """What ``generate_split`` wrote: frame count, wall time, pixels per train id, frame stems."""

    split: str
    frames: int
    seconds: float
    class_pixels: np.ndarray
    """(CLASS_COUNT_BINS,) int64: pixels per train id 0..18, last bin: ignored (train id 255)."""
    stems: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def class_fractions(self) -> dict[str, float]:
        """Fraction of all written pixels per train class name, plus ``"ignored"``."""
        total = max(int(self.class_pixels.sum()), 1)
        names = [*CLASS_NAMES, "ignored"]
        return {name: int(count) / total for name, count in zip(names, self.class_pixels, strict=True)}


def class_pixel_counts(label_ids: np.ndarray) -> np.ndarray:
    """(H, W) label ids -> (CLASS_COUNT_BINS,) int64 pixel counts per train id, ignored pixels last."""
    per_label_id = cv2.calcHist([label_ids], [0], None, [256], [0, 256]).ravel()
    counts = np.bincount(ID_TO_TRAIN_ID, weights=per_label_id, minlength=256)
    return np.append(counts[:NUM_CLASSES], counts[IGNORE_TRAIN_ID]).astype(np.int64)
