"""Panoptic fusion on hand-made maps: every expected segment map below is worked out by hand from the rules
(instances by decreasing score above the score threshold, skipped when more than the overlap threshold of their
mask is taken, else painting the free pixels; then stuff on free pixels, dropped below the area limit)."""

import numpy as np
import pytest

from seg_perception.pipeline.panoptic_fusion import (
    STUFF_TRAIN_IDS,
    MaskWindow,
    PanopticSegment,
    combine_semantic_and_instances,
    min_stuff_area,
)

ROAD, SIDEWALK, SKY, THING, VOID = 0, 1, 10, 11, 255
CAR, PERSON = 13, 11  # train ids


def _masks(*masks: list[str]) -> np.ndarray:
    """(N, H, W) bool masks drawn as rows of text: '#' inside, '.' outside."""
    return np.array([[list(row) for row in mask] for mask in masks]) == "#"


def _fuse(semantic, masks, classes, scores, **options):
    options.setdefault("min_stuff_area", 1)
    return combine_semantic_and_instances(np.array(semantic), masks, classes, scores, **options)


def test_stuff_only_one_segment_per_class_in_class_order():
    semantic = [[SKY, SKY, SKY, SKY], [SKY, SKY, ROAD, ROAD], [ROAD, ROAD, ROAD, ROAD], [ROAD, ROAD, ROAD, ROAD]]
    ids, segments = _fuse(semantic, np.zeros((0, 4, 4), bool), [], [])
    assert ids.tolist() == [[2, 2, 2, 2], [2, 2, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert segments == [PanopticSegment(1, ROAD, False, 0, 10, 1.0), PanopticSegment(2, SKY, False, 0, 6, 1.0)]


def test_stuff_below_the_area_limit_is_void():
    semantic = [[SKY, SKY, SKY, SKY], [SKY, SKY, ROAD, ROAD], [ROAD, ROAD, ROAD, ROAD], [ROAD, ROAD, ROAD, ROAD]]
    ids, segments = _fuse(semantic, np.zeros((0, 4, 4), bool), [], [], min_stuff_area=7)
    assert ids.tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert segments == [PanopticSegment(1, ROAD, False, 0, 10, 1.0)]
    _, segments = _fuse(semantic, np.zeros((0, 4, 4), bool), [], [], min_stuff_area=6)
    assert [s.class_id for s in segments] == [ROAD, SKY]  # exactly at the limit: kept


def test_things_first_then_stuff_on_the_free_pixels():
    semantic = [[ROAD] * 4] * 4
    masks = _masks(["....", ".##.", ".##.", "...."])
    ids, segments = _fuse(semantic, masks, [CAR], [0.9])
    assert ids.tolist() == [[2, 2, 2, 2], [2, 1, 1, 2], [2, 1, 1, 2], [2, 2, 2, 2]]
    assert segments == [PanopticSegment(1, CAR, True, 1, 4, 0.9), PanopticSegment(2, ROAD, False, 0, 12, 1.0)]


def test_score_threshold_keeps_scores_at_or_above_it():
    semantic = [[VOID] * 4] * 2
    masks = _masks(["##..", "##.."], ["..##", "..##"])
    ids, segments = _fuse(semantic, masks, [CAR, PERSON], [0.5, 0.49])
    assert ids.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert segments == [PanopticSegment(1, CAR, True, 1, 4, 0.5)]
    ids, segments = _fuse(semantic, masks, [CAR, PERSON], [0.5, 0.49], score_threshold=0.3)
    assert ids.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]] and [s.instance_id for s in segments] == [1, 2]


def test_overlap_at_the_threshold_paints_the_free_pixels_above_it_is_skipped():
    semantic = [[VOID] * 4] * 2
    first = ["###.", "...."]  # score 0.9, painted first
    half = ["..##", "...."]  # 1 of its 2 pixels taken: 0.5, not above 0.5 -> paints its free pixel
    most = ["####", "#..."]  # then 4 of its 5 pixels are taken: 0.8 > 0.5 -> skipped
    masks = _masks(first, half, most)
    ids, segments = _fuse(semantic, masks, [CAR, PERSON, CAR], [0.9, 0.8, 0.7])
    assert ids.tolist() == [[1, 1, 1, 2], [0, 0, 0, 0]]
    assert segments == [PanopticSegment(1, CAR, True, 1, 3, 0.9), PanopticSegment(2, PERSON, True, 2, 1, 0.8)]
    # with the threshold at 0.8 the third instance is not skipped (0.8 is not above 0.8): it paints (1, 0)
    ids, segments = _fuse(semantic, masks, [CAR, PERSON, CAR], [0.9, 0.8, 0.7], overlap_threshold=0.8)
    assert ids.tolist() == [[1, 1, 1, 2], [3, 0, 0, 0]]
    assert segments[2] == PanopticSegment(3, CAR, True, 3, 1, 0.7)


def test_instances_are_painted_by_decreasing_score_whatever_their_order():
    semantic = [[VOID] * 3]
    masks = _masks(["##."], [".##"])
    ids, segments = _fuse(semantic, masks, [PERSON, CAR], [0.6, 0.9])  # the second one (car) goes first
    assert ids.tolist() == [[2, 1, 1]]
    assert segments == [PanopticSegment(1, CAR, True, 2, 2, 0.9), PanopticSegment(2, PERSON, True, 1, 1, 0.6)]


def test_no_instances_and_no_stuff_and_all_void():
    ids, segments = _fuse([[VOID, VOID], [VOID, VOID]], np.zeros((0, 2, 2), bool), [], [])
    assert ids.tolist() == [[0, 0], [0, 0]] and segments == []
    # the semantic branch's "thing" class never becomes stuff
    ids, segments = _fuse([[THING, THING], [VOID, THING]], np.zeros((0, 2, 2), bool), [], [])
    assert ids.tolist() == [[0, 0], [0, 0]] and segments == []


def test_no_stuff_only_things():
    masks = _masks(["#.", ".."], ["..", ".#"])
    ids, segments = _fuse([[THING, THING], [THING, THING]], masks, [CAR, PERSON], [0.7, 0.8])
    assert ids.tolist() == [[2, 0], [0, 1]]
    assert [(s.id, s.class_id, s.instance_id) for s in segments] == [(1, PERSON, 2), (2, CAR, 1)]


def test_empty_masks_make_no_segment():
    ids, segments = _fuse([[ROAD, ROAD]], np.zeros((1, 1, 2), bool), [CAR], [0.99])
    assert ids.tolist() == [[1, 1]] and segments == [PanopticSegment(1, ROAD, False, 0, 2, 1.0)]


def test_stuff_score_is_the_mean_confidence_over_its_pixels():
    semantic = [[ROAD, ROAD, SKY], [ROAD, SKY, SKY]]
    confidence = np.array([[0.9, 0.7, 0.6], [0.5, 0.8, 1.0]])
    masks = _masks(["...", "#.."])  # takes the road pixel of confidence 0.5
    _, segments = _fuse(semantic, masks, [CAR], [0.9], semantic_confidence=confidence)
    assert [(s.class_id, s.area) for s in segments] == [(CAR, 1), (ROAD, 2), (SKY, 3)]
    assert segments[1].score == pytest.approx(0.8) and segments[2].score == pytest.approx(0.8)


def test_stuff_classes_are_the_eleven_cityscapes_stuff_train_ids():
    assert STUFF_TRAIN_IDS == tuple(range(11))


@pytest.mark.parametrize(("size", "area"), [((1024, 2048), 4096), ((512, 1024), 1024), ((256, 512), 256)])
def test_min_stuff_area_scales_with_the_image_area(size, area):
    assert min_stuff_area(*size) == area


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match="must be"):
        combine_semantic_and_instances(np.zeros((2, 2), int), np.zeros((1, 3, 3), bool), [CAR], [0.9])
    with pytest.raises(ValueError, match="differ in number"):
        combine_semantic_and_instances(np.zeros((2, 2), int), np.zeros((1, 2, 2), bool), [CAR, CAR], [0.9])


def test_mask_windows_give_the_same_map_as_full_masks():
    rng = np.random.default_rng(0)
    semantic = rng.choice([ROAD, SIDEWALK, SKY, THING], size=(20, 30))
    windows, full = [], np.zeros((6, 20, 30), bool)
    for index in range(6):
        top, left = int(rng.integers(0, 15)), int(rng.integers(0, 25))
        local = rng.random((5, 5)) > 0.3
        windows.append(MaskWindow(top, left, local))
        full[index, top : top + 5, left : left + 5] = local
    classes, scores = rng.choice([CAR, PERSON], 6), rng.random(6)
    from_full = _fuse(semantic, full, classes, scores, score_threshold=0.2, min_stuff_area=10)
    from_windows = _fuse(semantic, windows, classes, scores, score_threshold=0.2, min_stuff_area=10)
    assert from_full[0].tolist() == from_windows[0].tolist() and from_full[1] == from_windows[1]
    assert any(s.is_thing for s in from_full[1]) and any(not s.is_thing for s in from_full[1])
    with pytest.raises(ValueError, match="must be inside"):
        _fuse(semantic, [MaskWindow(18, 0, np.ones((5, 5), bool))], [CAR], [0.9])
