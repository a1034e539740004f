"""Panoptic fusion of instance masks and a semantic map, as Panoptic FPN's inference does it (numpy only).

``combine_semantic_and_instances`` follows detectron2's ``combine_semantic_and_instance_outputs``: instances in
order of decreasing score, those below ``score_threshold`` left out; an instance whose mask already lies taken
by more than ``overlap_threshold`` of its area is skipped, else it paints the pixels still free; then every
stuff class of the semantic map paints its still-free pixels as one segment, unless that is less than
``min_stuff_area`` pixels. Segment ids count from 1 in painting order; 0 is void.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.labels import THING_TRAIN_IDS

STUFF_TRAIN_IDS: tuple[int, ...] = tuple(i for i in range(19) if i not in THING_TRAIN_IDS)
"""Cityscapes stuff classes: train ids 0..10 (road .. sky)."""
MIN_STUFF_AREA_FULL = 4096
"""Panoptic FPN's smallest stuff segment at the Cityscapes resolution, ``FULL_RESOLUTION`` (H, W)."""
FULL_RESOLUTION = (1024, 2048)


@dataclass(frozen=True)
class MaskWindow:
    """An instance mask as the part of the image it covers: ``mask`` (h, w) bool with its top-left pixel at
    (``top``, ``left``) of the image (a full-image (H, W) mask is the window at (0, 0))."""

    top: int
    left: int
    mask: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        height, width = self.mask.shape
        return slice(self.top, self.top + height), slice(self.left, self.left + width)


@dataclass(frozen=True)
class PanopticSegment:
    """One segment of a panoptic map."""

    id: int
    """Its value in the segment-id map (1, 2, ...)."""
    class_id: int
    """Cityscapes train id."""
    is_thing: bool
    instance_id: int
    """Things: 1 + the index of the instance in the fusion's input; 0 for stuff."""
    area: int
    """Pixels of the segment in the map."""
    score: float
    """Things: the instance's score; stuff: the mean semantic confidence over the segment (1.0 if none given)."""


def min_stuff_area(height: int, width: int, area_at_full: int = MIN_STUFF_AREA_FULL) -> int:
    """The stuff area limit for an (H, W) map: ``area_at_full`` at 1024x2048, scaled with the image area."""
    return max(1, round(area_at_full * height * width / (FULL_RESOLUTION[0] * FULL_RESOLUTION[1])))


def combine_semantic_and_instances(
    semantic: np.ndarray,
    instance_masks: np.ndarray | Sequence[MaskWindow],
    instance_classes: Sequence[int],
    instance_scores: Sequence[float],
    *,
    score_threshold: float = 0.5,
    overlap_threshold: float = 0.5,
    min_stuff_area: int = MIN_STUFF_AREA_FULL,
    stuff_classes: Sequence[int] = STUFF_TRAIN_IDS,
    semantic_confidence: np.ndarray | None = None,
) -> tuple[np.ndarray, list[PanopticSegment]]:
    """Fuse N instances and a semantic map into a panoptic map.

    ``semantic``: (H, W) integer classes (train ids; values not in ``stuff_classes``, e.g. a "thing" channel or
    255, never make stuff). ``instance_masks``: (N, H, W) bool, or N MaskWindows inside the (H, W) image (what a
    pasted mask-head output is: no full-image array per instance); ``instance_classes``: (N,) train ids;
    ``instance_scores``: (N,). ``semantic_confidence``: optional (H, W) float, the semantic branch's probability
    of its class, averaged into each stuff segment's score. Returns the (H, W) int32 segment-id map (0 = void)
    and its segments in id order.
    """
    semantic = np.asarray(semantic)
    windows = _windows(instance_masks, semantic.shape)
    classes, scores = np.asarray(instance_classes, np.int64), np.asarray(instance_scores, np.float64)
    if not len(classes) == len(scores) == len(windows):
        raise ValueError(f"{len(windows)} masks, {len(classes)} classes and {len(scores)} scores differ in number")
    segment_ids = np.zeros(semantic.shape, np.int32)
    segments: list[PanopticSegment] = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] < score_threshold:
            break
        mask = windows[index].mask
        area = int(np.count_nonzero(mask))
        if not area:
            continue
        taken = segment_ids[windows[index].slices]
        overlap = int(np.count_nonzero(mask & (taken > 0)))
        free = mask & (taken == 0)
        if overlap / area > overlap_threshold or not free.any():
            continue
        segment = len(segments) + 1
        taken[free] = segment
        area = int(np.count_nonzero(free))
        segments.append(PanopticSegment(segment, int(classes[index]), True, int(index) + 1, area, float(scores[index])))
    free = segment_ids == 0
    free_classes = semantic[free]
    areas = np.bincount(free_classes[free_classes >= 0].astype(np.int64), minlength=256)
    lookup = np.zeros(max(256, int(semantic.max(initial=0)) + 1), np.int32)
    for class_id in sorted(set(int(c) for c in stuff_classes)):
        if areas[class_id] == 0 or areas[class_id] < min_stuff_area:
            continue
        segment = len(segments) + 1
        lookup[class_id] = segment
        segments.append(PanopticSegment(segment, class_id, False, 0, int(areas[class_id]), 1.0))
    if any(not s.is_thing for s in segments):
        segment_ids[free] = lookup[np.maximum(free_classes, 0)] * (free_classes >= 0)
        if semantic_confidence is not None:
            segments = _with_stuff_scores(segments, segment_ids, np.asarray(semantic_confidence, np.float64))
    return segment_ids, segments


def _windows(instance_masks: np.ndarray | Sequence[MaskWindow], shape: tuple[int, ...]) -> list[MaskWindow]:
    """The instance masks as windows inside an image of ``shape`` (H, W); full masks are cut to their box."""
    if len(shape) != 2:
        raise ValueError(f"the semantic map must be (H, W), got {shape}")
    if isinstance(instance_masks, np.ndarray):
        if instance_masks.ndim != 3 or instance_masks.shape[1:] != shape:
            raise ValueError(f"instance masks {instance_masks.shape} must be (N, H, W) over the semantic map {shape}")
        return [_cut_to_box(mask.astype(bool, copy=False)) for mask in instance_masks]
    windows = list(instance_masks)
    for window in windows:
        rows, cols = window.slices
        if window.top < 0 or window.left < 0 or rows.stop > shape[0] or cols.stop > shape[1]:
            raise ValueError(
                f"a mask window at ({window.top}, {window.left}) of {window.mask.shape} must be inside {shape}"
            )
    return windows


def _cut_to_box(mask: np.ndarray) -> MaskWindow:
    """A (H, W) bool mask as the window of its smallest box (an empty mask: an empty window at (0, 0))."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return MaskWindow(0, 0, mask[:0, :0])
    return MaskWindow(int(rows[0]), int(cols[0]), mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def _with_stuff_scores(
    segments: list[PanopticSegment], segment_ids: np.ndarray, confidence: np.ndarray
) -> list[PanopticSegment]:
    """Stuff segments scored by their mean ``confidence`` (H, W)."""
    sums = np.bincount(segment_ids.ravel(), weights=confidence.ravel(), minlength=len(segments) + 1)
    return [
        s if s.is_thing else PanopticSegment(s.id, s.class_id, False, 0, s.area, float(sums[s.id] / s.area))
        for s in segments
    ]
