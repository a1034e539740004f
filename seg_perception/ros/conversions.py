"""sensor_msgs/Image <-> numpy conversions (the only place that does this).

Inputs accepted (case-sensitive ROS encoding names): rgb8, bgr8, rgba8, bgra8, mono8, and CompressedImage jpeg /
png (decoded by ``data/image_encodings.py``); anything else raises :class:`BadImageError`. Outputs: mono8 masks
and rgb8 images, each carrying a copy of the input header; ``mono8_array`` reads a mono8 mask back (for subscribers
of the node's outputs).
No rclpy node code here: only message classes, numpy and OpenCV (never cv_bridge).

Performance notes (measured): ``np.frombuffer(msg.data, np.uint8)`` is a zero-copy view;
filling ``msg.data`` from an ``array.array('B')`` is ~0.3 ms for 2 MB, whereas assigning an
ndarray or a list is orders of magnitude slower.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.data.image_encodings import COMPRESSION_FORMATS, TO_RGB, compressed_codec, decode_compressed

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_ENCODINGS",
    "BadImageError",
    "check_compressed",
    "compressed_to_rgb",
    "copy_header",
    "image_to_rgb",
    "mono8_array",
    "mono8_msg",
    "mono16_array",
    "mono16_msg",
    "rgb8_msg",
    "set_stamp",
    "stamp_ns",
]

DEFAULT_MAX_PIXELS = 4096 * 4096

_ENCODINGS = TO_RGB
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


class BadImageError(ValueError):
    """An Image message (or output array) that cannot be converted.

    ``reason`` is a short machine-readable key for drop counters, one of:
    "encoding", "empty", "too_large", "step", "truncated", "size", "corrupt".
    """

    REASONS = ("encoding", "empty", "too_large", "step", "truncated", "size", "corrupt")

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _describe(msg: Image) -> str:
    return f"encoding={msg.encoding!r} size={msg.width}x{msg.height} (WxH) step={msg.step} data={len(msg.data)} bytes"


def _rows(msg: Image, channels: int, max_pixels: int) -> np.ndarray:
    """Validated (H, W * channels) uint8 zero-copy view of ``msg.data`` (row padding and trailing bytes left out).

    Raises:
        BadImageError: "empty", "too_large", "step", "truncated" (see ``image_to_rgb``).
    """
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise BadImageError("empty", f"empty image ({_describe(msg)})")
    if h * w > max_pixels:
        raise BadImageError(
            "too_large", f"image too large: {h * w} pixels > max_pixels={max_pixels} ({_describe(msg)})"
        )
    row = w * channels
    if step < row:
        raise BadImageError("step", f"step {step} < width*channels = {row} ({_describe(msg)})")
    if len(msg.data) < step * h:
        raise BadImageError("truncated", f"data shorter than step*height = {step * h} bytes ({_describe(msg)})")
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=step * h).reshape(h, step)  # zero-copy
    return rows if step == row else rows[:, :row]  # strided view, still zero-copy


def image_to_rgb(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert a sensor_msgs/Image to an (H, W, 3) uint8 RGB array.

    rgb8 with ``step == 3 * W`` returns a read-only zero-copy view of ``msg.data`` (copy it
    before writing); rgb8 with padded rows is copied into a contiguous array; bgr8, rgba8,
    bgra8 and mono8 are converted with ``cv2.cvtColor`` into a new array. Row padding
    (``step > W * channels``) and trailing bytes after ``step * H`` are ignored.

    Raises:
        BadImageError: reason "encoding" (unsupported), "empty" (H or W is 0), "too_large"
            (H * W > max_pixels), "step" (step < W * channels), "truncated"
            (len(data) < step * H).
    """
    enc = msg.encoding
    if enc not in _ENCODINGS:
        raise BadImageError(
            "encoding",
            f"unsupported image encoding ({_describe(msg)}); supported: {', '.join(SUPPORTED_ENCODINGS)}",
        )
    channels, code = _ENCODINGS[enc]
    rows = _rows(msg, channels, max_pixels)
    img = rows if channels == 1 else rows.reshape(int(msg.height), int(msg.width), channels)
    if code is None:
        if int(msg.step) != rows.shape[1]:  # padded rows
            return np.ascontiguousarray(img)
        img.flags.writeable = False  # view of the message buffer: never mutate it in place
        return img
    return cv2.cvtColor(np.ascontiguousarray(img), code)


def check_compressed(msg: CompressedImage) -> None:
    """The checks of a CompressedImage that need no decoding (cheap enough for a subscription callback).

    Raises:
        BadImageError: reason "encoding" (``format`` neither jpeg nor png, see ``compressed_codec``), "empty" (no
            data).
    """
    if compressed_codec(msg.format) is None:
        raise BadImageError(
            "encoding",
            f"unsupported compressed image format {msg.format!r}; supported: {', '.join(COMPRESSION_FORMATS)}",
        )
    if not len(msg.data):
        raise BadImageError("empty", f"empty compressed image (format {msg.format!r})")


def compressed_to_rgb(msg: CompressedImage, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to a new (H, W, 3) uint8 RGB array.

    Raises:
        BadImageError: "encoding" and "empty" (``check_compressed``), "corrupt" (OpenCV cannot decode the data),
            "too_large" (H * W > max_pixels).
    """
    check_compressed(msg)
    image = decode_compressed(msg.data)
    if image is None:
        raise BadImageError("corrupt", f"cannot decode the {msg.format!r} compressed image ({len(msg.data)} bytes)")
    height, width = image.shape[:2]
    if height * width > max_pixels:
        raise BadImageError(
            "too_large", f"image too large: {height * width} pixels > max_pixels={max_pixels} ({width}x{height} (WxH))"
        )
    return image


def mono8_array(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """mono8 Image -> (H, W) uint8 array; the inverse of ``mono8_msg`` (e.g. the node's masks).

    ``step == W``: a read-only zero-copy view of ``msg.data``; padded rows (``step > W``): a contiguous copy.

    Raises:
        BadImageError: reason "encoding" (not mono8), "empty", "too_large", "step" (step < W), "truncated"
            (len(data) < step * H), as ``image_to_rgb``.
    """
    if msg.encoding != "mono8":
        raise BadImageError("encoding", f"expected a mono8 image ({_describe(msg)})")
    rows = _rows(msg, 1, max_pixels)
    if int(msg.step) != rows.shape[1]:  # padded rows
        return np.ascontiguousarray(rows)
    rows.flags.writeable = False  # view of the message buffer
    return rows


def mono16_array(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """mono16 Image (little-endian, as ``mono16_msg`` writes it) -> (H, W) uint16 array (a copy); the inverse of
    ``mono16_msg`` (e.g. the node's instance masks and panoptic id maps).

    Raises:
        BadImageError: reason "encoding" (not little-endian mono16), "empty", "too_large", "step", "truncated".
    """
    if msg.encoding != "mono16" or msg.is_bigendian:
        raise BadImageError("encoding", f"expected a little-endian mono16 image ({_describe(msg)})")
    rows = _rows(msg, 2, max_pixels)
    return np.ascontiguousarray(rows).view("<u2").astype(np.uint16)


def stamp_ns(header: Header) -> int:
    """The header's stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def set_stamp(header: Header, nanoseconds: int) -> None:
    """Set the header's stamp (sec, nanosec) from nanoseconds."""
    header.stamp.sec, header.stamp.nanosec = divmod(int(nanoseconds), 1_000_000_000)


def copy_header(header: Header) -> Header:
    """A new Header with the same stamp (sec, nanosec) and frame_id values as ``header``."""
    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec), frame_id=header.frame_id)


def _to_msg(arr: np.ndarray, header: Header, encoding: str, channels: int) -> Image:
    h, w = int(arr.shape[0]), int(arr.shape[1])
    if h == 0 or w == 0:
        raise BadImageError("empty", f"cannot publish an empty {encoding} image of shape {arr.shape}")
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(arr)).cast("B"))
    msg = Image()
    msg.header = copy_header(header)
    msg.height = h
    msg.width = w
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = w * channels
    msg.data = data
    return msg


def mono8_msg(array_hw: np.ndarray, header: Header) -> Image:
    """(H, W) uint8 array -> mono8 Image with ``step = W`` and a copy of ``header``.

    Raises:
        BadImageError: reason "size" for a wrong shape/dtype, "empty" for H or W == 0.
    """
    arr = np.asarray(array_hw)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise BadImageError("size", f"mono8_msg expects an (H, W) uint8 array, got {arr.shape} {arr.dtype}")
    return _to_msg(arr, header, "mono8", 1)


def mono16_msg(array_hw: np.ndarray, header: Header) -> Image:
    """(H, W) uint16 array -> little-endian mono16 Image with ``step = 2 * W`` and a copy of ``header``.

    Raises:
        BadImageError: reason "size" for a wrong shape/dtype, "empty" for H or W == 0.
    """
    arr = np.asarray(array_hw)
    if arr.ndim != 2 or arr.dtype != np.uint16:
        raise BadImageError("size", f"mono16_msg expects an (H, W) uint16 array, got {arr.shape} {arr.dtype}")
    return _to_msg(arr.astype("<u2", copy=False), header, "mono16", 2)


def rgb8_msg(array_hw3: np.ndarray, header: Header) -> Image:
    """(H, W, 3) uint8 RGB array -> rgb8 Image with ``step = 3 * W`` and a copy of ``header``.

    Raises:
        BadImageError: reason "size" for a wrong shape/dtype, "empty" for H or W == 0.
    """
    arr = np.asarray(array_hw3)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise BadImageError("size", f"rgb8_msg expects an (H, W, 3) uint8 array, got {arr.shape} {arr.dtype}")
    return _to_msg(arr, header, "rgb8", 3)
