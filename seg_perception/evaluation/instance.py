"""Cityscapes instance-level mask AP, following the official evaluator's rules.

Reference: ``cityscapesscripts/evaluation/evalInstanceLevelSemanticLabeling.py`` with
``distanceAvailable = False`` (the only AP it reports without camera files):

* Evaluated classes: the 8 thing classes (``THING_LABEL_IDS``); predictions of other labels are
  rejected here (the official script drops them silently, or crashes on unknown ids).
* Ground truth comes from the instanceIds image: each distinct pixel value v of a thing label is one
  region (label ``v // 1000`` if ``v >= 1000`` else ``v``). Values < 1000 are crowd (group) regions;
  instances smaller than ``MIN_REGION_SIZE`` pixels are not counted as ground truth.
* Void: pixels whose raw value is the id of a label with ``ignore_in_eval`` (so a caravan crowd,
  29, is void but a caravan instance, 29000+, is not). Thing crowds are handled as groups.
* Overlap ``t`` in ``OVERLAPS`` (0.50:0.95:0.05, strict ``IoU > t``). A prediction matched to a
  counted gt instance is a true positive if it has the highest score among that instance's matches,
  else a false positive. A prediction whose best same-class overlap (groups and small instances
  included) exceeds ``t`` without a counted instance is ignored. An unmatched prediction is a false
  positive unless (void + same-class group + same-class small-instance pixels) / area > t; a pixel
  of a group smaller than ``MIN_REGION_SIZE`` counts twice there, as in the official script.
* AP per class and overlap: precision/recall at every distinct score, plus the point (recall 0,
  precision 1), integrated with the trapezoid rule (what the official "step-wise" convolution
  computes); precision is not made monotone. Empty predictions are skipped.
* A class without counted gt instances gets NaN and is left out of the means; a class with gt and
  no prediction gets 0. A class with gt and predictions of which none is scored at some overlap
  (all ignored) gets 0 there; the official script raises IndexError in that case.
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from seg_perception.labels import (
    INSTANCE_ID_DIVISOR,
    LABEL_BY_ID,
    LABELS,
    NUM_LABEL_IDS,
    THING_LABEL_IDS,
    instance_label_ids,
)

OVERLAPS = np.arange(0.5, 1.0, 0.05)
"""(10,) IoU thresholds, bit-identical to the official ``np.arange(0.5, 1., 0.05)``."""
MIN_REGION_SIZE = 100
"""Gt instances with fewer pixels are not counted (predictions matching them are ignored)."""

_VOID_IDS = np.array([lb.id for lb in LABELS if lb.ignore_in_eval and lb.id >= 0])
_NUM_THINGS = len(THING_LABEL_IDS)
_NUM_OVERLAPS = len(OVERLAPS)
_AP50 = int(np.flatnonzero(np.isclose(OVERLAPS, 0.5))[0])
_IGNORED, _FALSE, _TRUE = -1, 0, 1


@dataclass
class InstancePrediction:
    """One predicted instance: mask (H, W) bool, Cityscapes label id, confidence score."""

    mask: np.ndarray
    label_id: int
    score: float


class InstanceEvaluator:
    """Streaming Cityscapes instance AP: ``process`` image by image, then ``evaluate``.

    Per image only per-prediction outcomes are kept: score, class and (10,) true/false/ignored
    flags, plus per-class counts of gt instances and predictions. Recall is TP / counted gt
    instances (a gt is either the true positive of one prediction or missed).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every processed image."""
        self._scores: list[np.ndarray] = []  # per image (P,) float64
        self._classes: list[np.ndarray] = []  # per image (P,) index into THING_LABEL_IDS
        self._outcomes: list[np.ndarray] = []  # per image (P, T) int8 _TRUE / _FALSE / _IGNORED
        self._num_gt = np.zeros(_NUM_THINGS, np.int64)  # (C,) counted gt instances
        self._num_pred = np.zeros(_NUM_THINGS, np.int64)  # (C,) non-empty predictions

    def process(self, gt_instance_ids: np.ndarray, predictions: list[InstancePrediction]) -> None:
        """Match one image: gt_instance_ids (H, W) Cityscapes instanceIds; predictions with (H, W) masks."""
        gt = _check_gt(gt_instance_ids)
        counts = np.bincount(gt.ravel())
        values = np.flatnonzero(counts)  # (K,) gt region values present
        areas = counts[values]
        region_labels = instance_label_ids(values)
        unknown = values[~np.isin(region_labels, list(LABEL_BY_ID))]
        if unknown.size:
            raise ValueError(f"gt instanceIds hold values of unknown label ids: {unknown.tolist()}")
        is_void = np.isin(values, _VOID_IDS)
        is_group = values < INSTANCE_ID_DIVISOR
        is_small = areas < MIN_REGION_SIZE
        counted = ~is_group & ~is_small
        ignore_weight = is_group.astype(np.int64) + is_small  # official counts a small group twice

        classes, scores, best_iou, best_gt, ignore_frac = [], [], [], [], []
        for i, pred in enumerate(predictions):
            label_id, score, mask = _check_prediction(pred, i, gt.shape)
            rows = np.flatnonzero(mask.any(axis=1))
            if rows.size == 0:
                continue
            band = mask[rows[0] : rows[-1] + 1]
            cols = np.flatnonzero(band.any(axis=0))
            crop = band[:, cols[0] : cols[-1] + 1]
            gt_crop = gt[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            inter = np.bincount(gt_crop[crop], minlength=counts.size)[values]  # (K,)
            area = int(inter.sum())
            same = region_labels == label_id
            iou = np.where(same, inter / (areas + area - inter), -1.0)
            best = int(np.argmax(iou))
            ignored = inter[is_void].sum() + inter[same] @ ignore_weight[same]
            classes.append(THING_LABEL_IDS.index(label_id))
            scores.append(score)
            best_iou.append(iou[best])
            best_gt.append(best if same[best] and counted[best] else -1)
            ignore_frac.append(ignored / area)

        num_gt = np.array([np.count_nonzero(counted & (region_labels == lid)) for lid in THING_LABEL_IDS])
        classes_np = np.array(classes, np.int64)
        outcomes = _match(np.array(scores), np.array(best_iou), np.array(best_gt, np.int64), np.array(ignore_frac))

        self._scores.append(np.array(scores, np.float64))
        self._classes.append(classes_np)
        self._outcomes.append(outcomes)
        self._num_gt += num_gt
        self._num_pred += np.bincount(classes_np, minlength=_NUM_THINGS)

    def evaluate(self) -> dict:
        """{"AP", "AP50", "per_class": {name: {"AP", "AP50"}}}; NaN for classes without gt."""
        scores = np.concatenate([np.empty(0), *self._scores])
        classes = np.concatenate([np.empty(0, np.int64), *self._classes])
        outcomes = np.concatenate([np.empty((0, _NUM_OVERLAPS), np.int8), *self._outcomes])
        ap = np.full((_NUM_THINGS, _NUM_OVERLAPS), np.nan)  # (C, T)
        for c in range(_NUM_THINGS):
            if self._num_gt[c] == 0:
                continue
            if self._num_pred[c] == 0:
                ap[c] = 0.0
                continue
            of_class = classes == c
            for t in range(_NUM_OVERLAPS):
                scored = of_class & (outcomes[:, t] != _IGNORED)
                ap[c, t] = _average_precision(scores[scored], outcomes[scored, t] == _TRUE, int(self._num_gt[c]))
        class_ap, class_ap50 = ap.mean(axis=1), ap[:, _AP50]
        return {
            "AP": _nanmean(class_ap),
            "AP50": _nanmean(class_ap50),
            "per_class": {
                LABEL_BY_ID[lid].name: {"AP": _or_none(class_ap[c]), "AP50": _or_none(class_ap50[c])}
                for c, lid in enumerate(THING_LABEL_IDS)
            },
        }


def _check_gt(gt_instance_ids: np.ndarray) -> np.ndarray:
    """(H, W) integer instanceIds -> the same array; ValueError on anything else."""
    gt = np.asarray(gt_instance_ids)
    if gt.ndim != 2 or gt.size == 0 or not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f"gt instanceIds must be a non-empty (H, W) integer array, got {gt.dtype} {gt.shape}")
    low, high = int(gt.min()), int(gt.max())
    if low < 0 or high >= NUM_LABEL_IDS * INSTANCE_ID_DIVISOR:
        raise ValueError(f"gt instanceIds outside [0, {NUM_LABEL_IDS * INSTANCE_ID_DIVISOR}): min {low}, max {high}")
    return gt


def _check_prediction(pred: InstancePrediction, index: int, shape: tuple[int, ...]) -> tuple[int, float, np.ndarray]:
    """-> (label id, score, (H, W) bool mask); ValueError naming prediction ``index`` otherwise."""
    if pred.label_id not in THING_LABEL_IDS:
        raise ValueError(f"prediction {index}: {_label_problem(pred.label_id)}")
    try:
        score = float(pred.score)
    except (TypeError, ValueError):
        raise ValueError(f"prediction {index}: score {pred.score!r} is not a number") from None
    if not math.isfinite(score):
        raise ValueError(f"prediction {index}: score {pred.score!r} is not a finite number")
    mask = np.asarray(pred.mask)
    if mask.shape != shape:
        raise ValueError(f"prediction {index}: mask shape {mask.shape} differs from the gt shape {shape}")
    return int(pred.label_id), score, mask if mask.dtype == bool else mask != 0


def _label_problem(label_id: int) -> str:
    if label_id in LABEL_BY_ID:
        return f"label id {label_id} ({LABEL_BY_ID[label_id].name}) is not an evaluated thing class"
    return f"unknown label id {label_id}"


def _match(scores: np.ndarray, best_iou: np.ndarray, best_gt: np.ndarray, ignore_frac: np.ndarray) -> np.ndarray:
    """Outcome of P predictions of one image at every overlap.

    scores, best_iou (best same-class IoU), best_gt (index of that region if it is a counted gt
    instance, else -1), ignore_frac: (P,). Returns (P, T) int8 _TRUE / _FALSE / _IGNORED.
    """
    above = best_iou[:, None] > OVERLAPS  # (P, T)
    candidate = above & (best_gt[:, None] >= 0)
    outcomes = np.where(~above & (ignore_frac[:, None] <= OVERLAPS), _FALSE, _IGNORED).astype(np.int8)
    outcomes[candidate] = _FALSE
    pred_idx, t_idx = np.nonzero(candidate)
    # the highest-scoring candidate of each (overlap, gt instance) is the true positive
    order = np.lexsort((-scores[pred_idx], best_gt[pred_idx], t_idx))
    pred_idx, t_idx, gt_idx = pred_idx[order], t_idx[order], best_gt[pred_idx[order]]
    first = np.ones(order.size, bool)
    first[1:] = (t_idx[1:] != t_idx[:-1]) | (gt_idx[1:] != gt_idx[:-1])
    outcomes[pred_idx[first], t_idx[first]] = _TRUE
    return outcomes


def _average_precision(scores: np.ndarray, is_true: np.ndarray, num_gt: int) -> float:
    """Trapezoid area under precision(recall) over (N,) scored detections, from (recall 0, precision 1)."""
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    tp = np.cumsum(is_true[order])
    fp = np.arange(1, scores.size + 1) - tp
    last = np.append(sorted_scores[1:] != sorted_scores[:-1], True)  # one point per distinct score
    precision = np.concatenate(([1.0], tp[last] / (tp[last] + fp[last])))
    recall = np.concatenate(([0.0], tp[last] / num_gt))
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))


def _nanmean(values: np.ndarray) -> float | None:
    """Mean of the non-NaN entries; None (JSON null) when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def _or_none(value: float) -> float | None:
    """NaN (no counted gt) -> None, so results stay valid JSON like the other evaluators'."""
    return None if np.isnan(value) else float(value)


def find_prediction_file(pred_dir: str | os.PathLike, stem: str) -> Path:
    """The one ``<stem>*.txt`` anywhere under pred_dir (official rule); ValueError if none or several."""
    if not os.path.isdir(pred_dir):
        raise ValueError(f"prediction folder {pred_dir} does not exist")
    found = [
        Path(root) / name for root, _, names in os.walk(pred_dir) for name in fnmatch.filter(names, f"{stem}*.txt")
    ]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise ValueError(f"{what} prediction files {stem}*.txt under {pred_dir}: {sorted(map(str, found))}")
    return found[0]


def load_instance_predictions(
    txt_path: str | os.PathLike, shape: tuple[int, int] | None = None
) -> list[InstancePrediction]:
    """Read an official prediction txt (lines ``relative/mask.png labelId confidence``).

    Mask paths are relative to the txt's folder; non-zero pixels (after conversion to 8-bit grey,
    as the official script does) form the instance. ``shape`` (H, W), if given, is checked against
    every mask. Any problem raises ValueError naming file, line and problem.
    """
    txt_path = Path(txt_path)
    try:
        lines = txt_path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{txt_path}: cannot read prediction file: {err}") from err
    predictions, seen = [], set()
    for number, line in enumerate(lines, 1):
        where = f"{txt_path}:{number}"
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'relative/mask.png labelId confidence', got {line!r}")
        rel_path, label_text, score_text = fields
        if os.path.isabs(rel_path):
            raise ValueError(f"{where}: mask path {rel_path} must be relative to the txt folder")
        mask_path = Path(os.path.normpath(txt_path.parent / rel_path))
        if mask_path in seen:
            raise ValueError(f"{where}: mask {mask_path} is listed twice")
        seen.add(mask_path)
        label_id = _parse_label(label_text, where)
        score = _parse_score(score_text, where)
        mask = _read_mask(mask_path, where)
        if shape is not None and mask.shape != tuple(shape):
            raise ValueError(f"{where}: mask {mask_path} has shape {mask.shape}, the gt has {tuple(shape)}")
        predictions.append(InstancePrediction(mask, label_id, score))
    return predictions


def _parse_label(text: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: label id {text!r} is not a number") from None
    if not value.is_integer():
        raise ValueError(f"{where}: label id {text!r} is not an integer")
    if int(value) not in THING_LABEL_IDS:
        raise ValueError(f"{where}: {_label_problem(int(value))}")
    return int(value)


def _parse_score(text: str, where: str) -> float:
    try:
        score = float(text)
    except ValueError:
        raise ValueError(f"{where}: confidence {text!r} is not a number") from None
    if not math.isfinite(score):
        raise ValueError(f"{where}: confidence {text!r} is not a finite number")
    return score


def _read_mask(path: Path, where: str) -> np.ndarray:
    """-> (H, W) bool: non-zero pixels of the image converted to 8-bit grey."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L")) != 0
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{where}: cannot read mask {path}: {err}") from err
