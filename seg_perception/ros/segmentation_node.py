"""``segmentation_node``: the segmentation node (``ros/runtime.py`` says what it subscribes and publishes), loading
its model and subscribing its cameras at start-up; ``segmentation_lifecycle_node`` is its managed form."""

from __future__ import annotations

import sys

from rclpy.node import Node

from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.ros import runtime
from seg_perception.ros.parameters import declare_config, parameter_help
from seg_perception.ros.runtime import SegmentationRuntime
from seg_perception.ros.startup import run_node

EXECUTABLE = "segmentation_node"


class SegmentationNode(Node):
    """The segmentation node, its outputs following the model's task; raises ConfigError / FileNotFoundError /
    ValueError / BackendUnavailableError at construction for bad parameters or an unusable model."""

    def __init__(self, node_name: str = EXECUTABLE) -> None:
        super().__init__(node_name)
        self.config = declare_config(self, SegmentationConfig)
        self.runtime = SegmentationRuntime(self, self.config)
        self.runtime.start()
        self.get_logger().info(f"ready: {self.runtime.describe()}")

    def stop(self) -> None:
        """Stop the camera input and the worker threads, then release the model."""
        self.runtime.close()


def usage(executable: str = EXECUTABLE, summary: str = "") -> str:
    """The --help text of ``executable``: how to run it, ``summary`` and every parameter with its default and
    description."""
    lines = [
        f"usage: {executable} [--ros-args --params-file config/semantic.yaml -p NAME:=VALUE -r image:=TOPIC]",
        "",
        runtime.__doc__.split("\n\n")[0],
        *([summary] if summary else []),
        "",
        "parameters (read-only at run time):",
        *parameter_help(SegmentationConfig),
    ]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> int:
    """Console script ``segmentation_node``: exits 2 with ``segmentation_node: error: ...`` on stderr when it
    cannot start (bad ROS arguments, params file or parameter, missing or unusable model), 0 after SIGINT/SIGTERM."""
    return run_node(EXECUTABLE, SegmentationNode, args, usage())


if __name__ == "__main__":
    sys.exit(main())
