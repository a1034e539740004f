"""Instances located on the ground (pipeline.object_location): the mask's bottom edge, the nearest contact,
uncertainty, and the cases that cannot be located."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from seg_perception.ground_projection import CameraModel, GroundProjection
from seg_perception.pipeline.object_location import bottom_edge, locate, locate_instances

LEVEL = CameraModel(fx=500.0, fy=500.0, u0=256.0, v0=128.0, x=1.7, y=0.0, height=1.5)


def _ids_with_box(top: int, bottom: int, left: int, right: int, value: int = 3) -> np.ndarray:
    ids = np.zeros((256, 512), np.uint16)
    ids[top : bottom + 1, left : right + 1] = value
    return ids


def test_the_bottom_edge_is_the_lowest_pixel_of_every_column():
    ids = _ids_with_box(100, 180, 200, 203)
    ids[179:181, 201] = 0  # column 201 ends two rows higher
    us, vs = bottom_edge(ids, 3, (200, 100, 204, 181))
    assert us.tolist() == [200.0, 201.0, 202.0, 203.0] and vs.tolist() == [180.5, 178.5, 180.5, 180.5]
    assert bottom_edge(ids, 4, (200, 100, 204, 181)) is None  # no such pixels
    assert bottom_edge(_ids_with_box(100, 255, 200, 260), 3, (200, 100, 261, 256)) is None  # cut off at the bottom


def test_a_box_ahead_of_a_level_camera_is_located_at_its_nearest_bottom_point():
    ids = _ids_with_box(120, 177, 256, 276)  # bottom edge v = 177.5 (49.5 rows below v0 = 128), columns 256..276
    position = locate_instances(ids, [SimpleNamespace(id=3, box=(256, 120, 277, 178))], GroundProjection(LEVEL))[3]
    ahead = 1.5 * 500.0 / 49.5
    # 21 columns, all at that distance ahead and nearer the centre the nearer the camera: the pick is rank
    # int(0.03 * 20) = 0 of them by distance, column 256, on the optical axis
    lateral = 0.0
    assert position.x == pytest.approx(1.7 + ahead) and position.y == pytest.approx(lateral)
    assert position.range == pytest.approx(math.hypot(ahead, lateral))
    assert position.bearing == pytest.approx(math.atan2(lateral, ahead))
    # half a pixel down / up moves the point to 1.5 * 500 / 50 and / 49 ahead; sideways by ahead / 500 / 2
    along = (1.5 * 500.0 / 49.0 - 1.5 * 500.0 / 50.0) / 2
    assert position.sigma == pytest.approx(math.hypot(along, ahead / 500.0 * 0.5), rel=1e-3)


def test_farther_objects_are_less_certain_and_left_ones_have_positive_bearing():
    projection = GroundProjection(LEVEL)
    near = locate(projection, np.array([300.0]), np.array([200.5]))
    far = locate(projection, np.array([300.0]), np.array([140.5]))
    assert far.range > near.range and far.sigma > 10 * near.sigma
    assert near.y < 0 and near.bearing < 0  # right of the image centre: to the right, y negative
    assert locate(projection, np.array([100.0]), np.array([200.5])).bearing > 0


def test_contacts_at_or_above_the_horizon_are_not_located():
    projection = GroundProjection(LEVEL)
    assert locate(projection, np.array([256.0, 300.0]), np.array([128.0, 60.0])) is None
    partly = locate(projection, np.array([256.0, 300.0]), np.array([60.0, 200.5]))  # only the one below counts
    assert partly is not None and partly.x == pytest.approx(1.7 + 1.5 * 500.0 / 72.5)
