"""Evaluate prediction folders in the official Cityscapes formats against a Cityscapes-layout
ground-truth root: the engine behind ``seg-eval`` (and the demo).

Every ground-truth frame of the split must have a prediction for each task asked for; a missing,
duplicate or malformed prediction is an error naming the file, never a silently lower score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data import cityscapes, layout
from seg_perception.evaluation.instance import InstanceEvaluator, find_prediction_file, load_instance_predictions
from seg_perception.evaluation.panoptic import PanopticEvaluator, load_panoptic_prediction
from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import ID_TO_TRAIN_ID, IGNORE_TRAIN_ID, NUM_CLASSES, NUM_LABEL_IDS


def index_predictions(pred_dir: Path | str, pattern: str) -> dict[str, Path]:
    """Files under ``pred_dir`` matching ``pattern`` (recursively), keyed by their frame stem."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"{pred_dir}: no such prediction folder")
    index: dict[str, Path] = {}
    for path in sorted(pred_dir.rglob(pattern)):
        try:
            stem = layout.stem_of(path)
        except ValueError:
            continue
        if stem in index:
            raise ValueError(f"{pred_dir}: two predictions for {stem}: {index[stem]} and {path}")
        index[stem] = path
    return index


def read_semantic_prediction(path: Path, shape: tuple[int, int], train_ids: bool) -> np.ndarray:
    """Prediction PNG (labelIds, or trainIds with ``train_ids``) -> (H, W) uint8 train ids."""
    pred = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pred is None:
        raise ValueError(f"{path}: not a readable PNG")
    if pred.ndim != 2 or pred.dtype != np.uint8:
        raise ValueError(f"{path}: a prediction must be a single-channel 8-bit PNG, got {pred.dtype} {pred.shape}")
    if pred.shape != shape:
        raise ValueError(f"{path}: size {pred.shape[::-1]} differs from the ground truth {shape[::-1]}")
    if train_ids:
        bad = np.unique(pred[(pred >= NUM_CLASSES) & (pred != IGNORE_TRAIN_ID)])
        if bad.size:
            raise ValueError(f"{path}: values {bad[:10].tolist()} are not train ids (0..18, 255)")
        return pred
    if pred.max(initial=0) >= NUM_LABEL_IDS:
        raise ValueError(f"{path}: label id {int(pred.max())} is outside the Cityscapes table (0..33)")
    return ID_TO_TRAIN_ID[pred]


def _prefetch(load: Callable, items: Iterable, workers: int) -> Iterator:
    """``map(load, items)`` with file reading overlapped in threads (OpenCV releases the GIL)."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        yield from pool.map(load, items)


def evaluate_cityscapes(
    gt_root: Path | str,
    split: str,
    semantic_dir: Path | str | None = None,
    instance_dir: Path | str | None = None,
    panoptic_json: Path | str | None = None,
    panoptic_dir: Path | str | None = None,
    train_ids: bool = False,
    cities: list[str] | None = None,
    workers: int = 2,
) -> dict:
    """Metrics of the given prediction folders; tasks without predictions are left out.

    Returns one dict: semantic keys (mIoU, per_class_iou, mDice, pixel_accuracy, fwIoU, ...),
    panoptic keys (PQ, SQ, RQ, PQ_th, PQ_st, ..., per_class_pq), instance keys (AP, AP50,
    per_class_ap), plus
    ``images`` and ``seconds``.
    """
    if (panoptic_json is None) != (panoptic_dir is None):
        raise ValueError("panoptic evaluation needs both the prediction JSON and its PNG folder")
    if semantic_dir is None and instance_dir is None and panoptic_json is None:
        raise ValueError("nothing to evaluate: give a semantic, instance or panoptic prediction")
    start = time.perf_counter()
    samples = cityscapes.CityscapesDataset(gt_root, split, cities=cities).samples
    result: dict = {}
    if semantic_dir is not None:
        result.update(_evaluate_semantic(samples, semantic_dir, train_ids, workers))
    if instance_dir is not None:
        instance = _evaluate_instances(samples, Path(instance_dir), workers)
        result.update(instance, per_class_ap=instance.pop("per_class"))
    if panoptic_json is not None:
        panoptic = _evaluate_panoptic(samples, panoptic_json, panoptic_dir, workers)
        result.update(panoptic, per_class_pq=panoptic.pop("per_class"))
    result["images"] = len(samples)
    result["seconds"] = time.perf_counter() - start
    return result


def _missing(samples, available, task: str, source) -> None:
    missing = [s.stem for s in samples if s.stem not in available]
    if missing:
        raise ValueError(
            f"no {task} prediction in {source} for {len(missing)} of {len(samples)} frames, e.g. {missing[0]}"
        )


def _evaluate_semantic(samples, semantic_dir, train_ids: bool, workers: int) -> dict:
    predictions = index_predictions(semantic_dir, "*.png")
    _missing(samples, predictions, "semantic", semantic_dir)

    def load(sample):
        gt = cityscapes.read_label_ids(sample.label_ids)
        return read_semantic_prediction(predictions[sample.stem], gt.shape, train_ids), ID_TO_TRAIN_ID[gt]

    evaluator = SemanticEvaluator()
    for pred, gt in _prefetch(load, samples, workers):
        evaluator.process(pred, gt)
    return evaluator.evaluate()


def _evaluate_instances(samples, instance_dir: Path, workers: int) -> dict:
    def load(sample):
        gt = cityscapes.read_instance_ids(sample.instance_ids)
        return gt, load_instance_predictions(find_prediction_file(instance_dir, sample.stem), shape=gt.shape)

    evaluator = InstanceEvaluator()
    for gt, predictions in _prefetch(load, samples, workers):
        evaluator.process(gt, predictions)
    return evaluator.evaluate()


def _evaluate_panoptic(samples, panoptic_json, panoptic_dir, workers: int) -> dict:
    predictions = load_panoptic_prediction(panoptic_json, panoptic_dir)
    _missing(samples, predictions, "panoptic", panoptic_json)

    def load(sample):
        return cityscapes.panoptic_target(cityscapes.read_instance_ids(sample.instance_ids)), sample.stem

    evaluator = PanopticEvaluator()
    for gt, stem in _prefetch(load, samples, workers):
        pred_pan, pred_segments = predictions[stem]
        if pred_pan.shape != gt.segment_ids.shape:
            raise ValueError(f"{panoptic_dir}: {stem} has size {pred_pan.shape[::-1]}, gt {gt.segment_ids.shape[::-1]}")
        evaluator.process(gt.segment_ids, gt.segments, pred_pan, pred_segments)
    return evaluator.evaluate()
