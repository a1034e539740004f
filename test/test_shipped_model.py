"""The shipped BiSeNetV2 (models/bisenetv2_synth.*) meets the numbers of its model card on a freshly
generated synthetic val split: mIoU >= 0.75 through seg-predict (ONNX Runtime) + seg-eval, and the
PyTorch checkpoint and the ONNX export agree on >= 99.9 % of the labels."""

import json
from pathlib import Path

import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes
from seg_perception.model_info import read_model_info
from seg_perception.model_input import normalize_image
from seg_perception.pipeline.postprocess import labels_from_logits
from seg_perception.tools import predict

MODELS = Path(__file__).resolve().parents[1] / "models"
ONNX = MODELS / "bisenetv2_synth.onnx"
CHECKPOINT = MODELS / "bisenetv2_synth.pt"


@pytest.fixture(scope="module")
def val_root(tmp_path_factory):
    """The card's val split: 10 sequences x 5 frames, 256x512, seed 2."""
    root = tmp_path_factory.mktemp("shipped") / "synth256"
    generate_split(root, "val", 10, 5, 256, 512, seed=2)
    return root


def test_files_stay_within_the_size_limit_and_the_sidecar_matches():
    for path in (ONNX, CHECKPOINT, ONNX.with_name(ONNX.name + ".json")):
        assert path.stat().st_size <= 40 * 1024 * 1024, path
    info = read_model_info(ONNX)
    assert info.input_size == (256, 512) and info.num_classes == 19
    sidecar = json.loads(ONNX.with_name(ONNX.name + ".json").read_text())
    assert sidecar["model"] == "bisenetv2"


def test_shipped_model_reaches_the_card_miou_on_synthetic_val(val_root, tmp_path):
    assert predict.main(["--onnx", str(ONNX), "--gt", str(val_root), "--out", str(tmp_path)]) == 0
    result = evaluate_cityscapes(val_root, "val", semantic_dir=tmp_path)
    assert result["images"] == 50
    assert result["mIoU"] >= 0.75, result["per_class_iou"]


def test_torch_checkpoint_and_onnx_export_agree_on_the_labels(val_root):
    info = read_model_info(ONNX)
    frames = CityscapesDataset(val_root, "val")
    agree = total = 0
    with (
        create_backend("torch", CHECKPOINT, device="cpu") as torch_backend,
        create_backend("onnxruntime", ONNX, device="cpu") as ort_backend,
    ):
        for index in range(0, len(frames), 5):
            image = frames[index].image
            batch = {info.input_name: normalize_image(image, info.input_size, info.mean, info.std)}
            labels = [
                labels_from_logits(backend.infer(batch)[info.output_name][0], image.shape[:2])
                for backend in (torch_backend, ort_backend)
            ]
            agree += int(np.count_nonzero(labels[0] == labels[1]))
            total += labels[0].size
    assert agree / total >= 0.999
