"""Streaming semantic-segmentation metrics that agree with the official Cityscapes evaluator.

The rules are those of ``cityscapesscripts/evaluation/evalPixelLevelSemanticLabeling.py``:

* gt pixels labelled ``ignore_index`` are skipped entirely (they add no false positive either);
* a predicted value that is not an evaluated class (255, an ignored label, anything outside
  ``0..num_classes-1``) is a wrong prediction, i.e. a false negative of the gt class;
* per class, IoU = TP / (TP + FP + FN) and a class with TP + FP + FN == 0 (absent from the gt and
  never predicted on evaluated pixels) has no score (``None``) and is left out of every mean.

Label-id space: the official script compares labelIds images (ids 0..33, 15 of them ignored).
Mapping both images through ``labels.ID_TO_TRAIN_ID`` sends every ignored id to 255: ignored gt
pixels are skipped and ignored predictions are wrong, exactly as in the official script, so the
train-id matrix gives the same IoUs (``test/test_eval_semantic.py`` checks it against the official
34x34 matrix). ``SemanticEvaluator.process_label_ids`` does that mapping for labelIds images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seg_perception.labels import CLASS_NAMES, ID_TO_TRAIN_ID, IGNORE_TRAIN_ID, NUM_CLASSES, NUM_LABEL_IDS


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate (H, W) or (N, H, W) integer arrays of equal shape; returns them as ndarrays."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim not in (2, 3):
        raise ValueError(
            f"pred and gt must have the same (H, W) or (N, H, W) shape; got pred {pred.shape}, gt {gt.shape}"
        )
    if not (np.issubdtype(pred.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
        raise ValueError(
            f"pred and gt must be integer arrays; got pred {pred.dtype} {pred.shape}, gt {gt.dtype} {gt.shape}"
        )
    return pred, gt


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise num / den as float64, NaN where den == 0."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values: np.ndarray) -> float | None:
    """Mean over the non-NaN entries; None if there are none."""
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else None


def _per_class(names: Sequence[str], values: np.ndarray) -> dict[str, float | None]:
    return {name: (None if np.isnan(v) else float(v)) for name, v in zip(names, values, strict=True)}


class SemanticEvaluator:
    """Accumulates a confusion matrix over images and reports IoU / Dice / accuracy metrics.

    ``confusion_matrix`` is (C, C + 1) int64: rows are gt classes, columns predicted classes, and
    the last column counts predictions outside ``0..C-1`` (wrong by definition).
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        ignore_index: int = IGNORE_TRAIN_ID,
        class_names: Sequence[str] = CLASS_NAMES,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} must lie outside the classes 0..{num_classes - 1}")
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = tuple(class_names)
        c = num_classes
        # Pixel codes gt_row * (C + 1) + pred_col; gt row C is ignore_index, row C + 1 an invalid gt value.
        code_dtype = np.uint16 if (c + 2) * (c + 1) <= np.iinfo(np.uint16).max else np.int64
        values = np.arange(256)
        self._gt_lut = np.where(values < c, values * (c + 1), (c + 1) * (c + 1)).astype(code_dtype)
        if 0 <= ignore_index < 256:
            self._gt_lut[ignore_index] = c * (c + 1)
        self._pred_lut = np.minimum(values, c).astype(code_dtype)
        # The same tables for Cityscapes label ids (used by process_label_ids).
        self._gt_id_lut = self._gt_lut[ID_TO_TRAIN_ID]
        self._pred_id_lut = self._pred_lut[ID_TO_TRAIN_ID]
        self.reset()

    def reset(self) -> None:
        """Forget everything processed so far."""
        self._matrix = np.zeros((self.num_classes, self.num_classes + 1), np.int64)

    @property
    def confusion_matrix(self) -> np.ndarray:
        """(C, C + 1) int64 copy: [gt class, predicted class], last column = predictions outside 0..C-1."""
        return self._matrix.copy()

    def process(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add (H, W) or (N, H, W) integer train-id predictions and ground truth."""
        pred, gt = _check_pair(pred, gt)
        c = self.num_classes
        if pred.dtype == np.uint8 and gt.dtype == np.uint8:
            codes = np.take(self._gt_lut, gt)
            codes += np.take(self._pred_lut, pred)
        else:
            rows = np.where((gt >= 0) & (gt < c), gt, np.where(gt == self.ignore_index, c, c + 1))
            cols = np.where((pred >= 0) & (pred < c), pred, np.intp(c))
            codes = rows.astype(np.intp) * (c + 1) + cols
        counts = self._count(codes)
        if counts[c + 1].any():
            bad = np.unique(gt[(gt != self.ignore_index) & ((gt < 0) | (gt >= c))])
            raise ValueError(
                f"gt {gt.shape} holds values {bad[:10].tolist()} that are neither classes 0..{c - 1} "
                f"nor ignore_index {self.ignore_index}"
            )
        self._matrix += counts[:c]

    def process_label_ids(self, pred_ids: np.ndarray, gt_ids: np.ndarray) -> None:
        """Add (H, W) or (N, H, W) Cityscapes labelIds images (the official evaluator's input).

        Equivalent to ``process(ID_TO_TRAIN_ID[pred_ids], ID_TO_TRAIN_ID[gt_ids])``: predicted ids
        that are ignored or unknown count as wrong; gt ids outside the label table raise ValueError
        (the official script stops on them too).
        """
        if (self.num_classes, self.ignore_index) != (NUM_CLASSES, IGNORE_TRAIN_ID):
            raise ValueError("process_label_ids needs the Cityscapes classes (num_classes=19, ignore_index=255)")
        pred_ids, gt_ids = _check_pair(pred_ids, gt_ids)
        if gt_ids.size and (int(gt_ids.min()) < 0 or int(gt_ids.max()) >= NUM_LABEL_IDS):
            raise ValueError(
                f"gt {gt_ids.shape} holds label ids outside 0..{NUM_LABEL_IDS - 1}: "
                f"min {int(gt_ids.min())}, max {int(gt_ids.max())}"
            )
        if pred_ids.dtype != np.uint8:  # ids beyond 0..255 are unknown: send them to 0 ('unlabeled', wrong)
            pred_ids = np.where((pred_ids >= 0) & (pred_ids < 256), pred_ids, 0).astype(np.uint8)
        codes = np.take(self._gt_id_lut, gt_ids.astype(np.uint8, copy=False))
        codes += np.take(self._pred_id_lut, pred_ids)
        self._matrix += self._count(codes)[: self.num_classes]

    def _count(self, codes: np.ndarray) -> np.ndarray:
        """Pixel codes of any shape -> (C + 2, C + 1) int64 counts [gt row, pred column]."""
        c = self.num_classes
        return np.bincount(codes.ravel(), minlength=(c + 2) * (c + 1)).reshape(c + 2, c + 1)

    def evaluate(self) -> dict:
        """Metrics as Python floats in 0..1 (None where undefined).

        Keys: mIoU, per_class_iou, mDice, per_class_dice, pixel_accuracy, mean_accuracy, fwIoU.
        Per-class dicts map class name -> float or None (None: class absent from gt and predictions).
        mean_accuracy averages per-class recall over classes present in the gt; fwIoU weights each
        class IoU by its share of evaluated gt pixels.
        """
        m = self._matrix
        tp = np.diag(m[:, : self.num_classes]).astype(np.float64)
        gt_count = m.sum(axis=1).astype(np.float64)
        pred_count = m[:, : self.num_classes].sum(axis=0).astype(np.float64)
        total = gt_count.sum()
        iou = _ratio(tp, gt_count + pred_count - tp)
        dice = _ratio(2 * tp, gt_count + pred_count)
        recall = _ratio(tp, gt_count)
        present = gt_count > 0
        return {
            "mIoU": _mean(iou),
            "per_class_iou": _per_class(self.class_names, iou),
            "mDice": _mean(dice),
            "per_class_dice": _per_class(self.class_names, dice),
            "pixel_accuracy": float(tp.sum() / total) if total else None,
            "mean_accuracy": _mean(recall),
            "fwIoU": float((gt_count[present] * iou[present]).sum() / total) if total else None,
        }
