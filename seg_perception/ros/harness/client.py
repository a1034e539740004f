"""``NodeClient``: an rclpy node in the test (or tool) process that feeds the node's cameras and collects its outputs
by stamp, spinning on the caller's thread with deadlines (never fixed sleeps)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.ros.camera_topics import camera_topic
from seg_perception.ros.conversions import rgb8_msg, set_stamp, stamp_ns
from seg_perception.ros.outputs import output_types
from seg_perception_msgs.msg import LabelInfo

MASK = "semantic/mask"
INPUT_TYPES = {"image": Image, "image/compressed": CompressedImage, "camera_info": CameraInfo}
"""The node's per-camera input topics (relative to the camera namespace) and their message types."""
OUTPUT_TYPES = output_types(detection=True, with_detections=True)
"""Every output topic of the node (any task) and its message type."""


def image_msg(image: np.ndarray, stamp: int, frame_id: str = "camera") -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 Image stamped ``stamp`` ns."""
    header = Header(frame_id=frame_id)
    set_stamp(header, stamp)
    return rgb8_msg(image, header)


class NodeClient:
    """An rclpy node in this process that feeds cameras and collects the segmentation node's outputs.

    ``namespace``: the segmentation node's namespace; ``cameras``: its camera namespaces; ``outputs``: which
    per-camera topics to subscribe (semantic/mask, drivable_area, overlay, instances, panoptic); the latched label
    table of each camera is kept in ``label_info`` (seg_perception_msgs/LabelInfo; ``label_info=False``: not
    subscribed, for a node that publishes none); ``inputs``: which of the node's input topics (``INPUT_TYPES``) to
    publish on per camera. Received messages are kept in
    ``received[(camera, topic)][stamp_ns]``, their arrival times (node clock, ns) in ``arrival`` and their stamps
    in arrival order in ``order``; ``keep``: only the newest ``keep`` of each per (camera, topic) in all three
    (None: all), so long runs keep this process's memory flat. ``listeners``: called as
    ``listener(camera, topic, stamp_ns, arrival_ns)`` for every output message, before any is evicted.
    ``diagnostics`` holds {key: value} of every status the node published.
    """

    def __init__(
        self,
        name: str = "seg_client",
        namespace: str = "",
        cameras: Sequence[str] = ("",),
        outputs: Sequence[str] = ("semantic/mask", "drivable_area"),
        reliable_input: bool = True,
        keep: int | None = None,
        inputs: Sequence[str] = ("image",),
        label_info: bool = True,
    ) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be None or >= 1, got {keep}")
        self.keep = keep
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        prefix = namespace.rstrip("/") + "/" if namespace else ""
        input_qos = QoSProfile(
            depth=10 if reliable_input else 1,
            reliability=ReliabilityPolicy.RELIABLE if reliable_input else ReliabilityPolicy.BEST_EFFORT,
        )
        self.received: dict[tuple[str, str], dict[int, Image]] = defaultdict(dict)
        self.arrival: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        self.order: dict[tuple[str, str], deque[int]] = defaultdict(lambda: deque(maxlen=keep))
        self.listeners: list[Callable[[str, str, int, int], None]] = []
        self.label_info: dict[str, LabelInfo] = {}
        self.diagnostics: list[dict[str, str]] = []
        self.inputs = {
            (c, topic): self.node.create_publisher(INPUT_TYPES[topic], prefix + camera_topic(c, topic), input_qos)
            for c in cameras
            for topic in inputs
        }
        self.publishers = {c: self.inputs[(c, "image")] for c in cameras if (c, "image") in self.inputs}
        self.prefix = prefix
        self.subscriptions = []
        for camera in cameras:
            for output in outputs:
                self.subscribe(camera, output)
            if not label_info:
                continue
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.subscriptions.append(
                self.node.create_subscription(
                    LabelInfo,
                    prefix + camera_topic(camera, "semantic/label_info"),
                    lambda msg, c=camera: self.label_info.__setitem__(c, msg),
                    latched,
                )
            )
        self.diagnostics_subscription = self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, QoSProfile(depth=20)
        )

    def subscribe(self, camera: str, output: str) -> None:
        """Collect output topic ``output`` of ``camera`` into ``received`` from now on (also later than at
        construction, e.g. for a lazy output); ``wait_connected`` then waits for its publisher too."""
        self.subscriptions.append(
            self.node.create_subscription(
                OUTPUT_TYPES[output],
                self.prefix + camera_topic(camera, output),
                self._keeper(camera, output),
                QoSProfile(depth=50),
            )
        )

    def _keeper(self, camera: str, output: str) -> Callable[[object], None]:
        key = (camera, output)

        def on_message(msg) -> None:  # any output message: each has the input's header
            stamp, now = stamp_ns(msg.header), self.node.get_clock().now().nanoseconds
            received, arrival = self.received[key], self.arrival[key]
            received[stamp], arrival[stamp] = msg, now
            self.order[key].append(stamp)
            for listener in self.listeners:
                listener(camera, output, stamp, now)
            if self.keep is not None:
                while len(received) > self.keep:  # dicts keep insertion order: the oldest goes first
                    oldest = next(iter(received))
                    del received[oldest], arrival[oldest]

        return on_message

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(" segmentation"):  # "<node>: semantic segmentation", "...: panoptic ..."
                level = status.level[0] if isinstance(status.level, bytes) else int(status.level)  # a ROS byte
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics.append({"name": status.name, "level": level, "message": status.message, **values})

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Spin until ``predicate()`` is true (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            self.executor.spin_once(timeout_sec=0.02)

    def wait_connected(self, timeout: float = 30.0) -> bool:
        """Until the node subscribes to every camera and every output subscription has its publisher."""
        return self.spin_until(
            lambda: (
                all(p.get_subscription_count() > 0 for p in self.inputs.values())
                # node.count_publishers, not Subscription.get_publisher_count (Iron and later, not in Humble)
                and all(self.node.count_publishers(s.topic_name) > 0 for s in self.subscriptions)
            ),
            timeout,
        )

    def prime(self, frames: dict[str, object], timeout: float = 60.0, retry: float = 1.0, topic: str = "image") -> int:
        """Publish ``frames`` ({camera: Image, or a CompressedImage with ``topic`` "image/compressed"}, stamped with
        one shared stamp now) again every ``retry`` s, with a new stamp, until every camera's mask of one stamp
        arrived; returns that stamp. The first frames after discovery can be lost (a publisher may match the node's
        subscription before the subscription matches it). RuntimeError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamp = self.now_ns()
            for camera, msg in frames.items():
                set_stamp(msg.header, stamp)
                self.publish_msg(camera, msg, topic)
            if self.spin_until(lambda s=stamp: all(self.has(c, MASK, s) for c in frames), retry):
                return stamp
        raise RuntimeError(f"no masks from the node within {timeout} s")

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def publish(self, camera: str, image: np.ndarray, stamp: int | None = None, frame_id: str = "camera") -> int:
        """Publish ``image`` (H, W, 3) RGB on ``camera``; returns its stamp (ns, default now)."""
        stamp = self.now_ns() if stamp is None else stamp
        self.publishers[camera].publish(image_msg(image, stamp, frame_id))
        return stamp

    def publish_msg(self, camera: str, msg: object, topic: str = "image") -> None:
        """Publish a message on input ``topic`` (default a sensor_msgs/Image on image) of ``camera``, or its CDR
        serialisation as bytes (as recorded in a bag)."""
        self.inputs[(camera, topic)].publish(msg)

    def has(self, camera: str, output: str, stamp: int) -> bool:
        return stamp in self.received[(camera, output)]

    def diagnostics_where(
        self, predicate: Callable[[dict[str, str]], bool], node: str = "", timeout: float = 15.0
    ) -> dict[str, str]:
        """The first /diagnostics status published from now on by the node whose name contains ``node`` for which
        ``predicate`` holds. TimeoutError (with the node's latest status) when none came within ``timeout`` s."""
        seen = len(self.diagnostics)

        def matching() -> list[dict[str, str]]:
            return [s for s in self.diagnostics[seen:] if node in s["name"] and predicate(s)]

        if not self.spin_until(lambda: bool(matching()), timeout):
            raise TimeoutError(f"no matching /diagnostics within {timeout} s; latest: {self.latest_diagnostics(node)}")
        return matching()[0]

    def latest_diagnostics(self, node: str = "") -> dict[str, str] | None:
        """The newest status of the node whose name contains ``node`` ('' = any), or None."""
        matching = [status for status in self.diagnostics if node in status["name"]]
        return matching[-1] if matching else None

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
