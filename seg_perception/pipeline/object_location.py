"""Where the instances of a frame stand: each one's ground-contact point (its lowest mask pixels) projected onto flat
ground through ``GroundProjection`` (numpy only; no ROS).

The contact point is the bottom edge of the instance's lowest mask row at the median column of its lowest
``CONTACT_ROWS`` rows, i.e. where a wheel or a foot meets the road in the image. Its uncertainty is the ground
footprint of half a pixel around it (down/up and left/right): it grows with range squared. An instance whose mask
touches the image's bottom edge is cut off (its contact is not in view) and is not located; neither is one whose
contact row is at or above the horizon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.pipeline.ground_projection import GroundProjection

CONTACT_ROWS = 3
"""The lowest rows of a mask whose median column is the contact point's."""


@dataclass(frozen=True)
class GroundPosition:
    """An instance's ground-contact point in the vehicle frame (m), its range (m) and bearing (rad, left positive)
    from the camera's ground point, and the position's uncertainty ``sigma`` (m)."""

    x: float
    y: float
    range: float
    bearing: float
    sigma: float


def contact_pixel(instance_ids: np.ndarray, instance_id: int, box: Sequence[float]) -> tuple[float, float] | None:
    """(u, v) float pixel of the bottom edge of the instance's lowest rows ((H, W) integer ``instance_ids``, its
    value ``instance_id``, x0, y0, x1, y1 ``box`` bounding it); None when the mask is empty or touches the bottom."""
    height, width = instance_ids.shape
    x0, y0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x1, y1 = min(math.ceil(box[2]) + 1, width), min(math.ceil(box[3]) + 1, height)
    rows, cols = np.nonzero(instance_ids[y0:y1, x0:x1] == instance_id)
    if not len(rows):
        return None
    lowest = int(rows.max())
    if y0 + lowest >= height - 1:
        return None
    band = rows >= lowest - (CONTACT_ROWS - 1)
    return float(np.median(cols[band])) + x0, y0 + lowest + 0.5


def locate(projection: GroundProjection, pixel: tuple[float, float]) -> GroundPosition | None:
    """The ground position of contact ``pixel`` (u, v); None when its ray misses the ground."""
    u, v = pixel
    us = np.array([u, u, u, u - 0.5, u + 0.5])
    vs = np.array([v, v - 0.5, v + 0.5, v, v])
    x, y, valid = projection.pixel_to_ground(us, vs)
    if not valid.all():
        return None
    along, across = math.hypot(x[2] - x[1], y[2] - y[1]) / 2, math.hypot(x[4] - x[3], y[4] - y[3]) / 2
    dx, dy = x[0] - projection.camera.x, y[0] - projection.camera.y
    return GroundPosition(float(x[0]), float(y[0]), math.hypot(dx, dy), math.atan2(dy, dx), math.hypot(along, across))


def locate_instances(
    instance_ids: np.ndarray, instances: Sequence, projection: GroundProjection
) -> dict[int, GroundPosition | None]:
    """{instance id: its GroundPosition or None} for instances with ``id`` and ``box`` (pipeline.panoptic's
    ObjectInstance) on their (H, W) ``instance_ids`` image."""
    located = {}
    for instance in instances:
        pixel = contact_pixel(instance_ids, instance.id, instance.box)
        located[instance.id] = None if pixel is None else locate(projection, pixel)
    return located
