"""The raw image encodings this package reads (sensor_msgs/Image ``encoding`` names), ROS-free: shared by the node's
message conversions (``ros/conversions.py``) and the bag reader (``data/bags.py``)."""

import cv2

TO_RGB: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
"""encoding -> (channels, OpenCV conversion code to RGB, or None when already RGB)."""
