"""SemanticEvaluator against the official cityscapesscripts pixel-level evaluator.

Run ``python test/test_eval_semantic.py`` by hand for a throughput check at 1024x2048.
"""

from __future__ import annotations

import copy
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import (
    CLASS_NAMES,
    ID_TO_TRAIN_ID,
    LABEL_BY_NAME,
    NUM_CLASSES,
    NUM_LABEL_IDS,
    TRAIN_ID_TO_ID,
)

LID = {name: LABEL_BY_NAME[name].id for name in ("unlabeled", "ego vehicle", "out of roi", "parking", "caravan")}
ABSENT = LABEL_BY_NAME["train"].id  # never in gt nor prediction: no score
ONLY_PREDICTED = LABEL_BY_NAME["bus"].id  # predicted, never in gt: IoU 0
GT_POOL = [i for i in range(NUM_LABEL_IDS) if i not in (ABSENT, ONLY_PREDICTED)]


def _random_label_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w) uint8 label-id image of random rectangles and ellipses, void and ignored labels included."""
    img = np.full((h, w), LABEL_BY_NAME["road"].id, np.uint8)
    img[: h // 3] = LABEL_BY_NAME["sky"].id
    for _ in range(40):
        label = int(rng.choice(GT_POOL + [LID["unlabeled"], LID["out of roi"], LID["parking"], LID["caravan"]] * 2))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        a, b = int(rng.integers(3, w // 4)), int(rng.integers(3, h // 4))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + a, y + b), label, thickness=-1)
        else:
            cv2.ellipse(img, (x, y), (a, b), float(rng.uniform(0, 180)), 0, 360, label, thickness=-1)
    img[-h // 10 :, w // 4 : 3 * w // 4] = LID["ego vehicle"]
    return img


def _perturb(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """A prediction: gt with class swaps, eroded/dilated classes, noise and predicted ignored labels."""
    pred = gt.copy()
    present = np.unique(gt)
    for src in rng.choice(present, size=3, replace=False):
        dst = int(rng.choice([LID["parking"], LID["caravan"], LID["unlabeled"], *GT_POOL]))
        pred[gt == src] = dst
    kernel = np.ones((5, 5), np.uint8)
    for label in rng.choice(present, size=4, replace=False):
        mask = (gt == label).astype(np.uint8)
        if rng.random() < 0.5:
            pred[cv2.dilate(mask, kernel) > 0] = label
        else:
            pred[(mask > 0) & (cv2.erode(mask, kernel) == 0)] = int(rng.choice(GT_POOL))
    noise = rng.random(gt.shape) < 0.03
    pred[noise] = rng.choice(GT_POOL, size=int(noise.sum()))
    h, w = gt.shape
    y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    pred[y : y + h // 8, x : x + w // 8] = LID["parking"]
    y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    pred[y : y + h // 10, x : x + w // 10] = ONLY_PREDICTED
    return pred


def _write_dataset(root: Path, seed: int, n: int, h: int, w: int) -> tuple[list[str], list[str]]:
    """Cityscapes-like gtFine/val/<city>/..._gtFine_labelIds.png and results/..._pred.png; returns (preds, gts)."""
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for k in range(n):
        city = ("aachen", "bochum")[k % 2]
        stem = f"{city}_000000_{k:06d}"
        gt = _random_label_image(rng, h, w)
        gt_file = root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png"
        pred_file = root / "results" / f"{stem}_pred.png"
        for path, img in ((gt_file, gt), (pred_file, _perturb(rng, gt))):
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), img)
        preds.append(str(pred_file))
        gts.append(str(gt_file))
    return preds, gts


def _official(preds: list[str], gts: list[str]) -> dict:
    """Run cityscapesscripts' evaluateImgLists in-process, class-level scores only."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = copy.copy(official.args)
    args.evalInstLevelScore = False
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    return official.evaluateImgLists(preds, gts, args)


def _read(path: str) -> np.ndarray:
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_official_evaluator(tmp_path, seed):
    preds, gts = _write_dataset(tmp_path, seed, n=5, h=192, w=384)
    ref = _official(preds, gts)

    by_ids = SemanticEvaluator()
    by_train_ids = SemanticEvaluator()
    for pred_file, gt_file in zip(preds, gts, strict=True):
        pred, gt = _read(pred_file), _read(gt_file)
        by_ids.process_label_ids(pred, gt)
        by_train_ids.process(ID_TO_TRAIN_ID[pred], ID_TO_TRAIN_ID[gt])
    np.testing.assert_array_equal(by_ids.confusion_matrix, by_train_ids.confusion_matrix)

    # Official 34x34 label-id matrix folded onto train ids: ignored gt rows dropped, ignored predictions -> column C.
    conf = np.asarray(ref["confMatrix"], np.int64)
    folded = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), np.int64)
    rows, cols = ID_TO_TRAIN_ID[: conf.shape[0]], np.minimum(ID_TO_TRAIN_ID[: conf.shape[1]], NUM_CLASSES)
    for gt_id in np.flatnonzero(rows < NUM_CLASSES):
        np.add.at(folded[rows[gt_id]], cols, conf[gt_id])
    np.testing.assert_array_equal(by_ids.confusion_matrix, folded)

    res = by_ids.evaluate()
    assert res == by_train_ids.evaluate()
    assert abs(res["mIoU"] - ref["averageScoreClasses"]) <= 1e-6
    for name in CLASS_NAMES:
        official_iou = ref["classScores"][name]
        if math.isnan(official_iou):
            assert res["per_class_iou"][name] is None, name
            assert res["per_class_dice"][name] is None, name
        else:
            assert abs(res["per_class_iou"][name] - official_iou) <= 1e-6, name
    assert res["per_class_iou"]["train"] is None
    assert res["per_class_iou"]["bus"] == 0.0


def test_perfect_prediction():
    rng = np.random.default_rng(7)
    gt = np.stack([ID_TO_TRAIN_ID[_random_label_image(rng, 96, 192)] for _ in range(2)])
    ev = SemanticEvaluator()
    ev.process(gt, gt)
    res = ev.evaluate()
    for key in ("mIoU", "mDice", "pixel_accuracy", "mean_accuracy", "fwIoU"):
        assert res[key] == 1.0, key
    present = set(np.unique(gt[gt < NUM_CLASSES]).tolist())
    for k, name in enumerate(CLASS_NAMES):
        assert res["per_class_iou"][name] == (1.0 if k in present else None)


def test_hand_worked_2x3():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 255, 0]])  # 255 on class 2 is wrong; the 0 on the ignored pixel is skipped
    ev = SemanticEvaluator(num_classes=4, ignore_index=255, class_names=["a", "b", "c", "d"])
    ev.process(pred, gt)
    np.testing.assert_array_equal(ev.confusion_matrix, [[1, 1, 0, 0, 0], [0, 2, 0, 0, 0], [0, 0, 0, 0, 1], [0] * 5])
    res = ev.evaluate()
    # a: tp 1 fp 0 fn 1; b: tp 2 fp 1 fn 0; c: tp 0 fp 0 fn 1; d absent everywhere.
    assert res["per_class_iou"] == pytest.approx({"a": 1 / 2, "b": 2 / 3, "c": 0.0, "d": None})
    assert res["per_class_dice"] == pytest.approx({"a": 2 / 3, "b": 4 / 5, "c": 0.0, "d": None})
    assert res["mIoU"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert res["mDice"] == pytest.approx((2 / 3 + 4 / 5) / 3)
    assert res["pixel_accuracy"] == pytest.approx(3 / 5)
    assert res["mean_accuracy"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert res["fwIoU"] == pytest.approx(2 / 5 * 1 / 2 + 2 / 5 * 2 / 3)


def test_dtypes_batches_and_streaming_agree():
    rng = np.random.default_rng(3)
    gt = np.stack([ID_TO_TRAIN_ID[_random_label_image(rng, 64, 128)] for _ in range(3)])
    pred = ID_TO_TRAIN_ID[_perturb(rng, gt[0])][None].repeat(3, axis=0)
    ref = SemanticEvaluator()
    ref.process(pred, gt)

    streamed = SemanticEvaluator()
    streamed.process(np.zeros_like(gt), gt)
    streamed.reset()
    for p, g in zip(pred, gt, strict=True):
        streamed.process(p, g)
    np.testing.assert_array_equal(streamed.confusion_matrix, ref.confusion_matrix)

    wide = SemanticEvaluator()
    pred64 = pred.astype(np.int64)
    pred64[pred == 255] = np.where(rng.random(int((pred == 255).sum())) < 0.5, -1, 1000)  # still wrong predictions
    wide.process(pred64, gt.astype(np.int32))
    np.testing.assert_array_equal(wide.confusion_matrix, ref.confusion_matrix)
    assert wide.evaluate() == ref.evaluate()

    label_ids = SemanticEvaluator()
    pred_ids = TRAIN_ID_TO_ID[pred].astype(np.int32)
    pred_ids[pred == 255] = np.where(rng.random(int((pred == 255).sum())) < 0.5, -1, 300)  # unknown ids: wrong
    label_ids.process_label_ids(pred_ids, TRAIN_ID_TO_ID[gt].astype(np.int64))
    np.testing.assert_array_equal(label_ids.confusion_matrix, ref.confusion_matrix)


def test_empty_evaluator_has_no_scores():
    res = SemanticEvaluator().evaluate()
    assert res["mIoU"] is None and res["pixel_accuracy"] is None and res["fwIoU"] is None
    assert set(res["per_class_iou"].values()) == {None}


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), r"\(2, 3\).*\(3, 2\)"),
        (np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8), r"integer.*float32 \(2, 3\)"),
        (np.zeros(6, np.uint8), np.zeros(6, np.uint8), r"\(6,\)"),
        (np.zeros((2, 3), np.uint8), np.full((2, 3), 19, np.uint8), r"values \[19\]"),
        (np.zeros((2, 3), np.int64), np.full((2, 3), -3, np.int64), r"values \[-3\]"),
    ],
)
def test_bad_input(pred, gt, message):
    ev = SemanticEvaluator()
    with pytest.raises(ValueError, match=message):
        ev.process(pred, gt)
    assert not ev.confusion_matrix.any()


def test_bad_label_ids_and_config():
    with pytest.raises(ValueError, match="label ids outside"):
        SemanticEvaluator().process_label_ids(np.zeros((2, 2), np.uint8), np.full((2, 2), 40, np.uint8))
    with pytest.raises(ValueError, match="Cityscapes classes"):
        SemanticEvaluator(3, 255, "abc").process_label_ids(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="ignore_index"):
        SemanticEvaluator(3, 1, "abc")
    with pytest.raises(ValueError, match="class names"):
        SemanticEvaluator(3, 255, "ab")


def speed_check(n: int = 40) -> float:
    """Images/s at 1024x2048 for reading two labelIds PNGs with cv2 + process_label_ids."""
    with tempfile.TemporaryDirectory() as tmp:
        preds, gts = _write_dataset(Path(tmp), seed=0, n=8, h=1024, w=2048)
        ev = SemanticEvaluator()
        start = time.perf_counter()
        for k in range(n):
            ev.process_label_ids(_read(preds[k % 8]), _read(gts[k % 8]))
        return n / (time.perf_counter() - start)


if __name__ == "__main__":
    print(f"{speed_check(int(sys.argv[1]) if len(sys.argv) > 1 else 40):.1f} images/s at 1024x2048")
