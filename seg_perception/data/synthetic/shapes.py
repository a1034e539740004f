"""World-space shape helpers: rectangles in the street's planes, 2-D outlines, billboards, heading bases.

All 3-D points are in the world frame (x right of the street axis, y up, z along the street; metres);
2-D outlines are (N, 2) (x right, y up) metres around their own origin.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def quad_x(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    """Vertical rectangle in the plane x = const, spanning z0..z1 and y0..y1."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]])


def quad_z(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Vertical rectangle in the plane z = const, facing the camera."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def rectangles_x(x: float, z0: np.ndarray, z1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """(M, 4, 3) rectangles in the plane x = const, one per entry of the (M,) bounds."""
    xs = np.full(len(z0), x)
    return np.stack([np.stack(c, axis=1) for c in ((xs, y0, z0), (xs, y0, z1), (xs, y1, z1), (xs, y1, z0))], axis=1)


def rectangles_z(z: float, x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """(M, 4, 3) rectangles in the plane z = const, one per entry of the (M,) bounds."""
    zs = np.full(len(x0), z)
    return np.stack([np.stack(c, axis=1) for c in ((x0, y0, zs), (x1, y0, zs), (x1, y1, zs), (x0, y1, zs))], axis=1)


def quad_ground(x0: float, x1: float, z0: float, z1: float, y: float) -> np.ndarray:
    """(4, 3) horizontal rectangle at height y, spanning x0..x1 and z0..z1."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])


def rectangle(half_width: float, half_height: float) -> np.ndarray:
    """(4, 2) axis-aligned rectangle around the origin."""
    return np.array(
        [(-half_width, -half_height), (half_width, -half_height), (half_width, half_height), (-half_width, half_height)]
    )


@lru_cache
def _unit_circle(sides: int) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def ellipse(rx: float, ry: float, sides: int = 10) -> np.ndarray:
    """(sides, 2) ellipse outline around the origin."""
    return _unit_circle(sides) * (rx, ry)


def blob(rng: np.random.Generator, rx: float, ry: float, sides: int = 18) -> np.ndarray:
    """(sides, 2) irregular round outline (tree crowns, bushes)."""
    radius = rng.uniform(0.78, 1.05, sides)
    radius = (radius + np.roll(radius, 1) + np.roll(radius, -1)) / 3
    return ellipse(rx, ry, sides) * radius[:, None]


def billboard(points_xy: np.ndarray, x: float, y: float, z: float) -> np.ndarray:
    """(N, 2) outline in metres -> (N, 3) world points in the plane z = const around (x, y)."""
    return np.column_stack([x + points_xy[:, 0], y + points_xy[:, 1], np.full(len(points_xy), z)])


def heading_basis(heading: float) -> np.ndarray:
    """(3, 3) local (right, up, forward) -> world, for a heading angle from +z towards +x."""
    s, c = math.sin(heading), math.cos(heading)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
