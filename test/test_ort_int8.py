"""INT8 on ONNX Runtime (backends.ort_int8, precision int8): the exact grouped-conv rewrite, the shipped model's
accuracy after static quantization on a small calibration set, the cache key, and clear errors."""

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from seg_perception.backends import create_backend
from seg_perception.backends.ort_int8 import (
    DETECTION_RECIPE,
    cached_key,
    expand_grouped_convs,
    int8_model_path,
    scoped_nodes,
)
from seg_perception.data.synthetic import SyntheticScene
from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import ID_TO_TRAIN_ID
from seg_perception.model_input import normalize_image

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "bisenetv2_synth.onnx"
SIZE = (256, 512)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_grouped_convs_with_a_channel_multiplier_are_rewritten_exactly():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)  # 4 groups, multiplier 3
    depthwise = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)  # multiplier 1: left alone
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["y"], group=4, pads=[1, 1, 1, 1], name="expand"),
            helper.make_node("Conv", ["x", "d"], ["z"], group=4, pads=[1, 1, 1, 1], name="depthwise"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 10])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12, 8, 10]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 8, 10]),
        ],
        [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(rng.standard_normal(12).astype(np.float32), "b"),
            numpy_helper.from_array(depthwise, "d"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((1, 4, 8, 10)).astype(np.float32)
    before = _session(model).run(None, {"x": x})
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    assert expand_grouped_convs(rewritten) == 1
    onnx.checker.check_model(rewritten)
    ops = [(node.op_type, next((a.i for a in node.attribute if a.name == "group"), 1)) for node in rewritten.graph.node]
    assert ops == [("Gather", 1), ("Conv", 12), ("Conv", 4)]
    after = _session(rewritten).run(None, {"x": x})
    np.testing.assert_allclose(after[0], before[0], atol=1e-5)
    np.testing.assert_array_equal(after[1], before[1])


def _write_frames(folder, split, sequences, frames):
    folder.mkdir(parents=True)
    for sequence in range(sequences):
        scene = SyntheticScene(*SIZE, 1, split, sequence)
        for index in range(frames):
            image = scene.render(index).image
            cv2.imwrite(str(folder / f"s{sequence}_{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def int8_setup(tmp_path_factory):
    """(fp32 model copy, calibration folder, cache folder) with the INT8 model built once."""
    root = tmp_path_factory.mktemp("int8")
    model = root / "model" / SHIPPED.name
    model.parent.mkdir()
    shutil.copyfile(SHIPPED, model)
    shutil.copyfile(SHIPPED.with_name(SHIPPED.name + ".json"), model.with_name(model.name + ".json"))
    calibration = root / "calibration"
    _write_frames(calibration, "train", 4, 2)
    cache = root / "cache"
    create_backend(
        "onnxruntime", model, device="cpu", precision="int8", calibration_images=calibration, cache_dir=cache
    )
    return model, calibration, cache


def test_int8_keeps_the_shipped_models_labels_and_miou_on_synthetic_val(int8_setup):
    model, _, cache = int8_setup
    backends = {
        "fp32": create_backend("onnxruntime", model, device="cpu"),
        "int8": create_backend("onnxruntime", model, device="cpu", precision="int8", cache_dir=cache),
    }
    assert backends["int8"].precision == "int8" and backends["int8"].model_path == int8_model_path(model, cache)
    evaluators = {name: SemanticEvaluator() for name in backends}
    agree = total = 0
    for sequence in range(3):
        scene = SyntheticScene(*SIZE, 2, "val", sequence)
        for index in (0, 3):
            frame = scene.render(index)
            batch = normalize_image(frame.image, SIZE, MEAN, STD)
            truth = ID_TO_TRAIN_ID[frame.label_ids]
            labels = {}
            for name, backend in backends.items():
                labels[name] = backend.infer({"image": batch})["logits"][0].argmax(0).astype(np.uint8)
                evaluators[name].process(labels[name], truth)
            agree += int(np.count_nonzero(labels["fp32"] == labels["int8"]))
            total += truth.size
    miou = {name: evaluator.evaluate()["mIoU"] for name, evaluator in evaluators.items()}
    assert agree / total >= 0.98, agree / total
    assert miou["fp32"] > 0.6  # the shipped model on synthetic val
    assert abs(miou["int8"] - miou["fp32"]) <= 0.02, miou  # 8 calibration frames here; the card's 64 give less


def test_the_int8_model_is_cached_by_model_and_calibration_set(int8_setup, tmp_path):
    model, calibration, cache = int8_setup
    path = int8_model_path(model, cache)
    key, built = cached_key(path), os.stat(path).st_mtime_ns
    assert key is not None and key.calibration_images == 8 and key.method == "minmax"
    again = create_backend(
        "onnxruntime", model, device="cpu", precision="int8", calibration_images=calibration, cache_dir=cache
    )
    assert again.model_path == path and os.stat(path).st_mtime_ns == built  # same key: reused, not rebuilt
    fewer = tmp_path / "fewer"
    shutil.copytree(calibration, fewer)
    sorted(fewer.iterdir())[0].unlink()
    other_cache = tmp_path / "cache"
    shutil.copytree(cache, other_cache)
    create_backend(
        "onnxruntime", model, device="cpu", precision="int8", calibration_images=fewer, cache_dir=other_cache
    )
    rebuilt = cached_key(int8_model_path(model, other_cache))
    assert rebuilt.calibration_images == 7 and rebuilt.calibration_sha256 != key.calibration_sha256
    assert rebuilt.model_sha256 == key.model_sha256


def test_bad_calibration_folders_are_clear_errors(int8_setup, tmp_path):
    model = int8_setup[0]

    def build(folder, cache=tmp_path / "cache"):
        return create_backend(
            "onnxruntime", model, device="cpu", precision="int8", calibration_images=folder, cache_dir=cache
        )

    with pytest.raises(FileNotFoundError, match=r"calibration image folder .*nowhere does not exist"):
        build(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no images"):
        build(tmp_path / "empty")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "frame.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"frame\.png: not a readable image"):
        build(tmp_path / "corrupt")
    with pytest.raises(ValueError, match="needs calibration_images=FOLDER"):
        build(None, tmp_path / "no_int8_here")  # nor in the model's folder
    with pytest.raises(ValueError, match="calibration_method must be one of minmax, entropy, percentile"):
        create_backend("onnxruntime", model, device="cpu", precision="int8", calibration_method="kl")


def _quantized_weight_layers(model: onnx.ModelProto) -> dict[str, bool]:
    """{name of each Conv / Gemm / MatMul with a constant weight: whether it runs in INT8, i.e. its weight comes
    from a DequantizeLinear of an int8 initializer (QDQ)}."""
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    dequantized = {node.output[0]: node.input[0] for node in model.graph.node if node.op_type == "DequantizeLinear"}
    layers = {}
    for node in model.graph.node:
        weight = node.input[1] if node.op_type in ("Conv", "Gemm", "MatMul") else None
        if weight in initializers:
            layers[node.name] = False
        elif weight in dequantized and dequantized[weight] in initializers:
            layers[node.name] = initializers[dequantized[weight]].data_type == TensorProto.INT8
    return layers


def test_a_detection_graph_is_quantized_with_its_score_threshold_fed(random_panoptic_onnx, tmp_path):
    calibration = tmp_path / "calibration"
    _write_frames(calibration, "train", 2, 2)
    backend = create_backend(
        "onnxruntime", random_panoptic_onnx, device="cpu", precision="int8", calibration_images=calibration,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    fp32 = create_backend("onnxruntime", random_panoptic_onnx, device="cpu")
    assert [s.name for s in backend.output_specs] == [s.name for s in fp32.output_specs]
    feed = {"image": normalize_image(SyntheticScene(128, 256, 2, "val", 0).render(0).image, (128, 256), MEAN, STD),
            "score_threshold": np.array(0.05, np.float32)}  # fmt: skip
    outputs, reference = backend.infer(feed), fp32.infer(feed)
    agreement = np.mean(outputs["semantic_logits"].argmax(1) == reference["semantic_logits"].argmax(1))
    assert agreement > 0.75, agreement  # random weights: nearly tied logits (a broken graph agrees on ~1/12)
    assert outputs["boxes"].shape[1:] == (4,) and len(outputs["scores"]) == len(outputs["labels"])
    # a frame without detections (an empty mask-head batch) is a valid empty result, not a crash
    empty = backend.infer({**feed, "score_threshold": np.array(1.1, np.float32)})
    assert [empty[name].shape[0] for name in ("boxes", "scores", "labels", "masks")] == [0, 0, 0, 0]
    assert empty["semantic_logits"].shape == reference["semantic_logits"].shape
    # only the feature layers run in INT8; the predictors (RPN objectness / deltas, box classifier / regressor,
    # mask logits) stay fp32
    int8 = _quantized_weight_layers(onnx.load(str(backend.model_path)))
    predictors = ("/rpn/head/cls_logits", "/rpn/head/bbox_pred", "/box_predictor/", "/mask_predictor/")
    for scope in (
        "/backbone/body/",
        "/backbone/fpn/",
        "/semantic_head/",
        "/rpn/head/conv/",
        "/box_head/",
        "/mask_head/",
    ):
        layers = [quantized for name, quantized in int8.items() if scope in name]
        assert layers and all(layers), scope
    for scope in predictors:
        layers = [quantized for name, quantized in int8.items() if scope in name]
        assert layers and not any(layers), scope
    assert cached_key(backend.model_path).recipe == DETECTION_RECIPE
    model = onnx.load(str(random_panoptic_onnx))
    for node in model.graph.node:
        node.name = node.name.replace("/model/", "/net/")
    with pytest.raises(ValueError, match="no node of the graph is under /model/backbone/"):
        scoped_nodes(model, (("/model/backbone/", None),))


def test_seg_quantize_checks_a_detection_graph_fed_its_score_threshold(random_panoptic_onnx, tmp_path, capsys):
    from seg_perception.tools import quantize

    frames = tmp_path / "frames"
    _write_frames(frames, "train", 2, 2)
    arguments = [str(random_panoptic_onnx), "--calibration-images", str(frames), "--cache-dir", str(tmp_path / "q")]
    assert quantize.main([*arguments, "--check", str(frames), "--check-frames", "3"]) == 0
    printed = capsys.readouterr().out
    agreement = re.search(r"check on 3 frames of .*: label agreement ([0-9.]+) %; ms/frame median fp32", printed)
    assert agreement and 75 < float(agreement.group(1)) <= 100, printed  # random weights: nearly tied logits
