"""ONNX export of the detection models (``mask_rcnn``, ``panoptic_fpn``) and an ONNX Runtime vs PyTorch check.

The graph (legacy exporter, opset 17, batch 1, free H and W) holds the whole detector: padding to a multiple of 32,
backbone, RPN, RoIAlign (ONNX ``RoiAlign``), per-class NMS (ONNX ``NonMaxSuppression``) and the mask head.

* inputs: ``image`` (1, 3, H, W) float32, normalised as in training; ``score_threshold`` () float32, the
  eval-mode score filter applied before NMS (an input, so it is set per run and 1.0 yields zero detections).
* outputs: ``boxes`` (K, 4) float32 xyxy input pixels, ``scores`` (K,) float32 descending, ``labels`` (K,) int64
  in 1..8, ``masks`` (K, 28, 28) float32 mask-head probabilities over each box; panoptic_fpn adds
  ``semantic_logits`` (1, 12, H, W) float32. K = 0 gives empty tensors of these shapes.

Masks are pasted into the image on the host (``pipeline.instance_masks``): torchvision's in-graph paste is a
scripted per-detection loop, and ``GroupNorm`` layers are exported without the reshape that fails on zero RoIs
(``models.detection_backbone.GroupNorm``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from seg_perception.export.onnx_export import cpu_session, eval_mode, quiet_legacy_exporter
from seg_perception.pipeline.model_info import INPUT_NAME

SCORE_THRESHOLD_NAME = "score_threshold"
DETECTION_OUTPUTS = ("boxes", "scores", "labels", "masks")
SEMANTIC_OUTPUT = "semantic_logits"


class DetectionGraph(nn.Module):
    """The exported view of an eval-mode detection model: (image (1, 3, H, W), score_threshold ()) -> the output
    tuple of the module docstring."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.output_names = DETECTION_OUTPUTS + ((SEMANTIC_OUTPUT,) if hasattr(model, "semantic_head") else ())

    def forward(self, image: torch.Tensor, score_threshold: torch.Tensor) -> tuple[torch.Tensor, ...]:
        roi_heads = self.model.roi_heads
        default_threshold = roi_heads.score_thresh
        roi_heads.score_thresh = score_threshold  # read by torchvision's `scores > self.score_thresh`: traced as input
        try:
            (detection,) = self.model(image)
        finally:
            roi_heads.score_thresh = default_threshold
        outputs = tuple(detection[name] for name in DETECTION_OUTPUTS)
        return outputs + ((detection[SEMANTIC_OUTPUT][None],) if SEMANTIC_OUTPUT in detection else ())


def export_detection_onnx(model: nn.Module, out_path: str | Path, height: int, width: int, opset: int = 17) -> Path:
    """Export ``model`` (eval mode; its train/eval mode is restored) to ``out_path``, traced on one random
    (1, 3, height, width) image with score threshold 0 (so the trace runs the mask head); checked by
    ``onnx.checker``. Returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with eval_mode(model):
        graph = DetectionGraph(model).eval()
        detections = {name: {0: "detections"} for name in DETECTION_OUTPUTS}
        with quiet_legacy_exporter():
            torch.onnx.export(
                graph,
                (image, torch.tensor(0.0)),
                str(out_path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME, SCORE_THRESHOLD_NAME],
                output_names=list(graph.output_names),
                dynamic_axes={
                    INPUT_NAME: {2: "height", 3: "width"},
                    **detections,
                    SEMANTIC_OUTPUT: {2: "height", 3: "width"},
                },
            )
    onnx.checker.check_model(str(out_path))
    return out_path


@dataclass(frozen=True)
class DetectionParityReport:
    """ONNX Runtime (CPU) vs PyTorch over ``num_inputs`` images; differences are maxima over every detection of
    every image, taken in output order, and ``inf`` where the detection counts or labels differ (the semantic
    logits are always compared)."""

    num_inputs: int
    detections: tuple[int, ...]
    """PyTorch's detection count per image."""
    counts_match: bool
    labels_match: bool
    max_box_diff: float
    """Pixels."""
    max_score_diff: float
    max_mask_diff: float
    max_semantic_diff: float | None
    """None for models without a semantic branch."""


def check_detection_parity(
    model: nn.Module, onnx_path: str | Path, images: Sequence[np.ndarray], score_threshold: float
) -> DetectionParityReport:
    """Run every (1, 3, H, W) float32 image through ``onnx_path`` in ONNX Runtime and through the eval-mode
    ``model`` with ``score_threshold``; ValueError for no images. The model's train/eval mode is restored."""
    if not images:
        raise ValueError("check_detection_parity needs at least one image")
    session = cpu_session(onnx_path)
    graph = DetectionGraph(model)
    differences = {name: 0.0 for name in ("boxes", "scores", "masks", SEMANTIC_OUTPUT)}
    counts, counts_match, labels_match = [], True, True
    threshold = np.array(score_threshold, np.float32)
    with eval_mode(model), torch.inference_mode():
        for image in images:
            array = np.ascontiguousarray(image, dtype=np.float32)
            expected = [t.numpy() for t in graph(torch.from_numpy(array), torch.from_numpy(threshold))]
            actual = session.run(list(graph.output_names), {INPUT_NAME: array, SCORE_THRESHOLD_NAME: threshold})
            expected, actual = (
                dict(zip(graph.output_names, expected, strict=True)),
                dict(zip(graph.output_names, actual, strict=True)),
            )
            counts.append(len(expected["scores"]))
            same_count = expected["scores"].shape == actual["scores"].shape
            same_labels = same_count and bool(np.array_equal(expected["labels"], actual["labels"]))
            counts_match, labels_match = counts_match and same_count, labels_match and same_labels
            for name in differences.keys() & expected.keys():
                comparable = same_labels or name == SEMANTIC_OUTPUT
                gap = np.abs(expected[name] - actual[name]).max(initial=0.0) if comparable else np.inf
                differences[name] = max(differences[name], float(gap))
    semantic = differences[SEMANTIC_OUTPUT] if SEMANTIC_OUTPUT in graph.output_names else None
    return DetectionParityReport(
        len(images),
        tuple(counts),
        counts_match,
        labels_match,
        differences["boxes"],
        differences["scores"],
        differences["masks"],
        semantic,
    )
