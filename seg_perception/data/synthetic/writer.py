"""Annotation files: one ``SynthFrame`` -> the Cityscapes files of its frame, and a preview mosaic of a split.

Per frame: leftImg8bit (RGB PNG), gtFine_labelIds (uint8 PNG), gtFine_instanceIds (uint16 PNG), gtFine_color
(RGBA PNG of the label colours), gtFine_polygons (JSON) and camera (JSON), at the paths of ``data.layout``; with
a ``truth.FrameTruth`` also gtFine_drivableGrid (uint8 PNG) and gtFine_objects (JSON), the bird's-eye truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data.layout import camera_path, gt_path, image_path
from seg_perception.data.synthetic.results import SynthFrame
from seg_perception.data.synthetic.truth import FrameTruth
from seg_perception.labels import ID_COLORS

_PNG_IMAGE = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]  # fmt: skip
_PNG_LABEL = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
_BGRA_BY_ID = np.concatenate([ID_COLORS[:, ::-1], np.full((256, 1), 255, np.uint8)], axis=1)[None]  # (1, 256, 4)


def write_frame(root: Path | str, split: str, stem: str, frame: SynthFrame, truth: FrameTruth | None = None) -> None:
    """Write one frame in the Cityscapes layout: leftImg8bit, gtFine (4 files; 6 with ``truth``), camera."""
    paths = {
        "image": image_path(root, split, stem),
        "labelIds": gt_path(root, split, stem, "labelIds"),
        "instanceIds": gt_path(root, split, stem, "instanceIds"),
        "color": gt_path(root, split, stem, "color"),
        "polygons": gt_path(root, split, stem, "polygons"),
        "camera": camera_path(root, split, stem),
    }
    for path in {p.parent for p in paths.values()}:
        path.mkdir(parents=True, exist_ok=True)
    _imwrite(paths["image"], cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), _PNG_IMAGE)
    _imwrite(paths["labelIds"], frame.label_ids, _PNG_LABEL)
    _imwrite(paths["instanceIds"], frame.instance_ids, _PNG_LABEL)
    _imwrite(paths["color"], cv2.LUT(cv2.merge([frame.label_ids] * 4), _BGRA_BY_ID), _PNG_LABEL)
    paths["polygons"].write_text(json.dumps(frame.polygons_json()))
    paths["camera"].write_text(json.dumps(frame.camera, indent=4))
    if truth is not None:
        _imwrite(gt_path(root, split, stem, "drivableGrid"), truth.grid, _PNG_LABEL)
        gt_path(root, split, stem, "objects").write_text(json.dumps(truth.objects))


def _imwrite(path: Path, array: np.ndarray, params: list[int]) -> None:
    if not cv2.imwrite(str(path), array, params):
        raise OSError(f"could not write {path}")


def write_preview(
    root: Path | str, split: str, stems: list[str], path: Path | str, tiles: int = 6, tile_width: int = 512
) -> Path:
    """Mosaic of up to ``tiles`` frames spread over ``stems``: image | colour label per row."""
    if not stems:
        raise ValueError("no frames to preview")
    picks = sorted({stems[i] for i in np.linspace(0, len(stems) - 1, min(tiles, len(stems))).round().astype(int)})
    rows = []
    for stem in picks:
        image = cv2.imread(str(image_path(root, split, stem)), cv2.IMREAD_COLOR)
        color = cv2.imread(str(gt_path(root, split, stem, "color")), cv2.IMREAD_COLOR)
        if image is None or color is None:
            raise FileNotFoundError(f"missing image or colour label for {stem} under {root}")
        scale = min(1.0, tile_width / image.shape[1])
        size = (round(image.shape[1] * scale), max(1, round(image.shape[0] * scale)))
        row = [
            cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(color, size, interpolation=cv2.INTER_NEAREST),
        ]
        rows.append(np.concatenate(row, axis=1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _imwrite(path, np.concatenate(rows, axis=0), _PNG_LABEL)
    return path
