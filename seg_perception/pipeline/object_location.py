"""Where the instances of a frame stand: each one's ground contact (the lowest pixels of its mask) projected onto
flat ground through ``GroundProjection`` (numpy only; no ROS).

Every column of a mask has a lowest pixel; the bottom edges of those pixels, projected onto the ground, trace where
the object meets the ground (its wheels, its feet) or, between them, points beyond it (an elevated body edge
projects farther). The position is the projected point nearest to the camera's ground point, robustly: the
``NEAREST_QUANTILE`` of their distances, so a few stray mask pixels do not pull it in. Its uncertainty is the
ground footprint of half a pixel around that contact pixel (down/up and left/right): it grows with range squared.
An instance whose mask touches the image's bottom edge is cut off (its contact is not in view) and is not located;
neither is one whose contact pixels are all at or above the horizon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.ground_projection import GroundProjection

NEAREST_QUANTILE = 0.03
"""Which of a mask's projected bottom-edge points is its position: this quantile of their distances."""


@dataclass(frozen=True)
class GroundPosition:
    """An instance's ground-contact point in the vehicle frame (m), its range (m) and bearing (rad, left positive)
    from the camera's ground point, and the position's uncertainty ``sigma`` (m)."""

    x: float
    y: float
    range: float
    bearing: float
    sigma: float


def bottom_edge(
    instance_ids: np.ndarray, instance_id: int, box: Sequence[float]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(u, v) float pixels (K,) of the bottom edge of the lowest mask pixel of each of the instance's K columns
    ((H, W) integer ``instance_ids``, its value ``instance_id``, x0, y0, x1, y1 ``box`` bounding it); None when the
    mask is empty or touches the image's bottom row."""
    height, width = instance_ids.shape
    x0, y0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x1, y1 = min(math.ceil(box[2]) + 1, width), min(math.ceil(box[3]) + 1, height)
    window = instance_ids[y0:y1, x0:x1] == instance_id
    columns = np.flatnonzero(window.any(axis=0))
    if not len(columns):
        return None
    lowest = window.shape[0] - 1 - np.argmax(window[::-1, columns], axis=0)  # per column, its lowest mask row
    if y0 + lowest.max() >= height - 1:
        return None
    return (columns + x0).astype(np.float64), y0 + lowest + 0.5


def locate(projection: GroundProjection, us: np.ndarray, vs: np.ndarray) -> GroundPosition | None:
    """The ground position of bottom-edge pixels ``us``, ``vs`` (K,): the ``NEAREST_QUANTILE`` point by distance
    from the camera's ground point; None when no ray hits the ground."""
    x, y, valid = projection.pixel_to_ground(us, vs)
    if not valid.any():
        return None
    cam_x, cam_y = projection.camera.x, projection.camera.y
    distances = np.where(valid, np.hypot(x - cam_x, y - cam_y), np.inf)
    order = np.argsort(distances[valid], kind="stable")
    pick = np.flatnonzero(valid)[order[int(NEAREST_QUANTILE * (len(order) - 1))]]
    u, v = us[pick], vs[pick]
    around_x, around_y, _ = projection.pixel_to_ground(
        np.array([u, u, u - 0.5, u + 0.5]), np.array([v - 0.5, v + 0.5, v, v])
    )
    along = math.hypot(around_x[1] - around_x[0], around_y[1] - around_y[0]) / 2
    across = math.hypot(around_x[3] - around_x[2], around_y[3] - around_y[2]) / 2
    dx, dy = x[pick] - cam_x, y[pick] - cam_y
    sigma = math.hypot(along, across) if np.isfinite(along) else math.inf
    return GroundPosition(float(x[pick]), float(y[pick]), math.hypot(dx, dy), math.atan2(dy, dx), sigma)


def locate_instances(
    instance_ids: np.ndarray, instances: Sequence, projection: GroundProjection
) -> dict[int, GroundPosition | None]:
    """{instance id: its GroundPosition or None} for instances with ``id`` and ``box`` (pipeline.panoptic's
    ObjectInstance) on their (H, W) ``instance_ids`` image."""
    located = {}
    for instance in instances:
        edge = bottom_edge(instance_ids, instance.id, instance.box)
        located[instance.id] = None if edge is None else locate(projection, *edge)
    return located
