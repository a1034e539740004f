"""Pre/post-processing of the inference pipeline (values worked out by hand) and ``seg-predict``
end to end: checkpoint -> seg-export -> seg-predict (ONNX Runtime) -> seg-eval."""

import json

import cv2
import numpy as np
import pytest

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes
from seg_perception.labels import TRAIN_ID_TO_ID
from seg_perception.model_input import normalize_image
from seg_perception.pipeline.postprocess import argmax_channels, labels_from_logits
from seg_perception.tools import predict


def test_normalize_image_scales_each_channel_and_resizes():
    image = np.zeros((2, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 51, 0
    out = normalize_image(image, (2, 4), mean=(0.5, 0.2, 0.1), std=(0.5, 0.1, 0.2))
    assert out.shape == (1, 3, 2, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[0, :, 0, 0], [(1.0 - 0.5) / 0.5, (0.2 - 0.2) / 0.1, (0.0 - 0.1) / 0.2], atol=1e-6)
    assert normalize_image(image, (4, 8), (0, 0, 0), (1, 1, 1)).shape == (1, 3, 4, 8)


def test_labels_from_logits_takes_argmax_then_nearest_resize():
    logits = np.zeros((3, 2, 2), np.float32)
    logits[1, 0, 0] = logits[2, 1, 1] = 1.0  # class 1 top-left, class 2 bottom-right, class 0 elsewhere
    assert labels_from_logits(logits, (2, 2)).tolist() == [[1, 0], [0, 2]]
    big = labels_from_logits(logits, (4, 4))
    assert big.dtype == np.uint8 and big.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]]


@pytest.mark.parametrize("shape", [(19, 37, 53), (1, 4, 6), (2, 3, 3), (256, 4, 4)])
def test_argmax_channels_equals_numpy_argmax_first_on_ties(shape):
    rng = np.random.default_rng(sum(shape))
    scores = rng.standard_normal(shape).astype(np.float32)
    ties = np.round(scores * 2)  # many equal maxima: the first channel wins, as in numpy
    for logits in (scores, ties):
        labels = argmax_channels(logits)
        assert labels.dtype == np.uint8 and labels.shape == shape[1:]
        np.testing.assert_array_equal(labels, np.argmax(logits, axis=0))


@pytest.fixture(scope="module")
def exported(export_random_bisenetv2, tmp_path_factory):
    """A randomly initialised BiSeNetV2 checkpoint exported by seg-export, and a small synthetic val split."""
    onnx_path = export_random_bisenetv2(dynamic=True)
    out = tmp_path_factory.mktemp("predict")
    root = out / "cityscapes"
    generate_split(root, "val", 1, 2, 96, 160, seed=4)
    return onnx_path, root


def test_seg_predict_writes_official_predictions_equal_to_onnx_runtime(exported, tmp_path):
    import onnxruntime as ort

    onnx_path, root = exported
    assert predict.main(["--onnx", str(onnx_path), "--gt", str(root), "--out", str(tmp_path)]) == 0
    sidecar = json.loads(onnx_path.with_name("model.onnx.json").read_text())
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    frame = CityscapesDataset(root, "val")[0]
    resized = cv2.resize(frame.image, (128, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    model_input = ((resized - sidecar["mean"]) / sidecar["std"]).transpose(2, 0, 1)[None].astype(np.float32)
    train_ids = session.run(None, {"image": model_input})[0][0].argmax(0).astype(np.uint8)
    expected = cv2.resize(train_ids, (160, 96), interpolation=cv2.INTER_NEAREST)
    written = cv2.imread(str(tmp_path / f"{frame.sample.stem}_labelIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, TRAIN_ID_TO_ID[expected])
    result = evaluate_cityscapes(root, "val", semantic_dir=tmp_path)
    assert result["images"] == 2 and 0.0 <= result["mIoU"] < 0.5  # random weights: a poor but valid score


def test_seg_predict_rejects_a_model_without_sidecar(exported, tmp_path, capsys):
    onnx_path, root = exported
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(onnx_path.read_bytes())
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--onnx", str(lonely), "--gt", str(root), "--out", str(tmp_path / "p")])
    assert exit_info.value.code == 2 and "lonely.onnx.json" in capsys.readouterr().err
