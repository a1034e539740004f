"""``segmentation_node``: camera images in; semantic masks, drivable area, overlay, and with an instance or
panoptic model per-instance object masks and the panoptic map out; diagnostics.

Topics per camera namespace ``C`` (``cameras`` parameter; '' = the node's namespace), see DESIGN.md:
``C/image`` (or, ``input_transport: compressed``, ``C/image/compressed``) and ``C/camera_info`` (optional) in;
``C/semantic/mask`` (mono8 train ids, 255 unlabeled), ``C/semantic/color_mask`` (rgb8 class colours),
``C/semantic/label_info`` (seg_perception_msgs/LabelInfo, transient-local), ``C/drivable_area`` (mono8 0/255),
``C/overlay`` (rgb8), ``C/camera_info`` (the latest input camera_info at the outputs' resolution) out;
with a detection model (the sidecar's task) also ``C/instances`` (ObjectInstanceArray), ``C/panoptic``
(PanopticSegmentation) and, where vision_msgs exists, ``C/detections`` (Detection2DArray) with ``C/label_info``
(vision_msgs/LabelInfo). Each output carries exactly its input's header; ``/diagnostics`` at
``diagnostics_period``.

Threads: the executor's subscription callbacks only convert (zero-copy) and hand the frame to the
FrameScheduler (newest frame per camera wins, drops counted); an inference thread takes batches of
stamp-matched frames, decodes compressed ones and runs pre-processing + the model; a publishing thread
post-processes and publishes each frame's outputs together, in order. The queue between the two threads is bounded
(``queue_size``), so latency stays bounded at any input rate. Lazy outputs: every output but semantic/mask is
computed only while someone subscribes.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from seg_perception.pipeline.config import SegmentationConfig, parameter_defaults, parameter_description
from seg_perception.pipeline.frame_sync import FrameScheduler, PendingFrame
from seg_perception.pipeline.loading import create_pipeline, open_backend, resolve_model_path
from seg_perception.pipeline.stats import PipelineStats, PublisherSequences
from seg_perception.ros import result_messages
from seg_perception.ros.camera_input import camera_frame, decode_frames, input_topic
from seg_perception.ros.conversions import BadImageError, stamp_ns
from seg_perception.ros.outputs import CAMERA_INFO, MASK, frame_builders, output_types
from seg_perception.ros.parameters import declare_config
from seg_perception.ros.startup import run_node
from seg_perception_msgs.msg import LabelInfo

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

PACKAGE = "seg_perception"
EXECUTABLE = "segmentation_node"
WAIT_S = 0.1
"""How often the worker threads look up from a blocking wait to check for shutdown."""
MESSAGE_INFO_CALLBACKS = hasattr(Subscription, "CallbackType")
"""Subscription callbacks can take the message info (publisher and sequence number): Jazzy and later, not Humble."""


@dataclass
class CameraTopics:
    """One camera namespace's image subscription, output publishers ({output topic: publisher}), latched label
    tables, camera_info subscription and the latest camera_info received (None before the first)."""

    name: str
    subscription: object
    publishers: dict[str, object]
    label_info: list[object]
    camera_info_subscription: object = None
    camera_info: CameraInfo | None = field(default=None, repr=False)


def camera_topic(camera: str, name: str) -> str:
    """Topic ``name`` in camera namespace ``camera`` ('' = the node's own namespace)."""
    return f"{camera}/{name}" if camera else name


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
    """The segmentation node, its outputs following the model's task; raises ConfigError / FileNotFoundError /
    ValueError / BackendUnavailableError at construction for bad parameters or an unusable model."""

    def __init__(self, node_name: str = EXECUTABLE) -> None:
        super().__init__(node_name)
        self.config = config = declare_config(self, SegmentationConfig)
        model_path = resolve_model_path(config, share_dirs())
        self.backend, self.info = open_backend(config, model_path)
        self.pipeline = create_pipeline(self.backend, self.info, config)
        self.model_name = f"{self.info.model} ({model_path.name})"
        self.stats = PipelineStats()
        self.sequences = PublisherSequences()
        self.scheduler = FrameScheduler(config.cameras, config.sync_slop, config.sync_timeout)
        self.results: queue.Queue[tuple[list[PendingFrame], object]] = queue.Queue(config.queue_size)
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
        lost = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
        outputs = output_types(self.info.is_detection, config.publish_detections)
        for camera in config.cameras:
            input_type, topic = input_topic(
                config.input_transport, self.resolve_topic_name(camera_topic(camera, "image"))
            )
            topics = CameraTopics(
                name=camera,
                subscription=self.create_subscription(
                    input_type, topic, self._image_callback(camera), input_qos, event_callbacks=lost
                ),
                publishers={
                    name: self.create_publisher(kind, camera_topic(camera, name), output_qos)
                    for name, kind in outputs.items()
                },
                label_info=[],
            )
            topics.camera_info_subscription = self.create_subscription(
                CameraInfo,
                camera_topic(camera, "camera_info"),
                lambda msg, t=topics: setattr(t, "camera_info", msg),
                input_qos,
            )
            self._publish_label_info(topics, latched, "detections" in outputs)
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

    def _publish_label_info(self, topics: CameraTopics, latched: QoSProfile, vision: bool) -> None:
        """The latched label tables of a camera: seg_perception_msgs/LabelInfo on semantic/label_info, and
        vision_msgs/LabelInfo on label_info beside the detections."""
        header = Header(stamp=self.get_clock().now().to_msg())
        table = self.create_publisher(LabelInfo, camera_topic(topics.name, "semantic/label_info"), latched)
        table.publish(result_messages.label_info_msg(self.config.drivable_train_ids, header))
        topics.label_info.append(table)
        if vision:
            kind = result_messages.VisionLabelInfo
            vision_table = self.create_publisher(kind, camera_topic(topics.name, "label_info"), latched)
            vision_table.publish(result_messages.vision_label_info_msg(self.config.instance_score_threshold, header))
            topics.label_info.append(vision_table)

    # -- executor thread: never blocks ------------------------------------------------------------
    def _image_callback(self, camera: str) -> Callable:
        """The subscription callback of ``camera``: with the message info where rclpy passes it (to count the
        messages the middleware never delivered), else the message alone."""
        if MESSAGE_INFO_CALLBACKS:
            return lambda msg, info: self._on_image(camera, msg, info)
        return lambda msg: self._on_image(camera, msg)

    def _on_message_lost(self, info) -> None:
        """The middleware reports samples lost on an image subscription (incomplete or recycled large samples)."""
        self.stats.count("middleware_lost", info.total_count_change)

    def _on_image(self, camera: str, msg, info: dict | None = None) -> None:
        self.stats.count("received")
        sequence = info and info.get("publication_sequence_number")
        if sequence:
            gid = info.get("publisher_gid") or {}
            skipped = self.sequences.skipped(bytes(gid.get("data", b"")), sequence)
            if skipped:
                self.stats.count("input_skipped", skipped)
        try:
            frame = camera_frame(msg, self.config.max_image_pixels)
        except BadImageError as error:
            self._bad_frame(camera, error)
            return
        if self.scheduler.put(camera, stamp_ns(msg.header), frame) is not None:
            self.stats.count("dropped")

    def _bad_frame(self, camera: str, error: BadImageError) -> None:
        """Count and log (rate-limited) a frame of ``camera`` dropped as bad input (executor or inference thread)."""
        self.stats.bad_frame(error.reason)
        self.get_logger().warning(
            f"dropped a bad frame on {self.cameras[camera].subscription.topic_name}: {error}",
            throttle_duration_sec=self.config.log_throttle,
        )

    # -- inference thread -----------------------------------------------------------------------------
    def _infer_loop(self) -> None:
        while not self._stopping.is_set():
            frames, decode_ms = decode_frames(
                self.scheduler.take(timeout=WAIT_S),
                self.config.max_image_pixels,
                lambda frame, error: self._bad_frame(frame.camera, error),
            )
            if not frames:
                continue
            try:
                batch = self.pipeline.infer([frame.payload.image for frame in frames])
                self.stats.batch(len(frames), decode_ms + batch.preprocess_ms, batch.infer_ms)
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

    def _publish_frame(self, frame: PendingFrame, batch: object, index: int) -> None:
        """Build frame ``index`` of ``batch``'s outputs (each on its own: one failing output does not take the
        others with it), then publish them together."""
        start = time.perf_counter()
        topics = self.cameras[frame.camera]
        result = self.pipeline.finish(batch, index)
        wanted = [
            name
            for name, publisher in topics.publishers.items()
            if name == MASK or (publisher.get_subscription_count() > 0 and self._enabled(name, topics))
        ]
        camera_info = topics.camera_info
        payload = frame.payload
        builders = frame_builders(self.pipeline, result, payload.image, payload.header, wanted, camera_info)
        messages = self._build_outputs({name: (topics.publishers[name], build) for name, build in builders.items()})
        if not messages:
            raise RuntimeError(f"no output of the frame could be built ({', '.join(builders)})")
        postprocess_ms = (time.perf_counter() - start) * 1e3
        for _, publisher, message in messages:
            publisher.publish(message)
        latency_ms = (self.get_clock().now().nanoseconds - frame.stamp_ns) / 1e6
        sent = [name for name, _, _ in messages]
        self.stats.published(latency_ms, postprocess_ms, getattr(result, "timings", None), sent)

    def _enabled(self, output: str, topics: CameraTopics) -> bool:
        """Whether ``output`` can go out: publish_overlay for the overlay, a received camera_info for camera_info."""
        if output == "overlay":
            return self.config.publish_overlay
        return output != CAMERA_INFO or topics.camera_info is not None

    def _build_outputs(
        self, builders: dict[str, tuple[object, Callable[[], object]]]
    ) -> list[tuple[str, object, object]]:
        """{output name: (publisher, message builder)} -> [(name, publisher, message)] of the outputs that could be
        built; each failure is counted per output and logged (rate-limited)."""
        messages = []
        for name, (publisher, build) in builders.items():
            try:
                messages.append((name, publisher, build()))
            except Exception as error:  # one output's failure must not cost the frame its other outputs
                self.stats.output_failed(name)
                self.get_logger().error(
                    f"output {name} failed: {error!r}", throttle_duration_sec=self.config.log_throttle
                )
        return messages

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
        if not MESSAGE_INFO_CALLBACKS:
            values["input_skipped"] = None  # rclpy before Jazzy passes no sequence numbers
        values["nodes_with_this_name"] = twins = self._nodes_with_this_name()
        dead = [worker.name for worker in self._workers if not worker.is_alive()]
        if dead:
            level, message = DiagnosticStatus.ERROR, f"worker thread(s) stopped: {', '.join(dead)}"
        elif values["window_failed"]:
            level, message = DiagnosticStatus.ERROR, "inference or publishing failed"
        elif twins > 1:
            level, message = DiagnosticStatus.WARN, f"{twins} nodes share this name: every frame is answered {twins}x"
        elif values["window_output_failed"]:
            level, message = DiagnosticStatus.WARN, "an output could not be built for some frames"
        elif values["window_bad"]:
            level, message = DiagnosticStatus.WARN, "bad input frames dropped"
        elif values["window_lost"]:
            level, message = DiagnosticStatus.WARN, "input frames lost before the node (middleware or input history)"
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
            "task": self.info.task,
            "cameras": ",".join(self.config.cameras),
            **values,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: {self.info.task} segmentation",
            message=message,
            hardware_id=self.backend.device,
            values=[KeyValue(key=key, value=_format(value)) for key, value in described.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(array)

    def _nodes_with_this_name(self) -> int:
        """How many nodes of this name and namespace the ROS graph holds (1 unless a twin runs); warns on twins."""
        name, namespace = self.get_name(), self.get_namespace()
        count = sum(1 for other in self.get_node_names_and_namespaces() if other == (name, namespace))
        if count > 1:
            self.get_logger().warning(
                f"{count} nodes named {self.get_fully_qualified_name()} are running: each answers every frame; "
                "give each its own name (-r __node:=NAME) or namespace",
                throttle_duration_sec=self.config.log_throttle,
            )
        return max(count, 1)

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
    """Console script ``segmentation_node``: exits 2 with ``segmentation_node: error: ...`` on stderr when it
    cannot start (bad ROS arguments, params file or parameter, missing or unusable model), 0 after SIGINT/SIGTERM."""
    return run_node(EXECUTABLE, SegmentationNode, args, usage())


if __name__ == "__main__":
    sys.exit(main())
