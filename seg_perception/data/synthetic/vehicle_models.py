"""Vehicle models: a convex hull and coloured face details per kind, in the vehicle's local frame.

Local frame: x right, y up, z forward (metres), origin on the ground at the vehicle's centre. A model
function ``(rng, length, width, height, paint) -> (hull, details)`` gives the hull as (K, 3) points (their
image convex hull is the labelled silhouette) and the details (windows, lights, wheels) as ``Detail``s;
``actors.Vehicle`` places them in the world with its heading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.data.synthetic.palette import CAR_PAINTS, CLOTHES, DARK, GLASS, TYRE, Color, pick, scaled, vary
from seg_perception.data.synthetic.shapes import billboard, ellipse


@dataclass
class Detail:
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
    circle = ellipse(radius, radius, 10)
    centre = radius if hub_height is None else hub_height
    return np.column_stack([np.full(10, offset), centre + circle[:, 1], forward + circle[:, 0]])


_X, _Z = np.eye(3)[[0, 2]]  # local right and forward axes


def _car_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[Detail]]:
    hw, hl, belt = width / 2, length / 2, 0.62 * height
    profile = [(-hl, 0.3, hw), (-hl + 0.05, belt, hw), (-hl + 0.55, belt + 0.07, hw - 0.05),
               (-hl + 1.05, height, hw - 0.18), (hl - 1.75, height, hw - 0.18), (hl - 1.0, belt + 0.07, hw - 0.05),
               (hl - 0.08, belt - 0.1, hw - 0.04), (hl, 0.3, hw)]  # fmt: skip
    hull = [[s * half, y, z] for z, y, half in profile for s in (-1, 1)]
    hull += [[s * (hw - 0.1), y, axle + dz] for s in (-1, 1) for axle in (-hl + 0.8, hl - 0.8)
             for dz, y in ((-0.22, 0.08), (0.0, 0.0), (0.22, 0.08))]  # fmt: skip
    glass = vary(rng, GLASS, 10)
    details = []
    for s in (-1, 1):
        window = [
            (-hl + 0.62, belt + 0.07),
            (-hl + 1.08, height - 0.05),
            (hl - 1.78, height - 0.05),
            (hl - 1.05, belt + 0.07),
        ]
        details.append(Detail(_side_polygon(s * (hw - 0.12), window), s * _X, glass))
        pillar = ((-hl + 1.08) + (hl - 1.78)) / 2  # middle of the side window
        details.append(
            Detail(_face("side", s * (hw - 0.11), pillar - 0.06, pillar + 0.06, belt, height), s * _X, paint)
        )
        for axle in (-hl + 0.8, hl - 0.8):
            details.append(Detail(_wheel(s * hw, axle, 0.31), s * _X, TYRE))
            details.append(Detail(_wheel(s * (hw + 0.01), axle, 0.14, 0.31), s * _X, (150, 150, 152)))
    lamp = vary(rng, (200, 30, 30), 20)
    for end, light in ((-1, lamp), (1, (225, 225, 210))):
        z = end * (hl + 0.01)
        normal = end * _Z
        details.append(Detail(_face("end", z, -hw + 0.02, hw - 0.02, 0.0, 0.3), normal, DARK))
        details.append(Detail(_face("end", z, -hw + 0.05, -hw + 0.3, 0.0, 0.28), normal, TYRE))
        details.append(Detail(_face("end", z, hw - 0.3, hw - 0.05, 0.0, 0.28), normal, TYRE))
        details.append(Detail(_face("end", z, -0.26, 0.26, 0.38, 0.5), normal, (215, 215, 210)))
        for s in (-1, 1):
            details.append(
                Detail(_face("end", z, s * (hw - 0.06), s * (hw - 0.34), belt - 0.24, belt - 0.08), normal, light)
            )
    rear_window = np.array([
        [-(hw - 0.22), belt + 0.08, -hl + 0.58], [hw - 0.22, belt + 0.08, -hl + 0.58],
        [hw - 0.3, height - 0.05, -hl + 1.02], [-(hw - 0.3), height - 0.05, -hl + 1.02],
    ])  # fmt: skip
    windshield = np.array([
        [-(hw - 0.14), belt + 0.08, hl - 1.02], [hw - 0.14, belt + 0.08, hl - 1.02],
        [hw - 0.3, height - 0.05, hl - 1.72], [-(hw - 0.3), height - 0.05, hl - 1.72],
    ])  # fmt: skip
    details.append(Detail(rear_window, -_Z, glass))
    details.append(Detail(windshield, _Z, glass))
    return np.array(hull), details


def _truck_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[Detail]]:
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
    cab = vary(rng, pick(rng, CAR_PAINTS), 20)
    glass = vary(rng, GLASS, 10)
    details = []
    for s in (-1, 1):
        side = s * (hw + 0.01)
        details.append(Detail(_face("side", side, -hl, box_end, 0.0, 1.0), s * _X, DARK))
        details.append(Detail(_face("side", side, cab_start, hl, 0.45, cab_height), s * _X, cab))
        details.append(
            Detail(_face("side", side, cab_start + 0.3, hl - 0.5, cab_height * 0.6, cab_height - 0.2), s * _X, glass)
        )
        details.append(
            Detail(
                _face("side", side, -hl + 0.2, box_end - 0.2, height - 0.35, height - 0.15),
                s * _X,
                scaled(paint, 0.85),
            )
        )
        for axle in axles:
            details.append(Detail(_wheel(side, axle, 0.5), s * _X, TYRE))
    rear = -(hl + 0.01)
    details.append(Detail(_face("end", rear, -hw, hw, 0.0, 0.5), -_Z, DARK))
    details.append(Detail(_face("end", rear, -0.02, 0.02, 0.6, height - 0.1), -_Z, scaled(paint, 0.6)))
    for s in (-1, 1):
        details.append(Detail(_face("end", rear, s * (hw - 0.1), s * (hw - 0.35), 0.6, 0.75), -_Z, (200, 35, 30)))
    front = hl + 0.01
    details.append(Detail(_face("end", front, -hw + 0.05, hw - 0.05, 0.45, cab_height), _Z, cab))
    details.append(Detail(_face("end", front, -hw + 0.2, hw - 0.2, cab_height * 0.55, cab_height - 0.15), _Z, glass))
    details.append(Detail(_face("end", front, -hw + 0.4, hw - 0.4, 0.7, 1.2), _Z, DARK))
    for s in (-1, 1):
        details.append(Detail(_face("end", front, s * (hw - 0.12), s * (hw - 0.4), 0.55, 0.7), _Z, (225, 225, 210)))
    return np.array(hull), details


def _bus_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[Detail]]:
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
    glass = vary(rng, GLASS, 8)
    accent = vary(rng, pick(rng, CLOTHES), 20)
    details = []
    for s in (-1, 1):
        side = s * (hw + 0.01)
        details.append(Detail(_face("side", side, -hl, hl, 0.0, 0.3), s * _X, DARK))
        details.append(Detail(_face("side", side, -hl + 0.5, hl - 0.6, 1.15, height - 0.35), s * _X, glass))
        details.append(Detail(_face("side", side, -hl + 0.3, hl - 0.3, 0.55, 0.75), s * _X, accent))
        pillars = np.arange(-hl + 1.9, hl - 2.0, rng.uniform(1.4, 1.9))
        for z in pillars:
            details.append(Detail(_face("side", side, z - 0.07, z + 0.07, 1.15, height - 0.35), s * _X, paint))
        details.append(Detail(_face("side", side, hl - 1.9, hl - 0.7, 0.35, height - 0.4), s * _X, scaled(glass, 0.8)))
        for axle in axles:
            details.append(Detail(_wheel(side, axle, 0.5), s * _X, TYRE))
    rear, front = -(hl + 0.01), hl + 0.01
    details.append(Detail(_face("end", rear, -hw, hw, 0.0, 0.3), -_Z, DARK))
    details.append(Detail(_face("end", rear, -hw + 0.25, hw - 0.25, 1.8, height - 0.35), -_Z, glass))
    details.append(Detail(_face("end", rear, -0.26, 0.26, 0.45, 0.57), -_Z, (215, 215, 210)))
    for s in (-1, 1):
        details.append(Detail(_face("end", rear, s * (hw - 0.08), s * (hw - 0.22), 0.5, 1.3), -_Z, (200, 35, 30)))
        details.append(Detail(_face("end", front, s * (hw - 0.1), s * (hw - 0.45), 0.5, 0.65), _Z, (225, 225, 210)))
    details.append(Detail(_face("end", front, -hw, hw, 0.0, 0.3), _Z, DARK))
    details.append(Detail(_face("end", front, -hw + 0.1, hw - 0.1, 1.0, height - 0.45), _Z, glass))
    details.append(Detail(_face("end", front, -hw + 0.3, hw - 0.3, height - 0.4, height - 0.12), _Z, (225, 160, 40)))
    return np.array(hull), details


def _wheel_ring(forward: float, radius: float, half_width: float) -> list[list[float]]:
    circle = ellipse(radius, radius, 8)
    return [[s * half_width, radius + dy, forward + dz] for dz, dy in circle for s in (-1, 1)]


def _motorcycle_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[Detail]]:
    hl = length / 2
    hull = _wheel_ring(-hl + 0.31, 0.31, 0.07) + _wheel_ring(hl - 0.31, 0.31, 0.07)
    hull += [[s * 0.16, 0.8, z] for s in (-1, 1) for z in (-0.5, 0.15)]
    hull += [[s * 0.18, 0.98, 0.3] for s in (-1, 1)] + [[s * width / 2, height, 0.5] for s in (-1, 1)]
    hull += [[s * 0.1, 0.9, hl - 0.15] for s in (-1, 1)] + [[0.22, 0.45, -0.7]]
    details = []
    for s in (-1, 1):
        for axle in (-hl + 0.31, hl - 0.31):
            details.append(Detail(_wheel(s * 0.08, axle, 0.31), s * _X, TYRE))
            details.append(Detail(_wheel(s * 0.09, axle, 0.16, 0.31), s * _X, (120, 120, 125)))
        details.append(Detail(_face("side", s * 0.17, -0.2, 0.35, 0.3, 0.72), s * _X, (70, 70, 75)))
    for end in (-1, 1):
        z = end * (hl + 0.01)
        details.append(Detail(_face("end", z, -0.07, 0.07, 0.0, 0.55), end * _Z, TYRE))
    details.append(Detail(_face("end", -0.76, -0.07, 0.07, 0.78, 0.86), -_Z, (210, 30, 30)))
    details.append(Detail(billboard(ellipse(0.09, 0.09, 8), 0.0, 0.92, hl - 0.1), _Z, (230, 230, 215)))
    return np.array(hull), details


# (forward, up) of rear hub, bottom bracket, saddle, head tube, front hub
BICYCLE_FRAME = np.array([(-0.53, 0.34), (0.0, 0.3), (-0.2, 0.95), (0.4, 0.92), (0.53, 0.34)])


def _bicycle_model(rng, length, width, height, paint) -> tuple[np.ndarray, list[Detail]]:
    hull = _wheel_ring(-0.53, 0.34, 0.03) + _wheel_ring(0.53, 0.34, 0.03)
    hull += [[s * width / 2, height, 0.45] for s in (-1, 1)] + [[s * 0.09, 0.95, -0.22] for s in (-1, 1)]
    return np.array(hull), []


VEHICLE_MODELS = {"car": _car_model, "truck": _truck_model, "bus": _bus_model,
                  "motorcycle": _motorcycle_model, "bicycle": _bicycle_model}  # fmt: skip
"""Vehicle kind -> its model function."""
