"""The image encodings this package reads, ROS-free: sensor_msgs/Image ``encoding`` names and the JPEG / PNG decoding of
sensor_msgs/CompressedImage, shared by the node's message conversions (``ros/conversions.py``) and the bag reader
(``data/bags.py``)."""

import cv2
import numpy as np

TO_RGB: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
"""encoding -> (channels, OpenCV conversion code to RGB, or None when already RGB)."""

COMPRESSION_FORMATS = ("jpeg", "png")
"""The sensor_msgs/CompressedImage codecs this package decodes."""


def compressed_codec(format_name: str) -> str | None:
    """The codec of a sensor_msgs/CompressedImage ``format``: "jpeg" or "png" for "jpeg", "png" and image_transport's
    "<encoding>; jpeg compressed <encoding>" / "<encoding>; png compressed <encoding>" (case-insensitive); None for
    anything else (compressedDepth, other codecs)."""
    words = format_name.rsplit(";", 1)[-1].split()
    codec = words[0].lower() if words else ""
    return codec if codec in COMPRESSION_FORMATS else None


def decode_compressed(data) -> np.ndarray | None:
    """JPEG or PNG bytes (any uint8 buffer) -> (H, W, 3) uint8 RGB, or None when OpenCV cannot decode them.

    OpenCV reads the codec from the data itself; image_transport's compressed images hold BGR order (any input
    encoding is converted to bgr8 or mono8 before compression), so colour and grey data both come back as RGB."""
    buffer = np.frombuffer(data, np.uint8)
    try:
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    except cv2.error:  # OpenCV mostly returns None for bad data, but some decoder failures raise
        return None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
