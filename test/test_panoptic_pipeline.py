"""seg-export of a panoptic model and the ROS-free PanopticPipeline over its ONNX graph in ONNX Runtime: the
sidecar's task contract, the start-up check, detections mapped back to frames of other sizes (resize and
letterbox), and the agreement of the instance-id image, the instances, the panoptic segments and the semantic
mask with each other. Random weights: the tests lower the instance score threshold so that instances appear."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from seg_perception.labels import THING_TRAIN_IDS
from seg_perception.model_info import ModelInfo, read_model_info
from seg_perception.model_input import InputMapping
from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.pipeline.loading import create_pipeline, open_backend
from seg_perception.pipeline.panoptic import (
    Detections,
    FusionSettings,
    PanopticPipeline,
    frame_detections,
    fuse_frame,
)
from seg_perception.pipeline.panoptic_fusion import MaskWindow

LEAN = {"backbone": "resnet18", "fpn_channels": 32, "mask_head_channels": 32, "roi_batch_size_per_image": 32}
ONNX_CPU = {"backend": "onnxruntime", "device": "cpu"}


@pytest.fixture(scope="module")
def exported(random_panoptic_onnx) -> Path:
    return random_panoptic_onnx


def test_the_sidecar_says_task_classes_thresholds_and_parity(exported):
    info = read_model_info(exported)
    assert info.task == "panoptic" and info.is_detection and info.dynamic
    assert info.thing_train_ids == THING_TRAIN_IDS
    assert info.num_classes == 12 and info.class_names[:2] == ("road", "sidewalk") and info.class_names[-1] == "thing"
    assert info.output_name == "semantic_logits" and info.input_size == (128, 256)
    assert info.thresholds == {"score_threshold": 0.5, "overlap_threshold": 0.5, "min_stuff_area": 4096}
    parity = info.parity
    assert parity["paired"] >= 0.95 and parity["max_box_diff"] <= 1.0 and parity["panoptic_agreement"] >= 0.995


def test_open_backend_checks_a_detection_graph(exported, tmp_path):
    backend, info = open_backend(SegmentationConfig(**ONNX_CPU), exported)
    with backend:
        assert isinstance(create_pipeline(backend, info, SegmentationConfig(**ONNX_CPU)), PanopticPipeline)
    bad = tmp_path / "model.onnx"
    bad.write_bytes(exported.read_bytes())
    sidecar = json.loads(exported.with_name("model.onnx.json").read_text())
    bad.with_name("model.onnx.json").write_text(json.dumps({**sidecar, "num_classes": 19, "class_names": ["x"] * 19}))
    with pytest.raises(ValueError, match=r"the sidecar says \(1, 19, H, W\)"):
        open_backend(SegmentationConfig(**ONNX_CPU), bad)
    bad.with_name("model.onnx.json").write_text(json.dumps({**sidecar, "task": "semantic"}))
    with pytest.raises(ValueError, match="the sidecar names input 'image', the model has input"):
        open_backend(SegmentationConfig(**ONNX_CPU), bad)


def _frames():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, size, np.uint8) for size in ((128, 256, 3), (150, 200, 3), (96, 320, 3))]


def _check_consistent(result, shape):
    """The instance-id image, the instances, the segments and the semantic labels tell one story."""
    assert result.labels.shape == result.instance_ids.shape == result.segment_ids.shape == shape
    assert result.instance_ids.dtype == np.uint16 and result.labels.dtype == np.uint8
    ids = [instance.id for instance in result.instances]
    assert ids == list(range(1, len(ids) + 1))
    assert set(np.unique(result.instance_ids)) <= {0, *ids}
    things = {s.instance_id: s for s in result.segments if s.is_thing}
    assert set(things) == set(ids)
    for instance in result.instances:
        pixels = result.instance_ids == instance.id
        segment = things[instance.id]
        assert instance.area == segment.area == int(pixels.sum()) > 0
        assert instance.class_id == segment.class_id and instance.score == segment.score
        assert np.all(result.segment_ids[pixels] == segment.id)
        assert np.all(result.labels[pixels] == instance.class_id)
        x0, y0, x1, y1 = instance.box
        assert 0 <= x0 <= x1 <= shape[1] and 0 <= y0 <= y1 <= shape[0]
    for segment in result.segments:
        assert int((result.segment_ids == segment.id).sum()) == segment.area
    stuff = {s.id: s.class_id for s in result.segments if not s.is_thing}
    for segment_id, class_id in stuff.items():
        assert np.all(result.labels[result.segment_ids == segment_id] == class_id)


@pytest.mark.parametrize("resize_mode", ["resize", "letterbox"])
def test_pipeline_results_at_the_frame_size_agree_with_themselves(exported, resize_mode):
    config = SegmentationConfig(**ONNX_CPU, resize_mode=resize_mode, instance_score_threshold=0.05, min_stuff_area=0)
    backend, info = open_backend(config, exported)
    with backend:
        pipeline = create_pipeline(backend, info, config)
        frames = _frames()
        batch = pipeline.infer(frames)
        assert len(batch.outputs) == 3 and batch.preprocess_ms >= 0 and batch.infer_ms >= 0
        results = [pipeline.finish(batch, index) for index in range(3)]
    for frame, result in zip(frames, results, strict=True):
        _check_consistent(result, frame.shape[:2])
        assert set(result.timings) == {"paste", "semantic", "fusion", "maps"}
    assert sum(len(result.instances) for result in results) > 0  # random weights at 0.05: some instances


def test_pipeline_at_the_model_resolution(exported):
    config = SegmentationConfig(**ONNX_CPU, resize_mode="letterbox", output_resolution="model")
    config = dataclasses.replace(config, instance_score_threshold=0.05, min_stuff_area=0)
    backend, info = open_backend(config, exported)
    with backend:
        pipeline = create_pipeline(backend, info, config)
        batch = pipeline.infer([_frames()[2]])  # 96x320 letterboxed into 128x256
        result = pipeline.finish(batch, 0)
    assert batch.mappings[0].region == (25, 0, 77, 256)  # scale 0.8: 77 rows, top (128 - 77) // 2
    _check_consistent(result, (77, 256))


def test_no_detections_is_a_valid_empty_result(exported):
    config = SegmentationConfig(**ONNX_CPU, instance_score_threshold=1.0)
    backend, info = open_backend(config, exported)
    with backend:
        pipeline = create_pipeline(backend, info, config)
        result = pipeline.finish(pipeline.infer([_frames()[0]]), 0)
    assert result.instances == () and not result.instance_ids.any()
    assert all(not segment.is_thing for segment in result.segments)
    _check_consistent(result, (128, 256))


def test_frame_detections_map_boxes_back_through_a_letterbox():
    info = ModelInfo(
        model="m", options={}, num_classes=12, class_names=("road",) * 11 + ("thing",), input_name="image",
        output_name="semantic_logits", input_size=(100, 200), dynamic=True, opset=17, mean=(0.5,) * 3,
        std=(0.5,) * 3, checkpoint="", task="panoptic", thing_train_ids=THING_TRAIN_IDS,
    )  # fmt: skip
    # a 50x400 frame letterboxed into 100x200: scale 0.5, region rows 37..62 (25 rows), all 200 columns
    mapping = InputMapping((50, 400), (100, 200), (37, 0, 25, 200))
    outputs = {
        "boxes": np.array([[20.0, 42.0, 60.0, 52.0]], np.float32),
        "scores": np.array([0.9], np.float32),
        "labels": np.array([3]),
        "masks": np.ones((1, 28, 28), np.float32),
    }
    detections = frame_detections(outputs, mapping, info)
    assert detections.boxes.tolist() == [[40.0, 10.0, 120.0, 30.0]]  # (x - 0) * 2, (y - 37) * 2
    assert detections.class_ids.tolist() == [13] and detections.scores.tolist() == [pytest.approx(0.9)]
    window = detections.masks[0]  # a full mask-head output covers its box: the pasted mask's pixels are the box's
    rows, cols = np.nonzero(window.mask)
    extent = [
        cols.min() + window.left,
        rows.min() + window.top,
        cols.max() + window.left + 1,
        rows.max() + window.top + 1,
    ]
    assert np.abs(np.array(extent) - [40, 10, 120, 30]).max() <= 1, extent
    with pytest.raises(ValueError, match=r"detection labels must be in 1\.\.8"):
        frame_detections({**outputs, "labels": np.array([9])}, mapping, info)


def test_fuse_frame_renumbers_the_kept_instances_by_score():
    lookup = np.full(256, 255, np.uint8)
    lookup[0] = 0  # channel 0 = road
    channels = np.zeros((4, 6), np.uint8)
    masks = (MaskWindow(0, 0, np.ones((2, 2), bool)), MaskWindow(0, 1, np.ones((2, 2), bool)))
    detections = Detections(
        np.array([[0, 0, 2, 2], [1, 0, 3, 2]], np.float32), np.array([0.6, 0.9], np.float32), np.array([11, 13]), masks
    )
    result = fuse_frame(detections, channels, lookup, FusionSettings(0.5, 0.5, 0))
    # the car (0.9) first: instance 1 over columns 1..2; the person (0.6) keeps column 0 (half of it taken: kept)
    assert result.instance_ids.tolist() == [[2, 1, 1, 0, 0, 0], [2, 1, 1, 0, 0, 0], [0] * 6, [0] * 6]
    assert [(i.id, i.class_id, i.area, i.box) for i in result.instances] == [
        (1, 13, 4, (1.0, 0.0, 3.0, 2.0)),
        (2, 11, 2, (0.0, 0.0, 2.0, 2.0)),
    ]
    assert result.labels.tolist() == [[11, 13, 13, 0, 0, 0], [11, 13, 13, 0, 0, 0], [0] * 6, [0] * 6]
    _check_consistent(result, (4, 6))


def test_seg_predict_writes_the_three_official_formats_and_seg_eval_scores_them_in_one_pass(exported, tmp_path):
    from seg_perception.data.synthetic import generate_split
    from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes
    from seg_perception.tools import predict

    root = tmp_path / "cityscapes"
    generate_split(root, "val", 1, 2, 96, 160, seed=4)
    out = tmp_path / "pred"
    assert predict.main(["--onnx", str(exported), "--gt", str(root), "--out", str(out), "--size", "128x256"]) == 0
    stems = sorted(p.name.removesuffix("_leftImg8bit.png") for p in (root / "leftImg8bit").rglob("*.png"))
    assert sorted(p.name for p in (out / "semantic").iterdir()) == [f"{s}_labelIds.png" for s in stems]
    assert sorted(p.name for p in (out / "instance").glob("*.txt")) == [f"{s}.txt" for s in stems]
    lines = [line for s in stems for line in (out / "instance" / f"{s}.txt").read_text().splitlines()]
    assert lines and all(float(line.split()[2]) >= 0.05 for line in lines)  # random weights: ~1/9 scores
    annotations = json.loads((out / "panoptic" / "model.json").read_text())["annotations"]
    assert [a["image_id"] for a in annotations] == stems
    assert sorted(p.name for p in (out / "panoptic" / "model").iterdir()) == [f"{s}_panoptic.png" for s in stems]
    result = evaluate_cityscapes(
        root,
        "val",
        semantic_dir=out / "semantic",
        instance_dir=out / "instance",
        panoptic_json=out / "panoptic" / "model.json",
        panoptic_dir=out / "panoptic" / "model",
    )
    for key in ("mIoU", "PQ", "AP", "AP50"):
        assert 0.0 <= (result[key] or 0.0) <= 1.0, key


def test_seg_bench_models_times_a_panoptic_checkpoint_on_a_real_frame(exported, tmp_path, capsys):
    from seg_perception.data.synthetic import generate_split
    from seg_perception.tools import bench_models

    generate_split(tmp_path, "val", 1, 1, 96, 160, seed=5)
    checkpoint = exported.with_name("model.pt")  # the weights the fixture exported
    arguments = ["--checkpoint", str(checkpoint), "--frames", str(tmp_path), "--height", "128", "--width", "256"]
    assert (
        bench_models.main([*arguments, "--iterations", "1", "--warmup", "0", "--json", "--score-threshold", "0.05"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    entry = result["models"]["panoptic_fpn"]
    assert result["options"]["backbone"] == "resnet18" and entry["gflops"] is None
    assert entry["detections"] > 0 and entry["torch_ms"]["median"] > 0 and entry["ort_ms"]["median"] > 0


def test_a_mask_is_pasted_over_its_whole_box_also_where_the_box_leaves_the_frame():
    # a 128x512 frame letterboxed into 256x512: frame rows are model rows 64..191; the box reaches 24 rows into the
    # padding and its object is the lower half of the box, so in the frame the object starts at box row 32 - 24
    info = ModelInfo(
        model="m", options={}, num_classes=12, class_names=("road",) * 11 + ("thing",), input_name="image",
        output_name="semantic_logits", input_size=(256, 512), dynamic=True, opset=17, mean=(0.5,) * 3,
        std=(0.5,) * 3, checkpoint="", task="panoptic", thing_train_ids=THING_TRAIN_IDS,
    )  # fmt: skip
    mapping = InputMapping((128, 512), (256, 512), (64, 0, 128, 512))
    mask = np.zeros((1, 28, 28), np.float32)
    mask[0, 14:] = 1.0
    outputs = {"boxes": np.array([[100, 40, 200, 104]], np.float32), "scores": np.ones(1, np.float32)}
    detections = frame_detections({**outputs, "labels": np.array([3]), "masks": mask}, mapping, info)
    window = detections.masks[0]
    rows = np.flatnonzero(window.mask.any(1)) + window.top
    # the object's rows in model coordinates are 72..103 (the lower half of 40..104), i.e. frame rows 8..39
    assert abs(rows.min() - 8) <= 1 and abs(rows.max() - 39) <= 1, (rows.min(), rows.max())
    assert detections.boxes.tolist() == [[100.0, 0.0, 200.0, 40.0]]  # reported clipped to the frame
