"""rosbag2 bags of camera frames that carry their own ground truth, written and read with ``rosbags`` (no ROS).

Topic layout of a bag written here, for the camera topic ``/camera/front/image_raw`` (namespace ``/camera/front``):

- ``/camera/front/image_raw``: sensor_msgs/Image rgb8 or bgr8, or, compressed,
  ``/camera/front/image_raw/compressed``: sensor_msgs/CompressedImage, format "jpeg" (quality 95) or "png";
- ``/camera/front/camera_info``: sensor_msgs/CameraInfo from the frame's Cityscapes camera JSON (K from fx, fy,
  u0, v0; the image size; plumb_bob with zero distortion; R = identity; P = [K | 0]), where the frame has one;
- ``/camera/front/ground_truth/label_ids``: sensor_msgs/Image mono8, Cityscapes labelIds;
- ``/camera/front/ground_truth/instance_ids``: sensor_msgs/Image mono16 (little-endian), Cityscapes instanceIds.

Every message of frame i has the same header, frame_id from the options and stamp ``STAMP_EPOCH_NS +
round(i * 1e9 / fps)`` (frames in order, so monotonic across sequences), and is recorded at that stamp.
Bags are rosbag2 version 9 folders, storage mcap (default) or sqlite3.

``read_bag`` reads any rosbag2 bag (folder, or a bare .mcap / .db3 file) with a camera topic: Image rgb8, bgr8,
rgba8, bgra8, mono8 (any step) or CompressedImage jpeg / png. Messages recorded at the same time form a frame:
ground truth with the image's header stamp joins it; camera info is the latest recorded up to it. Anything that
makes a bag unreadable (missing, not a bag, corrupt, truncated, no camera topic) raises ``BagError``.
"""

from __future__ import annotations

import itertools
import math
import posixpath
import re
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import apsw
import cv2
import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore

from seg_perception.data.cityscapes import CameraCalibration, CityscapesDataset
from seg_perception.data.image_encodings import COMPRESSION_FORMATS, TO_RGB, decode_compressed

STAMP_EPOCH_NS = 1_700_000_000 * 10**9
"""Stamp of the first frame of every bag written here (2023-11-14T22:13:20Z)."""
DEFAULT_CAMERA_TOPIC = "/camera/front/image_raw"
DEFAULT_FRAME_ID = "camera_front"
ENCODINGS = ("rgb8", "bgr8")
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9
JPEG_QUALITY = 95
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TYPESTORE = get_typestore(Stores.ROS2_KILTED)

_TOPIC_RE = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+")
_STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
# What corrupt or truncated storage makes rosbags raise (found by fuzzing mcap and sqlite3 bags; see test_bag.py).
_CORRUPT = (
    ReaderError,
    SerdeError,
    apsw.Error,
    struct.error,
    ValueError,
    OverflowError,
    MemoryError,
    IndexError,
    KeyError,
)


class BagError(ValueError):
    """A bag that cannot be written or read; the message says what and where."""


@dataclass(frozen=True)
class BagTopics:
    """The topics of one camera: its image topic and the siblings for camera info and ground truth."""

    image: str
    camera_info: str
    label_ids: str
    instance_ids: str

    @classmethod
    def for_image(cls, image_topic: str) -> BagTopics:
        """``/cam/image_raw`` or ``/cam/image_raw/compressed`` -> ``/cam/camera_info``, ``/cam/ground_truth/...``."""
        namespace = posixpath.dirname(image_topic.removesuffix("/compressed"))
        return cls(
            image=image_topic,
            camera_info=posixpath.join(namespace, "camera_info"),
            label_ids=posixpath.join(namespace, "ground_truth", "label_ids"),
            instance_ids=posixpath.join(namespace, "ground_truth", "instance_ids"),
        )


@dataclass(frozen=True)
class BagOptions:
    """How frames are written: camera topic, header frame_id, raw encoding or compression, storage plugin."""

    camera_topic: str = DEFAULT_CAMERA_TOPIC
    frame_id: str = DEFAULT_FRAME_ID
    encoding: str = "rgb8"
    compression: str | None = None  # None: raw sensor_msgs/Image; else one of COMPRESSION_FORMATS
    storage: str = "mcap"

    def __post_init__(self) -> None:
        if not _TOPIC_RE.fullmatch(self.camera_topic):
            raise BagError(f"camera topic {self.camera_topic!r} is not an absolute ROS topic name like /camera/image")
        for name, value, allowed in (
            ("encoding", self.encoding, ENCODINGS),
            ("compression", self.compression, (None, *COMPRESSION_FORMATS)),
            ("storage", self.storage, tuple(STORAGES)),
        ):
            if value not in allowed:
                raise BagError(f"{name} {value!r} is not one of {allowed}")

    @property
    def topics(self) -> BagTopics:
        compressed = self.compression is not None
        return BagTopics.for_image(f"{self.camera_topic}/compressed" if compressed else self.camera_topic)


def stamp_ns(index: int, fps: float) -> int:
    """Stamp (ns) of frame ``index`` of a bag written at ``fps`` frames per second."""
    return STAMP_EPOCH_NS + round(index * 10**9 / fps)


def _header(stamp: int, frame_id: str):
    types = TYPESTORE.types
    time = types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
    return types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def _image_msg(header, pixels: np.ndarray, encoding: str):
    """(H, W[, C]) uint8 or uint16 pixels -> sensor_msgs/Image, little-endian, rows unpadded."""
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).view(np.uint8).reshape(-1)
    step = data.size // height
    return TYPESTORE.types[IMAGE](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0, step=step, data=data
    )


def _camera_info_msg(header, camera: CameraCalibration, height: int, width: int):
    k = camera.matrix
    return TYPESTORE.types[CAMERA_INFO](
        header=header,
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=k.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=np.hstack([k, np.zeros((3, 1))]).reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


class BagWriter:
    """Writes frames to a new bag at ``fps`` (a context manager); a bag left unfinished by an error is removed."""

    def __init__(self, path: Path | str, fps: float, options: BagOptions | None = None):
        if not (math.isfinite(fps) and fps > 0):
            raise BagError(f"fps must be a positive number, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.options = options or BagOptions()
        self.frames = 0
        self._writer: Writer | None = None
        self._connections = {}

    def __enter__(self) -> BagWriter:
        if self.path.exists():
            raise BagError(f"{self.path}: exists already (a bag is written to a new folder)")
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[self.options.storage])
            self._writer.open()
        except (WriterError, OSError) as error:
            raise BagError(f"{self.path}: cannot create the bag: {error}") from None
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self._writer.close()
        else:
            self._writer.abort()
            shutil.rmtree(self.path, ignore_errors=True)

    def _write(self, topic: str, msg, stamp: int) -> None:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msg.__msgtype__, typestore=TYPESTORE)
        self._writer.write(self._connections[topic], stamp, TYPESTORE.serialize_cdr(msg, msg.__msgtype__))

    def _image_topic_msg(self, header, image: np.ndarray):
        options = self.options
        if options.compression is None:
            return _image_msg(header, image if options.encoding == "rgb8" else image[..., ::-1], options.encoding)
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if options.compression == "jpeg" else []
        ok, encoded = cv2.imencode(f".{options.compression}", image[..., ::-1], params)
        if not ok:
            raise BagError(f"frame {self.frames}: OpenCV could not encode the image as {options.compression}")
        return TYPESTORE.types[COMPRESSED_IMAGE](header=header, format=options.compression, data=encoded.reshape(-1))

    def write(
        self,
        image: np.ndarray,
        camera: CameraCalibration | None = None,
        label_ids: np.ndarray | None = None,
        instance_ids: np.ndarray | None = None,
    ) -> int:
        """Write the next frame: image (H, W, 3) uint8 RGB; where given, its camera, labelIds (H, W) uint8 and
        instanceIds (H, W) integers in 0..65535. Returns the frame's stamp (ns)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise BagError(f"frame {self.frames}: image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
        for name, gt in (("label_ids", label_ids), ("instance_ids", instance_ids)):
            if gt is not None and gt.shape != image.shape[:2]:
                raise BagError(f"frame {self.frames}: {name} {gt.shape} does not match the image {image.shape[:2]}")
        if instance_ids is not None and not 0 <= instance_ids.min() <= instance_ids.max() < 2**16:
            raise BagError(f"frame {self.frames}: instance ids must fit mono16 (0..65535)")
        topics = self.options.topics
        stamp = stamp_ns(self.frames, self.fps)
        header = _header(stamp, self.options.frame_id)
        self._write(topics.image, self._image_topic_msg(header, image), stamp)
        if camera is not None:
            self._write(topics.camera_info, _camera_info_msg(header, camera, *image.shape[:2]), stamp)
        if label_ids is not None:
            self._write(topics.label_ids, _image_msg(header, label_ids.astype(np.uint8), "mono8"), stamp)
        if instance_ids is not None:
            self._write(topics.instance_ids, _image_msg(header, instance_ids.astype(np.uint16), "mono16"), stamp)
        self.frames += 1
        return stamp


def write_cityscapes_bag(
    root: Path | str, split: str, path: Path | str, fps: float, options: BagOptions | None = None
) -> int:
    """Every frame of a Cityscapes-layout split, sorted (sequences in order, their frames in order), with its
    camera and ground truth where present -> a new bag at ``path``. Returns the frame count."""
    dataset = CityscapesDataset(root, split, require_gt=False)
    with BagWriter(path, fps, options) as bag:
        for index in range(len(dataset)):
            frame = dataset[index]
            bag.write(frame.image, frame.camera, frame.label_ids, frame.instance_ids)
    return bag.frames


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@contextmanager
def _open(path: Path) -> Iterator[Reader]:
    """An open rosbags Reader; every way the bag can be unreadable becomes a BagError naming ``path``."""
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        with Reader(path) as reader:
            yield reader
    except BagError:
        raise
    except FileNotFoundError:
        raise BagError(f"{path}: not a rosbag2 bag (no metadata.yaml; not a .mcap or .db3 file)") from None
    except _CORRUPT as error:
        raise BagError(f"{path}: corrupt or truncated bag: {type(error).__name__}: {error}") from None


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def _pixels(msg, channels: int, dtype: type, where: str) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, channels), or (H, W) for one channel, native ``dtype``; honours step and
    is_bigendian."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if height == 0 or width == 0 or step < row_bytes or len(msg.data) < height * step:
        raise BagError(f"{where}: {msg.encoding} {width}x{height}, step {step} does not fit its {len(msg.data)} bytes")
    rows = np.ascontiguousarray(np.asarray(msg.data[: height * step], np.uint8).reshape(height, step)[:, :row_bytes])
    pixels = rows.view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    return pixels.reshape((height, width, channels) if channels > 1 else (height, width)).astype(dtype)


def _ground_truth(msg, encoding: str, where: str) -> np.ndarray | None:
    """mono8 -> (H, W) uint8, mono16 -> (H, W) int32 (as ``read_instance_ids``); None for no message."""
    if msg is None:
        return None
    if msg.encoding != encoding:
        raise BagError(f"{where}: ground truth must be {encoding}, got {msg.encoding!r}")
    if encoding == "mono8":
        return _pixels(msg, 1, np.uint8, where)
    return _pixels(msg, 1, np.uint16, where).astype(np.int32)


@dataclass(frozen=True)
class CameraInfo:
    """A decoded sensor_msgs/CameraInfo."""

    width: int
    height: int
    distortion_model: str
    d: np.ndarray  # (N,) float64
    k: np.ndarray  # (3, 3) float64
    p: np.ndarray  # (3, 4) float64

    @classmethod
    def from_msg(cls, msg) -> CameraInfo:
        return cls(
            width=int(msg.width),
            height=int(msg.height),
            distortion_model=msg.distortion_model,
            d=np.array(msg.d, np.float64),
            k=np.array(msg.k, np.float64).reshape(3, 3),
            p=np.array(msg.p, np.float64).reshape(3, 4),
        )


@dataclass
class BagFrame:
    """One image message and what was recorded with it; ``image`` is decoded on first access."""

    topic: str
    msgtype: str  # IMAGE or COMPRESSED_IMAGE
    raw: bytes  # the image message's CDR bytes as recorded (to republish as-is)
    stamp_ns: int  # header stamp
    frame_id: str
    camera_info: CameraInfo | None
    label_ids: np.ndarray | None  # (H, W) uint8
    instance_ids: np.ndarray | None  # (H, W) int32

    @cached_property
    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        msg = TYPESTORE.deserialize_cdr(self.raw, self.msgtype)
        where = f"{self.topic} at stamp {self.stamp_ns}"
        if self.msgtype == COMPRESSED_IMAGE:
            rgb = decode_compressed(np.asarray(msg.data, np.uint8))
            if rgb is None:
                raise BagError(f"{where}: OpenCV cannot decode the {msg.format!r} compressed image")
            return rgb
        if msg.encoding not in TO_RGB:
            raise BagError(f"{where}: unsupported encoding {msg.encoding!r}; expected one of {tuple(TO_RGB)}")
        channels, to_rgb = TO_RGB[msg.encoding]
        pixels = _pixels(msg, channels, np.uint8, where)
        return pixels if to_rgb is None else cv2.cvtColor(pixels, to_rgb)


@dataclass(frozen=True)
class BagContents:
    """The camera of a bag (``read_bag``); ``frames()`` reads its frames in record order."""

    path: Path
    storage: str  # "mcap" or "sqlite3"
    topics: BagTopics  # the image topic and where its camera info and ground truth would be
    image_msgtype: str  # IMAGE or COMPRESSED_IMAGE
    frame_count: int

    @property
    def image_topic(self) -> str:
        return self.topics.image

    def frames(self) -> Iterator[BagFrame]:
        """The image messages in record order, each with its camera info and ground truth (None where absent)."""
        topics = self.topics
        wanted = {
            topics.image: self.image_msgtype,
            topics.camera_info: CAMERA_INFO,
            topics.label_ids: IMAGE,
            topics.instance_ids: IMAGE,
        }
        camera_info = None
        with _open(self.path) as reader:
            connections = [c for c in reader.connections if wanted.get(c.topic) == c.msgtype]
            for _, group in itertools.groupby(reader.messages(connections), key=lambda message: message[1]):
                decoded = [(c.topic, TYPESTORE.deserialize_cdr(raw, c.msgtype), raw) for c, _, raw in group]
                ground_truth = {(topic, _stamp(msg)): msg for topic, msg, _ in decoded if topic != topics.image}
                for topic, msg, _ in decoded:
                    if topic == topics.camera_info:
                        camera_info = CameraInfo.from_msg(msg)
                for topic, msg, raw in decoded:
                    if topic == topics.image:
                        yield self._frame(msg, bytes(raw), camera_info, ground_truth)

    def _frame(self, msg, raw: bytes, camera_info: CameraInfo | None, ground_truth: dict) -> BagFrame:
        stamp = _stamp(msg)
        where = f"{self.path}: stamp {stamp}"
        return BagFrame(
            topic=self.topics.image,
            msgtype=self.image_msgtype,
            raw=raw,
            stamp_ns=stamp,
            frame_id=msg.header.frame_id,
            camera_info=camera_info,
            label_ids=_ground_truth(ground_truth.get((self.topics.label_ids, stamp)), "mono8", where),
            instance_ids=_ground_truth(ground_truth.get((self.topics.instance_ids, stamp)), "mono16", where),
        )


def _storage(path: Path) -> str:
    files = [path] if path.is_file() else sorted(path.iterdir())
    return next((_STORAGE_SUFFIXES[f.suffix] for f in files if f.suffix in _STORAGE_SUFFIXES), "unknown")


def _is_ground_truth(topic: str) -> bool:
    return posixpath.basename(posixpath.dirname(topic)) == "ground_truth"


def read_bag(path: Path | str, image_topic: str | None = None) -> BagContents:
    """The camera of a bag: ``image_topic``, or the one Image / CompressedImage topic that is not ground truth.

    Raises BagError if the bag is unreadable or the topic is missing or ambiguous (naming the candidates).
    """
    path = Path(path)
    with _open(path) as reader:
        topics = reader.topics
    images = sorted(t for t, info in topics.items() if info.msgtype in (IMAGE, COMPRESSED_IMAGE))
    cameras = [t for t in images if not _is_ground_truth(t)]
    if image_topic is None:
        if len(cameras) != 1:
            found = f"several image topics {cameras}; choose one" if cameras else f"no image topic in {sorted(topics)}"
            raise BagError(f"{path}: {found}")
        image_topic = cameras[0]
    elif image_topic not in images:
        raise BagError(f"{path}: {image_topic} is not an image topic of this bag; image topics: {images}")
    info = topics[image_topic]
    return BagContents(path, _storage(path), BagTopics.for_image(image_topic), info.msgtype, info.msgcount)


# --------------------------------------------------------------------------------------------------
# Summary (``seg-bag info``)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicSummary:
    """One topic: type, message count and record times (ns) of its first and last message (None if empty)."""

    name: str
    msgtype: str
    count: int
    first_ns: int | None
    last_ns: int | None

    @property
    def rate_hz(self) -> float | None:
        """(count - 1) over the record-time span; None below two messages or over a zero span."""
        if self.count < 2 or self.last_ns == self.first_ns:
            return None
        return (self.count - 1) * 1e9 / (self.last_ns - self.first_ns)


@dataclass(frozen=True)
class BagSummary:
    """What ``seg-bag info`` prints: storage, topics sorted by name, duration (first to last message)."""

    path: Path
    storage: str
    topics: tuple[TopicSummary, ...]

    @property
    def duration_s(self) -> float:
        times = [t for topic in self.topics if topic.count for t in (topic.first_ns, topic.last_ns)]
        return (max(times) - min(times)) / 1e9 if times else 0.0

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "storage": self.storage,
            "duration_s": self.duration_s,
            "messages": sum(topic.count for topic in self.topics),
            "topics": [
                {"name": t.name, "type": t.msgtype, "count": t.count, "rate_hz": t.rate_hz} for t in self.topics
            ],
        }


def summarize_bag(path: Path | str) -> BagSummary:
    """Counts and record times from a pass over every message (so corrupt storage shows as BagError)."""
    path = Path(path)
    with _open(path) as reader:
        msgtypes = {topic: info.msgtype for topic, info in reader.topics.items()}
        times = {topic: [] for topic in msgtypes}
        for connection, timestamp, _ in reader.messages():
            times[connection.topic].append(timestamp)
    topics = tuple(
        TopicSummary(topic, msgtypes[topic], len(stamps), min(stamps, default=None), max(stamps, default=None))
        for topic, stamps in sorted(times.items())
    )
    return BagSummary(path, _storage(path), topics)
