"""What a minimal planner reads from the drivable grid: the free distance ahead along the ego lane (numpy; no ROS),
and the settings of the ``planning_check`` node that publishes it.

Frames and cell values are ``ground_projection``'s: vehicle frame x forward, y left; cells FREE / OCCUPIED / UNKNOWN
with row = y index, col = x index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_perception.ground_projection import FREE, GridSpec
from seg_perception.pipeline.config import ConfigError


def free_distance(
    cells: np.ndarray,
    grid: GridSpec,
    lane_half_width: float,
    start_x: float,
    objects: Sequence[tuple[float, float]] = (),
) -> float:
    """Metres from ``start_x`` to the first obstacle of the ego lane (cells whose centre has |y| <=
    ``lane_half_width`` and x >= ``start_x``): the near edge of the first lane column holding a cell that is not FREE
    (occupied or unknown), or an object ``(x, y)`` in the lane, whichever is nearer; ``grid.x_max - start_x`` when
    the lane is free to the grid's end. 0 when nothing ahead is known to be free: ``start_x`` below ``grid.x_min``
    or beyond ``grid.x_max``, or no cell centre inside the lane. ``cells``: (grid.height, grid.width) int8."""
    cells = np.asarray(cells)
    if cells.shape != (grid.height, grid.width):
        raise ValueError(f"cells {cells.shape} do not match the grid's (height, width) {(grid.height, grid.width)}")
    x, y = grid.cell_centres()
    rows, cols = np.abs(y[:, 0]) <= lane_half_width, x[0] >= start_x
    if start_x < grid.x_min or not rows.any():
        return 0.0
    blocked = (cells[np.ix_(rows, cols)] != FREE).any(axis=0)
    near_edges = grid.x_min + np.flatnonzero(cols) * grid.resolution
    distance = max((near_edges[blocked.argmax()] if blocked.any() else grid.x_max) - start_x, 0.0)
    points = np.asarray(objects, np.float64).reshape(-1, 2)
    ahead = (np.abs(points[:, 1]) <= lane_half_width) & (points[:, 0] >= start_x)
    if ahead.any():
        distance = min(distance, points[ahead, 0].min() - start_x)
    return float(distance)


@dataclass(frozen=True)
class PlanningCheckConfig:
    """Every ``planning_check`` parameter; see each field's ``description`` (also the ROS parameter descriptor)."""

    lane_half_width: float = field(
        default=1.75, metadata={"description": "half the ego lane's width (m): cells with |y| <= it are the lane"}
    )
    start_x: float = field(
        default=6.0,
        metadata={
            "description": "x (m, grid frame) to measure from: the first ground the camera sees ahead (unknown "
            "ground blocks; the default: the shipped synthetic camera's, at x 1.7 m and ~1.3 m high)"
        },
    )
    use_objects: bool = field(
        default=True, metadata={"description": "also stop at located instances in the lane (instances topic)"}
    )
    instances_wait: float = field(
        default=0.1,
        metadata={"description": "seconds a grid waits for the instances of its stamp before it is answered without"},
    )

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lane_half_width) and self.lane_half_width > 0):
            raise ConfigError(f"lane_half_width: must be > 0 m, got {self.lane_half_width}")
        if not math.isfinite(self.start_x):
            raise ConfigError(f"start_x: must be a finite number, got {self.start_x}")
        if not (math.isfinite(self.instances_wait) and self.instances_wait >= 0):
            raise ConfigError(f"instances_wait: must be >= 0 s, got {self.instances_wait}")

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> PlanningCheckConfig:
        """From ROS parameter values (typed by their declarations)."""
        return cls(**values)
