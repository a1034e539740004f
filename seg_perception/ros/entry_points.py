"""Console-script entry points of the nodes.

Each treats SIGTERM like SIGINT (KeyboardInterrupt; rclpy, once initialised, shuts its context down first and then
calls this handler) and imports its node module inside a guard, so a signal while Python is still loading rclpy,
numpy and OpenCV ends the process quietly with exit code 0 instead of a traceback or death by signal; from
``rclpy.init`` on, ``ros/startup.py`` handles signals and start-up errors.
"""

from __future__ import annotations

import signal


def segmentation_node() -> int:
    """``segmentation_node``: see ``seg_perception.ros.segmentation_node``."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        from seg_perception.ros.segmentation_node import main

        return main()
    except KeyboardInterrupt:
        return 0
