"""Console-script entry points of the nodes.

Each treats SIGTERM like SIGINT (KeyboardInterrupt; rclpy, once initialised, shuts its context down first and then
calls this handler) and imports its node module inside a guard, so a signal while Python is still loading rclpy,
numpy and OpenCV ends the process quietly with exit code 0 instead of a traceback or death by signal; from
``rclpy.init`` on, ``ros/startup.py`` handles signals and start-up errors.
"""

from __future__ import annotations

import importlib
import signal


def _run(module: str) -> int:
    """Run ``module.main()`` with SIGTERM treated like SIGINT, ending quietly on a signal while importing."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return importlib.import_module(module).main()
    except KeyboardInterrupt:
        return 0


def segmentation_node() -> int:
    """``segmentation_node``: see ``seg_perception.ros.segmentation_node``."""
    return _run("seg_perception.ros.segmentation_node")


def segmentation_lifecycle_node() -> int:
    """``segmentation_lifecycle_node``: see ``seg_perception.ros.lifecycle_node``."""
    return _run("seg_perception.ros.lifecycle_node")


def planning_check() -> int:
    """``planning_check``: see ``seg_perception.ros.planning_check``."""
    return _run("seg_perception.ros.planning_check")
