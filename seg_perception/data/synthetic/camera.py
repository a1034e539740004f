"""The camera: a rectified pinhole above flat ground, and the projection of world polygons into its image.

Frames (all right-handed, metres):
- world: x to the right of the street axis, y up (the road surface is y = 0, sidewalks y = curb height),
  z along the street; the camera drives along +z. Every object of a sequence lives in this frame.
- camera: x right, y down, z forward (optical axis); a world point X seen from the camera position
  p (3,) is c = R (X - p) with R = ``PinholeCamera.rotation`` (pitch about x after yaw about y).
- image: u to the right, v down (pixels); u = focal * c_x / c_z + u0, v = focal * c_y / c_z + v0
  (fx = fy = focal, no skew, no distortion: the images are rectified).

The camera position is not part of ``PinholeCamera`` (its intrinsics and mounting angles are fixed for a
sequence): ``SyntheticScene.camera_position(k)`` gives it per frame and ``CameraView`` pairs the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

NEAR = 0.3
"""Near clipping plane: camera z (metres) below which geometry is cut off."""


@dataclass(frozen=True)
class PinholeCamera:
    """Rectified pinhole camera above flat ground; pitch and yaw follow Cityscapes' camera.json.

    pitch > 0 looks down (the horizon rises above v0), yaw > 0 looks left (the street's vanishing
    point moves right of u0).
    """

    width: int
    height: int
    focal: float
    u0: float
    v0: float
    mount_height: float
    pitch: float
    yaw: float

    @classmethod
    def random(cls, rng: np.random.Generator, height: int, width: int) -> PinholeCamera:
        """A sequence's camera: focal 1.0-1.15 x width, principal point within 2 % of the centre,
        mounted 1.15-1.35 m above the road, pitched 0.01-0.045 rad down, yawed up to 0.025 rad."""
        focal = width * rng.uniform(1.0, 1.15)
        return cls(
            width=width,
            height=height,
            focal=float(focal),
            u0=float(width / 2 + rng.uniform(-0.02, 0.02) * width),
            v0=float(height / 2 + rng.uniform(-0.02, 0.02) * height),
            mount_height=float(rng.uniform(1.15, 1.35)),
            pitch=float(rng.uniform(0.01, 0.045)),
            yaw=float(rng.uniform(-0.025, 0.025)),
        )

    @cached_property
    def rotation(self) -> np.ndarray:
        """(3, 3) world offset (x right, y up, z forward) -> camera (x right, y down, z forward)."""
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
        pitch = np.array([[1.0, 0.0, 0.0], [0.0, -cp, -sp], [0.0, -sp, cp]])
        return pitch @ yaw

    @property
    def horizon_row(self) -> float:
        """Image row of the horizon (and of the street's vanishing point)."""
        return self.v0 - self.focal * math.tan(self.pitch)

    def to_json(self) -> dict:
        """``camera.json`` content (Cityscapes format; extrinsics relative to the vehicle).

        Only pitch, yaw and ``z`` (the mount height) describe this camera; x, y, roll and the baseline are
        fixed Cityscapes-like values, not positions in the world frame.
        """
        return {
            "extrinsic": {"baseline": 0.21, "pitch": self.pitch, "roll": 0.0, "x": 1.7, "y": 0.1,
                          "yaw": self.yaw, "z": self.mount_height},
            "intrinsic": {"fx": self.focal, "fy": self.focal, "u0": self.u0, "v0": self.v0},
        }  # fmt: skip


def _clip_polygon(points: np.ndarray, axis: int, bound: float, keep_above: bool) -> np.ndarray:
    """Sutherland-Hodgman: the part of the (N, D) polygon with points[:, axis] >= bound (or <=)."""
    inside = points[:, axis] >= bound if keep_above else points[:, axis] <= bound
    if inside.all():
        return points
    if not inside.any():
        return points[:0]
    kept = []
    for i in range(len(points)):
        j = (i + 1) % len(points)
        if inside[i]:
            kept.append(points[i])
        if inside[i] != inside[j]:
            step = (bound - points[i, axis]) / (points[j, axis] - points[i, axis])
            kept.append(points[i] + step * (points[j] - points[i]))
    return np.array(kept)


class CameraView:
    """The camera at one world position: world points -> camera coordinates -> clipped image polygons.

    position: (3,) world position of the camera centre. Polygons come back as (N, 2) int32 pixel
    coordinates clipped to the near plane and the image, ready for ``cv2.fillPoly``, or None when
    nothing of them is visible.
    """

    def __init__(self, camera: PinholeCamera, position: np.ndarray):
        self.camera = camera
        self.position = position
        self._max = np.array([camera.width - 1, camera.height - 1], np.float64)
        self._center = np.array([camera.u0, camera.v0])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) camera coordinates."""
        return (points - self.position) @ self.camera.rotation.T

    def depth(self, point: np.ndarray) -> float:
        """Camera z (metres) of one (3,) world point."""
        return float((point - self.position) @ self.camera.rotation[2])

    def to_pixels(self, cam: np.ndarray) -> np.ndarray:
        """(N, 3) camera coordinates in front of the camera -> (N, 2) float pixels."""
        return self.camera.focal * cam[:, :2] / cam[:, 2:3] + self._center

    def _fit(self, uv: np.ndarray) -> np.ndarray | None:
        """(N, 2) float pixels -> int32 polygon clipped to the image, without repeated vertices; None if empty."""
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        if (hi < 0).any() or (lo > self._max).any():
            return None
        if (lo < 0).any() or (hi > self._max).any():
            for axis in (0, 1):
                uv = _clip_polygon(uv, axis, 0.0, keep_above=True)
                uv = _clip_polygon(uv, axis, self._max[axis], keep_above=False) if len(uv) else uv
                if len(uv) < 3:
                    return None
        pixels = np.rint(uv).astype(np.int32)
        changed = np.empty(len(pixels), bool)
        changed[0] = (pixels[0] != pixels[-1]).any()
        changed[1:] = (pixels[1:] != pixels[:-1]).any(axis=1)
        pixels = pixels[changed]
        return pixels if len(pixels) >= 3 else None

    def _fit_camera(self, cam: np.ndarray) -> np.ndarray | None:
        """(N, 3) camera-frame polygon -> clipped int32 image polygon or None."""
        if cam[:, 2].min() < NEAR:
            cam = _clip_polygon(cam, 2, NEAR, keep_above=True)
            if len(cam) < 3:
                return None
        return self._fit(self.to_pixels(cam))

    def polygon(self, points: np.ndarray) -> np.ndarray | None:
        """(N, 3) world polygon -> int32 image polygon (near-plane and image clipped) or None."""
        return self._fit_camera(self.to_camera(points))

    def polygons(self, polygons: list[np.ndarray] | np.ndarray) -> list[np.ndarray | None]:
        """Image polygons for painting, from a list of (N_i, 3) world polygons or an (M, N, 3) array.

        Polygons wholly in front of the camera and inside the image are projected in one go; only those
        crossing the near plane or the image border are clipped one by one.
        """
        if len(polygons) == 0:
            return []
        if isinstance(polygons, np.ndarray):
            count, corners = polygons.shape[:2]
            starts = np.arange(0, count * corners, corners)
            cam = self.to_camera(polygons.reshape(-1, 3))
        else:
            ends = np.cumsum([len(p) for p in polygons])
            starts = np.concatenate(([0], ends[:-1]))
            cam = self.to_camera(np.concatenate(polygons))
        ends = np.append(starts[1:], len(cam))
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = self.to_pixels(cam)
            lo, hi = np.minimum.reduceat(uv, starts, axis=0), np.maximum.reduceat(uv, starts, axis=0)
            pixels = np.rint(np.clip(uv, -1e6, 1e6)).astype(np.int32)
        in_front = np.minimum.reduceat(cam[:, 2], starts) >= NEAR
        outside = in_front & ((hi < 0).any(axis=1) | (lo > self._max).any(axis=1))
        inside = in_front & (lo >= 0).all(axis=1) & (hi <= self._max).all(axis=1)
        result: list[np.ndarray | None] = []
        for start, end, keep, crop in zip(starts, ends, inside, ~(inside | outside), strict=True):
            if keep:
                result.append(pixels[start:end])
            else:
                result.append(self._fit_camera(cam[start:end]) if crop else None)
        return result

    def hull(self, points: np.ndarray) -> np.ndarray | None:
        """Image outline of the convex body spanned by (N, 3) world points (near-plane clipped)."""
        cam = self.to_camera(points)
        front = cam[:, 2] >= NEAR
        if not front.any():
            return None
        if not front.all():
            a, b = cam[front][:, None, :], cam[~front][None, :, :]
            crossing = a + (NEAR - a[..., 2:]) / (b[..., 2:] - a[..., 2:]) * (b - a)
            cam = np.concatenate([cam[front], crossing.reshape(-1, 3)])
        uv = self.to_pixels(cam).astype(np.float32)
        return self._fit(cv2.convexHull(uv)[:, 0, :].astype(np.float64))

    def pixels_per_metre(self, point: np.ndarray) -> float:
        """Image scale at a world point (0 behind the near plane)."""
        depth = self.depth(point)
        return self.camera.focal / depth if depth >= NEAR else 0.0
