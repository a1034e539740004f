"""Flat-ground projection (seg_perception.ground_projection): round trips, known geometry, the generator's own camera,
and the bird's-eye grid built from a mask."""

import math

import numpy as np
import pytest

from seg_perception.data.synthetic import SyntheticScene
from seg_perception.data.synthetic.camera import CameraView
from seg_perception.ground_projection import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    CameraModel,
    GridSpec,
    GroundProjection,
    grid_from_mask,
)

CAMERA = CameraModel(fx=1000.0, fy=1000.0, u0=512.0, v0=256.0, x=1.7, y=0.1, height=1.5, pitch=0.04, yaw=0.02)


def test_pixels_below_the_horizon_go_to_the_ground_and_back_within_half_a_pixel():
    projection = GroundProjection(CAMERA)
    u, v = np.meshgrid(np.arange(0, 1024, 7.3), np.arange(230, 512, 3.1))
    x, y, valid = projection.pixel_to_ground(u, v)
    assert valid.all() and (x > CAMERA.x).all()
    back_u, back_v, depth = projection.ground_to_pixel(x, y)
    assert (depth > 0).all()
    assert np.abs(back_u - u).max() < 0.5 and np.abs(back_v - v).max() < 0.5


def test_a_point_ten_metres_ahead_of_a_level_camera_at_one_and_a_half_metres():
    level = CameraModel(fx=1200.0, fy=1100.0, u0=640.0, v0=360.0, height=1.5)
    projection = GroundProjection(level)
    u, v, depth = projection.ground_to_pixel(np.array([10.0]), np.array([0.0]))
    assert depth[0] == pytest.approx(10.0)
    assert u[0] == pytest.approx(640.0) and v[0] == pytest.approx(360.0 + 1100.0 * 1.5 / 10.0)
    x, y, valid = projection.pixel_to_ground(np.array([640.0]), np.array([360.0 + 1100.0 * 0.15]))
    assert valid[0] and abs(x[0] - 10.0) <= 0.01 * 10.0 and abs(y[0]) < 1e-9
    # pitched down by a: the ground point under the optical axis is height / tan(a) ahead
    pitched = GroundProjection(CameraModel(fx=1200.0, fy=1100.0, u0=640.0, v0=360.0, height=1.5, pitch=0.1))
    x, _, _ = pitched.pixel_to_ground(np.array([640.0]), np.array([360.0]))
    assert x[0] == pytest.approx(1.5 / math.tan(0.1))
    # yawed left by b: a point straight ahead appears right of the centre, at fx tan(b)
    yawed = GroundProjection(CameraModel(fx=1200.0, fy=1100.0, u0=640.0, v0=360.0, height=1.5, yaw=0.05))
    u, _, _ = yawed.ground_to_pixel(np.array([1e6]), np.array([0.0]))
    assert u[0] == pytest.approx(640.0 + 1200.0 * math.tan(0.05), rel=1e-4)


def test_rays_at_or_above_the_horizon_miss_the_ground():
    projection = GroundProjection(CAMERA)
    horizon = CAMERA.v0 - CAMERA.fy * math.tan(CAMERA.pitch)
    _, _, valid = projection.pixel_to_ground(np.array([512.0, 512.0, 512.0]), np.array([0.0, horizon - 1, horizon + 1]))
    assert valid.tolist() == [False, False, True]


def test_it_agrees_with_the_synthetic_generators_camera():
    """The generator projects world points with its own code (world x right, y up, z along the street)."""
    scene = SyntheticScene(256, 512, 2, "val", 3)
    camera_json = scene.camera.to_json()
    position = scene.camera_position(5)
    view = CameraView(scene.camera, position)
    extrinsic = camera_json["extrinsic"]
    origin_x, origin_z = position[0] + extrinsic["y"], position[2] - extrinsic["x"]  # base_link in world
    ground = np.array([[10.0, 0.0], [20.0, 3.0], [6.0, -4.0], [35.0, 1.0]])  # vehicle x forward, y left
    world = np.stack([origin_x - ground[:, 1], np.zeros(len(ground)), origin_z + ground[:, 0]], axis=1)
    expected = view.to_pixels(view.to_camera(world))
    u, v, _ = GroundProjection(CameraModel.from_cityscapes(camera_json)).ground_to_pixel(ground[:, 0], ground[:, 1])
    np.testing.assert_allclose(np.stack([u, v], axis=1), expected, atol=1e-6)


def test_a_grid_from_a_mask_is_free_drivable_occupied_elsewhere_unknown_out_of_view():
    grid = GridSpec(resolution=0.5, x_min=0.0, x_max=40.0, y_min=-10.0, y_max=10.0)
    assert (grid.width, grid.height) == (80, 40)
    projection = GroundProjection(CAMERA)
    mask = np.zeros((512, 1024), np.uint8)
    mask[:, 400:624] = 255  # a drivable band around the image centre
    lookup = projection.grid_lookup(grid, mask.shape, max_range=30.0)
    cells = grid_from_mask(mask, lookup)
    assert cells.shape == (40, 80) and cells.dtype == np.int8
    row, col = grid.cell_of(np.array([12.0, 12.0, 3.0, 35.0]), np.array([0.1, 3.0, 0.1, 0.1]))
    # ahead on the band; ahead but left of it; under the camera (below the image); beyond max_range
    assert [int(cells[r, c]) for r, c in zip(row, col, strict=True)] == [FREE, OCCUPIED, UNKNOWN, UNKNOWN]
    u, _, _ = projection.ground_to_pixel(*grid.cell_centres())
    in_band = (lookup[0] >= 0) & (u >= 400.5) & (u <= 622.5)
    assert (cells[in_band] == FREE).all() and (cells[(lookup[0] >= 0) & ((u < 399) | (u > 624))] == OCCUPIED).all()


def test_bad_cameras_and_grids_are_refused():
    with pytest.raises(ValueError, match="height must be > 0"):
        GroundProjection(CameraModel(fx=1.0, fy=1.0, u0=0.0, v0=0.0, height=0.0))
    with pytest.raises(ValueError, match="min < max"):
        GridSpec(x_min=5.0, x_max=5.0)
