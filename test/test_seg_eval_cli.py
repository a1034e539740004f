"""``seg-eval`` end to end on ``seg-synth`` output: the installed console script reads the three
official prediction formats, the official evaluators read the same files (and the generated
ground truth) and agree, and bad prediction folders fail with a clear message."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.tools.demo import write_ground_truth_as_predictions

SEG_EVAL = str(Path(sys.executable).with_name("seg-eval"))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A 2-sequence synthetic val split and its ground truth written as predictions."""
    out = tmp_path_factory.mktemp("synth")
    root = out / "cityscapes"
    generate_split(root, "val", 2, 2, 128, 256, seed=11)
    folders = write_ground_truth_as_predictions(root, out / "pred")
    return root, out / "pred", folders


def _seg_eval(*args) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_EVAL, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_ground_truth_as_prediction_scores_one_everywhere(synth):
    root, pred, folders = synth
    run = _seg_eval(
        "--gt", root, "--split", "val", "--semantic-dir", folders["semantic"], "--instance-dir", folders["instance"],
        "--panoptic-json", pred / "panoptic.json", "--panoptic-dir", folders["panoptic"],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout, parse_constant=pytest.fail)  # strict JSON: NaN/Infinity fail the test
    assert result["per_class_ap"]["train"] == {"AP": None, "AP50": None}  # no train in the scenes
    for key in ("mIoU", "mDice", "pixel_accuracy", "fwIoU", "PQ", "SQ", "RQ", "PQ_th", "PQ_st", "AP", "AP50"):
        assert result[key] == pytest.approx(1.0, abs=1e-12), key
    assert result["images"] == 4
    present = [name for name, iou in result["per_class_iou"].items() if iou is not None]
    assert {"road", "sky", "car", "person"} <= set(present)


def test_semantic_scores_equal_the_official_evaluator_on_generated_data(synth, tmp_path):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    root, _, _ = synth
    rng = np.random.default_rng(5)
    gts, preds = [], []
    for sample in CityscapesDataset(root, "val").samples:
        label_ids = cv2.imread(str(sample.label_ids), cv2.IMREAD_UNCHANGED)
        noisy = label_ids.copy()
        for _ in range(30):  # paint random boxes with random label ids (evaluated or not)
            y, x = rng.integers(0, 120), rng.integers(0, 250)
            noisy[y : y + rng.integers(2, 30), x : x + rng.integers(2, 60)] = rng.integers(0, 34)
        preds.append(tmp_path / f"{sample.stem}_pred.png")
        cv2.imwrite(str(preds[-1]), noisy)
        gts.append(str(sample.label_ids))
    run = _seg_eval("--gt", root, "--split", "val", "--semantic-dir", tmp_path)
    assert run.returncode == 0, run.stderr
    ours = json.loads(run.stdout)
    args = copy.copy(official.args)
    args.evalInstLevelScore, args.evalPixelAccuracy, args.JSONOutput, args.quiet = False, False, False, True
    reference = official.evaluateImgLists([str(p) for p in preds], gts, args)
    assert 0.2 < ours["mIoU"] < 0.99
    assert abs(ours["mIoU"] - reference["averageScoreClasses"]) <= 1e-6
    for name, iou in ours["per_class_iou"].items():
        expected = reference["classScores"][name]
        assert (iou is None and np.isnan(expected)) or abs(iou - expected) <= 1e-6, name


def test_official_panoptic_evaluator_reads_our_files(synth, tmp_path):
    from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    root, pred, folders = synth
    convert2panoptic(str(root / "gtFine"), str(tmp_path), setNames=["val"])
    reference = evaluatePanoptic(
        str(tmp_path / "cityscapes_panoptic_val.json"), str(tmp_path / "cityscapes_panoptic_val"),
        str(pred / "panoptic.json"), str(folders["panoptic"]), str(tmp_path / "result.json"),
    )  # fmt: skip
    assert reference["All"]["pq"] == pytest.approx(1.0)


def test_missing_or_bad_predictions_fail_with_a_clear_message(synth, tmp_path):
    root, _, folders = synth
    stems = [s.stem for s in CityscapesDataset(root, "val").samples]
    for stem in stems[1:]:
        (tmp_path / f"{stem}_labelIds.png").write_bytes((folders["semantic"] / f"{stem}_labelIds.png").read_bytes())
    run = _seg_eval("--gt", root, "--semantic-dir", tmp_path)
    assert run.returncode == 2 and f"e.g. {stems[0]}" in run.stderr and "no semantic prediction" in run.stderr
    cv2.imwrite(str(tmp_path / f"{stems[0]}_labelIds.png"), np.full((64, 64), 7, np.uint8))
    run = _seg_eval("--gt", root, "--semantic-dir", tmp_path)
    assert run.returncode == 2 and "differs from the ground truth" in run.stderr and stems[0] in run.stderr
    run = _seg_eval("--gt", root, "--split", "val")
    assert run.returncode == 2 and "nothing to evaluate" in run.stderr
    run = _seg_eval("--gt", root / "nowhere", "--semantic-dir", tmp_path)
    assert run.returncode == 2 and "no such folder" in run.stderr
