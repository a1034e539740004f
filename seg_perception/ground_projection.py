"""Camera pixels <-> points on a flat ground in the vehicle frame, and the bird's-eye grid (numpy + OpenCV; no ROS).

Frames (metres, right-handed):
- vehicle (``base_link``, REP-103 and Cityscapes' camera.json): x forward, y left, z up; the ground is z = 0.
- camera: mounted at (``x``, ``y``, ``z`` = height) in the vehicle frame, turned by ``yaw`` (about z, > 0 looks
  left), ``pitch`` (about y, > 0 looks down) and ``roll`` (about x): vehicle <- camera rotation
  R = Rz(yaw) Ry(pitch) Rx(roll) of a camera frame that is vehicle-aligned (x forward, y left, z up), as in
  Cityscapes' calibration; its optical frame is (x right, y down, z forward) = (-y, -z, x).
- image: u right, v down; u = fx X / Z + u0, v = fy Y / Z + v0 for optical (X, Y, Z); no distortion (rectified).

``GridSpec`` is the bird's-eye grid of ``drivable_grid`` (nav_msgs/OccupancyGrid layout): cell (row, col) covers
x in [x_min + col r, x_min + (col + 1) r) and y in [y_min + row r, ...): columns run along x (forward), rows along
y (left), the grid's origin is the corner (x_min, y_min). ``GroundProjection.grid_lookup`` maps every cell centre to
its pixel once, so a frame's grid is one ``cv2.remap`` of its mask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

FREE, OCCUPIED, UNKNOWN = 0, 100, -1
"""OccupancyGrid cell values."""


@dataclass(frozen=True)
class GridSpec:
    """A bird's-eye grid in the vehicle frame: ``resolution`` m per cell, x in [x_min, x_max), y in [y_min, y_max)."""

    resolution: float = 0.2
    x_min: float = 0.0
    x_max: float = 40.0
    y_min: float = -20.0
    y_max: float = 20.0

    def __post_init__(self) -> None:
        if self.resolution <= 0 or self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise ValueError(f"grid: resolution > 0 and min < max needed, got {self}")

    @property
    def width(self) -> int:
        """Cells along x (columns)."""
        return round((self.x_max - self.x_min) / self.resolution)

    @property
    def height(self) -> int:
        """Cells along y (rows)."""
        return round((self.y_max - self.y_min) / self.resolution)

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(x (H, W), y (H, W)) float64 vehicle-frame centres of every cell."""
        xs = self.x_min + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.y_min + (np.arange(self.height) + 0.5) * self.resolution
        return np.meshgrid(xs, ys)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) int64 cells of vehicle-frame points (may lie outside the grid)."""
        col = np.floor((np.asarray(x) - self.x_min) / self.resolution).astype(np.int64)
        row = np.floor((np.asarray(y) - self.y_min) / self.resolution).astype(np.int64)
        return row, col


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics (pixels) and the camera's pose in the vehicle frame (metres, radians)."""

    fx: float
    fy: float
    u0: float
    v0: float
    x: float = 0.0
    y: float = 0.0
    height: float = 1.5
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0

    @classmethod
    def from_cityscapes(cls, camera: Mapping) -> CameraModel:
        """From a Cityscapes camera.json dict: ``intrinsic`` fx, fy, u0, v0; ``extrinsic`` x, y, z, pitch, yaw, roll."""
        intrinsic, extrinsic = camera["intrinsic"], camera["extrinsic"]
        return cls(
            fx=float(intrinsic["fx"]),
            fy=float(intrinsic["fy"]),
            u0=float(intrinsic["u0"]),
            v0=float(intrinsic["v0"]),
            x=float(extrinsic.get("x", 0.0)),
            y=float(extrinsic.get("y", 0.0)),
            height=float(extrinsic["z"]),
            pitch=float(extrinsic.get("pitch", 0.0)),
            yaw=float(extrinsic.get("yaw", 0.0)),
            roll=float(extrinsic.get("roll", 0.0)),
        )


class GroundProjection:
    """``camera`` over a flat ground: pixels (u, v) <-> vehicle-frame ground points (x, y)."""

    def __init__(self, camera: CameraModel) -> None:
        if camera.height <= 0:
            raise ValueError(f"camera height must be > 0 m above the ground, got {camera.height}")
        self.camera = camera
        self._centre = np.array([camera.x, camera.y, camera.height])

    @cached_property
    def rotation(self) -> np.ndarray:
        """(3, 3) vehicle <- optical-frame rotation (columns: the optical x, y, z axes in vehicle coordinates)."""
        c = self.camera
        cz, sz, cy, sy, cx, sx = (f(a) for a in (c.yaw, c.pitch, c.roll) for f in (math.cos, math.sin))
        rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
        ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
        rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
        optical_to_aligned = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        return rz @ ry @ rx @ optical_to_aligned

    def ground_to_pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vehicle-frame ground points -> (u, v, depth) float64 arrays; depth <= 0: behind the camera."""
        points = np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64), np.zeros(np.shape(x))], axis=-1)
        optical = (points - self._centre) @ self.rotation  # R^T (p - c), row-wise
        depth = optical[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.camera.fx * optical[..., 0] / depth + self.camera.u0
            v = self.camera.fy * optical[..., 1] / depth + self.camera.v0
        return u, v, depth

    def pixel_to_ground(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels -> (x, y, valid) vehicle-frame ground points; ``valid`` False where the ray misses the ground
        (at or above the horizon), x and y NaN there."""
        rays = (
            np.stack(
                [
                    (np.asarray(u, np.float64) - self.camera.u0) / self.camera.fx,
                    (np.asarray(v, np.float64) - self.camera.v0) / self.camera.fy,
                    np.ones(np.shape(u)),
                ],
                axis=-1,
            )
            @ self.rotation.T
        )
        down = rays[..., 2]
        valid = down < -1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(valid, -self.camera.height / down, np.nan)
        return self._centre[0] + scale * rays[..., 0], self._centre[1] + scale * rays[..., 1], valid

    def grid_lookup(
        self, grid: GridSpec, image_size: tuple[int, int], max_range: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(map_u, map_v) (H_grid, W_grid) float32 pixel of every cell centre in an image of ``image_size`` (H, W),
        -1 for cells behind the camera, outside the image or farther than ``max_range`` m from the camera's ground
        point: ``grid_from_mask`` makes those UNKNOWN."""
        x, y = grid.cell_centres()
        u, v, depth = self.ground_to_pixel(x, y)
        height, width = image_size
        inside = (depth > 0) & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
        if max_range is not None:
            inside &= np.hypot(x - self.camera.x, y - self.camera.y) <= max_range
        return np.where(inside, u, -1).astype(np.float32), np.where(inside, v, -1).astype(np.float32)


def grid_from_mask(mask: np.ndarray, lookup: tuple[np.ndarray, np.ndarray], free_value: int = 255) -> np.ndarray:
    """(H, W) uint8 mask (``free_value`` = drivable) + ``grid_lookup`` -> (H_grid, W_grid) int8 cells: FREE where
    the cell centre's pixel is drivable, OCCUPIED where it is not, UNKNOWN outside the image."""
    sampled = cv2.remap(mask, lookup[0], lookup[1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=1)
    outside = lookup[0] < 0
    cells = np.where(sampled == free_value, FREE, OCCUPIED).astype(np.int8)
    cells[outside] = UNKNOWN
    return cells


class DrivableGrid:
    """One camera's bird's-eye drivable grid: its pose (``x, y, z, roll, pitch, yaw`` in the grid frame), the grid,
    the range limit; the cell lookup cached per intrinsics and mask size, so a frame costs one remap."""

    def __init__(self, grid: GridSpec, pose: tuple[float, ...], max_range: float | None) -> None:
        self.grid, self.pose, self.max_range = grid, tuple(pose), max_range
        self._cached: tuple[tuple, tuple[np.ndarray, np.ndarray]] | None = None

    def projection(self, fx: float, fy: float, u0: float, v0: float) -> GroundProjection:
        """The camera with these intrinsics at this grid's pose."""
        x, y, z, roll, pitch, yaw = self.pose
        return GroundProjection(CameraModel(fx, fy, u0, v0, x=x, y=y, height=z, pitch=pitch, yaw=yaw, roll=roll))

    def cells(self, drivable: np.ndarray, intrinsics: tuple[float, float, float, float]) -> np.ndarray:
        """(H, W) uint8 drivable mask (255 drivable) + (fx, fy, u0, v0) at the mask's resolution -> (rows, cols)
        int8 FREE / OCCUPIED / UNKNOWN cells (see ``grid_from_mask``)."""
        key = (tuple(intrinsics), drivable.shape)
        if self._cached is None or self._cached[0] != key:
            lookup = self.projection(*intrinsics).grid_lookup(self.grid, drivable.shape, self.max_range)
            self._cached = (key, lookup)
        return grid_from_mask(drivable, self._cached[1])
