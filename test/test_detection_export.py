"""ONNX export of the detection models (legacy exporter, opset 17, dynamic H/W) run in ONNX Runtime on the CPU:
parity with PyTorch at sizes other than the traced one, zero detections, and the host-side mask paste.

The models are the light ones (ResNet-18) at small sizes; ``seg-bench-detection`` runs 256x512 and 512x1024.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from seg_perception.export.detection_onnx import (
    check_detection_parity,
    export_detection_onnx,
)
from seg_perception.export.onnx_export import cpu_session
from seg_perception.model_info import DETECTION_OUTPUTS, INPUT_NAME, SCORE_THRESHOLD_NAME, SEMANTIC_LOGITS_NAME
from seg_perception.models import build_model
from seg_perception.models.mask_rcnn import MASK_SIZE
from seg_perception.models.panoptic_fpn import SEMANTIC_CHANNELS
from seg_perception.pipeline.instance_masks import paste_mask, paste_masks
from seg_perception.tools import bench_detection

torch.set_num_threads(2)

TRACE_SIZE = (128, 256)
RUN_SIZES = [(96, 200), (160, 288)]  # neither the traced size nor (for 96x200) a multiple of 32
MIN_PAIRED = 0.95
"""Random weights score every detection about 1/9 within ~0.01: float rounding may swap a few near-tied detections
at the top-100 cut or in NMS between the two runtimes."""


def _op_types(graph: onnx.GraphProto) -> set[str]:
    """Operator types of ``graph`` and of every subgraph (If / Loop bodies) inside it."""
    types = set()
    for node in graph.node:
        types.add(node.op_type)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                types |= _op_types(attribute.g)
    return types


def _image(size: tuple[int, int], seed: int) -> np.ndarray:
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed)).numpy()


@pytest.fixture(scope="module", params=[("panoptic_fpn", "group"), ("mask_rcnn", "batch")], ids=lambda p: "-".join(p))
def exported(request, tmp_path_factory):
    """(eval-mode model, ONNX path) of a random ResNet-18 model, BatchNorm statistics made non-trivial."""
    name, norm = request.param
    torch.manual_seed(0)
    model = build_model(name, backbone="resnet18", norm=norm)
    if norm == "batch":
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
    model.eval()
    path = export_detection_onnx(model, tmp_path_factory.mktemp("onnx") / f"{name}.onnx", *TRACE_SIZE)
    return model, path


def test_exported_graph_declares_the_contract(exported):
    model, path = exported
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [INPUT_NAME, SCORE_THRESHOLD_NAME]
    expected = [*DETECTION_OUTPUTS, *([SEMANTIC_LOGITS_NAME] if hasattr(model, "semantic_head") else [])]
    assert [o.name for o in graph.output] == expected
    ops = _op_types(graph)
    assert {"RoiAlign", "NonMaxSuppression"} <= ops  # inside the graph, as standard ONNX ops
    assert "ScatterElements" not in ops  # the RoIAlign level merge is a gather (export.detection_onnx)


def test_onnx_runtime_matches_pytorch_at_other_sizes(exported):
    model, path = exported
    threshold = model.roi_heads.score_thresh
    report = check_detection_parity(model, path, [_image(size, seed) for seed, size in enumerate(RUN_SIZES)], threshold)
    assert report.detections == report.onnx_detections, report
    assert min(report.detections) > 0 and report.paired >= MIN_PAIRED, report
    assert report.max_box_diff <= 1.0
    assert report.max_score_diff <= 1e-3
    assert report.max_mask_diff <= 1e-3
    if report.max_semantic_diff is not None:
        assert report.max_semantic_diff <= 1e-3


def test_zero_detections_give_empty_outputs(exported):
    _, path = exported
    session = cpu_session(path)
    height, width = RUN_SIZES[0]
    for image in (_image(RUN_SIZES[0], seed=5), np.zeros((1, 3, height, width), np.float32)):
        outputs = dict(
            zip(
                [o.name for o in session.get_outputs()],
                session.run(None, {INPUT_NAME: image, SCORE_THRESHOLD_NAME: np.array(1.0, np.float32)}),
                strict=True,
            )
        )
        assert outputs["boxes"].shape == (0, 4) and outputs["boxes"].dtype == np.float32
        assert outputs["scores"].shape == (0,) and outputs["labels"].shape == (0,)
        assert outputs["labels"].dtype == np.int64
        assert outputs["masks"].shape == (0, MASK_SIZE, MASK_SIZE)
        if SEMANTIC_LOGITS_NAME in outputs:
            assert outputs[SEMANTIC_LOGITS_NAME].shape == (1, SEMANTIC_CHANNELS, height, width)
        assert paste_masks(outputs["masks"], outputs["boxes"], height, width).shape == (0, height, width)


def test_host_paste_of_onnx_outputs_equals_torchvision_paste(exported):
    _, path = exported
    height, width = RUN_SIZES[1]
    feed = {INPUT_NAME: _image(RUN_SIZES[1], seed=6), SCORE_THRESHOLD_NAME: np.array(0.05, np.float32)}
    boxes, masks = cpu_session(path).run(["boxes", "masks"], feed)
    assert len(boxes) > 0
    expected = paste_masks_in_image(torch.from_numpy(masks)[:, None], torch.from_numpy(boxes), (height, width))
    np.testing.assert_allclose(paste_masks(masks, boxes, height, width), expected[:, 0].numpy(), atol=1e-5)


def test_paste_masks_equals_torchvision_on_boxes_at_the_borders():
    generator = torch.Generator().manual_seed(0)
    height, width = 97, 161
    corners = torch.rand(40, 2, generator=generator) * torch.tensor([width - 30.0, height - 30.0])
    boxes = torch.cat([corners, corners + 0.3 + 60 * torch.rand(40, 2, generator=generator)], 1)
    boxes[:3] = torch.tensor([[0.0, 0.0, 5.0, 3.0], [150.0, 90.0, 161.0, 97.0], [0.0, 0.0, 161.0, 97.0]])
    masks = torch.rand(40, MASK_SIZE, MASK_SIZE, generator=generator)
    expected = paste_masks_in_image(masks[:, None], boxes, (height, width))[:, 0].numpy()
    np.testing.assert_allclose(paste_masks(masks.numpy(), boxes.numpy(), height, width), expected, atol=1e-5)


def test_paste_mask_window_is_clipped_to_the_image():
    window, probabilities = paste_mask(np.ones((MASK_SIZE, MASK_SIZE), np.float32), np.array([-5, 2, 10, 30.0]), 20, 8)
    assert window == (slice(1, 20), slice(0, 8))
    assert probabilities.shape == (19, 8)


def test_bench_detection_json(capsys):
    arguments = ["--backbones", "resnet18", "--sizes", "64x96", "--train-size", "64x96", "--train-batches", "1"]
    arguments += ["--instances", "1", "--iterations", "1", "--warmup", "0", "--option", "fpn_channels=64", "--json"]
    assert bench_detection.main(arguments) == 0
    result = json.loads(capsys.readouterr().out)
    entry = result["backbones"]["resnet18"]
    assert result["options"] == {"fpn_channels": 64}
    assert entry["train_s"]["1"]["median"] > 0
    run = entry["inference"]["64x96"]
    assert {"torch_ms", "ort_ms", "torch_ms_empty", "ort_ms_empty", "parity", "empty"} <= set(run)
    assert run["empty"]["masks"] == [0, MASK_SIZE, MASK_SIZE]


@pytest.mark.parametrize("arguments", [["--backbones", "vgg16"], ["--option", "fpn_channels"], ["--sizes", "64"]])
def test_bench_detection_bad_arguments_exit_2(arguments):
    with pytest.raises(SystemExit) as error:
        bench_detection.main(arguments)
    assert error.value.code == 2
