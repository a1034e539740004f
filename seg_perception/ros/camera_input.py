"""What segmentation_node's image callbacks hand to the inference thread: raw frames already converted (zero-copy for
rgb8) and compressed ones (``input_transport: compressed``), which are decoded on the inference thread, off the
executor, by ``decode_frames``.

The image subscriptions are raw (rclpy hands over the serialized CDR bytes) and ``deserialize_input`` reads them with
rosbags' CDR deserializer, whose uint8 arrays are zero-copy views of those bytes: at 1024x2048 rgb8 that takes
~0.5 ms where rclpy's own conversion into a Python message (a copy of the 6 MB data) takes ~3.5 ms (measured here).
The result has the fields of sensor_msgs/Image (CompressedImage), ``data`` a numpy uint8 array.

Transports as image_transport names them: ``raw`` subscribes sensor_msgs/Image on the (remappable) base topic
``<camera>/image``, ``compressed`` sensor_msgs/CompressedImage on ``<resolved base topic>/compressed``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from struct import error as struct_error

import numpy as np
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.pipeline.frame_sync import PendingFrame
from seg_perception.ros.conversions import BadImageError, check_compressed, compressed_to_rgb, image_to_rgb

TRANSPORTS: dict[str, tuple[type, str]] = {"raw": (Image, ""), "compressed": (CompressedImage, "/compressed")}
"""input_transport -> (message type, suffix of the resolved base image topic)."""
_TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)  # Image, CompressedImage, Header: the same in every ROS 2 distro
_TYPE_NAMES = {Image: "sensor_msgs/msg/Image", CompressedImage: "sensor_msgs/msg/CompressedImage"}


def deserialize_input(raw: bytes, kind: type):
    """Serialized ``kind`` (Image or CompressedImage) -> a message with its fields, ``data`` a zero-copy uint8 view.
    BadImageError "corrupt" when the bytes are not such a message."""
    try:
        return _TYPESTORE.deserialize_cdr(raw, _TYPE_NAMES[kind])
    except (SerdeError, ValueError, IndexError, struct_error) as error:
        raise BadImageError("corrupt", f"not a serialized {_TYPE_NAMES[kind]} ({len(raw)} bytes): {error}") from None


@dataclass(frozen=True)
class CameraFrame:
    """One input frame in the scheduler: ``image`` (H, W, 3) uint8 RGB, None while ``compressed`` (its
    CompressedImage) waits to be decoded; the input ``header``; ``stages``: {stage: ms} of its way through the node
    so far (receive, convert, queue, ...), filled in as it goes."""

    image: np.ndarray | None
    header: Header
    compressed: CompressedImage | None = None
    stages: dict[str, float] = field(default_factory=dict)


def input_topic(transport: str, base_topic: str) -> tuple[type, str]:
    """(message type, topic) of ``transport`` for the resolved (remapped) base image topic, e.g. ``/cam/image``."""
    kind, suffix = TRANSPORTS[transport]
    return kind, base_topic + suffix


def camera_frame(msg, kind: type, max_pixels: int) -> CameraFrame:
    """An Image (``kind``) -> its converted frame; a CompressedImage -> a frame decoded later (only its format and
    data length checked here). Raises BadImageError (see ``image_to_rgb``, ``check_compressed``)."""
    if kind is CompressedImage:
        check_compressed(msg)
        return CameraFrame(None, msg.header, msg)
    return CameraFrame(image_to_rgb(msg, max_pixels), msg.header)


def decode_frames(
    frames: Sequence[PendingFrame], max_pixels: int, reject: Callable[[PendingFrame, BadImageError], None]
) -> tuple[list[PendingFrame], float]:
    """``frames`` (payloads: CameraFrame) with every compressed image decoded, and the ms it took; a frame that
    cannot be decoded is passed to ``reject`` and left out."""
    start = time.perf_counter()
    decoded = []
    for frame in frames:
        payload = frame.payload
        if payload.compressed is not None:
            try:
                image = compressed_to_rgb(payload.compressed, max_pixels)
            except BadImageError as error:
                reject(frame, error)
                continue
            frame = dataclasses.replace(frame, payload=CameraFrame(image, payload.header, stages=payload.stages))
        decoded.append(frame)
    return decoded, (time.perf_counter() - start) * 1e3
