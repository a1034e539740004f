"""Road users: pedestrians and riders (``Person``), vehicles (``Vehicle``), their motion over a sequence and
how they draw themselves.

Both move on straight lines at constant velocity: a person's feet are at ``anchor(t)``, a vehicle's ground
centre at ``position(t)`` (world frame, t in seconds from frame 0). Every road user carries a ``track`` id,
fixed for the sequence, that ``Canvas.region`` maps the frame's instance ids to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from seg_perception.data.synthetic.camera import NEAR
from seg_perception.data.synthetic.canvas import Canvas
from seg_perception.data.synthetic.palette import CAR_PAINTS, CAR_WEIGHTS, CLOTHES, HAIR, SKIN, TYRE, Color, pick, vary
from seg_perception.data.synthetic.shapes import billboard, ellipse, heading_basis
from seg_perception.data.synthetic.vehicle_models import BICYCLE_FRAME, VEHICLE_MODELS, Detail


@dataclass
class Person:
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

    def draw(self, canvas: Canvas, t: float, shade: int) -> None:
        x, z = self.anchor(t)
        outline = self.outline(t)
        canvas.region(
            self.label, canvas.polygon(billboard(outline, x, self.ground, z)), self.clothes[0], shade, self.track
        )
        if canvas.pixels_per_metre(np.array([x, self.ground, z])) * self.height < 12:
            return
        mirror = 2 * len(self._HALF)  # outline[mirror - j] mirrors outline[j]
        torso = np.concatenate([outline[4:11], outline[mirror - 10 : mirror - 3]])  # neck..hip, both sides
        head = np.concatenate([outline[0:5], outline[mirror - 4 : mirror]])
        hair = np.concatenate([outline[0:3], outline[mirror - 2 : mirror]])
        torso, head, hair = canvas.polygons([billboard(p, x, self.ground, z) for p in (torso, head, hair)])
        canvas.paint([torso], self.clothes[1])
        canvas.paint([head], self.clothes[2] if self.facing_camera else self.clothes[3])
        canvas.paint([hair], self.clothes[3])


@dataclass
class Vehicle:
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
    rider: Person | None = None

    def __post_init__(self) -> None:
        self.basis = heading_basis(self.heading)

    @cached_property
    def model(self) -> tuple[np.ndarray, list[Detail], np.ndarray, np.ndarray, np.ndarray]:
        """Local hull points (K, 3), details, their normals and first points (D, 3), shadow footprint (4, 3)."""
        dims = (self.length, self.width, self.height)
        hull, details = VEHICLE_MODELS[self.kind](np.random.default_rng(self.model_seed), *dims, self.paint)
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

    def draw(self, canvas: Canvas, t: float, shade: int) -> None:
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

    def _draw_details(self, canvas: Canvas, center: np.ndarray, basis: np.ndarray) -> None:
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

    def _draw_bicycle_frame(self, canvas: Canvas, center: np.ndarray, basis: np.ndarray) -> None:
        scale = canvas.pixels_per_metre(center)
        wheel = ellipse(0.34, 0.34, 16)
        local = [np.column_stack([np.zeros(16), 0.34 + wheel[:, 1], hub + wheel[:, 0]]) for hub in (-0.53, 0.53)]
        tubes = BICYCLE_FRAME[[0, 1, 2, 0, 2, 3, 1, 3, 4]]
        local.append(np.column_stack([np.zeros(len(tubes)), tubes[:, 1], tubes[:, 0]]))
        local.append(np.array([[-self.width / 2, self.height, 0.45], [self.width / 2, self.height, 0.45]]))
        cams = [canvas.to_camera(center + p @ basis.T) for p in local]
        if min(c[:, 2].min() for c in cams) < NEAR:
            return
        lines = [np.rint(canvas.to_pixels(c)).astype(np.int32) for c in cams]
        thickness = max(1, round(0.045 * scale))
        cv2.polylines(canvas.image, lines[:2], True, TYRE, thickness)
        cv2.polylines(canvas.image, lines[2:], False, self.paint, max(1, round(0.035 * scale)))


def make_vehicle(rng, kind: str, x: float, z: float, ground: float, speed: float, heading: float) -> Vehicle:
    dims = {
        "car": (rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.65)),
        "truck": (rng.uniform(6.5, 9.5), rng.uniform(2.3, 2.5), rng.uniform(3.0, 3.8)),
        "bus": (rng.uniform(11.0, 13.0), 2.5, rng.uniform(3.0, 3.3)),
        "motorcycle": (rng.uniform(2.0, 2.2), rng.uniform(0.7, 0.8), rng.uniform(1.1, 1.25)),
        "bicycle": (1.75, rng.uniform(0.55, 0.62), rng.uniform(1.0, 1.06)),
    }[kind]
    if kind == "car":
        paint = vary(rng, pick(rng, CAR_PAINTS, CAR_WEIGHTS), 12)
    elif kind == "bus":
        paint = vary(
            rng, pick(rng, [(235, 200, 40), (225, 225, 220), (190, 30, 30), (40, 90, 170), (230, 220, 190)]), 10
        )
    elif kind == "truck":
        paint = vary(
            rng, pick(rng, [(230, 230, 230), (200, 200, 195), (160, 40, 30), (40, 70, 130), (235, 235, 235)]), 12
        )
    else:
        paint = vary(rng, pick(rng, [(20, 20, 22), (170, 30, 30), (30, 60, 150), (200, 200, 205), (230, 120, 20)]), 15)
    return Vehicle(kind, x, z, ground, speed, heading, *dims, paint, int(rng.integers(2**32)))


def make_person(
    rng, label: str, x: float, z: float, ground: float, speed_x: float, speed_z: float, track: int
) -> Person:
    child = label == "person" and rng.random() < 0.08
    height = rng.uniform(1.05, 1.4) if child else rng.uniform(1.58, 1.95)
    clothes = (
        vary(rng, pick(rng, CLOTHES[:4] + CLOTHES[6:7]), 12),
        vary(rng, pick(rng, CLOTHES), 20),
        vary(rng, pick(rng, SKIN), 10),
        vary(rng, pick(rng, HAIR), 10),
    )
    facing = speed_z < 0 if speed_z else bool(rng.random() < 0.5)
    return Person(
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


def seat_rider(rng: np.random.Generator, rider: Person, vehicle: Vehicle) -> Person:
    """Put a rider on a bicycle or motorcycle: same motion, seated pose (helmet on a motorcycle)."""
    basis = heading_basis(vehicle.heading)
    seat = np.array([vehicle.x, 0.0, vehicle.z]) + basis[:, 2] * (-0.2)
    velocity = basis[:, 2] * vehicle.speed
    rider.x, rider.z, rider.ground = seat[0], seat[2], vehicle.ground
    rider.speed_x, rider.speed_z = velocity[0], velocity[2]
    rider.seat_height = 0.95 if vehicle.kind == "bicycle" else 0.82
    rider.leg_fraction = 0.78 if vehicle.kind == "bicycle" else 0.5
    rider.facing_camera = math.cos(vehicle.heading) < 0
    if vehicle.kind == "motorcycle":
        helmet = vary(rng, pick(rng, [(30, 30, 32), (220, 220, 225), (170, 30, 30)]), 12)
        rider.clothes = (rider.clothes[0], rider.clothes[1], helmet, helmet)
    return rider
