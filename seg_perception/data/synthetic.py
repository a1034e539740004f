"""Synthetic Cityscapes-like driving scenes from a small 3-D street model (numpy + OpenCV only).

A sequence is a straight street driven along by a camera at ``FRAME_RATE_HZ``: lanes with dashed
markings, curbs, sidewalks, terrain, building blocks, walls, fences, hedges, trees, poles with signs,
street lamps and traffic lights, and cars, trucks, buses, motorcycles, bicycles, riders and pedestrians
standing on the ground plane and moving with their own velocity. Every labelled surface is projected
with the camera to one polygon and filled with ``cv2.fillPoly`` into the label, instance, shade and
colour canvases, back to front, so later (nearer) surfaces occlude earlier ones; the same polygons in
the same order make ``gtFine_polygons.json``, from which the official ``json2labelImg`` and
``json2instanceImg`` rebuild the label and instance images (up to edge pixels: Pillow and OpenCV
rasterise slanted edges slightly differently).

Instance ids follow the official rule ``label_id * 1000 + k``, ``k`` counting that label's polygons
in drawing order, so they are per frame, as in Cityscapes; ``SynthFrame.instance_tracks`` maps them to
track ids that stay fixed over a sequence.

World frame: x to the right of the street axis, y up, z along the street (metres); the camera drives
along +z. Image: u to the right, v down (pixels).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
import zlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from statistics import NormalDist

import cv2
import numpy as np

from seg_perception.data.layout import SPLITS, camera_path, city_of, frame_stem, gt_path, image_path
from seg_perception.labels import (
    CLASS_NAMES,
    ID_COLORS,
    ID_TO_TRAIN_ID,
    IGNORE_TRAIN_ID,
    INSTANCE_ID_DIVISOR,
    LABEL_BY_NAME,
    NUM_CLASSES,
)

DEFAULT_CITY = "synthcity"
FRAME_RATE_HZ = 17.0
"""Cityscapes video sequences are recorded at 17 Hz."""
MAX_FRAMES_PER_SEQUENCE = 300
"""The street of a sequence is built long enough for this many frames."""
THING_CLASSES = ("car", "truck", "bus", "person", "rider", "bicycle", "motorcycle")
CLASS_COUNT_BINS = NUM_CLASSES + 1
"""``SynthSummary.class_pixels`` has one bin per train id 0..18 and a last one for ignored pixels (255)."""

_VIEW_DISTANCE = 250.0  # metres of street rendered ahead; a distant skyline closes the view there
_BEHIND = 40.0  # metres behind the camera where traffic is still simulated (it may overtake)
_NEAR = 0.3  # near clipping plane, metres
_MARKING_DISTANCE = 120.0  # road paint farther away than this is below a pixel
_MIN_POLE_PIXELS = 1.2  # thin structures are widened to at least this many pixels
_LIT = 255  # shade canvas value of fully lit surfaces; 0 is full shadow
_PNG_IMAGE = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]  # fmt: skip
_PNG_LABEL = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
_BGRA_BY_ID = np.concatenate([ID_COLORS[:, ::-1], np.full((256, 1), 255, np.uint8)], axis=1)[None]  # (1, 256, 4)

Color = tuple[int, int, int]


# --------------------------------------------------------------------------------------------------
# Public results
# --------------------------------------------------------------------------------------------------


@dataclass
class SynthFrame:
    """One rendered frame, in memory.

    image: (H, W, 3) uint8 RGB; label_ids: (H, W) uint8 Cityscapes label ids; instance_ids: (H, W)
    uint16, ``label_id * 1000 + k`` on thing instances and the plain label id elsewhere; objects: the
    ``gtFine_polygons.json`` objects (``{"label", "polygon": [[x, y], ...]}``) in drawing order;
    instance_tracks: instance id -> track id, stable over the sequence; camera: ``camera.json`` content.
    """

    image: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray
    objects: list[dict]
    instance_tracks: dict[int, int]
    camera: dict

    def polygons_json(self) -> dict:
        """The ``gtFine_polygons.json`` document."""
        height, width = self.label_ids.shape
        return {"imgHeight": height, "imgWidth": width, "objects": self.objects}


@dataclass
class SynthSummary:
    """What ``generate_split`` wrote: frame count, wall time, pixels per train id, frame stems."""

    split: str
    frames: int
    seconds: float
    class_pixels: np.ndarray
    """(CLASS_COUNT_BINS,) int64: pixels per train id 0..18, last bin: ignored (train id 255)."""
    stems: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def class_fractions(self) -> dict[str, float]:
        """Fraction of all written pixels per train class name, plus ``"ignored"``."""
        total = max(int(self.class_pixels.sum()), 1)
        names = [*CLASS_NAMES, "ignored"]
        return {name: int(count) / total for name, count in zip(names, self.class_pixels, strict=True)}


def class_pixel_counts(label_ids: np.ndarray) -> np.ndarray:
    """(H, W) label ids -> (CLASS_COUNT_BINS,) int64 pixel counts per train id, ignored pixels last."""
    per_label_id = cv2.calcHist([label_ids], [0], None, [256], [0, 256]).ravel()
    counts = np.bincount(ID_TO_TRAIN_ID, weights=per_label_id, minlength=256)
    return np.append(counts[:NUM_CLASSES], counts[IGNORE_TRAIN_ID]).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Camera and polygon geometry
# --------------------------------------------------------------------------------------------------


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
        """``camera.json`` content (Cityscapes format; extrinsics relative to the vehicle)."""
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


class _Canvas:
    """One frame's label, instance, shade and colour canvases, painted back to front.

    ``region`` fills a labelled polygon (and records it for polygons.json), ``paint`` only colours the
    image (details such as windows or lane markings), ``shadow`` only darkens the shade canvas.
    """

    def __init__(self, camera: PinholeCamera, position: np.ndarray, background: np.ndarray):
        self.camera = camera
        self.position = position
        self.labels = np.zeros((camera.height, camera.width), np.uint8)
        self.instances = np.zeros((camera.height, camera.width), np.uint16)
        self.shade = np.full((camera.height, camera.width), _LIT, np.uint8)
        self.image = background.copy()
        self.objects: list[dict] = []
        self.tracks: dict[int, int] = {}
        self._instance_counts: dict[str, int] = {}
        self._max = np.array([camera.width - 1, camera.height - 1], np.float64)
        self._center = np.array([camera.u0, camera.v0])

    # projection -----------------------------------------------------------------------------------

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
        if cam[:, 2].min() < _NEAR:
            cam = _clip_polygon(cam, 2, _NEAR, keep_above=True)
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
        in_front = np.minimum.reduceat(cam[:, 2], starts) >= _NEAR
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
        front = cam[:, 2] >= _NEAR
        if not front.any():
            return None
        if not front.all():
            a, b = cam[front][:, None, :], cam[~front][None, :, :]
            crossing = a + (_NEAR - a[..., 2:]) / (b[..., 2:] - a[..., 2:]) * (b - a)
            cam = np.concatenate([cam[front], crossing.reshape(-1, 3)])
        uv = self.to_pixels(cam).astype(np.float32)
        return self._fit(cv2.convexHull(uv)[:, 0, :].astype(np.float64))

    def pixels_per_metre(self, point: np.ndarray) -> float:
        """Image scale at a world point (0 behind the near plane)."""
        depth = self.depth(point)
        return self.camera.focal / depth if depth >= _NEAR else 0.0

    # drawing --------------------------------------------------------------------------------------

    def region(
        self,
        label: str,
        polygon: np.ndarray | None,
        color: Color | None,
        shade: int | None = _LIT,
        track: int | None = None,
    ) -> None:
        """Fill a labelled polygon; ``color``/``shade`` None leave the image/shade as they are."""
        if polygon is None:
            return
        entry = LABEL_BY_NAME[label]
        cv2.fillPoly(self.labels, [polygon], entry.id)
        value = entry.id
        if entry.has_instances:
            index = self._instance_counts.get(label, 0)
            self._instance_counts[label] = index + 1
            value = entry.id * INSTANCE_ID_DIVISOR + index
            self.tracks[value] = track
        cv2.fillPoly(self.instances, [polygon], value)
        if color is not None:
            cv2.fillPoly(self.image, [polygon], color)
        if shade is not None:
            cv2.fillPoly(self.shade, [polygon], shade)
        self.objects.append({"label": label, "polygon": polygon.tolist()})

    def paint(self, polygons: list[np.ndarray | None], color: Color) -> None:
        """Colour image polygons (no label change)."""
        visible = [p for p in polygons if p is not None]
        if visible:
            cv2.fillPoly(self.image, visible, color)

    def paint_world(self, polygons: list[np.ndarray], color: Color) -> None:
        self.paint(self.polygons(polygons), color)

    def shadow(self, polygons: list[np.ndarray], value: int) -> None:
        """Darken the ground under world polygons (shade canvas only)."""
        visible = [p for p in self.polygons(polygons) if p is not None]
        if visible:
            cv2.fillPoly(self.shade, visible, value)


# --------------------------------------------------------------------------------------------------
# Small helpers for colours and shapes
# --------------------------------------------------------------------------------------------------


def _vary(rng: np.random.Generator, rgb, spread: float) -> Color:
    """A colour near ``rgb``: one random brightness step plus a little per-channel noise."""
    scale = rng.uniform(1 - spread / 200, 1 + spread / 200)
    noise = rng.normal(0, spread / 4, 3)
    return tuple(int(min(255.0, max(0.0, c * scale + n))) for c, n in zip(rgb, noise, strict=True))  # type: ignore[return-value]


def _scaled(rgb: Color, factor: float) -> Color:
    return tuple(int(min(255, c * factor)) for c in rgb)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options, weights=None):
    if weights is None:
        return options[rng.integers(len(options))]
    return options[int(np.searchsorted(np.cumsum(weights), rng.uniform(0, sum(weights)), side="right"))]


def _quad_x(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    """Vertical rectangle in the plane x = const, spanning z0..z1 and y0..y1."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]])


def _quad_z(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Vertical rectangle in the plane z = const, facing the camera."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def _rectangles_x(x: float, z0: np.ndarray, z1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """(M, 4, 3) rectangles in the plane x = const, one per entry of the (M,) bounds."""
    xs = np.full(len(z0), x)
    return np.stack([np.stack(c, axis=1) for c in ((xs, y0, z0), (xs, y0, z1), (xs, y1, z1), (xs, y1, z0))], axis=1)


def _rectangles_z(z: float, x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """(M, 4, 3) rectangles in the plane z = const, one per entry of the (M,) bounds."""
    zs = np.full(len(x0), z)
    return np.stack([np.stack(c, axis=1) for c in ((x0, y0, zs), (x1, y0, zs), (x1, y1, zs), (x0, y1, zs))], axis=1)


def _quad_ground(x0: float, x1: float, z0: float, z1: float, y: float) -> np.ndarray:
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])


def _rectangle(half_width: float, half_height: float) -> np.ndarray:
    """(4, 2) axis-aligned rectangle around the origin."""
    return np.array(
        [(-half_width, -half_height), (half_width, -half_height), (half_width, half_height), (-half_width, half_height)]
    )


@lru_cache
def _unit_circle(sides: int) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _ellipse(rx: float, ry: float, sides: int = 10) -> np.ndarray:
    """(sides, 2) ellipse outline around the origin."""
    return _unit_circle(sides) * (rx, ry)


def _blob(rng: np.random.Generator, rx: float, ry: float, sides: int = 18) -> np.ndarray:
    """(sides, 2) irregular round outline (tree crowns, bushes)."""
    radius = rng.uniform(0.78, 1.05, sides)
    radius = (radius + np.roll(radius, 1) + np.roll(radius, -1)) / 3
    return _ellipse(rx, ry, sides) * radius[:, None]


def _billboard(points_xy: np.ndarray, x: float, y: float, z: float) -> np.ndarray:
    """(N, 2) outline in metres -> (N, 3) world points in the plane z = const around (x, y)."""
    return np.column_stack([x + points_xy[:, 0], y + points_xy[:, 1], np.full(len(points_xy), z)])


# --------------------------------------------------------------------------------------------------
# Look: palettes, lighting and textures of one sequence
# --------------------------------------------------------------------------------------------------

_FACADES = [(205, 190, 165), (220, 215, 205), (160, 158, 152), (150, 85, 65), (212, 192, 135), (200, 150, 128),
            (95, 90, 85), (175, 175, 168), (185, 170, 150), (130, 120, 110), (225, 225, 225)]  # fmt: skip
_CAR_PAINTS = [(20, 20, 22), (225, 225, 228), (160, 162, 166), (95, 97, 100), (25, 40, 90), (150, 20, 20),
               (40, 80, 160), (30, 70, 45), (190, 175, 140), (120, 20, 30), (210, 140, 30), (60, 60, 70)]  # fmt: skip
_CAR_WEIGHTS = [14, 14, 16, 14, 7, 7, 5, 3, 3, 3, 2, 8]
_CLOTHES = [(25, 25, 30), (40, 45, 80), (90, 90, 95), (170, 160, 140), (140, 30, 35), (200, 200, 200),
            (60, 90, 140), (40, 80, 50), (190, 150, 60), (110, 70, 40), (150, 120, 160), (230, 110, 60)]  # fmt: skip
_SKIN = [(232, 190, 160), (205, 160, 125), (160, 110, 80), (110, 75, 55), (245, 210, 185)]
_HAIR = [(25, 20, 18), (70, 45, 30), (150, 110, 60), (200, 180, 130), (140, 140, 140)]


@dataclass
class _Look:
    """Colours and lighting of one sequence."""

    road: Color
    road_patch: Color
    marking: Color
    sidewalk: Color
    curb: Color
    terrain: Color
    vegetation: Color
    parking: Color
    pole: Color
    sky_top: Color
    sky_horizon: Color
    sunny: bool
    sun_side: int
    shadow_reach: float  # lateral shadow length per metre of height
    shadow_shift: float  # shadow shift along z per metre of height

    @classmethod
    def random(cls, rng: np.random.Generator) -> _Look:
        asphalt = rng.uniform(70, 125)
        road = _vary(rng, (asphalt, asphalt, asphalt * rng.uniform(0.96, 1.06)), 8)
        sidewalk = _pick(rng, [(160, 158, 152), (150, 118, 105), (178, 165, 140), (135, 135, 138)], [4, 2, 2, 2])
        sunny = rng.random() < 0.6
        overcast_grey = rng.uniform(190, 235)
        return cls(
            road=road,
            road_patch=_scaled(road, rng.uniform(0.8, 0.95)),
            marking=_vary(rng, (228, 228, 220), 10),
            sidewalk=_vary(rng, sidewalk, 12),
            curb=_vary(rng, (175, 175, 170), 12),
            terrain=_vary(rng, _pick(rng, [(105, 128, 65), (135, 130, 85), (118, 100, 78), (90, 120, 60)]), 14),
            vegetation=_vary(rng, _pick(rng, [(62, 92, 40), (75, 100, 45), (95, 105, 45), (50, 75, 40)]), 12),
            parking=_vary(rng, _pick(rng, [(125, 120, 118), (140, 110, 100), (105, 105, 110)]), 10),
            pole=_vary(rng, _pick(rng, [(130, 132, 135), (60, 75, 65), (45, 45, 48), (160, 160, 155)]), 10),
            sky_top=_vary(rng, (95, 145, 215), 20) if sunny else _vary(rng, (overcast_grey,) * 3, 8),
            sky_horizon=_vary(rng, (200, 218, 238), 12) if sunny else _vary(rng, (overcast_grey + 15,) * 3, 6),
            sunny=sunny,
            sun_side=int(rng.choice([-1, 1])),
            shadow_reach=rng.uniform(0.35, 1.3),
            shadow_shift=rng.uniform(-0.6, 0.6),
        )


_TEXTURE_LABELS = {  # label -> (fine, medium, coarse) relative contrast of the noise textures
    "road": (0.06, 0.03, 0.04), "sidewalk": (0.05, 0.04, 0.05), "parking": (0.09, 0.06, 0.06),
    "terrain": (0.14, 0.12, 0.12), "vegetation": (0.22, 0.2, 0.1), "building": (0.04, 0.05, 0.1),
    "wall": (0.05, 0.06, 0.1), "fence": (0.05, 0.04, 0.05), "sky": (0.0, 0.02, 0.07),
    "pole": (0.03, 0.02, 0.03), "traffic sign": (0.02, 0.02, 0.03), "traffic light": (0.02, 0.02, 0.03),
    "ego vehicle": (0.02, 0.02, 0.04), "rectification border": (0.0, 0.0, 0.0),
}  # fmt: skip
_THING_TEXTURE = (0.03, 0.03, 0.04)


class _Textures:
    """Per-sequence noise fields and colour grading, applied to the flat-shaded canvas."""

    def __init__(self, rng: np.random.Generator, look: _Look, height: int, width: int):
        self.fields = [self._noise(rng, height, width, cells) for cells in (1, 4, 24)]
        contrast = rng.uniform(0.5, 1.3)
        self.amplitude = np.zeros((3, 256), np.float32)
        for label in LABEL_BY_NAME.values():
            if label.id >= 0:
                gains = _TEXTURE_LABELS.get(label.name, _THING_TEXTURE)
                self.amplitude[:, label.id] = np.asarray(gains) * contrast
        yy = (np.arange(height, dtype=np.float32)[:, None] - height / 2) / (width / 2)
        xx = (np.arange(width, dtype=np.float32)[None, :] - width / 2) / (width / 2)
        radius = xx * xx + yy * yy
        self.vignette = (1 - rng.uniform(0.0, 0.3) * radius).astype(np.float32)  # (H, W)
        sun = np.array([1.0, rng.uniform(0.97, 1.0), rng.uniform(0.9, 0.98)]) if look.sunny else np.ones(3)
        shadow = (np.array([0.5, 0.55, 0.68]) * rng.uniform(0.75, 1.15)) if look.sunny else np.full(3, 0.72)
        lit = np.linspace(0.0, 1.0, 256)[:, None]
        self.shade_table = (shadow * (1 - lit) + sun * lit).astype(np.float32)[None]  # (1, 256, 3)
        self.grading = self._grading(rng)
        self.blur_sigma = float(rng.uniform(0.3, 1.0))
        # Sensor noise: a bank of Gaussian noise (random bytes through the normal quantile function), split into
        # its positive and negative parts for saturating uint8 arithmetic; frames use shifted crops of it.
        sigma = rng.uniform(1.0, 4.0)
        quantiles = np.array([NormalDist(0.0, sigma).inv_cdf((i + 0.5) / 256) for i in range(256)])
        raw = rng.integers(0, 256, (height + 16, width + 16, 3), np.uint8)
        self.noise_up = cv2.LUT(raw, np.clip(np.rint(quantiles), 0, 255).astype(np.uint8))
        self.noise_down = cv2.LUT(raw, np.clip(np.rint(-quantiles), 0, 255).astype(np.uint8))

    @staticmethod
    def _noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
        """(H, W) float32 zero-mean unit-variance noise with features about ``cell`` pixels wide."""
        small = rng.standard_normal((height // cell + 3, width // cell + 3), dtype=np.float32)
        if cell > 1:
            small = cv2.resize(
                small, ((width // cell + 3) * cell, (height // cell + 3) * cell), interpolation=cv2.INTER_CUBIC
            )
        else:
            small = cv2.GaussianBlur(small, (0, 0), 0.7)
        small = small[cell : cell + height, cell : cell + width]
        return ((small - small.mean()) / (small.std() + 1e-6)).astype(np.float32)

    @staticmethod
    def _grading(rng: np.random.Generator) -> np.ndarray:
        """(1, 256, 3) uint8 lookup table: exposure, contrast, gamma and white balance."""
        x = np.linspace(0.0, 1.0, 256)[:, None]
        gamma = rng.uniform(0.8, 1.25)
        contrast = rng.uniform(0.8, 1.2)
        exposure = rng.uniform(0.75, 1.2)
        balance = rng.uniform(0.93, 1.07, 3)
        y = ((x**gamma - 0.5) * contrast + 0.5) * exposure * balance
        return np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)[None]

    def finish(self, canvas: _Canvas, rng: np.random.Generator) -> np.ndarray:
        """Flat canvas colours -> textured, shaded, graded, blurred and noisy (H, W, 3) uint8 image."""
        labels = canvas.labels
        modulation = self.vignette.copy()
        for noise, amplitude in zip(self.fields, self.amplitude, strict=True):
            modulation += cv2.multiply(noise, cv2.LUT(labels, amplitude))
        light = cv2.LUT(cv2.merge([canvas.shade] * 3), self.shade_table)
        light = cv2.multiply(light, cv2.merge([modulation] * 3))
        image = cv2.LUT(cv2.multiply(canvas.image, light, dtype=cv2.CV_8U), self.grading)
        image = cv2.GaussianBlur(image, (0, 0), self.blur_sigma)
        height, width = labels.shape
        y0, x0, y1, x1 = rng.integers(0, 16, 4)
        image = cv2.add(image, self.noise_up[y0 : y0 + height, x0 : x0 + width])
        return cv2.subtract(image, self.noise_down[y1 : y1 + height, x1 : x1 + width])


# --------------------------------------------------------------------------------------------------
# Street objects
# --------------------------------------------------------------------------------------------------


def _heading_basis(heading: float) -> np.ndarray:
    """(3, 3) local (right, up, forward) -> world, for a heading angle from +z towards +x."""
    s, c = math.sin(heading), math.cos(heading)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass
class _Detail:
    """A coloured polygon on one face of a model, drawn when its face looks at the camera."""

    points: np.ndarray  # (N, 3) local (right, up, forward)
    normal: np.ndarray  # (3,) local outward normal
    color: Color


def _face(axis: str, offset: float, a0: float, a1: float, b0: float, b1: float) -> np.ndarray:
    """Rectangle in a local face plane: axis 'side' (x=offset; a: forward, b: up) or 'end' (z=offset; a: right)."""
    if axis == "side":
        return np.array([[offset, b0, a0], [offset, b0, a1], [offset, b1, a1], [offset, b1, a0]])
    return np.array([[a0, b0, offset], [a1, b0, offset], [a1, b1, offset], [a0, b1, offset]])


def _side_polygon(offset: float, forward_up: list[tuple[float, float]]) -> np.ndarray:
    return np.array([[offset, y, z] for z, y in forward_up])


def _wheel(offset: float, forward: float, radius: float, hub_height: float | None = None) -> np.ndarray:
    """(10, 3) disc in the local side plane x = offset, centred at (forward, hub_height or radius)."""
    circle = _ellipse(radius, radius, 10)
    centre = radius if hub_height is None else hub_height
    return np.column_stack([np.full(10, offset), centre + circle[:, 1], forward + circle[:, 0]])


_X, _Z = np.eye(3)[[0, 2]]  # local right and forward axes
_GLASS = (45, 55, 68)
_DARK = (28, 28, 30)
_TYRE = (18, 18, 20)


def _car_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[_Detail]]:
    hw, hl, belt = width / 2, length / 2, 0.62 * height
    profile = [(-hl, 0.3, hw), (-hl + 0.05, belt, hw), (-hl + 0.55, belt + 0.07, hw - 0.05),
               (-hl + 1.05, height, hw - 0.18), (hl - 1.75, height, hw - 0.18), (hl - 1.0, belt + 0.07, hw - 0.05),
               (hl - 0.08, belt - 0.1, hw - 0.04), (hl, 0.3, hw)]  # fmt: skip
    hull = [[s * half, y, z] for z, y, half in profile for s in (-1, 1)]
    hull += [[s * (hw - 0.1), y, axle + dz] for s in (-1, 1) for axle in (-hl + 0.8, hl - 0.8)
             for dz, y in ((-0.22, 0.08), (0.0, 0.0), (0.22, 0.08))]  # fmt: skip
    glass = _vary(rng, _GLASS, 10)
    details = []
    for s in (-1, 1):
        window = [
            (-hl + 0.62, belt + 0.07),
            (-hl + 1.08, height - 0.05),
            (hl - 1.78, height - 0.05),
            (hl - 1.05, belt + 0.07),
        ]
        details.append(_Detail(_side_polygon(s * (hw - 0.12), window), s * _X, glass))
        pillar = ((-hl + 1.08) + (hl - 1.78)) / 2  # middle of the side window
        details.append(
            _Detail(_face("side", s * (hw - 0.11), pillar - 0.06, pillar + 0.06, belt, height), s * _X, paint)
        )
        for axle in (-hl + 0.8, hl - 0.8):
            details.append(_Detail(_wheel(s * hw, axle, 0.31), s * _X, _TYRE))
            details.append(_Detail(_wheel(s * (hw + 0.01), axle, 0.14, 0.31), s * _X, (150, 150, 152)))
    lamp = _vary(rng, (200, 30, 30), 20)
    for end, light in ((-1, lamp), (1, (225, 225, 210))):
        z = end * (hl + 0.01)
        normal = end * _Z
        details.append(_Detail(_face("end", z, -hw + 0.02, hw - 0.02, 0.0, 0.3), normal, _DARK))
        details.append(_Detail(_face("end", z, -hw + 0.05, -hw + 0.3, 0.0, 0.28), normal, _TYRE))
        details.append(_Detail(_face("end", z, hw - 0.3, hw - 0.05, 0.0, 0.28), normal, _TYRE))
        details.append(_Detail(_face("end", z, -0.26, 0.26, 0.38, 0.5), normal, (215, 215, 210)))
        for s in (-1, 1):
            details.append(
                _Detail(_face("end", z, s * (hw - 0.06), s * (hw - 0.34), belt - 0.24, belt - 0.08), normal, light)
            )
    rear_window = np.array([
        [-(hw - 0.22), belt + 0.08, -hl + 0.58], [hw - 0.22, belt + 0.08, -hl + 0.58],
        [hw - 0.3, height - 0.05, -hl + 1.02], [-(hw - 0.3), height - 0.05, -hl + 1.02],
    ])  # fmt: skip
    windshield = np.array([
        [-(hw - 0.14), belt + 0.08, hl - 1.02], [hw - 0.14, belt + 0.08, hl - 1.02],
        [hw - 0.3, height - 0.05, hl - 1.72], [-(hw - 0.3), height - 0.05, hl - 1.72],
    ])  # fmt: skip
    details.append(_Detail(rear_window, -_Z, glass))
    details.append(_Detail(windshield, _Z, glass))
    return np.array(hull), details


def _truck_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[_Detail]]:
    hw, hl = width / 2, length / 2
    cab_height, cab_start, box_end = min(height, rng.uniform(2.6, 3.0)), hl - 2.2, hl - 2.3
    hull = [[s * hw, y, z] for s in (-1, 1) for z in (-hl, box_end) for y in (0.5, height)]
    hull += [[s * (hw - 0.05), y, z] for s in (-1, 1) for z in (cab_start, hl) for y in (0.45, cab_height - 0.1)]
    hull += [[s * (hw - 0.05), cab_height, z] for s in (-1, 1) for z in (cab_start, hl - 0.15)]
    axles = (-hl + 1.4, hl - 1.2)
    hull += [
        [s * (hw - 0.15), y, axle + dz]
        for s in (-1, 1)
        for axle in axles
        for dz, y in ((-0.4, 0.1), (0.0, 0.0), (0.4, 0.1))
    ]
    cab = _vary(rng, _pick(rng, _CAR_PAINTS), 20)
    glass = _vary(rng, _GLASS, 10)
    details = []
    for s in (-1, 1):
        side = s * (hw + 0.01)
        details.append(_Detail(_face("side", side, -hl, box_end, 0.0, 1.0), s * _X, _DARK))
        details.append(_Detail(_face("side", side, cab_start, hl, 0.45, cab_height), s * _X, cab))
        details.append(
            _Detail(_face("side", side, cab_start + 0.3, hl - 0.5, cab_height * 0.6, cab_height - 0.2), s * _X, glass)
        )
        details.append(
            _Detail(
                _face("side", side, -hl + 0.2, box_end - 0.2, height - 0.35, height - 0.15),
                s * _X,
                _scaled(paint, 0.85),
            )
        )
        for axle in axles:
            details.append(_Detail(_wheel(side, axle, 0.5), s * _X, _TYRE))
    rear = -(hl + 0.01)
    details.append(_Detail(_face("end", rear, -hw, hw, 0.0, 0.5), -_Z, _DARK))
    details.append(_Detail(_face("end", rear, -0.02, 0.02, 0.6, height - 0.1), -_Z, _scaled(paint, 0.6)))
    for s in (-1, 1):
        details.append(_Detail(_face("end", rear, s * (hw - 0.1), s * (hw - 0.35), 0.6, 0.75), -_Z, (200, 35, 30)))
    front = hl + 0.01
    details.append(_Detail(_face("end", front, -hw + 0.05, hw - 0.05, 0.45, cab_height), _Z, cab))
    details.append(_Detail(_face("end", front, -hw + 0.2, hw - 0.2, cab_height * 0.55, cab_height - 0.15), _Z, glass))
    details.append(_Detail(_face("end", front, -hw + 0.4, hw - 0.4, 0.7, 1.2), _Z, _DARK))
    for s in (-1, 1):
        details.append(_Detail(_face("end", front, s * (hw - 0.12), s * (hw - 0.4), 0.55, 0.7), _Z, (225, 225, 210)))
    return np.array(hull), details


def _bus_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[_Detail]]:
    hw, hl = width / 2, length / 2
    hull = [[s * hw, y, z] for s in (-1, 1) for z in (-hl, hl) for y in (0.3, height - 0.15)]
    hull += [[s * (hw - 0.12), height, z] for s in (-1, 1) for z in (-hl + 0.1, hl - 0.1)]
    axles = (-hl + 2.8, hl - 2.5)
    hull += [
        [s * (hw - 0.15), y, axle + dz]
        for s in (-1, 1)
        for axle in axles
        for dz, y in ((-0.4, 0.1), (0.0, 0.0), (0.4, 0.1))
    ]
    glass = _vary(rng, _GLASS, 8)
    accent = _vary(rng, _pick(rng, _CLOTHES), 20)
    details = []
    for s in (-1, 1):
        side = s * (hw + 0.01)
        details.append(_Detail(_face("side", side, -hl, hl, 0.0, 0.3), s * _X, _DARK))
        details.append(_Detail(_face("side", side, -hl + 0.5, hl - 0.6, 1.15, height - 0.35), s * _X, glass))
        details.append(_Detail(_face("side", side, -hl + 0.3, hl - 0.3, 0.55, 0.75), s * _X, accent))
        pillars = np.arange(-hl + 1.9, hl - 2.0, rng.uniform(1.4, 1.9))
        for z in pillars:
            details.append(_Detail(_face("side", side, z - 0.07, z + 0.07, 1.15, height - 0.35), s * _X, paint))
        details.append(
            _Detail(_face("side", side, hl - 1.9, hl - 0.7, 0.35, height - 0.4), s * _X, _scaled(glass, 0.8))
        )
        for axle in axles:
            details.append(_Detail(_wheel(side, axle, 0.5), s * _X, _TYRE))
    rear, front = -(hl + 0.01), hl + 0.01
    details.append(_Detail(_face("end", rear, -hw, hw, 0.0, 0.3), -_Z, _DARK))
    details.append(_Detail(_face("end", rear, -hw + 0.25, hw - 0.25, 1.8, height - 0.35), -_Z, glass))
    details.append(_Detail(_face("end", rear, -0.26, 0.26, 0.45, 0.57), -_Z, (215, 215, 210)))
    for s in (-1, 1):
        details.append(_Detail(_face("end", rear, s * (hw - 0.08), s * (hw - 0.22), 0.5, 1.3), -_Z, (200, 35, 30)))
        details.append(_Detail(_face("end", front, s * (hw - 0.1), s * (hw - 0.45), 0.5, 0.65), _Z, (225, 225, 210)))
    details.append(_Detail(_face("end", front, -hw, hw, 0.0, 0.3), _Z, _DARK))
    details.append(_Detail(_face("end", front, -hw + 0.1, hw - 0.1, 1.0, height - 0.45), _Z, glass))
    details.append(_Detail(_face("end", front, -hw + 0.3, hw - 0.3, height - 0.4, height - 0.12), _Z, (225, 160, 40)))
    return np.array(hull), details


def _wheel_ring(forward: float, radius: float, half_width: float) -> list[list[float]]:
    circle = _ellipse(radius, radius, 8)
    return [[s * half_width, radius + dy, forward + dz] for dz, dy in circle for s in (-1, 1)]


def _motorcycle_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[_Detail]]:
    hl = length / 2
    hull = _wheel_ring(-hl + 0.31, 0.31, 0.07) + _wheel_ring(hl - 0.31, 0.31, 0.07)
    hull += [[s * 0.16, 0.8, z] for s in (-1, 1) for z in (-0.5, 0.15)]
    hull += [[s * 0.18, 0.98, 0.3] for s in (-1, 1)] + [[s * width / 2, height, 0.5] for s in (-1, 1)]
    hull += [[s * 0.1, 0.9, hl - 0.15] for s in (-1, 1)] + [[0.22, 0.45, -0.7]]
    details = []
    for s in (-1, 1):
        for axle in (-hl + 0.31, hl - 0.31):
            details.append(_Detail(_wheel(s * 0.08, axle, 0.31), s * _X, _TYRE))
            details.append(_Detail(_wheel(s * 0.09, axle, 0.16, 0.31), s * _X, (120, 120, 125)))
        details.append(_Detail(_face("side", s * 0.17, -0.2, 0.35, 0.3, 0.72), s * _X, (70, 70, 75)))
    for end in (-1, 1):
        z = end * (hl + 0.01)
        details.append(_Detail(_face("end", z, -0.07, 0.07, 0.0, 0.55), end * _Z, _TYRE))
    details.append(_Detail(_face("end", -0.76, -0.07, 0.07, 0.78, 0.86), -_Z, (210, 30, 30)))
    details.append(_Detail(_billboard(_ellipse(0.09, 0.09, 8), 0.0, 0.92, hl - 0.1), _Z, (230, 230, 215)))
    return np.array(hull), details


# (forward, up) of rear hub, bottom bracket, saddle, head tube, front hub
_BICYCLE_FRAME = np.array([(-0.53, 0.34), (0.0, 0.3), (-0.2, 0.95), (0.4, 0.92), (0.53, 0.34)])


def _bicycle_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[_Detail]]:
    hull = _wheel_ring(-0.53, 0.34, 0.03) + _wheel_ring(0.53, 0.34, 0.03)
    hull += [[s * width / 2, height, 0.45] for s in (-1, 1)] + [[s * 0.09, 0.95, -0.22] for s in (-1, 1)]
    return np.array(hull), []


@dataclass
class _Person:
    """A pedestrian (label person) or a rider seated on a bicycle or motorcycle (label rider)."""

    label: str
    x: float
    z: float
    ground: float
    speed_x: float
    speed_z: float
    height: float
    girth: float
    clothes: tuple[Color, Color, Color, Color]  # trousers, top, skin or hair (head), hair
    facing_camera: bool
    phase: float
    track: int
    seat_height: float = 0.0  # riders: hip height above the ground
    leg_fraction: float = 1.0  # riders: leg length relative to standing

    def anchor(self, t: float) -> tuple[float, float]:
        """(x, z) of the feet at time t."""
        return self.x + self.speed_x * t, self.z + self.speed_z * t

    def z_range(self, t: float) -> tuple[float, float]:
        z = self.anchor(t)[1]
        return z - 0.3, z + 0.3

    # right half of a standing person 1.75 m tall, head to foot, (x, y) metres
    _HALF = np.array([(0.0, 1.75), (0.07, 1.73), (0.105, 1.65), (0.09, 1.56), (0.06, 1.51), (0.2, 1.46),
                      (0.255, 1.37), (0.27, 1.05), (0.245, 0.8), (0.195, 0.82), (0.17, 0.88), (0.15, 0.45),
                      (0.135, 0.07), (0.155, 0.0), (0.035, 0.0), (0.045, 0.45)])  # fmt: skip
    _HIP = 0.88

    def outline(self, t: float) -> np.ndarray:
        """(N, 2) silhouette in metres around the feet (x right, y up), walking pose at time t."""
        half = self._HALF.copy()
        if self.label == "rider":
            half[11:, 1] = self._HIP - (self._HIP - half[11:, 1]) * self.leg_fraction
            half[11:, 0] *= 1.25
            half[6:10, 0] *= 1.2  # arms reaching for the handlebar
            half[:, 1] += self.seat_height - self._HIP
        left = half[::-1].copy()
        left[:, 0] *= -1
        stride = 0.07 * math.sin(self.phase + 2 * math.pi * 1.8 * t) if self.speed_x or self.speed_z else 0.0
        half[12:15, 1] += max(stride, 0.0)
        left[1:4, 1] += max(-stride, 0.0)
        crotch = [(0.0, self.seat_height - 0.05 if self.label == "rider" else 0.8)]
        points = np.concatenate([half, crotch, left])
        return points * [self.girth * self.height / 1.75, self.height / 1.75]

    def draw(self, canvas: _Canvas, t: float, shade: int) -> None:
        x, z = self.anchor(t)
        outline = self.outline(t)
        canvas.region(
            self.label, canvas.polygon(_billboard(outline, x, self.ground, z)), self.clothes[0], shade, self.track
        )
        if canvas.pixels_per_metre(np.array([x, self.ground, z])) * self.height < 12:
            return
        mirror = 2 * len(self._HALF)  # outline[mirror - j] mirrors outline[j]
        torso = np.concatenate([outline[4:11], outline[mirror - 10 : mirror - 3]])  # neck..hip, both sides
        head = np.concatenate([outline[0:5], outline[mirror - 4 : mirror]])
        hair = np.concatenate([outline[0:3], outline[mirror - 2 : mirror]])
        torso, head, hair = canvas.polygons([_billboard(p, x, self.ground, z) for p in (torso, head, hair)])
        canvas.paint([torso], self.clothes[1])
        canvas.paint([head], self.clothes[2] if self.facing_camera else self.clothes[3])
        canvas.paint([hair], self.clothes[3])


_VEHICLE_MODELS = {"car": _car_model, "truck": _truck_model, "bus": _bus_model,
                   "motorcycle": _motorcycle_model, "bicycle": _bicycle_model}  # fmt: skip


@dataclass
class _Vehicle:
    """A car, truck, bus, motorcycle or bicycle (with an optional rider), moving along its heading."""

    kind: str
    x: float
    z: float
    ground: float
    speed: float  # m/s along the heading
    heading: float  # rad from +z towards +x: 0 drives with the camera, pi oncoming
    length: float
    width: float
    height: float
    paint: Color
    model_seed: int  # details (glass tint, cab colour, ...) are drawn from it when first needed
    track: int = -1  # set when the vehicle joins the scene
    rider: _Person | None = None

    def __post_init__(self) -> None:
        self.basis = _heading_basis(self.heading)

    @cached_property
    def model(self) -> tuple[np.ndarray, list[_Detail], np.ndarray, np.ndarray, np.ndarray]:
        """Local hull points (K, 3), details, their normals and first points (D, 3), shadow footprint (4, 3)."""
        dims = (self.length, self.width, self.height)
        hull, details = _VEHICLE_MODELS[self.kind](np.random.default_rng(self.model_seed), *dims, self.paint)
        normals = np.array([d.normal for d in details]).reshape(-1, 3)
        anchors = np.array([d.points[0] for d in details]).reshape(-1, 3)
        half_width, half_length = self.width / 2 + 0.2, self.length / 2 + 0.25
        corners = ((-1, -1), (1, -1), (1, 1), (-1, 1))
        footprint = np.array([[s * half_width, 0.02, e * half_length] for s, e in corners])
        return hull, details, normals, anchors, footprint

    def position(self, t: float) -> np.ndarray:
        return np.array([self.x, self.ground, self.z]) + self.basis[:, 2] * self.speed * t

    def anchor(self, t: float) -> tuple[float, float]:
        x, _, z = self.position(t)
        return x, z

    def z_range(self, t: float) -> tuple[float, float]:
        z = self.position(t)[2]
        reach = abs(math.cos(self.heading)) * self.length / 2 + abs(math.sin(self.heading)) * self.width / 2
        return z - reach, z + reach

    def draw(self, canvas: _Canvas, t: float, shade: int) -> None:
        center, basis = self.position(t), self.basis
        hull, _, _, _, footprint = self.model
        canvas.shadow([center + footprint @ basis.T], 30)
        see_through = self.kind == "bicycle"
        polygon = canvas.hull(center + hull @ basis.T)
        canvas.region(
            self.kind, polygon, None if see_through else self.paint, None if see_through else shade, self.track
        )
        if polygon is not None:
            if see_through:
                self._draw_bicycle_frame(canvas, center, basis)
            else:
                self._draw_details(canvas, center, basis)
        if self.rider is not None:
            self.rider.draw(canvas, t, shade)

    def _draw_details(self, canvas: _Canvas, center: np.ndarray, basis: np.ndarray) -> None:
        if canvas.pixels_per_metre(center) * self.height < 6:
            return
        _, details, normals, anchors, _ = self.model
        eye = basis.T @ (canvas.position - center)  # camera in the vehicle's frame
        facing = ((eye - anchors) * normals).sum(axis=1) > 0
        visible = [detail for detail, shown in zip(details, facing, strict=True) if shown]
        polygons = canvas.polygons([center + d.points @ basis.T for d in visible])
        for detail, polygon in zip(visible, polygons, strict=True):
            if polygon is not None:
                canvas.paint([polygon], detail.color)

    def _draw_bicycle_frame(self, canvas: _Canvas, center: np.ndarray, basis: np.ndarray) -> None:
        scale = canvas.pixels_per_metre(center)
        wheel = _ellipse(0.34, 0.34, 16)
        local = [np.column_stack([np.zeros(16), 0.34 + wheel[:, 1], hub + wheel[:, 0]]) for hub in (-0.53, 0.53)]
        tubes = _BICYCLE_FRAME[[0, 1, 2, 0, 2, 3, 1, 3, 4]]
        local.append(np.column_stack([np.zeros(len(tubes)), tubes[:, 1], tubes[:, 0]]))
        local.append(np.array([[-self.width / 2, self.height, 0.45], [self.width / 2, self.height, 0.45]]))
        cams = [canvas.to_camera(center + p @ basis.T) for p in local]
        if min(c[:, 2].min() for c in cams) < _NEAR:
            return
        lines = [np.rint(canvas.to_pixels(c)).astype(np.int32) for c in cams]
        thickness = max(1, round(0.045 * scale))
        cv2.polylines(canvas.image, lines[:2], True, _TYRE, thickness)
        cv2.polylines(canvas.image, lines[2:], False, self.paint, max(1, round(0.035 * scale)))


def _make_vehicle(rng, kind: str, x: float, z: float, ground: float, speed: float, heading: float) -> _Vehicle:
    dims = {
        "car": (rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.65)),
        "truck": (rng.uniform(6.5, 9.5), rng.uniform(2.3, 2.5), rng.uniform(3.0, 3.8)),
        "bus": (rng.uniform(11.0, 13.0), 2.5, rng.uniform(3.0, 3.3)),
        "motorcycle": (rng.uniform(2.0, 2.2), rng.uniform(0.7, 0.8), rng.uniform(1.1, 1.25)),
        "bicycle": (1.75, rng.uniform(0.55, 0.62), rng.uniform(1.0, 1.06)),
    }[kind]
    if kind == "car":
        paint = _vary(rng, _pick(rng, _CAR_PAINTS, _CAR_WEIGHTS), 12)
    elif kind == "bus":
        paint = _vary(
            rng, _pick(rng, [(235, 200, 40), (225, 225, 220), (190, 30, 30), (40, 90, 170), (230, 220, 190)]), 10
        )
    elif kind == "truck":
        paint = _vary(
            rng, _pick(rng, [(230, 230, 230), (200, 200, 195), (160, 40, 30), (40, 70, 130), (235, 235, 235)]), 12
        )
    else:
        paint = _vary(
            rng, _pick(rng, [(20, 20, 22), (170, 30, 30), (30, 60, 150), (200, 200, 205), (230, 120, 20)]), 15
        )
    return _Vehicle(kind, x, z, ground, speed, heading, *dims, paint, int(rng.integers(2**32)))


def _make_person(
    rng, label: str, x: float, z: float, ground: float, speed_x: float, speed_z: float, track: int
) -> _Person:
    child = label == "person" and rng.random() < 0.08
    height = rng.uniform(1.05, 1.4) if child else rng.uniform(1.58, 1.95)
    clothes = (
        _vary(rng, _pick(rng, _CLOTHES[:4] + _CLOTHES[6:7]), 12),
        _vary(rng, _pick(rng, _CLOTHES), 20),
        _vary(rng, _pick(rng, _SKIN), 10),
        _vary(rng, _pick(rng, _HAIR), 10),
    )
    facing = speed_z < 0 if speed_z else bool(rng.random() < 0.5)
    return _Person(
        label,
        x,
        z,
        ground,
        speed_x,
        speed_z,
        height,
        rng.uniform(0.9, 1.2),
        clothes,
        facing,
        rng.uniform(0, 6.3),
        track,
    )


def _seat(rng: np.random.Generator, rider: _Person, vehicle: _Vehicle) -> _Person:
    """Put a rider on a bicycle or motorcycle: same motion, seated pose (helmet on a motorcycle)."""
    basis = _heading_basis(vehicle.heading)
    seat = np.array([vehicle.x, 0.0, vehicle.z]) + basis[:, 2] * (-0.2)
    velocity = basis[:, 2] * vehicle.speed
    rider.x, rider.z, rider.ground = seat[0], seat[2], vehicle.ground
    rider.speed_x, rider.speed_z = velocity[0], velocity[2]
    rider.seat_height = 0.95 if vehicle.kind == "bicycle" else 0.82
    rider.leg_fraction = 0.78 if vehicle.kind == "bicycle" else 0.5
    rider.facing_camera = math.cos(vehicle.heading) < 0
    if vehicle.kind == "motorcycle":
        helmet = _vary(rng, _pick(rng, [(30, 30, 32), (220, 220, 225), (170, 30, 30)]), 12)
        rider.clothes = (rider.clothes[0], rider.clothes[1], helmet, helmet)
    return rider


_SIGN_COLORS = {  # sign shape -> (rim, face)
    "prohibition": ((200, 30, 35), (235, 235, 235)), "mandatory": ((40, 80, 170), (45, 90, 185)),
    "warning": ((200, 30, 35), (235, 235, 230)), "priority": ((235, 235, 235), (235, 190, 30)),
    "stop": ((190, 25, 30), (205, 35, 40)), "info": ((235, 235, 235), (40, 85, 165)),
}  # fmt: skip


@dataclass
class _Pole:
    """Street lamp, sign post or traffic-light post with an optional arm over the street."""

    x: float
    z: float
    ground: float
    height: float
    width: float
    color: Color
    arm: float = 0.0  # signed lateral arm length at the top (towards the street)
    lamp: bool = False
    signs: list[tuple[str, float, float, float]] = field(default_factory=list)  # (shape, x offset, y, size)
    lights: list[tuple[float, float]] = field(default_factory=list)  # housing (x offset, y of the centre)
    light_state: int = 0  # 0 red, 1 amber, 2 green
    housing: Color = (35, 35, 35)

    def anchor(self, t: float) -> tuple[float, float]:
        return self.x, self.z

    def z_range(self, t: float) -> tuple[float, float]:
        return self.z - 0.1, self.z + 0.1

    def draw(self, canvas: _Canvas, t: float, shade: int) -> None:
        base = np.array([self.x, self.ground, self.z])
        scale = canvas.pixels_per_metre(base)
        if scale == 0.0:
            return
        width = max(self.width, _MIN_POLE_PIXELS / scale)
        top = self.ground + self.height
        canvas.region(
            "pole",
            canvas.polygon(_quad_z(self.z, self.x - width / 2, self.x + width / 2, self.ground, top)),
            self.color,
            shade,
        )
        if self.arm:
            thickness = max(0.12, _MIN_POLE_PIXELS / scale)
            x0, x1 = sorted((self.x, self.x + self.arm))
            canvas.region("pole", canvas.polygon(_quad_z(self.z, x0, x1, top - thickness, top)), self.color, shade)
            if self.lamp:
                end = self.x + self.arm
                lamp = _quad_z(self.z - 0.05, end - 0.35, end + 0.35, top - 0.28, top - 0.02)
                canvas.region("pole", canvas.polygon(lamp), _scaled(self.color, 0.8), shade)
        for shape, dx, y, size in self.signs:
            self._draw_sign(canvas, shape, self.x + dx, self.ground + y, size, shade)
        for dx, y in self.lights:
            self._draw_light(canvas, self.x + dx, self.ground + y, scale, shade)

    def _draw_sign(self, canvas: _Canvas, shape: str, x: float, y: float, size: float, shade: int) -> None:
        r = size / 2
        outline = {
            "prohibition": _ellipse(r, r, 16),
            "mandatory": _ellipse(r, r, 16),
            "stop": _ellipse(r, r, 8),
            "warning": np.array([(-r * 1.15, -r * 0.8), (r * 1.15, -r * 0.8), (0.0, r * 1.2)]),
            "priority": np.array([(0.0, -r * 1.1), (r * 1.1, 0.0), (0.0, r * 1.1), (-r * 1.1, 0.0)]),
            "info": _rectangle(r, r * 0.75),
        }[shape]
        rim, face = _SIGN_COLORS[shape]
        z = self.z - 0.06
        canvas.region("traffic sign", canvas.polygon(_billboard(outline, x, y, z)), rim, shade)
        inner, symbol = canvas.polygons(
            [
                _billboard(outline * 0.72, x, y, z - 0.01),
                _billboard(_rectangle(r * 0.45, r * 0.12), x, y, z - 0.02),  # a bar as the symbol
            ]
        )
        canvas.paint([inner], face)
        canvas.paint([symbol], (30, 30, 30) if shape in ("prohibition", "warning") else (235, 235, 235))

    def _draw_light(self, canvas: _Canvas, x: float, y: float, scale: float, shade: int) -> None:
        z = self.z - 0.1
        canvas.region(
            "traffic light", canvas.polygon(_quad_z(z, x - 0.17, x + 0.17, y - 0.47, y + 0.47)), self.housing, shade
        )
        if scale * 0.9 < 6:
            return
        lamps = [_billboard(_ellipse(0.1, 0.1, 10), x, y + dy, z - 0.01) for dy in (0.29, 0.0, -0.29)]
        lit = [(255, 60, 50), (255, 190, 40), (80, 255, 140)]
        for index, polygon in enumerate(canvas.polygons(lamps)):
            canvas.paint([polygon], lit[index] if index == self.light_state else (50, 50, 45))


@dataclass
class _Tree:
    """A street tree: trunk and a round crown facing the camera (both labelled vegetation)."""

    x: float
    z: float
    ground: float
    trunk_width: float
    crown_base: float
    crown: np.ndarray  # (N, 2) outline around the crown centre
    clumps: list[tuple[np.ndarray, Color]]
    color: Color
    bark: Color

    def anchor(self, t: float) -> tuple[float, float]:
        return self.x, self.z

    def z_range(self, t: float) -> tuple[float, float]:
        return self.z - 0.2, self.z + 0.2

    def draw(self, canvas: _Canvas, t: float, shade: int) -> None:
        scale = canvas.pixels_per_metre(np.array([self.x, self.ground, self.z]))
        if scale == 0.0:
            return
        width = max(self.trunk_width, _MIN_POLE_PIXELS / scale)
        centre_y = self.ground + self.crown_base + self.crown[:, 1].max()
        trunk = _quad_z(self.z, self.x - width / 2, self.x + width / 2, self.ground, centre_y)
        canvas.region("vegetation", canvas.polygon(trunk), self.bark, shade)
        canvas.region(
            "vegetation", canvas.polygon(_billboard(self.crown, self.x, centre_y, self.z - 0.05)), self.color, shade
        )
        if scale * np.ptp(self.crown[:, 0]) > 12:
            clumps = canvas.polygons(
                [_billboard(outline, self.x, centre_y, self.z - 0.1) for outline, _ in self.clumps]
            )
            for polygon, (_, color) in zip(clumps, self.clumps, strict=True):
                canvas.paint([polygon], color)


@dataclass
class _Block:
    """A building: facade along the street (plane x = front), an end face towards the camera, windows."""

    side: int
    front: float
    depth: float
    z0: float
    z1: float
    ground: float
    height: float
    color: Color
    windows: np.ndarray  # (M, 4, 3) world quads on the facade and end face: frames first, then glass
    window_colors: np.ndarray  # (M,) index into palette
    palette: list[Color]
    roof: Color | None

    def draw(self, canvas: _Canvas, far: float, shaded: bool, end_shade: int) -> None:
        z1 = min(self.z1, far)
        back = self.front + self.side * self.depth
        facade_shade = 140 if shaded else _LIT
        top = self.ground + self.height
        if self.z0 > canvas.position[2]:
            end = _quad_z(self.z0, min(self.front, back), max(self.front, back), self.ground, top)
            canvas.region("building", canvas.polygon(end), _scaled(self.color, 0.9), end_shade)
        facade = _quad_x(self.front, self.z0, z1, self.ground, top)
        canvas.region("building", canvas.polygon(facade), self.color, facade_shade)
        if self.roof is not None:
            ridge = self.front + self.side * 4.0
            roof = np.array(
                [[self.front, top, self.z0], [self.front, top, z1], [ridge, top + 3, z1], [ridge, top + 3, self.z0]]
            )
            canvas.region("building", canvas.polygon(roof), self.roof, facade_shade)
        shown = (self.windows[:, 0, 2] < far) & (self.windows[:, 2, 2] > canvas.position[2] + _NEAR)
        polygons = canvas.polygons(self.windows[shown])
        colors = self.window_colors[shown]
        for index, color in enumerate(self.palette):
            canvas.paint([p for p, c in zip(polygons, colors, strict=True) if c == index], color)


@dataclass
class _Barrier:
    """Wall, fence or hedge along the back of a sidewalk (plane x = const)."""

    label: str
    x: float
    z0: float
    z1: float
    ground: float
    top: np.ndarray  # (N, 2) (z, height) along the top edge
    color: Color | None  # None: see-through mesh fence
    posts: Color

    def draw(self, canvas: _Canvas, far: float) -> None:
        top = self.top.copy()
        top[:, 0] = np.minimum(top[:, 0], far)
        z1 = top[-1, 0]
        outline = np.concatenate([[[top[0, 0], 0.0]], top, [[z1, 0.0]]])
        points = np.column_stack([np.full(len(outline), self.x), self.ground + outline[:, 1], outline[:, 0]])
        canvas.region(self.label, canvas.polygon(points), self.color, _LIT if self.color else None)
        height = float(self.top[0, 1])
        if self.label == "fence":  # posts every 2.5 m, a bottom and a top rail
            posts = [
                _quad_x(self.x, z, z + 0.1, self.ground, self.ground + height) for z in np.arange(self.z0, z1, 2.5)
            ]
            rails = [
                _quad_x(self.x, self.z0, z1, self.ground + y, self.ground + y + 0.06) for y in (0.1, height - 0.08)
            ]
            canvas.paint_world(posts + rails, self.posts)
        elif self.label == "wall":  # coping stones
            canvas.paint_world(
                [_quad_x(self.x, self.z0, z1, self.ground + height - 0.08, self.ground + height)], self.posts
            )


# --------------------------------------------------------------------------------------------------
# The street of one sequence
# --------------------------------------------------------------------------------------------------


@dataclass
class _Roadside:
    """Cross-section of one side of the street, as signed x positions (side = -1 left, +1 right)."""

    side: int
    curb: float  # road edge
    sidewalk_inner: float
    sidewalk_outer: float
    building_line: float
    back_row: float
    back_label: str
    verge: bool  # grass strip between curb and sidewalk
    parking: float  # width of the parking strip inside the road edge (0: none)

    def inward(self, x: float, distance: float) -> float:
        return x - self.side * distance

    def outward(self, x: float, distance: float) -> float:
        return x + self.side * distance


def _split_key(split: str) -> int:
    return zlib.crc32(split.encode())


def _sequence_rng(seed: int, split: str, sequence: int, *frame: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_split_key(split), sequence, *frame)))


class SyntheticScene:
    """One synthetic driving sequence; ``render(k)`` draws frame k (any order, same result).

    The street, its objects and the look are drawn from (seed, split, sequence); the split takes part
    so train/val/test never share scenes for the same seed.
    """

    def __init__(self, height: int, width: int, seed: int, split: str = "train", sequence: int = 0):
        if height < 16 or width < 16:
            raise ValueError(f"image size {height}x{width} too small (at least 16x16)")
        self.seed, self.split, self.sequence = seed, split, sequence
        rng = _sequence_rng(seed, split, sequence)
        focal = width * rng.uniform(1.0, 1.15)
        self.camera = PinholeCamera(
            width=width,
            height=height,
            focal=float(focal),
            u0=float(width / 2 + rng.uniform(-0.02, 0.02) * width),
            v0=float(height / 2 + rng.uniform(-0.02, 0.02) * height),
            mount_height=float(rng.uniform(1.15, 1.35)),
            pitch=float(rng.uniform(0.01, 0.045)),
            yaw=float(rng.uniform(-0.025, 0.025)),
        )
        self.look = _Look.random(rng)
        self.textures = _Textures(rng, self.look, height, width)
        self.ego_speed = 0.0 if rng.random() < 0.12 else float(rng.uniform(4.0, 13.0))
        self._tracks = 0
        self._build_street(rng)
        self._build_static(rng)
        self._build_traffic(rng)
        self._build_people(rng)
        self._build_overlays(rng)

    # building the world -------------------------------------------------------------------------

    def _next_track(self) -> int:
        self._tracks += 1
        return self._tracks - 1

    def _build_street(self, rng: np.random.Generator) -> None:
        self.lane_width = float(rng.uniform(3.0, 3.6))
        self.forward_lanes = int(rng.choice([1, 2, 2, 3]))
        self.oncoming_lanes = int(rng.choice([0, 1, 1, 2]))
        self.bike_lane = bool(rng.random() < 0.5)
        self.curb_height = float(rng.uniform(0.1, 0.16))
        ego_lane = int(rng.integers(self.forward_lanes))
        self.camera_x = (ego_lane + 0.5) * self.lane_width + float(rng.uniform(-0.3, 0.3))
        self.ego_lane = ego_lane
        self.z_min = -_BEHIND - 20.0
        travel = self.ego_speed * (MAX_FRAMES_PER_SEQUENCE - 1) / FRAME_RATE_HZ
        self.z_max = travel + _VIEW_DISTANCE + 20.0
        right_lanes = self.forward_lanes * self.lane_width + (1.5 if self.bike_lane else 0.0)
        sides = []
        for side, lanes_edge in ((1, right_lanes), (-1, -self.oncoming_lanes * self.lane_width)):
            parking = 2.2 if rng.random() < (0.5 if side == -1 and self.oncoming_lanes == 0 else 0.35) else 0.0
            curb = lanes_edge + side * parking
            verge = bool(rng.random() < 0.3)
            sidewalk_inner = curb + side * (rng.uniform(1.0, 2.5) if verge else 0.0)
            sidewalk_outer = sidewalk_inner + side * rng.uniform(2.5, 6.0)
            building_line = sidewalk_outer + side * (rng.uniform(1.5, 6.0) if rng.random() < 0.5 else 0.0)
            back_label = _pick(rng, ["terrain", "sidewalk", "terrain"])
            back_row = building_line + side * rng.uniform(15.0, 35.0)
            sides.append(
                _Roadside(
                    side, curb, sidewalk_inner, sidewalk_outer, building_line, back_row, back_label, verge, parking
                )
            )
        self.right, self.left = sides
        self.parking_label = "parking" if rng.random() < 0.35 else "road"
        self.intersections: list[tuple[float, float, float, tuple[int, ...]]] = []  # (z, sidewalk, road width, sides)
        z = rng.uniform(15.0, 90.0)
        while z < self.z_max:
            sidewalk, road = rng.uniform(2.0, 4.0), rng.uniform(7.0, 14.0)
            sides_open = _pick(rng, [(-1, 1), (1,), (-1,)], [3, 1, 1])
            self.intersections.append((float(z), float(sidewalk), float(road), sides_open))
            z += 2 * sidewalk + road + rng.uniform(60.0, 170.0)

    def _segments(self, side: int) -> list[tuple[float, float]]:
        """z ranges where the side of the street is continuous (between cross streets)."""
        segments, start = [], self.z_min
        for z, sidewalk, road, sides in self.intersections:
            if side in sides:
                segments.append((start, z))
                start = z + 2 * sidewalk + road
        segments.append((start, self.z_max))
        return segments

    def _build_static(self, rng: np.random.Generator) -> None:
        look = self.look
        self.blocks: dict[int, list[_Block]] = {}
        self.back_rows: dict[int, list[tuple[str, np.ndarray, Color]]] = {}
        self.barriers: dict[int, list[_Barrier]] = {}
        self.standing: list = []  # poles, trees, parked and moving road users
        self.shadows: list[np.ndarray] = []
        window_palette = [_vary(rng, _GLASS, 12), _vary(rng, (80, 90, 100), 15), _vary(rng, (25, 30, 38), 8)]
        for roadside in (self.left, self.right):
            side = roadside.side
            blocks, barriers = [], []
            for z0, z1 in self._segments(side):
                z = z0
                while z < z1 - 6:
                    length = min(rng.uniform(12.0, 55.0), z1 - z)
                    front = roadside.outward(roadside.building_line, rng.uniform(0.0, 1.5))
                    blocks.append(self._make_block(rng, side, front, z, z + length, window_palette))
                    z += length + (rng.uniform(2.0, 12.0) if rng.random() < 0.35 else 0.0)
                if abs(roadside.building_line - roadside.sidewalk_outer) > 1.2:
                    barriers += self._make_barriers(rng, roadside, z0, z1)
            blocks.sort(key=lambda b: -b.z0)
            self.blocks[side], self.barriers[side] = blocks, barriers
            self.back_rows[side] = self._make_back_row(rng, roadside)
            self._place_roadside_furniture(rng, roadside)
        if look.sunny:
            for block in self.blocks[look.sun_side]:
                reach = block.height * look.shadow_reach
                shift = block.height * look.shadow_shift
                x_far = block.front - look.sun_side * reach
                self.shadows.append(
                    _quad_ground(block.front, x_far, block.z0 + shift, block.z1 + shift, self.curb_height + 0.01)
                )

    def _make_block(self, rng, side: int, front: float, z0: float, z1: float, palette: list[Color]) -> _Block:
        height = float(rng.uniform(7.0, 26.0))
        depth = float(rng.uniform(10.0, 18.0))
        color = _vary(rng, _pick(rng, _FACADES), 14)
        floor = rng.uniform(2.9, 3.6)
        ground_floor = rng.uniform(3.4, 4.4)
        spacing = rng.uniform(2.4, 3.8)
        win_w, win_h = rng.uniform(0.9, 1.5), rng.uniform(1.2, 1.8)
        frame_color = _vary(rng, _pick(rng, [(230, 230, 225), _scaled(color, 0.8), (60, 60, 60)]), 8)
        x, back = front - side * 0.03, front + side * depth
        floors = np.arange(ground_floor + 0.8, height - win_h - 0.3, floor)
        frames, glass, tints = [], [], []
        for on_facade, a0, a1 in ((True, z0 + 1.0, z1 - 1.0), (False, min(front, back) + 1.0, max(front, back) - 1.0)):
            centres, bottoms = (
                g.ravel() for g in np.meshgrid(np.arange(a0 + spacing / 2, a1 - win_w / 2, spacing), floors)
            )
            for pad, out in ((0.08, frames), (0.0, glass)):
                along = (centres - win_w / 2 - pad, centres + win_w / 2 + pad)
                rect = (*along, bottoms - pad, bottoms + win_h + pad)
                out.append(_rectangles_x(x, *rect) if on_facade else _rectangles_z(z0 - 0.03, *rect))
            tints.append(rng.integers(1, 4, len(centres)))
            if on_facade and rng.random() < 0.6:  # shop windows
                centres = np.arange(a0 + 2.5, a1 - 2.0, rng.uniform(4.0, 7.0))
                glass.append(
                    _rectangles_x(
                        x,
                        centres - 1.5,
                        centres + 1.5,
                        np.full(len(centres), 0.5),
                        np.full(len(centres), ground_floor - 0.6),
                    )
                )
                tints.append(np.full(len(centres), 3))
        windows = np.concatenate(frames + glass)
        colors = np.concatenate([np.zeros(len(windows) - sum(map(len, tints)), int), *tints])
        roof = _vary(rng, _pick(rng, [(120, 60, 45), (80, 80, 85), (100, 75, 60)]), 10) if rng.random() < 0.3 else None
        windows[..., 1] += self.curb_height
        palette = [frame_color, *palette]
        return _Block(side, front, depth, z0, z1, self.curb_height, height, color, windows, colors, palette, roof)

    def _make_barriers(self, rng, roadside: _Roadside, z0: float, z1: float) -> list[_Barrier]:
        barriers = []
        x = roadside.outward(roadside.sidewalk_outer, 0.3)
        z = z0
        while z < z1 - 4:
            length = min(rng.uniform(8.0, 40.0), z1 - z)
            kind = _pick(rng, [None, "hedge", "fence", "wall"], [3, 2.5, 2.5, 2])
            if kind is not None:
                label = "vegetation" if kind == "hedge" else kind
                height = rng.uniform(0.8, 1.8) if kind != "wall" else rng.uniform(0.6, 2.2)
                steps = np.arange(z, z + length + 1e-6, 1.0 if kind == "hedge" else length)
                tops = height + (rng.uniform(-0.12, 0.12, len(steps)) if kind == "hedge" else 0.0)
                top = np.column_stack([steps, np.broadcast_to(tops, steps.shape)])
                if kind == "hedge":
                    color: Color | None = _vary(rng, self.look.vegetation, 12)
                elif kind == "wall":
                    color = _vary(rng, _pick(rng, [(170, 168, 160), (150, 90, 70), (200, 195, 185)]), 12)
                else:
                    color = None if rng.random() < 0.6 else _vary(rng, (130, 95, 60), 15)
                posts = _vary(rng, (70, 75, 72), 20) if kind == "fence" else _scaled(color or (0, 0, 0), 1.12)
                barriers.append(_Barrier(label, x, z, z + length, self.curb_height, top, color, posts))
            z += length
        return barriers

    def _make_back_row(self, rng, roadside: _Roadside) -> list[tuple[str, np.ndarray, Color]]:
        row, z = [], self.z_min
        haze = np.array(self.look.sky_horizon, np.float64)
        while z < self.z_max:
            length = rng.uniform(15.0, 50.0)
            if rng.random() < 0.3:
                steps = np.arange(z, z + length + 1e-6, 2.0)
                top = rng.uniform(7.0, 14.0) + rng.uniform(-1.5, 1.5, len(steps))
                label, color = "vegetation", self.look.vegetation
            else:
                steps = np.array([z, z + length])
                top = np.full(2, rng.uniform(9.0, 30.0))
                label, color = "building", _pick(rng, _FACADES)
            outline = np.concatenate([[[steps[0], 0.0]], np.column_stack([steps, top]), [[steps[-1], 0.0]]])
            heights = self.curb_height + outline[:, 1]
            points = np.column_stack([np.full(len(outline), roadside.back_row), heights, outline[:, 0]])
            color = tuple(int(c) for c in 0.75 * np.array(color) + 0.25 * haze)
            row.append((label, points, color))
            z += length
        return row

    def _place_roadside_furniture(self, rng, roadside: _Roadside) -> None:
        look, side = self.look, roadside.side
        pole_x = (
            roadside.outward(roadside.curb, 0.9)
            if not roadside.verge
            else (roadside.curb + roadside.sidewalk_inner) / 2
        )
        ground = self.curb_height
        lamp_spacing = rng.uniform(25.0, 40.0)
        for z0, z1 in self._segments(side):
            for z in np.arange(z0 + rng.uniform(2, lamp_spacing), z1 - 2, lamp_spacing):
                arm = -side * rng.uniform(1.0, 2.5)
                self.standing.append(_Pole(pole_x, z, ground, rng.uniform(6.5, 9.0), 0.2, look.pole, arm, lamp=True))
            z = z0 + rng.uniform(5.0, 40.0)
            while z < z1 - 3:
                shape = _pick(rng, list(_SIGN_COLORS), [4, 3, 3, 2, 1, 2])
                signs = [(shape, 0.0, rng.uniform(2.1, 2.6), rng.uniform(0.55, 0.75))]
                if rng.random() < 0.35:
                    signs.append((_pick(rng, ["info", "mandatory", "prohibition"]), 0.0, signs[0][2] - 0.85, 0.55))
                self.standing.append(
                    _Pole(
                        pole_x + side * rng.uniform(-0.2, 0.3),
                        z,
                        ground,
                        signs[0][2] + 0.4,
                        0.08,
                        look.pole,
                        signs=signs,
                    )
                )
                z += rng.uniform(20.0, 90.0)
            if rng.random() < 0.7:  # an avenue of trees
                spacing = rng.uniform(7.0, 15.0)
                tree_x = (
                    (roadside.curb + roadside.sidewalk_inner) / 2
                    if roadside.verge
                    else roadside.outward(roadside.curb, 0.9)
                )
                for z in np.arange(z0 + rng.uniform(0, spacing), z1 - 2, spacing):
                    if rng.random() < 0.85:
                        self.standing.append(
                            self._make_tree(rng, tree_x + rng.uniform(-0.2, 0.2), z + rng.uniform(-1, 1))
                        )
        for z, sidewalk, road, _ in self.intersections:
            state = int(rng.integers(3))
            for corner_z in (z - 0.5, z + 2 * sidewalk + road + 0.5):
                if side == 1 or self.oncoming_lanes > 0:
                    x = roadside.outward(roadside.curb, 0.6)
                    self.standing.append(
                        _Pole(
                            x, corner_z, ground, 3.4, 0.14, look.pole, lights=[(-side * 0.25, 2.8)], light_state=state
                        )
                    )
            if side == 1 and rng.random() < 0.5:
                x = roadside.outward(roadside.curb, 0.6)
                reach = -side * rng.uniform(3.0, 6.0)
                self.standing.append(
                    _Pole(x, z - 1.0, ground, 6.0, 0.22, look.pole, arm=reach, lights=[(reach, 5.4)], light_state=state)
                )

    def _make_tree(self, rng, x: float, z: float) -> _Tree:
        rx, ry = rng.uniform(1.5, 3.5), rng.uniform(1.8, 3.5)
        crown = _blob(rng, rx, ry)
        color = _vary(rng, self.look.vegetation, 14)
        clumps = [
            (
                _blob(rng, rx * s, ry * s, 10) + rng.uniform(-0.5, 0.5, 2) * [rx, ry],
                _scaled(color, rng.uniform(0.7, 1.3)),
            )
            for s in rng.uniform(0.25, 0.5, 5)
        ]
        return _Tree(
            x,
            z,
            self.curb_height,
            rng.uniform(0.2, 0.45),
            rng.uniform(1.8, 3.5),
            crown,
            clumps,
            color,
            _vary(rng, (85, 70, 55), 12),
        )

    def _lane_x(self, lane: int) -> float:
        """Centre x of a lane: 0, 1, ... forward lanes rightwards of the centre line, -1, -2, ... oncoming."""
        return (lane + 0.5) * self.lane_width

    def _build_traffic(self, rng: np.random.Generator) -> None:
        duration = (MAX_FRAMES_PER_SEQUENCE - 1) / FRAME_RATE_HZ
        required = ["truck", "bus", "motorcycle"]  # every sequence shows each of these somewhere ahead
        rng.shuffle(required)
        lanes = list(range(-self.oncoming_lanes, self.forward_lanes))
        rng.shuffle(lanes)
        free_ahead = rng.uniform(10.0, 30.0)  # metres of empty lane in front of the camera
        for lane in lanes:
            oncoming = lane < 0
            if self.ego_speed == 0.0 and not oncoming:
                speed = 0.0
            elif lane == self.ego_lane:
                speed = self.ego_speed * rng.uniform(1.0, 1.15)
            else:
                speed = rng.uniform(5.0, 14.0)
            velocity = -speed if oncoming else speed
            relative = (self.ego_speed - velocity) * duration
            z = min(0.0, relative) - _BEHIND - rng.uniform(0, 20)
            z_end = max(0.0, relative) + _VIEW_DISTANCE + 20.0
            x = self._lane_x(lane)
            while z < z_end:
                kind = _pick(rng, ["car", "truck", "bus", "motorcycle"], [86, 5, 3, 6])
                if required and 25.0 < z < 100.0 and (lane != self.ego_lane or len(lanes) == 1):
                    kind = required.pop()
                vehicle = _make_vehicle(
                    rng, kind, x + rng.uniform(-0.3, 0.3), z, 0.0, speed, math.pi if oncoming else 0.0
                )
                vehicle.z += vehicle.length / 2
                z += vehicle.length + rng.uniform(3.0, 8.0) + speed * rng.uniform(0.8, 3.0)
                if lane == self.ego_lane and vehicle.z - vehicle.length / 2 < free_ahead:
                    continue
                self._add_vehicle(rng, vehicle)
        self._park(rng, self.right)
        self._park(rng, self.left)
        self._build_cyclists(rng, duration)

    def _add_vehicle(self, rng, vehicle: _Vehicle, parked: bool = False) -> None:
        """Give the vehicle a track id (and a rider on a two-wheeler in traffic) and add it to the scene."""
        vehicle.track = self._next_track()
        if vehicle.kind in ("motorcycle", "bicycle") and not parked:
            vehicle.rider = _seat(rng, _make_person(rng, "rider", 0.0, 0.0, 0.0, 0.0, 0.0, self._next_track()), vehicle)
        self.standing.append(vehicle)

    def _in_intersection(self, z0: float, z1: float, margin: float) -> bool:
        return any(z0 < z + 2 * s + r + margin and z1 > z - margin for z, s, r, _ in self.intersections)

    def _park(self, rng, roadside: _Roadside) -> None:
        if roadside.parking == 0.0:
            return
        x = roadside.inward(roadside.curb, roadside.parking / 2)
        heading = 0.0 if roadside.side == 1 or self.oncoming_lanes == 0 else math.pi
        z = self.z_min + rng.uniform(0, 10)
        occupancy = rng.uniform(0.4, 0.95)
        while z < self.z_max:
            kind = _pick(rng, ["car", "truck", "motorcycle"], [92, 4, 4])
            vehicle = _make_vehicle(rng, kind, x + rng.uniform(-0.25, 0.25), z, 0.0, 0.0, heading)
            vehicle.z += vehicle.length / 2
            if rng.random() < occupancy and not self._in_intersection(z, z + vehicle.length, 4.0):
                self._add_vehicle(rng, vehicle, parked=True)
            z += vehicle.length + rng.uniform(0.6, 3.0) + (rng.uniform(5.0, 20.0) if rng.random() < 0.1 else 0.0)

    def _build_cyclists(self, rng, duration: float) -> None:
        speed = rng.uniform(3.5, 6.5)
        if self.bike_lane:
            x = self.forward_lanes * self.lane_width + 0.75
            ground = 0.0
        else:
            x = (self.right.sidewalk_inner + self.right.sidewalk_outer) / 2
            ground = self.curb_height
        relative = (self.ego_speed - speed) * duration
        z_start, z_end = min(0.0, relative) - _BEHIND, max(0.0, relative) + _VIEW_DISTANCE
        starts = [rng.uniform(12.0, 45.0)]  # one cyclist ahead at the start, more along the street
        while starts[-1] < z_end:
            starts.append(starts[-1] + rng.uniform(40.0, 120.0))
        starts += list(np.arange(starts[0] - rng.uniform(40.0, 120.0), z_start, -rng.uniform(40.0, 120.0)))
        for z in starts:
            self._add_vehicle(
                rng, _make_vehicle(rng, "bicycle", x + rng.uniform(-0.2, 0.2), float(z), ground, speed, 0.0)
            )
        for roadside in (self.left, self.right):  # parked bicycles, some across the sidewalk
            for z in rng.uniform(8.0, 60.0, int(rng.integers(1, 4))):
                across = rng.random() < 0.6
                x = (
                    roadside.inward(roadside.sidewalk_outer, 0.9)
                    if across
                    else roadside.outward(roadside.sidewalk_inner, 0.5)
                )
                heading = math.pi / 2 if across else 0.0
                self._add_vehicle(
                    rng, _make_vehicle(rng, "bicycle", x, float(z), self.curb_height, 0.0, heading), parked=True
                )

    def _build_people(self, rng: np.random.Generator) -> None:
        duration = (MAX_FRAMES_PER_SEQUENCE - 1) / FRAME_RATE_HZ
        density = rng.uniform(0.03, 0.12)  # pedestrians per metre of sidewalk
        for roadside in (self.left, self.right):
            lo, hi = sorted((roadside.sidewalk_inner, roadside.sidewalk_outer))
            span = self.z_max - self.z_min + 2 * 1.6 * duration
            count = int(rng.poisson(density * span))
            for _ in range(count):
                z = rng.uniform(self.z_min - 1.6 * duration, self.z_max + 1.6 * duration)
                speed = 0.0 if rng.random() < 0.3 else rng.choice([-1, 1]) * rng.uniform(0.8, 1.7)
                x = rng.uniform(lo + 0.4, hi - 0.4) if hi - lo > 0.8 else (lo + hi) / 2
                self.standing.append(
                    _make_person(rng, "person", x, z, self.curb_height, 0.0, speed, self._next_track())
                )
            for z in rng.uniform(10.0, 50.0, 2):  # someone always near the camera at the start
                x = rng.uniform(lo + 0.4, hi - 0.4) if hi - lo > 0.8 else (lo + hi) / 2
                self.standing.append(
                    _make_person(rng, "person", x, z, self.curb_height, 0.0, rng.uniform(-1.4, 1.4), self._next_track())
                )

    def _build_overlays(self, rng: np.random.Generator) -> None:
        """Parts fixed for the whole sequence: distant skyline, hood, rectification border, sky, road paint."""
        camera, height, width = self.camera, self.camera.height, self.camera.width
        canvas = _Canvas(camera, np.array([self.camera_x, camera.mount_height, 0.0]), np.zeros((1, 1, 3), np.uint8))
        haze = np.array(self.look.sky_horizon, np.float64)
        self.skyline: list[tuple[str, np.ndarray, Color]] = []
        half_span = _VIEW_DISTANCE * (width / camera.focal) * 0.8
        x = self.camera_x - half_span
        while x < self.camera_x + half_span:
            span = rng.uniform(15.0, 60.0)
            if rng.random() < 0.3:
                steps = np.linspace(x, x + span, 8)
                top, label, color = rng.uniform(8, 20) + rng.uniform(-2, 2, 8), "vegetation", self.look.vegetation
            else:
                steps, label, color = np.array([x, x + span]), "building", _pick(rng, _FACADES)
                top = np.full(2, rng.uniform(8.0, 30.0))
            outline = np.concatenate([[[steps[0], 0.0]], np.column_stack([steps, top]), [[steps[-1], 0.0]]])
            points = np.column_stack([outline[:, 0], outline[:, 1], np.full(len(outline), _VIEW_DISTANCE)])
            polygon = canvas.polygon(points)
            if polygon is not None:
                self.skyline.append((label, polygon, tuple(int(c) for c in 0.55 * np.array(color) + 0.45 * haze)))
            x += span
        hood_top = height * (1 - rng.uniform(0.06, 0.13))
        xs = np.linspace(0, width - 1, 17)
        ys = hood_top + (height - hood_top) * 0.45 * ((xs - width / 2) / (width / 2)) ** 2
        self.hood = np.rint(
            np.concatenate(
                [[[0, height - 1]], np.column_stack([xs, np.minimum(ys, height - 1)]), [[width - 1, height - 1]]]
            )
        ).astype(np.int32)
        self.hood_color = _vary(rng, _pick(rng, [(30, 30, 35), (200, 200, 205), (20, 30, 60)]), 8)
        border = max(1, round(width / 700))
        self.border = [
            np.array([[0, 0], [border, 0], [border + 1, height - 1], [0, height - 1]], np.int32),
            np.array(
                [[width - 1 - border, 0], [width - 1, 0], [width - 1, height - 1], [width - 2 - border, height - 1]],
                np.int32,
            ),
        ]
        rows = np.clip(np.arange(height)[:, None] / max(camera.horizon_row, 1.0), 0, 1) ** 1.5
        sky = np.array(self.look.sky_top) * (1 - rows) + np.array(self.look.sky_horizon) * rows
        self.sky = np.ascontiguousarray(np.broadcast_to(sky[:, None, :], (height, width, 3)).astype(np.uint8))
        count = int((self.z_max - self.z_min) * rng.uniform(0.05, 0.4))  # asphalt repairs
        x0, z0 = rng.uniform(self.left.curb, self.right.curb - 1, count), rng.uniform(self.z_min, self.z_max, count)
        x1, z1, y = x0 + rng.uniform(0.5, 2.5, count), z0 + rng.uniform(0.4, 3.0, count), np.full(count, 0.005)
        corners = ((x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1))
        self.patches = np.stack([np.stack(c, axis=1) for c in corners], axis=1)  # (count, 4, 3)
        self.dash_period = float(rng.uniform(8.0, 12.0))
        self.dash_offset = float(rng.uniform(0.0, self.dash_period))
        self.solid_centre = bool(rng.random() < 0.5)
        self.joint_spacing = float(rng.uniform(1.0, 2.0))

    # rendering ------------------------------------------------------------------------------------

    def camera_position(self, frame: int) -> np.ndarray:
        """(3,) world position of the camera at frame ``frame``."""
        return np.array([self.camera_x, self.camera.mount_height, self.ego_speed * frame / FRAME_RATE_HZ])

    def render(self, frame: int) -> SynthFrame:
        """Draw frame ``frame`` (0 <= frame < MAX_FRAMES_PER_SEQUENCE)."""
        if not 0 <= frame < MAX_FRAMES_PER_SEQUENCE:
            raise ValueError(f"frame {frame} outside 0..{MAX_FRAMES_PER_SEQUENCE - 1}")
        t = frame / FRAME_RATE_HZ
        position = self.camera_position(frame)
        canvas = _Canvas(self.camera, position, self.sky)
        far = position[2] + _VIEW_DISTANCE
        height, width = self.camera.height, self.camera.width
        canvas.region(
            "sky", np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.int32), None
        )
        for label, polygon, color in self.skyline:
            canvas.region(label, polygon, color)
        self._draw_ground(canvas, far)
        self._draw_markings(canvas, far)
        canvas.shadow([s for s in self.shadows if s[0, 2] < far and s[2, 2] > position[2]], 0)
        for roadside in (self.left, self.right):
            self._draw_buildings(canvas, roadside.side, far)
        self._draw_standing(canvas, t, far)
        canvas.region("ego vehicle", self.hood, self.hood_color)
        for strip in self.border:
            canvas.region("rectification border", strip, (8, 8, 8))
        image = self.textures.finish(canvas, _sequence_rng(self.seed, self.split, self.sequence, frame))
        return SynthFrame(image, canvas.labels, canvas.instances, canvas.objects, canvas.tracks, self.camera.to_json())

    def _draw_ground(self, canvas: _Canvas, far: float) -> None:
        look, near, curb_y = self.look, canvas.position[2] - 5.0, self.curb_height
        z_from = max(self.z_min, near)
        # Under everything, void 'ground': rounding can leave one-pixel cracks between adjacent polygons.
        base = _quad_ground(self.left.back_row, self.right.back_row, z_from, far, 0.0)
        canvas.region("ground", canvas.polygon(base), look.road)
        for roadside in (self.left, self.right):
            color = look.terrain if roadside.back_label == "terrain" else look.sidewalk
            canvas.region(
                roadside.back_label,
                canvas.polygon(_quad_ground(roadside.sidewalk_outer, roadside.back_row, z_from, far, curb_y)),
                color,
            )
        canvas.region(
            "road", canvas.polygon(_quad_ground(self.left.curb, self.right.curb, z_from, far, 0.0)), look.road
        )
        for roadside in (self.left, self.right):
            for z0, z1 in self._segments(roadside.side):
                z0, z1 = max(z0, z_from), min(z1, far)
                if z1 <= z0:
                    continue
                if roadside.parking and self.parking_label == "parking":
                    strip = _quad_ground(roadside.curb, roadside.inward(roadside.curb, roadside.parking), z0, z1, 0.002)
                    canvas.region("parking", canvas.polygon(strip), look.parking)
                if roadside.verge:
                    canvas.region(
                        "terrain",
                        canvas.polygon(_quad_ground(roadside.curb, roadside.sidewalk_inner, z0, z1, curb_y)),
                        look.terrain,
                    )
                canvas.region(
                    "sidewalk",
                    canvas.polygon(_quad_ground(roadside.sidewalk_inner, roadside.sidewalk_outer, z0, z1, curb_y)),
                    look.sidewalk,
                )
                canvas.region("sidewalk", canvas.polygon(_quad_x(roadside.curb, z0, z1, 0.0, curb_y)), look.curb)
        for z, sidewalk, road, sides in self.intersections:
            if z > far or z + 2 * sidewalk + road < near:
                continue
            for roadside in (self.left, self.right):
                if roadside.side not in sides:
                    continue
                x0, x1 = roadside.curb, roadside.back_row
                canvas.region(
                    "road", canvas.polygon(_quad_ground(x0, x1, z + sidewalk, z + sidewalk + road, 0.0)), look.road
                )
                for s0 in (z, z + sidewalk + road):
                    canvas.region(
                        "sidewalk",
                        canvas.polygon(_quad_ground(x0, x1, s0, min(s0 + sidewalk, far), curb_y)),
                        look.sidewalk,
                    )
                canvas.region(
                    "sidewalk",
                    canvas.polygon(_quad_z(z + sidewalk + road, min(x0, x1), max(x0, x1), 0.0, curb_y)),
                    look.curb,
                )

    def _draw_markings(self, canvas: _Canvas, far: float) -> None:
        """Lane markings, crossings, asphalt patches and paving joints: world-fixed, image only."""
        z_near = canvas.position[2] + 1.0
        z_far = min(far, canvas.position[2] + _MARKING_DISTANCE)
        patches = self.patches[(self.patches[:, 0, 2] < z_far) & (self.patches[:, 2, 2] > z_near)]
        canvas.paint_world(patches, self.look.road_patch)
        width = 0.13
        dashed = [k * self.lane_width for k in range(1, self.forward_lanes)] + [
            -k * self.lane_width for k in range(1, self.oncoming_lanes)
        ]
        if self.oncoming_lanes and not self.solid_centre:
            dashed.append(0.0)
        first = math.floor((z_near - self.dash_offset) / self.dash_period)
        starts = self.dash_offset + self.dash_period * np.arange(first, first + (z_far - z_near) / self.dash_period + 2)
        quads = [
            _quad_ground(x - width / 2, x + width / 2, s, s + 3.0, 0.006)
            for x in dashed
            for s in starts
            if not self._in_intersection(s, s + 3.0, 0.0)
        ]
        solid = [self.forward_lanes * self.lane_width] + ([0.0] if self.oncoming_lanes and self.solid_centre else [])
        for z0, z1 in self._road_segments(z_near, z_far):
            quads += [_quad_ground(x - width / 2, x + width / 2, z0, z1, 0.006) for x in solid]
        for z, _, _, _ in self.intersections:
            if z_near < z - 1.0 and z - 6.0 < z_far:
                quads += [
                    _quad_ground(x, x + 0.5, z - 5.0, z - 1.0, 0.006)
                    for x in np.arange(self.left.curb + 0.5, self.right.curb - 0.5, 1.0)
                ]
        canvas.paint_world(quads, self.look.marking)
        joints = []
        for roadside in (self.left, self.right):
            first = math.ceil(z_near / self.joint_spacing)
            for z in self.joint_spacing * np.arange(first, first + 60 / self.joint_spacing):
                joints.append(
                    _quad_ground(
                        roadside.sidewalk_inner, roadside.sidewalk_outer, z, z + 0.04, self.curb_height + 0.002
                    )
                )
        canvas.paint_world(joints, _scaled(self.look.sidewalk, 0.8))

    def _road_segments(self, z_near: float, z_far: float) -> list[tuple[float, float]]:
        segments, start = [], z_near
        for z, sidewalk, road, _ in self.intersections:
            if z_near < z + 2 * sidewalk + road and z < z_far:
                if z > start:
                    segments.append((start, z))
                start = z + 2 * sidewalk + road
        if start < z_far:
            segments.append((start, z_far))
        return segments

    def _draw_buildings(self, canvas: _Canvas, side: int, far: float) -> None:
        camera_z = canvas.position[2]
        for label, points, color in self.back_rows[side]:
            if points[0, 2] < far and points[-1, 2] > camera_z:
                clipped = points.copy()
                clipped[:, 2] = np.clip(clipped[:, 2], None, far)
                canvas.region(label, canvas.polygon(clipped), color)
        look = self.look
        shaded = look.sunny and side == look.sun_side
        end_shade = 200 if look.sunny else 225
        for block in self.blocks[side]:
            if block.z0 < far and block.z1 > camera_z:
                block.draw(canvas, far, shaded, end_shade)
        for barrier in self.barriers[side]:
            if barrier.z0 < far and barrier.z1 > camera_z:
                barrier.draw(canvas, far)

    def _in_shadow(self, x: float, z: float) -> bool:
        for shadow in self.shadows:
            x0, x1 = sorted((shadow[0, 0], shadow[1, 0]))
            if x0 <= x <= x1 and shadow[0, 2] <= z <= shadow[2, 2]:
                return True
        return False

    def _draw_standing(self, canvas: _Canvas, t: float, far: float) -> None:
        camera_z = canvas.position[2]
        visible = []
        for thing in self.standing:
            z0, z1 = thing.z_range(t)
            if z1 > camera_z + _NEAR and z0 < far:
                visible.append((z0, thing))
        visible.sort(key=lambda item: -item[0])
        for _, thing in visible:
            thing.draw(canvas, t, 0 if self.look.sunny and self._in_shadow(*thing.anchor(t)) else _LIT)


def render_frame(
    height: int, width: int, seed: int, split: str = "train", sequence: int = 0, frame: int = 0
) -> SynthFrame:
    """Render one frame in memory (builds the sequence's scene first)."""
    return SyntheticScene(height, width, seed, split, sequence).render(frame)


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def write_frame(root: Path | str, split: str, stem: str, frame: SynthFrame) -> None:
    """Write one frame in the Cityscapes layout: leftImg8bit, gtFine (4 files), camera."""
    paths = {
        "image": image_path(root, split, stem),
        "labelIds": gt_path(root, split, stem, "labelIds"),
        "instanceIds": gt_path(root, split, stem, "instanceIds"),
        "color": gt_path(root, split, stem, "color"),
        "polygons": gt_path(root, split, stem, "polygons"),
        "camera": camera_path(root, split, stem),
    }
    for path in {p.parent for p in paths.values()}:
        path.mkdir(parents=True, exist_ok=True)
    _imwrite(paths["image"], cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), _PNG_IMAGE)
    _imwrite(paths["labelIds"], frame.label_ids, _PNG_LABEL)
    _imwrite(paths["instanceIds"], frame.instance_ids, _PNG_LABEL)
    _imwrite(paths["color"], cv2.LUT(cv2.merge([frame.label_ids] * 4), _BGRA_BY_ID), _PNG_LABEL)
    paths["polygons"].write_text(json.dumps(frame.polygons_json()))
    paths["camera"].write_text(json.dumps(frame.camera, indent=4))


def _imwrite(path: Path, array: np.ndarray, params: list[int]) -> None:
    if not cv2.imwrite(str(path), array, params):
        raise OSError(f"could not write {path}")


def _generate_sequence(args: tuple) -> tuple[list[str], np.ndarray]:
    out_dir, split, sequence, frames, height, width, seed, city = args
    scene = SyntheticScene(height, width, seed, split, sequence)
    stems, counts = [], np.zeros(CLASS_COUNT_BINS, np.int64)
    for index in range(frames):
        frame = scene.render(index)
        stem = frame_stem(city, sequence, index)
        write_frame(out_dir, split, stem, frame)
        counts += class_pixel_counts(frame.label_ids)
        stems.append(stem)
    return stems, counts


def _single_threaded_worker() -> None:
    cv2.setNumThreads(1)


def generate_split(
    out_dir: Path | str,
    split: str,
    sequences: int,
    frames_per_sequence: int,
    height: int,
    width: int,
    seed: int,
    city: str = DEFAULT_CITY,
    workers: int = 1,
) -> SynthSummary:
    """Write ``sequences`` x ``frames_per_sequence`` frames of one split under ``out_dir``.

    Sequence s, frame k is ``<city>_<s:06d>_<k:06d>``. Output does not depend on ``workers``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if sequences < 1 or frames_per_sequence < 1 or workers < 1:
        raise ValueError("sequences, frames_per_sequence and workers must be positive")
    if frames_per_sequence > MAX_FRAMES_PER_SEQUENCE:
        raise ValueError(f"frames_per_sequence must be at most {MAX_FRAMES_PER_SEQUENCE}")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    if city_of(frame_stem(city, 0, 0)) != city:
        raise ValueError(f"city {city!r} must be lowercase letters and underscores")
    start = time.perf_counter()
    jobs = [(Path(out_dir), split, s, frames_per_sequence, height, width, seed, city) for s in range(sequences)]
    if workers == 1:
        results = [_generate_sequence(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(min(workers, sequences), _single_threaded_worker) as pool:
            results = pool.map(_generate_sequence, jobs, chunksize=1)
    counts = np.sum([c for _, c in results], axis=0)
    stems = [stem for s, _ in results for stem in s]
    return SynthSummary(split, len(stems), time.perf_counter() - start, counts, stems)


def write_preview(
    root: Path | str, split: str, stems: list[str], path: Path | str, tiles: int = 6, tile_width: int = 512
) -> Path:
    """Mosaic of up to ``tiles`` frames spread over ``stems``: image | colour label per row."""
    if not stems:
        raise ValueError("no frames to preview")
    picks = sorted({stems[i] for i in np.linspace(0, len(stems) - 1, min(tiles, len(stems))).round().astype(int)})
    rows = []
    for stem in picks:
        image = cv2.imread(str(image_path(root, split, stem)), cv2.IMREAD_COLOR)
        color = cv2.imread(str(gt_path(root, split, stem, "color")), cv2.IMREAD_COLOR)
        if image is None or color is None:
            raise FileNotFoundError(f"missing image or colour label for {stem} under {root}")
        scale = min(1.0, tile_width / image.shape[1])
        size = (round(image.shape[1] * scale), max(1, round(image.shape[0] * scale)))
        row = [
            cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(color, size, interpolation=cv2.INTER_NEAREST),
        ]
        rows.append(np.concatenate(row, axis=1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _imwrite(path, np.concatenate(rows, axis=0), _PNG_LABEL)
    return path
