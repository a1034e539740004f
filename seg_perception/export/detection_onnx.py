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
(``models.detection_backbone.GroupNorm``). While tracing, torchvision's multi-level RoIAlign merges the per-level
results with a ScatterElements over every pooled value (17-18 % of ONNX Runtime's time at 256x512); the export
swaps in a row gather by the inverse level order (same values, ~25 % faster in ONNX Runtime).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torchvision.ops.poolers
from torch import nn

from seg_perception.export.onnx_export import cpu_session, eval_mode, quiet_legacy_exporter
from seg_perception.model_info import (
    DETECTION_OUTPUTS,
    INPUT_NAME,
    SCORE_THRESHOLD_NAME,
    SEMANTIC_LOGITS_NAME,
    ModelInfo,
)
from seg_perception.model_input import InputMapping
from seg_perception.pipeline.instance_masks import paste_mask
from seg_perception.pipeline.panoptic import (
    MASK_THRESHOLD,
    FusionSettings,
    channel_train_ids,
    frame_detections,
    fuse_frame,
    semantic_channels_at,
)


class DetectionGraph(nn.Module):
    """The exported view of an eval-mode detection model: (image (1, 3, H, W), score_threshold ()) -> the output
    tuple of the module docstring."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.output_names = DETECTION_OUTPUTS + ((SEMANTIC_LOGITS_NAME,) if hasattr(model, "semantic_head") else ())

    def forward(self, image: torch.Tensor, score_threshold: torch.Tensor) -> tuple[torch.Tensor, ...]:
        roi_heads = self.model.roi_heads
        default_threshold = roi_heads.score_thresh
        roi_heads.score_thresh = score_threshold  # read by torchvision's `scores > self.score_thresh`: traced as input
        try:
            (detection,) = self.model(image)
        finally:
            roi_heads.score_thresh = default_threshold
        outputs = tuple(detection[name] for name in DETECTION_OUTPUTS)
        return outputs + ((detection[SEMANTIC_LOGITS_NAME][None],) if SEMANTIC_LOGITS_NAME in detection else ())


def _merge_levels_by_gather(levels: torch.Tensor, level_results: list[torch.Tensor]) -> torch.Tensor:
    """Per-level RoIAlign outputs (computed on ``rois[levels == level]``, in level order) -> (K, C, S, S) in RoI
    order: the tracing-time replacement of torchvision's ``_onnx_merge_levels``."""
    level_order = torch.cat([torch.where(levels == level)[0] for level in range(len(level_results))])
    return torch.cat(level_results)[torch.argsort(level_order)]


@contextmanager
def _gather_level_merge() -> Iterator[None]:
    """Trace MultiScaleRoIAlign with ``_merge_levels_by_gather`` (torchvision >= 0.8 names the merge
    ``_onnx_merge_levels``; without it the block runs unchanged)."""
    original = getattr(torchvision.ops.poolers, "_onnx_merge_levels", None)
    if original is None:
        yield
        return
    torchvision.ops.poolers._onnx_merge_levels = _merge_levels_by_gather
    try:
        yield
    finally:
        torchvision.ops.poolers._onnx_merge_levels = original


def export_detection_onnx(model: nn.Module, out_path: str | Path, height: int, width: int, opset: int = 17) -> Path:
    """Export ``model`` (eval mode; its train/eval mode is restored) to ``out_path``, traced on one random
    (1, 3, height, width) image with score threshold 0 (so the trace runs the mask head); checked by
    ``onnx.checker``. Returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with eval_mode(model):
        graph = DetectionGraph(model).eval()
        axes = {INPUT_NAME: {2: "height", 3: "width"}, **{name: {0: "detections"} for name in DETECTION_OUTPUTS}}
        if SEMANTIC_LOGITS_NAME in graph.output_names:
            axes[SEMANTIC_LOGITS_NAME] = {2: "height", 3: "width"}
        with quiet_legacy_exporter(), _gather_level_merge(), warnings.catch_warnings():
            # torchvision's detection code warns about its own trace-time constants and advanced indexing; the
            # parity tests at other sizes than the traced one are what shows the graph is general.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "Exporting aten::index operator of advanced indexing", UserWarning)
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
            torch.onnx.export(
                graph,
                (image, torch.tensor(0.0)),
                str(out_path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME, SCORE_THRESHOLD_NAME],
                output_names=list(graph.output_names),
                dynamic_axes=axes,
            )
    onnx.checker.check_model(str(out_path))
    return out_path


@dataclass(frozen=True)
class DetectionParityReport:
    """ONNX Runtime (CPU) vs PyTorch over ``num_inputs`` images.

    Each PyTorch detection is paired with the ONNX Runtime detection of its label whose box is nearest (largest
    coordinate difference), if that is within ``box_tolerance`` pixels: near-equal scores may order the two outputs
    differently, and near-ties at a cut (score threshold, top-k, NMS) may swap a detection for another. The
    differences are maxima over the pairs; the semantic logits are compared element by element.
    """

    num_inputs: int
    detections: tuple[int, ...]
    """PyTorch's detection count per image."""
    onnx_detections: tuple[int, ...]
    paired: float
    """Fraction of PyTorch detections with a partner (1.0 when there are none)."""
    max_box_diff: float
    """Pixels."""
    max_score_diff: float
    max_mask_diff: float
    min_mask_iou: float
    """The lowest IoU of a pair's two masks pasted into the image (> 0.5), 1.0 without pairs."""
    max_semantic_diff: float | None
    """None for models without a semantic branch."""
    panoptic_agreement: float | None = None
    """Fraction of pixels whose fused panoptic segment id is the same (``info`` given), else None."""


def check_detection_parity(
    model: nn.Module,
    onnx_path: str | Path,
    images: Sequence[np.ndarray],
    score_threshold: float,
    box_tolerance: float = 1.0,
    info: ModelInfo | None = None,
) -> DetectionParityReport:
    """Run every (1, 3, H, W) float32 image through ``onnx_path`` in ONNX Runtime and through the eval-mode
    ``model`` with ``score_threshold``; ValueError for no images. The model's train/eval mode is restored.
    ``info`` (the sidecar to be): also fuse both outputs into panoptic maps (``FusionSettings()``) and compare
    them pixel by pixel."""
    if not images:
        raise ValueError("check_detection_parity needs at least one image")
    session = cpu_session(onnx_path)
    graph = DetectionGraph(model)
    threshold = np.array(score_threshold, np.float32)
    counts, onnx_counts, pairs = [], [], []
    semantic_gap = None
    agreeing = pixels = 0
    with eval_mode(model), torch.inference_mode():
        for image in images:
            array = np.ascontiguousarray(image, dtype=np.float32)
            expected = [t.numpy() for t in graph(torch.from_numpy(array), torch.from_numpy(threshold))]
            actual = session.run(list(graph.output_names), {INPUT_NAME: array, SCORE_THRESHOLD_NAME: threshold})
            expected = dict(zip(graph.output_names, expected, strict=True))
            actual = dict(zip(graph.output_names, actual, strict=True))
            counts.append(len(expected["scores"]))
            onnx_counts.append(len(actual["scores"]))
            pairs.append(_paired_differences(expected, actual, box_tolerance, array.shape[2:]))
            if SEMANTIC_LOGITS_NAME in expected:
                gap = float(np.abs(expected[SEMANTIC_LOGITS_NAME] - actual[SEMANTIC_LOGITS_NAME]).max())
                semantic_gap = max(semantic_gap or 0.0, gap)
            if info is not None:
                maps = [_fused_map(outputs, info) for outputs in (expected, actual)]
                agreeing += int(np.count_nonzero(maps[0] == maps[1]))
                pixels += maps[0].size
    box, score, mask, iou = (np.concatenate(values) for values in zip(*pairs, strict=True))
    return DetectionParityReport(
        num_inputs=len(images),
        detections=tuple(counts),
        onnx_detections=tuple(onnx_counts),
        paired=len(box) / sum(counts) if sum(counts) else 1.0,
        max_box_diff=float(box.max(initial=0.0)),
        max_score_diff=float(score.max(initial=0.0)),
        max_mask_diff=float(mask.max(initial=0.0)),
        min_mask_iou=float(iou.min(initial=1.0)),
        max_semantic_diff=semantic_gap,
        panoptic_agreement=agreeing / pixels if pixels else None,
    )


def _fused_map(outputs: dict[str, np.ndarray], info: ModelInfo) -> np.ndarray:
    """A graph's outputs for one image -> its (H, W) panoptic segment-id map, fused as the pipeline does."""
    height, width = info.input_size if SEMANTIC_LOGITS_NAME not in outputs else outputs[SEMANTIC_LOGITS_NAME].shape[2:]
    mapping = InputMapping((height, width), (height, width), (0, 0, height, width))
    detections = frame_detections(outputs, mapping, info)
    if SEMANTIC_LOGITS_NAME in outputs:
        channels = semantic_channels_at(outputs[SEMANTIC_LOGITS_NAME][0], mapping)
    else:
        channels = np.full((height, width), 255, np.uint8)
    return fuse_frame(detections, channels, channel_train_ids(info), FusionSettings()).segment_ids


def _paired_differences(
    expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], box_tolerance: float, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per paired detection of one (H, W) = ``size`` image (see the report): box, score and mask-probability
    differences and the IoU of the two pasted masks, each (P,)."""
    distance = np.abs(expected["boxes"][:, None] - actual["boxes"][None]).max(-1, initial=0.0)
    distance[expected["labels"][:, None] != actual["labels"][None]] = np.inf
    if distance.shape[1] == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
    partner = distance.argmin(1)
    rows = np.flatnonzero(distance[np.arange(len(partner)), partner] <= box_tolerance)
    partner = partner[rows]
    score = np.abs(expected["scores"][rows] - actual["scores"][partner])
    mask = np.abs(expected["masks"][rows] - actual["masks"][partner]).reshape(len(rows), -1).max(1, initial=0.0)
    ious = [
        _pasted_iou(expected["masks"][e], expected["boxes"][e], actual["masks"][a], actual["boxes"][a], size)
        for e, a in zip(rows, partner, strict=True)
    ]
    return distance[rows, partner], score, mask, np.array(ious)


def _pasted_iou(mask_a, box_a, mask_b, box_b, size: tuple[int, int]) -> float:
    """IoU of two (M, M) mask-head outputs pasted over their boxes into an image of ``size``, above 0.5."""
    canvases = []
    for mask, box in ((mask_a, box_a), (mask_b, box_b)):
        canvas = np.zeros(size, bool)
        window, probabilities = paste_mask(mask, box, *size)
        canvas[window] = probabilities > MASK_THRESHOLD
        canvases.append(canvas)
    union = np.count_nonzero(canvases[0] | canvases[1])
    return float(np.count_nonzero(canvases[0] & canvases[1]) / union) if union else 1.0
