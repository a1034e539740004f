"""Instances located on the ground (pipeline.object_location): contact pixel, position, uncertainty, and the cases
that cannot be located."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from seg_perception.pipeline.ground_projection import CameraModel, GroundProjection
from seg_perception.pipeline.object_location import contact_pixel, locate, locate_instances

LEVEL = CameraModel(fx=500.0, fy=500.0, u0=256.0, v0=128.0, x=1.7, y=0.0, height=1.5)


def _ids_with_box(top: int, bottom: int, left: int, right: int, value: int = 3) -> np.ndarray:
    ids = np.zeros((256, 512), np.uint16)
    ids[top : bottom + 1, left : right + 1] = value
    return ids


def test_the_contact_pixel_is_the_bottom_edge_of_the_lowest_rows_at_their_median_column():
    ids = _ids_with_box(100, 180, 200, 260)
    ids[178:181, 200:230] = 0  # the lowest three rows only span columns 230..260
    assert contact_pixel(ids, 3, (200, 100, 261, 181)) == (245.0, 180.5)
    assert contact_pixel(ids, 4, (200, 100, 261, 181)) is None  # no such pixels
    assert contact_pixel(_ids_with_box(100, 255, 200, 260), 3, (200, 100, 261, 256)) is None  # cut off at the bottom


def test_a_contact_below_a_level_camera_lies_at_height_times_focal_over_rows_below_the_centre():
    ids = _ids_with_box(120, 177, 246, 266)  # contact v = 177.5: 49.5 rows below v0 = 128
    position = locate_instances(ids, [SimpleNamespace(id=3, box=(246, 120, 267, 178))], GroundProjection(LEVEL))[3]
    distance = 1.5 * 500.0 / 49.5  # ahead of the camera
    assert position.x == pytest.approx(1.7 + distance) and position.y == pytest.approx(0.0, abs=1e-9)
    assert position.range == pytest.approx(distance) and position.bearing == pytest.approx(0.0, abs=1e-9)
    # half a pixel down / up moves the point to 1.5 * 500 / 50 and / 49; sideways by half a pixel at that range
    along = (1.5 * 500.0 / 49.0 - 1.5 * 500.0 / 50.0) / 2
    across = distance / 500.0 * 0.5
    assert position.sigma == pytest.approx(math.hypot(along, across), rel=1e-3)


def test_farther_objects_are_less_certain_and_left_ones_have_positive_bearing():
    projection = GroundProjection(LEVEL)
    near, far = locate(projection, (300.0, 200.5)), locate(projection, (300.0, 140.5))
    assert far.range > near.range and far.sigma > 10 * near.sigma
    assert near.y < 0 and near.bearing < 0  # right of the image centre: to the right, y negative
    assert locate(projection, (100.0, 200.5)).bearing > 0


def test_contacts_at_or_above_the_horizon_are_not_located():
    assert locate(GroundProjection(LEVEL), (256.0, 128.0)) is None
    assert locate(GroundProjection(LEVEL), (256.0, 60.0)) is None
