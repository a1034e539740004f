"""The shipped Panoptic FPN (models/panoptic_fpn_synth.*) reproduces the numbers of its model card on a freshly
generated synthetic val split through seg-predict (ONNX Runtime) + seg-eval and through ROS (segmentation_node
with config/panoptic.yaml, real rclpy on loopback); the official cityscapesscripts panoptic and instance
evaluators accept the files seg-predict writes and agree with seg-eval; the export's recorded parity meets
issue 10's bounds. Its INT8 twin (models/panoptic_fpn_synth.int8.*) is the one ``precision: int8`` loads for it and
reproduces its own card, within 1 mIoU point of the fp32 model."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from seg_perception.backends import create_backend
from seg_perception.backends.ort_int8 import DETECTION_RECIPE, cached_key
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes
from seg_perception.model_info import read_model_info
from seg_perception.ros.harness import frame_messages, panoptic_scores, publish_now, running_node
from seg_perception.ros.outputs import MASK
from seg_perception.tools import predict

MODELS = Path(__file__).resolve().parents[1] / "models"
NAME = "panoptic_fpn_synth"
ONNX = MODELS / f"{NAME}.onnx"
CHECKPOINT = MODELS / f"{NAME}.pt"
CARD = MODELS / f"{NAME}.md"
INT8 = MODELS / f"{NAME}.int8.onnx"
INT8_CARD = MODELS / f"{NAME}.int8.md"
CONFIG = MODELS.parent / "config" / "panoptic.yaml"
CARD_KEYS = ("PQ", "PQ_th", "PQ_st", "SQ", "RQ", "AP", "AP50", "mIoU")


def _card_metrics(card: Path = CARD) -> dict:
    """The card's machine-readable block: the first ```json fence after "## Metrics"."""
    text = card.read_text()
    match = re.search(r"## Metrics.*?```json\n(.*?)\n```", text, re.S)
    assert match, f"{card}: no ```json metrics block under '## Metrics'"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """(val root: the card's val split, 10 sequences x 5 frames at 256x512, seed 2; seg-predict's output folder)."""
    folder = tmp_path_factory.mktemp("shipped_panoptic")
    root = folder / "synth256"
    generate_split(root, "val", 10, 5, 256, 512, seed=2)
    out = folder / "pred"
    assert predict.main(["--onnx", str(ONNX), "--gt", str(root), "--split", "val", "--out", str(out)]) == 0
    return root, out


def _ours(root: Path, out: Path, name: str = NAME) -> dict:
    return evaluate_cityscapes(
        root,
        "val",
        semantic_dir=out / "semantic",
        instance_dir=out / "instance",
        panoptic_json=out / "panoptic" / f"{name}.json",
        panoptic_dir=out / "panoptic" / name,
    )


def test_files_stay_within_the_size_limit_and_the_sidecar_says_panoptic():
    for path in (ONNX, CHECKPOINT, ONNX.with_name(ONNX.name + ".json")):
        assert path.stat().st_size <= 40 * 1024 * 1024, path
    info = read_model_info(ONNX)
    assert info.task == "panoptic" and info.input_size == (256, 512) and info.num_classes == 12  # 11 stuff + "thing"


def test_export_parity_meets_the_bounds():
    parity = json.loads(ONNX.with_name(ONNX.name + ".json").read_text())["parity"]
    assert parity["num_inputs"] >= 20
    # boxes pair up when within 1 px with the same class: nearly all must
    assert parity["paired"] >= 0.99 and parity["max_score_diff"] <= 1e-3
    assert parity["min_mask_iou"] >= 0.99 and parity["panoptic_agreement"] >= 0.995


def test_seg_predict_and_seg_eval_reproduce_the_card(predicted):
    card, ours = _card_metrics(), _ours(*predicted)
    assert ours["images"] == card["images"] == 50
    for key in CARD_KEYS:
        assert ours[key] == pytest.approx(card[key], abs=2e-3), key


def test_official_evaluators_accept_the_files_and_agree(predicted, tmp_path, official_instance_averages):
    from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    root, out = predicted
    ours = _ours(root, out)
    convert2panoptic(str(root / "gtFine"), str(tmp_path), setNames=["val"])
    reference = evaluatePanoptic(
        str(tmp_path / "cityscapes_panoptic_val.json"),
        str(tmp_path / "cityscapes_panoptic_val"),
        str(out / "panoptic" / f"{NAME}.json"),
        str(out / "panoptic" / NAME),
        str(tmp_path / "panoptic_result.json"),
    )
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        assert ours["PQ" + suffix] == pytest.approx(reference[group]["pq"], abs=1e-4), group
    gt_files = sorted((root / "gtFine" / "val").glob("*/*_gtFine_instanceIds.png"))
    averages = official_instance_averages(gt_files, out / "instance")
    assert ours["AP"] == pytest.approx(averages["allAp"], abs=1e-4)
    assert ours["AP50"] == pytest.approx(averages["allAp50%"], abs=1e-4)


def test_pq_and_ap50_through_ros_equal_the_card(predicted):
    """Every val frame through the node one at a time (no drops): PQ of the published masks and panoptic maps,
    AP50 of the published (fused, thresholded) instances, vs the card's offline numbers for the same outputs."""
    root, _ = predicted
    frames = [CityscapesDataset(root, "val")[index] for index in range(50)]
    outputs = (MASK, "instances", "panoptic")
    stamps = []
    with running_node(CONFIG, {}, outputs=outputs, keep=len(frames)) as node:
        client = node.client
        messages = frame_messages([frame.image for frame in frames])
        client.prime({"": messages[0]})  # discovery settled: no frame below is lost on the way
        for message in messages:
            stamp = publish_now(client, message)
            arrived = client.spin_until(lambda s=stamp: all(client.has("", o, s) for o in outputs), 60.0)
            assert arrived, node.process.output[-2000:]
            stamps.append(stamp)
        scores, scored = panoptic_scores(client, stamps, frames)
    card = _card_metrics()
    assert scored == 50
    assert scores["PQ"] == pytest.approx(card["PQ"], abs=0.01)
    assert scores["AP50"] == pytest.approx(card["AP50_published"], abs=0.01)


def test_precision_int8_loads_the_shipped_int8_twin_of_this_very_model():
    assert INT8.stat().st_size <= 40 * 1024 * 1024
    key = cached_key(INT8)
    assert key is not None and key.model_sha256 == hashlib.sha256(ONNX.read_bytes()).hexdigest()
    assert key.recipe == DETECTION_RECIPE and key.method == "minmax" and key.calibration_images == 32
    backend = create_backend("onnxruntime", ONNX, device="cpu", precision="int8")  # no calibration_images
    assert backend.precision == "int8" and backend.model_path == INT8
    backend.close()


def test_the_int8_twin_reproduces_its_card_within_a_point_of_fp32(predicted, tmp_path):
    root, fp32_out = predicted
    assert predict.main(["--onnx", str(INT8), "--gt", str(root), "--split", "val", "--out", str(tmp_path)]) == 0
    card, ours = _card_metrics(INT8_CARD), _ours(root, tmp_path, INT8.stem)
    assert ours["images"] == card["images"] == 50
    for key in CARD_KEYS:
        assert ours[key] == pytest.approx(card[key], abs=2e-3), key
    assert ours["mIoU"] >= _ours(root, fp32_out)["mIoU"] - 0.01
