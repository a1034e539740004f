"""What segmentation_node's image callbacks hand to the inference thread: raw frames already converted (zero-copy for
rgb8) and compressed ones (``input_transport: compressed``), which are decoded on the inference thread, off the
executor, by ``decode_frames``.

Transports as image_transport names them: ``raw`` subscribes sensor_msgs/Image on the (remappable) base topic
``<camera>/image``, ``compressed`` sensor_msgs/CompressedImage on ``<resolved base topic>/compressed``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.pipeline.frame_sync import PendingFrame
from seg_perception.ros.conversions import BadImageError, check_compressed, compressed_to_rgb, image_to_rgb

TRANSPORTS: dict[str, tuple[type, str]] = {"raw": (Image, ""), "compressed": (CompressedImage, "/compressed")}
"""input_transport -> (message type, suffix of the resolved base image topic)."""


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


def camera_frame(msg: Image | CompressedImage, max_pixels: int) -> CameraFrame:
    """An Image -> its converted frame; a CompressedImage -> a frame decoded later (only its format and data length
    checked here). Raises BadImageError (see ``image_to_rgb``, ``check_compressed``)."""
    if isinstance(msg, CompressedImage):
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
