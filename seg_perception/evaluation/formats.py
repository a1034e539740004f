"""Writers of the official Cityscapes prediction formats (what ``seg-eval`` and the official
scripts read):

- semantic: one labelIds PNG per frame, ``<semantic_dir>/<stem>_labelIds.png``;
- instance: ``<instance_dir>/<stem>.txt`` with lines ``masks/<stem>_<k>.png <labelId> <score>``
  and the binary mask PNGs beside it;
- panoptic: COCO panoptic JSON (``annotations`` with ``segments_info``; category ids are
  Cityscapes label ids) + one RGB PNG per frame (id = R + 256 G + 256^2 B).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from seg_perception.evaluation.instance import InstancePrediction
from seg_perception.evaluation.panoptic import id_to_rgb
from seg_perception.labels import LABELS, TRAIN_ID_TO_ID


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not write PNG")


def write_semantic_prediction(out_dir: Path | str, stem: str, train_ids: np.ndarray) -> Path:
    """(H, W) uint8 train ids (255 = none) -> ``<out_dir>/<stem>_labelIds.png`` in label ids."""
    path = Path(out_dir) / f"{stem}_labelIds.png"
    _write_png(path, TRAIN_ID_TO_ID[train_ids])
    return path


def write_instance_predictions(out_dir: Path | str, stem: str, predictions: Iterable[InstancePrediction]) -> Path:
    """Instances of one frame -> ``<out_dir>/<stem>.txt`` + ``<out_dir>/masks/<stem>_<k>.png``."""
    out_dir = Path(out_dir)
    lines = []
    for k, prediction in enumerate(predictions):
        mask_name = f"masks/{stem}_{k:03d}.png"
        _write_png(out_dir / mask_name, prediction.mask.astype(np.uint8) * 255)
        lines.append(f"{mask_name} {prediction.label_id} {prediction.score:.6f}\n")
    txt = out_dir / f"{stem}.txt"
    txt.parent.mkdir(parents=True, exist_ok=True)
    txt.write_text("".join(lines))
    return txt


def write_panoptic_predictions(
    json_path: Path | str, png_dir: Path | str, frames: Iterable[tuple[str, np.ndarray, list[dict]]]
) -> None:
    """[(stem, (H, W) int segment ids, segments {id, category_id, ...})] -> COCO panoptic JSON + PNGs."""
    png_dir = Path(png_dir)
    annotations = []
    for stem, segment_ids, segments in frames:
        file_name = f"{stem}_panoptic.png"
        _write_png(png_dir / file_name, id_to_rgb(segment_ids)[..., ::-1])
        annotations.append(
            {"image_id": stem, "file_name": file_name, "segments_info": [{**s, "id": int(s["id"])} for s in segments]}
        )
    categories = [
        {
            "id": lb.id,
            "name": lb.name,
            "color": list(lb.color),
            "supercategory": lb.category,
            "isthing": int(lb.has_instances),
        }
        for lb in LABELS
        if not lb.ignore_in_eval
    ]
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps({"annotations": annotations, "categories": categories}))
