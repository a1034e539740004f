"""INT8 calibration data shared by the TensorRT and ONNX Runtime backends (numpy + OpenCV; no torch).

A calibration set is a folder of camera frames (png/jpg, recursive, sorted, at most ``max_images``), normalised
exactly like the CPU pipeline (``model_input.normalize_image`` with the sidecar's mean / std);
``calibration_digest`` names the set by its contents, so a cache keyed by it is rebuilt exactly when the frames
change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seg_perception.data.cityscapes import read_image
from seg_perception.model_input import normalize_image

DEFAULT_CALIBRATION_IMAGES = 512
"""At most this many images of the calibration folder are used."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def calibration_files(folder: str | Path, max_images: int = DEFAULT_CALIBRATION_IMAGES) -> list[Path]:
    """The first ``max_images`` images under ``folder`` (sorted paths). FileNotFoundError for a missing folder,
    ValueError for one without images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration image folder {folder} does not exist")
    if max_images < 1:
        raise ValueError(f"calibration_max_images must be >= 1, got {max_images}")
    files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)[:max_images]
    if not files:
        raise ValueError(f"calibration folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def calibration_digest(files: Sequence[Path]) -> str:
    """sha256 (hex) over the files' names and bytes, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class CalibrationBatches:
    """The images of ``folder`` (see ``calibration_files``) as (N, 3, H, W) float32 batches of ``shape``,
    normalised with ``mean`` / ``std``. A last partial batch is dropped. ValueError / FileNotFoundError when there
    is not one full batch of images; ValueError naming the file for an unreadable image (every image is decoded
    once here, so a bad one stops calibration before any work)."""

    def __init__(
        self,
        folder: str | Path,
        shape: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        max_images: int = DEFAULT_CALIBRATION_IMAGES,
    ) -> None:
        self.shape = tuple(shape)
        if len(self.shape) != 4 or self.shape[1] != 3:
            raise ValueError(f"calibration batches must be (N, 3, H, W), got {self.shape}")
        self.files = calibration_files(folder, max_images)
        if len(self.files) < self.shape[0]:
            raise ValueError(
                f"calibration folder {folder} has {len(self.files)} image(s) ({', '.join(IMAGE_SUFFIXES)}), "
                f"at least {self.shape[0]} needed (one batch)"
            )
        for path in self.files:
            read_image(path)
        self._mean, self._std = tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.files) // self.shape[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        batch, _, height, width = self.shape
        for start in range(0, len(self) * batch, batch):
            images = [read_image(path) for path in self.files[start : start + batch]]
            yield np.concatenate([normalize_image(image, (height, width), self._mean, self._std) for image in images])
