"""``segmentation_node``: camera images in, semantic masks, drivable area, overlay and diagnostics out.

Topics per camera namespace ``C`` (``cameras`` parameter; '' = the node's namespace), see DESIGN.md:
``C/image`` in; ``C/semantic/mask`` (mono8 train ids, 255 unlabeled), ``C/semantic/label_info``
(std_msgs/String JSON, transient-local), ``C/drivable_area`` (mono8 0/255), ``C/overlay`` (rgb8) out,
each output with exactly its input's header; ``/diagnostics`` at ``diagnostics_period``.

Threads: the executor's subscription callbacks only convert (zero-copy) and hand the frame to the
FrameScheduler (newest frame per camera wins, drops counted); an inference thread takes batches of
stamp-matched frames and runs pre-processing + the model; a publishing thread post-processes and
publishes each frame's outputs together, in order. The queue between the two threads is bounded
(``queue_size``), so latency stays bounded at any input rate. Lazy outputs: drivable_area and
overlay are computed only while someone subscribes.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, NameValidationException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from seg_perception.backends import BackendUnavailableError
from seg_perception.labels import IGNORE_TRAIN_ID, TRAIN_LABELS
from seg_perception.pipeline.config import ConfigError, SegmentationConfig, parameter_defaults, parameter_description
from seg_perception.pipeline.frame_sync import FrameScheduler, PendingFrame
from seg_perception.pipeline.semantic import InferenceBatch, SemanticPipeline, open_backend, resolve_model_path
from seg_perception.pipeline.stats import PipelineStats
from seg_perception.ros.conversions import BadImageError, image_to_rgb, mono8_msg, rgb8_msg, stamp_ns

PACKAGE = "seg_perception"
WAIT_S = 0.1
"""How often the worker threads look up from a blocking wait to check for shutdown."""


@dataclass(frozen=True)
class CameraFrame:
    """What the scheduler carries per frame: the decoded image (H, W, 3) uint8 RGB and the input header."""

    image: object
    header: Header


@dataclass
class CameraTopics:
    """One camera namespace's subscription and publishers."""

    name: str
    subscription: object
    mask: object
    drivable: object
    overlay: object
    label_info: object


def camera_topic(camera: str, name: str) -> str:
    """Topic ``name`` in camera namespace ``camera`` ('' = the node's own namespace)."""
    return f"{camera}/{name}" if camera else name


def label_info_json(drivable: tuple[str, ...]) -> str:
    """The label table as published on semantic/label_info: ids, names, colours, things, drivable."""
    return json.dumps(
        {
            "encoding": "mono8 Cityscapes train ids",
            "unlabeled": IGNORE_TRAIN_ID,
            "classes": [
                {
                    "id": label.train_id,
                    "name": label.name,
                    "color": list(label.color),
                    "is_thing": label.has_instances,
                    "drivable": label.name in drivable,
                }
                for label in TRAIN_LABELS
            ],
        }
    )


def share_dirs() -> list[Path]:
    """Where the shipped model may live: the share folder found through ament_index, the one of the Python
    prefix this package is installed into (pip), then the source checkout."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError):  # not installed with ament, or AMENT_PREFIX_PATH unset
        pass
    dirs += [Path(sys.prefix) / "share" / PACKAGE, Path(__file__).resolve().parents[2]]
    return dirs


class SegmentationNode(Node):
    """The semantic segmentation node; raises ConfigError / FileNotFoundError / ValueError /
    BackendUnavailableError at construction for bad parameters or an unusable model."""

    def __init__(self, node_name: str = "segmentation_node") -> None:
        super().__init__(node_name)
        values = {}
        for name, default in parameter_defaults().items():
            descriptor = ParameterDescriptor(description=parameter_description(name), read_only=True)
            values[name] = self.declare_parameter(name, default, descriptor).value
        self.config = config = SegmentationConfig.from_values(values)
        model_path = resolve_model_path(config, share_dirs())
        self.backend, self.info = open_backend(config, model_path)
        self.pipeline = SemanticPipeline(self.backend, self.info, config)
        self.model_name = f"{self.info.model} ({model_path.name})"
        self.stats = PipelineStats()
        self.scheduler = FrameScheduler(config.cameras, config.sync_slop, config.sync_timeout)
        self.results: queue.Queue[tuple[list[PendingFrame], InferenceBatch]] = queue.Queue(config.queue_size)
        self._stopping = threading.Event()

        reliability = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
        input_qos = QoSProfile(
            depth=config.input_depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability[config.input_reliability]
        )
        output_qos = QoSProfile(
            depth=config.output_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=reliability[config.output_reliability],
        )
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self.cameras: dict[str, CameraTopics] = {}
        label_info = String(data=label_info_json(config.drivable_classes))
        for camera in config.cameras:
            topics = CameraTopics(
                name=camera,
                subscription=self.create_subscription(
                    Image, camera_topic(camera, "image"), lambda msg, c=camera: self._on_image(c, msg), input_qos
                ),
                mask=self.create_publisher(Image, camera_topic(camera, "semantic/mask"), output_qos),
                drivable=self.create_publisher(Image, camera_topic(camera, "drivable_area"), output_qos),
                overlay=self.create_publisher(Image, camera_topic(camera, "overlay"), output_qos),
                label_info=self.create_publisher(String, camera_topic(camera, "semantic/label_info"), latched),
            )
            topics.label_info.publish(label_info)
            self.cameras[camera] = topics
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(config.diagnostics_period, self._publish_diagnostics)
        self._workers = [
            threading.Thread(target=self._infer_loop, name="seg-infer", daemon=True),
            threading.Thread(target=self._publish_loop, name="seg-publish", daemon=True),
        ]
        for worker in self._workers:
            worker.start()
        height, width = self.pipeline.model_size
        self.get_logger().info(
            f"ready: {self.model_name} via {self.backend.name} on {self.backend.device} {self.backend.precision}, "
            f"model input {height}x{width} ({config.resize_mode}), cameras {list(config.cameras)}"
        )

    # -- executor thread: never blocks ------------------------------------------------------------
    def _on_image(self, camera: str, msg: Image) -> None:
        self.stats.count("received")
        try:
            image = image_to_rgb(msg, self.config.max_image_pixels)
        except BadImageError as error:
            self.stats.bad_frame(error.reason)
            self.get_logger().warning(
                f"dropped a bad frame on {self.cameras[camera].subscription.topic_name}: {error}",
                throttle_duration_sec=self.config.log_throttle,
            )
            return
        if self.scheduler.put(camera, stamp_ns(msg.header), CameraFrame(image, msg.header)) is not None:
            self.stats.count("dropped")

    # -- inference thread -----------------------------------------------------------------------------
    def _infer_loop(self) -> None:
        while not self._stopping.is_set():
            frames = self.scheduler.take(timeout=WAIT_S)
            if not frames:
                continue
            try:
                batch = self.pipeline.infer([frame.payload.image for frame in frames])
                self.stats.batch(len(frames), batch.preprocess_ms, batch.infer_ms)
            except Exception as error:  # a failing frame must not stop the node
                self.stats.count("failed", len(frames))
                self.get_logger().error(f"inference failed: {error!r}", throttle_duration_sec=self.config.log_throttle)
                continue
            while not self._stopping.is_set():
                try:
                    self.results.put((frames, batch), timeout=WAIT_S)
                    break
                except queue.Full:
                    continue
            self.stats.queue_depth(self.results.qsize())

    # -- publishing thread ----------------------------------------------------------------------------
    def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                frames, batch = self.results.get(timeout=WAIT_S)
            except queue.Empty:
                continue
            for index, frame in enumerate(frames):
                try:
                    self._publish_frame(frame, batch, index)
                except Exception as error:
                    if not self.context.ok():  # shutting down (SIGINT): publishers are gone, not a failure
                        return
                    self.stats.count("failed")
                    self.get_logger().error(
                        f"post-processing failed: {error!r}", throttle_duration_sec=self.config.log_throttle
                    )

    def _publish_frame(self, frame: PendingFrame, batch: InferenceBatch, index: int) -> None:
        topics = self.cameras[frame.camera]
        header = frame.payload.header
        want_drivable = topics.drivable.get_subscription_count() > 0
        want_overlay = self.config.publish_overlay and topics.overlay.get_subscription_count() > 0
        result = self.pipeline.finish(batch, index, with_drivable=want_drivable)
        messages = [(topics.mask, mono8_msg(result.labels, header))]
        if want_drivable:
            messages.append((topics.drivable, mono8_msg(result.drivable, header)))
        if want_overlay:
            messages.append(
                (topics.overlay, rgb8_msg(self.pipeline.overlay(frame.payload.image, result.labels), header))
            )
        for publisher, message in messages:
            publisher.publish(message)
        latency_ms = (self.get_clock().now().nanoseconds - frame.stamp_ns) / 1e6
        self.stats.published(latency_ms, result.postprocess_ms)

    # -- diagnostics ------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        values = self.stats.report()
        slots = self.scheduler.stats()
        values.update(
            pending=self.scheduler.pending(),
            pending_bound=self.scheduler.capacity,
            pending_max=slots.max_pending,
            queue_bound=self.config.queue_size,
        )
        if len(self.config.cameras) > 1:
            for camera in self.config.cameras:
                values[f"{camera}.received"] = slots.received[camera]
                values[f"{camera}.dropped"] = slots.dropped[camera]
        dead = [worker.name for worker in self._workers if not worker.is_alive()]
        if dead:
            level, message = DiagnosticStatus.ERROR, f"worker thread(s) stopped: {', '.join(dead)}"
        elif values["window_failed"]:
            level, message = DiagnosticStatus.ERROR, "inference or publishing failed"
        elif values["window_bad"]:
            level, message = DiagnosticStatus.WARN, "bad input frames dropped"
        elif values["window_dropped"]:
            level, message = DiagnosticStatus.WARN, "input faster than inference: oldest frames dropped"
        else:
            level, message = DiagnosticStatus.OK, "ok"
        height, width = self.pipeline.model_size
        described = {
            "backend": self.backend.name,
            "model": self.model_name,
            "precision": self.backend.precision,
            "device": self.backend.device,
            "model_input": f"{height}x{width}",
            "cameras": ",".join(self.config.cameras),
            **values,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: semantic segmentation",
            message=message,
            hardware_id=self.backend.device,
            values=[KeyValue(key=key, value=_format(value)) for key, value in described.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(array)

    def stop(self) -> None:
        """Stop the worker threads, then release the backend (never while a worker may still be using it)."""
        self._stopping.set()
        self.scheduler.close()
        for worker in self._workers:
            worker.join(timeout=10.0)
        if any(worker.is_alive() for worker in self._workers):
            self.get_logger().warning("a worker thread did not stop within 10 s; leaving the backend open")
            return
        self.backend.close()


def _format(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


STARTUP_ERRORS = (
    ConfigError,
    OSError,
    ValueError,
    TypeError,
    BackendUnavailableError,
    InvalidParameterTypeException,  # e.g. sync_slop: 0 (an integer) for a double parameter
    NameValidationException,
)
"""What a bad parameter or model raises while the node starts: reported in one line, exit code 2."""


def usage() -> str:
    """The --help text: how to run the node and every parameter with its default and description."""
    lines = [
        "usage: segmentation_node [--ros-args --params-file config/semantic.yaml -p NAME:=VALUE -r image:=TOPIC]",
        "",
        __doc__.split("\n\n")[0],
        "",
        "parameters (read-only at run time):",
    ]
    for name, default in parameter_defaults().items():
        lines.append(f"  {name} (default {default!r}): {parameter_description(name)}")
    return "\n".join(lines)


def main(args: list[str] | None = None) -> int:
    """Console script ``segmentation_node``: exits 2 with ``segmentation_node: error: ...`` on stderr for bad
    parameters or a missing/unusable model, 0 after SIGINT."""
    argv = sys.argv if args is None else args
    if {"-h", "--help"} & set(rclpy.utilities.remove_ros_args(argv)[1:]):
        print(usage())
        return 0
    rclpy.init(args=argv)
    try:
        node = SegmentationNode()
    except STARTUP_ERRORS as error:
        print(f"segmentation_node: error: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
