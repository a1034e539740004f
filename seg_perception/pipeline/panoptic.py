"""Instance and panoptic segmentation of camera frames from a detection model's outputs (numpy + OpenCV; no torch,
no rclpy): detections mapped back to the frame, their masks pasted there, fused with the semantic branch.

A detection graph (see ``seg_perception.model_info``) gives, per frame at the model input size, boxes, scores,
labels, (K, 28, 28) mask probabilities and (panoptic) semantic logits. ``frame_detections`` maps them to the
frame's pixels (boxes through the InputMapping, masks pasted at the frame resolution as windows, never a
full-image array per detection); ``fuse_frame`` keeps the confident ones, paints them and the stuff classes into a
panoptic map and derives the instance-id image and the semantic mask from it. The trainer's validation,
``seg-predict`` and the node all go through these two functions.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.evaluation.instance import InstancePrediction
from seg_perception.labels import CLASS_NAMES, IGNORE_TRAIN_ID, TRAIN_ID_TO_ID
from seg_perception.model_info import SCORE_THRESHOLD_NAME, SEMANTIC_LOGITS_NAME, ModelInfo
from seg_perception.model_input import InputMapping
from seg_perception.pipeline.base import FramePipeline
from seg_perception.pipeline.instance_masks import paste_mask
from seg_perception.pipeline.panoptic_fusion import (
    MaskWindow,
    PanopticSegment,
    combine_semantic_and_instances,
    min_stuff_area,
)
from seg_perception.pipeline.postprocess import argmax_channels, labels_to_input, outline_instances

MASK_THRESHOLD = 0.5
"""A pasted mask probability above this is inside the instance (torchvision's and the Cityscapes convention)."""


@dataclass(frozen=True)
class Detections:
    """A frame's detections in its own pixels: boxes (K, 4) float32 xyxy (clipped to the frame), scores (K,)
    float32 descending, class_ids (K,) int64 train ids, masks: K windows of the frame (bool, mask > 0.5)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    masks: tuple[MaskWindow, ...]


@dataclass(frozen=True)
class FusionSettings:
    """``score_threshold``: detections kept as instances; ``overlap_threshold``: an instance is skipped when more
    than this fraction of its mask is already taken; ``min_stuff_area``: pixels at 1024x2048 (scaled with the
    frame area) below which a stuff segment is void."""

    score_threshold: float = 0.5
    overlap_threshold: float = 0.5
    min_stuff_area: int = 4096


@dataclass(frozen=True)
class ObjectInstance:
    """One instance of a frame's result; ``id`` is its value in the instance-id image (1, 2, ... by score)."""

    id: int
    class_id: int
    """Cityscapes train id."""
    score: float
    box: tuple[float, float, float, float]
    """x0, y0, x1, y1 in frame pixels (the detection's box)."""
    area: int
    """Pixels of the instance in the instance-id image (after overlaps are resolved)."""


@dataclass(frozen=True)
class PanopticResult:
    """One frame's outputs, all at the frame (or model, see ``output_resolution``) resolution:

    labels (H, W) uint8 train ids (stuff from the semantic branch, things from the instances, 255 unlabeled);
    instance_ids (H, W) uint16 (0 = no instance) with ``instances`` (id order); segment_ids (H, W) int32 panoptic
    map (0 = void) with ``segments`` (id order; a thing segment's instance_id is its instance's id); per-stage ms.
    """

    labels: np.ndarray
    instance_ids: np.ndarray
    instances: tuple[ObjectInstance, ...]
    segment_ids: np.ndarray
    segments: tuple[PanopticSegment, ...]
    timings: dict[str, float]


def channel_train_ids(info: ModelInfo) -> np.ndarray:
    """(256,) uint8 lookup: semantic-branch channel -> train id (its class name's), 255 for "thing" and the rest."""
    lookup = np.full(256, IGNORE_TRAIN_ID, np.uint8)
    for channel, name in enumerate(info.class_names):
        if name in CLASS_NAMES:
            lookup[channel] = CLASS_NAMES.index(name)
    return lookup


def frame_detections(
    outputs: dict[str, np.ndarray], mapping: InputMapping, info: ModelInfo, full_size: bool = True
) -> Detections:
    """One frame's graph outputs (model-input pixels) -> Detections in the frame's pixels (``full_size``) or in its
    region of the model input."""
    top, left, region_h, region_w = mapping.region
    height, width = mapping.output_size(full_size)
    scale = np.array([width / region_w, height / region_h] * 2, np.float32)
    # the mask was predicted over the whole box: paste over the box as mapped (it may reach into letterbox padding
    # or past the frame; paste_mask clips the window), report the box clipped to the frame
    mapped = ((outputs["boxes"].reshape(-1, 4) - np.array([left, top, left, top], np.float32)) * scale).astype(
        np.float32
    )
    boxes = np.clip(mapped, 0, [width, height, width, height]).astype(np.float32)
    thing_ids = np.asarray(info.thing_train_ids, np.int64)
    labels = outputs["labels"].reshape(-1).astype(np.int64)
    if labels.size and (labels.min() < 1 or labels.max() > len(thing_ids)):
        raise ValueError(f"detection labels must be in 1..{len(thing_ids)}, got {sorted(set(labels.tolist()))}")
    masks = []
    for probabilities, box in zip(outputs["masks"], mapped, strict=True):
        (rows, cols), pasted = paste_mask(probabilities, box, height, width)
        inside = pasted > MASK_THRESHOLD
        masks.append(MaskWindow(rows.start, cols.start, inside) if inside.size else MaskWindow(0, 0, inside))
    return Detections(boxes, outputs["scores"].reshape(-1).astype(np.float32), thing_ids[labels - 1], tuple(masks))


def fuse_frame(
    detections: Detections,
    semantic_channels: np.ndarray,
    channel_lookup: np.ndarray,
    settings: FusionSettings,
) -> PanopticResult:
    """Detections + the semantic branch's per-pixel channel (H, W) uint8 (its argmax; all 255 for a model without
    one) -> the frame's PanopticResult. ``channel_lookup``: ``channel_train_ids`` of the model."""
    start = time.perf_counter()
    stuff = channel_lookup[semantic_channels]
    height, width = stuff.shape
    segment_ids, segments = combine_semantic_and_instances(
        stuff,
        detections.masks,
        detections.class_ids,
        detections.scores,
        score_threshold=settings.score_threshold,
        overlap_threshold=settings.overlap_threshold,
        min_stuff_area=min_stuff_area(height, width, settings.min_stuff_area),
    )
    fused = time.perf_counter()
    instances, segments = _numbered_instances(segments, detections)
    instance_lookup = np.zeros(len(segments) + 1, np.uint16)
    class_lookup = np.full(len(segments) + 1, IGNORE_TRAIN_ID, np.uint8)
    for segment in segments:
        if segment.is_thing:
            instance_lookup[segment.id] = segment.instance_id
            class_lookup[segment.id] = segment.class_id
    instance_ids = instance_lookup[segment_ids]
    labels = np.where(instance_ids > 0, class_lookup[segment_ids], stuff)
    done = time.perf_counter()
    timings = {"fusion": (fused - start) * 1e3, "maps": (done - fused) * 1e3}
    return PanopticResult(labels, instance_ids, instances, segment_ids, segments, timings)


def _numbered_instances(
    segments: list[PanopticSegment], detections: Detections
) -> tuple[tuple[ObjectInstance, ...], tuple[PanopticSegment, ...]]:
    """The thing segments as instances numbered 1.. in segment (score) order, and the segments pointing at them."""
    instances, renumbered = [], []
    for segment in segments:
        if not segment.is_thing:
            renumbered.append(segment)
            continue
        detection = segment.instance_id - 1
        instance = ObjectInstance(
            len(instances) + 1,
            segment.class_id,
            segment.score,
            tuple(float(v) for v in detections.boxes[detection]),
            segment.area,
        )
        instances.append(instance)
        renumbered.append(PanopticSegment(segment.id, segment.class_id, True, instance.id, segment.area, segment.score))
    return tuple(instances), tuple(renumbered)


def evaluation_inputs(
    detections: Detections, result: PanopticResult, fused: bool = False
) -> tuple[list[dict], list[InstancePrediction]]:
    """A frame's result as the evaluators take it: the panoptic segments as {id, category_id (Cityscapes label
    id)} and every detection (unfused, its own mask at the result's size) as an InstancePrediction; ``fused``:
    the result's instances instead (what the node publishes)."""
    segments = [{"id": s.id, "category_id": int(TRAIN_ID_TO_ID[s.class_id])} for s in result.segments]
    if fused:
        return segments, [
            InstancePrediction(result.instance_ids == i.id, int(TRAIN_ID_TO_ID[i.class_id]), i.score)
            for i in result.instances
        ]
    height, width = result.segment_ids.shape
    instances = []
    for window, class_id, score in zip(detections.masks, detections.class_ids, detections.scores, strict=True):
        mask = np.zeros((height, width), bool)
        mask[window.slices] = window.mask
        instances.append(InstancePrediction(mask, int(TRAIN_ID_TO_ID[class_id]), float(score)))
    return segments, instances


def semantic_channels_at(logits: np.ndarray, mapping: InputMapping, full_size: bool = True) -> np.ndarray:
    """(C, h, w) semantic logits at the model size -> (H, W) uint8 channel per pixel of the frame (nearest)."""
    return labels_to_input(argmax_channels(logits), mapping, full_size=full_size)


@dataclass(frozen=True)
class DetectionBatch:
    """Output of ``PanopticPipeline.infer``: each frame's graph outputs (one call per frame) and how it maps back."""

    outputs: tuple[dict[str, np.ndarray], ...]
    mappings: tuple[InputMapping, ...]
    preprocess_ms: float
    infer_ms: float


class PanopticPipeline(FramePipeline):
    """Frames (H, W, 3) uint8 RGB -> PanopticResult through an instance or panoptic model (see ``FramePipeline``);
    ``config``'s instance_score_threshold, instance_overlap_threshold and min_stuff_area drive the fusion. The
    graph itself leaves out detections below ``detection_threshold`` (default: instance_score_threshold, so the
    mask head works on no more detections than are kept; evaluation of mask AP wants a low one, e.g. 0.05). An
    instance model (no semantic branch) gives instances only: its stuff is all unlabeled."""

    def __init__(self, backend, info: ModelInfo, config, detection_threshold: float | None = None) -> None:
        super().__init__(backend, info, config)
        self.settings = FusionSettings(
            config.instance_score_threshold, config.instance_overlap_threshold, config.min_stuff_area
        )
        self._channel_lookup = channel_train_ids(info)
        threshold = config.instance_score_threshold if detection_threshold is None else detection_threshold
        self._threshold = np.array(threshold, np.float32)

    def infer(self, images: Sequence[np.ndarray]) -> DetectionBatch:
        """N frames -> their graph outputs (the detection graphs take one frame per call)."""
        batch, mappings, preprocess_ms = self.prepare(images)
        start = time.perf_counter()
        outputs = tuple(
            self.backend.infer({self.info.input_name: batch[i : i + 1], SCORE_THRESHOLD_NAME: self._threshold})
            for i in range(len(batch))
        )
        return DetectionBatch(outputs, mappings, preprocess_ms, (time.perf_counter() - start) * 1e3)

    def overlay(self, image: np.ndarray, result: PanopticResult) -> np.ndarray:
        """The class-colour overlay with every instance outlined (see ``outline_instances``)."""
        return outline_instances(super().overlay(image, result), result.instance_ids)

    def finish(self, batch: DetectionBatch, index: int) -> PanopticResult:
        """Frame ``index`` of ``batch`` -> its PanopticResult at the input (or model) resolution; timings
        (ms) ``paste`` (detections mapped and masks pasted), ``semantic``, ``fusion``, ``maps``."""
        return self.finish_with_detections(batch, index)[1]

    def finish_with_detections(self, batch: DetectionBatch, index: int) -> tuple[Detections, PanopticResult]:
        """``finish``, and every detection of the frame (also those the fusion did not keep)."""
        outputs, mapping = batch.outputs[index], batch.mappings[index]
        start = time.perf_counter()
        detections = frame_detections(outputs, mapping, self.info, self.full_size)
        pasted = time.perf_counter()
        if SEMANTIC_LOGITS_NAME in outputs:
            channels = semantic_channels_at(outputs[SEMANTIC_LOGITS_NAME][0], mapping, self.full_size)
        else:
            channels = np.full(mapping.output_size(self.full_size), 255, np.uint8)
        semantic = time.perf_counter()
        result = fuse_frame(detections, channels, self._channel_lookup, self.settings)
        timings = {"paste": (pasted - start) * 1e3, "semantic": (semantic - pasted) * 1e3, **result.timings}
        return detections, dataclasses.replace(result, timings=timings)
