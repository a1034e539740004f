"""``planning_check``: an example consumer of segmentation_node's outputs, as a minimal planning stack would read them.

Subscribes ``drivable_grid`` (nav_msgs/OccupancyGrid) and, with ``use_objects``, ``instances``
(seg_perception_msgs/ObjectInstanceArray), both best-effort (so it matches a reliable or a best-effort node); for
every grid publishes ``free_distance`` (std_msgs/Float32, metres: ``pipeline.planning.free_distance`` along the ego
lane from ``start_x``). Neither std_msgs nor geometry_msgs has a header-stamped scalar, so the value carries no
header: one message per grid, in the grids' order; the log says which grid stamp it answered (rate-limited).
The segmentation node publishes a frame's grid before its instances, so a grid whose instances have not come yet
waits for them up to ``instances_wait`` s (until the next grid at most), then is answered from the grid alone;
instances are used only when their stamp equals the grid's, their ``position_frame_id`` is the grid's frame and
they are ``located``. A malformed grid is counted, logged (rate-limited) and dropped.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from nav_msgs.msg import OccupancyGrid
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import Float32

from seg_perception.ground_projection import GridSpec
from seg_perception.pipeline.planning import PlanningCheckConfig, free_distance
from seg_perception.ros.conversions import stamp_ns
from seg_perception.ros.parameters import declare_config, parameter_help
from seg_perception.ros.startup import run_node
from seg_perception_msgs.msg import ObjectInstanceArray

EXECUTABLE = "planning_check"
LOG_THROTTLE = 5.0
"""Seconds between repeated log lines of one kind."""


class Grid(NamedTuple):
    stamp: int
    frame_id: str
    cells: np.ndarray
    spec: GridSpec


def read_grid(msg: OccupancyGrid) -> Grid:
    """The cells (height, width) int8 and GridSpec of an OccupancyGrid laid out as drivable_grid (origin = the
    (x_min, y_min) corner, not rotated); ValueError saying what is wrong with any other."""
    info, origin = msg.info, msg.info.origin
    if info.width * info.height != len(msg.data):
        raise ValueError(f"{info.width} x {info.height} cells but {len(msg.data)} values")
    if not (math.isfinite(info.resolution) and info.resolution > 0):
        raise ValueError(f"resolution {info.resolution} (must be > 0)")
    if not (math.isfinite(origin.position.x) and math.isfinite(origin.position.y)):
        raise ValueError(f"origin ({origin.position.x}, {origin.position.y})")
    q = origin.orientation
    if (q.x, q.y, q.z, abs(q.w)) != (0.0, 0.0, 0.0, 1.0):
        raise ValueError(f"rotated origin ({q.x}, {q.y}, {q.z}, {q.w})")
    x0, y0, step = origin.position.x, origin.position.y, info.resolution
    spec = GridSpec(step, x0, x0 + info.width * step, y0, y0 + info.height * step)
    if (spec.height, spec.width) != (info.height, info.width):
        raise ValueError(f"{info.width} x {info.height} cells of {step} m at ({x0}, {y0}) are not representable")
    cells = np.asarray(msg.data, np.int8).reshape(info.height, info.width)
    return Grid(stamp_ns(msg.header), msg.header.frame_id, cells, spec)


class PlanningCheckNode(Node):
    """Answers every drivable_grid with free_distance; ConfigError at construction for a bad parameter."""

    def __init__(self, node_name: str = EXECUTABLE) -> None:
        super().__init__(node_name)
        self.config = declare_config(self, PlanningCheckConfig)
        self.malformed = 0
        self._instances: ObjectInstanceArray | None = None
        self._pending: Grid | None = None
        self._wait = self.create_timer(self.config.instances_wait, self._answer_pending)
        self._wait.cancel()
        self.publisher = self.create_publisher(Float32, "free_distance", 10)
        self.create_subscription(OccupancyGrid, "drivable_grid", self._on_grid, qos_profile_sensor_data)
        if self.config.use_objects:
            self.create_subscription(ObjectInstanceArray, "instances", self._on_instances, qos_profile_sensor_data)
        c = self.config
        self.get_logger().info(
            f"ready: lane |y| <= {c.lane_half_width} m from x = {c.start_x} m, objects {c.use_objects}"
        )

    def _on_grid(self, msg: OccupancyGrid) -> None:
        try:
            grid = read_grid(msg)
        except ValueError as error:
            self.malformed += 1
            self.get_logger().warning(
                f"malformed drivable_grid dropped ({self.malformed} so far): {error}",
                throttle_duration_sec=LOG_THROTTLE,
            )
            return
        self._answer_pending()  # its instances did not come before the next grid
        if not self.config.use_objects:
            self._answer(grid, None)
        elif self._instances is not None and stamp_ns(self._instances.header) == grid.stamp:
            self._answer(grid, self._instances)
        else:
            self._pending = grid
            self._wait.reset()

    def _on_instances(self, msg: ObjectInstanceArray) -> None:
        self._instances = msg
        if self._pending is not None and self._pending.stamp == stamp_ns(msg.header):
            grid, self._pending = self._pending, None
            self._wait.cancel()
            self._answer(grid, msg)

    def _answer_pending(self) -> None:
        """Answer the grid still waiting for its instances from the grid alone."""
        self._wait.cancel()
        if self._pending is not None:
            grid, self._pending = self._pending, None
            self._answer(grid, None)

    def _answer(self, grid: Grid, instances: ObjectInstanceArray | None) -> None:
        objects = self._objects(instances, grid.frame_id) if instances is not None else []
        c = self.config
        distance = free_distance(grid.cells, grid.spec, c.lane_half_width, c.start_x, objects)
        self.publisher.publish(Float32(data=distance))
        self.get_logger().info(
            f"free_distance {distance:.2f} m for the grid stamped {grid.stamp} ns ({len(objects)} located objects)",
            throttle_duration_sec=LOG_THROTTLE,
        )

    def _objects(self, instances: ObjectInstanceArray, frame_id: str) -> list[tuple[float, float]]:
        """(x, y) of the located instances, none when they are not in the grid's frame."""
        if instances.position_frame_id != frame_id:
            self.get_logger().warning(
                f"instances located in {instances.position_frame_id!r}, grid in {frame_id!r}: objects not used",
                throttle_duration_sec=LOG_THROTTLE,
            )
            return []
        return [(instance.x, instance.y) for instance in instances.instances if instance.located]

    def stop(self) -> None:
        """Nothing to stop (no threads, no model): ``run_node``'s hook."""


def usage() -> str:
    """The --help text."""
    return "\n".join(
        [
            f"usage: {EXECUTABLE} [--ros-args --params-file config/planning_check.yaml -p NAME:=VALUE "
            "-r drivable_grid:=TOPIC -r instances:=TOPIC]",
            "",
            __doc__.strip(),
            "",
            "parameters (read-only at run time):",
            *parameter_help(PlanningCheckConfig),
        ]
    )


def main(args: list[str] | None = None) -> int:
    """Console script ``planning_check``: exits 2 with ``planning_check: error: ...`` on stderr for a bad parameter
    or ROS argument, 0 after SIGINT/SIGTERM."""
    return run_node(EXECUTABLE, PlanningCheckNode, args, usage())


if __name__ == "__main__":
    sys.exit(main())
