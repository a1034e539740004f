"""What ``segmentation_node`` runs, in both its forms (``segmentation_node``, ``segmentation_lifecycle_node``): camera
images in; semantic masks, drivable area, overlay, and with an instance or panoptic model per-instance object masks
and the panoptic map out; diagnostics.

Topics per camera namespace ``C`` (``cameras`` parameter; '' = the node's namespace), see DESIGN.md:
``C/image`` (or, ``input_transport: compressed``, ``C/image/compressed``) and ``C/camera_info`` (optional) in;
``C/semantic/mask`` (mono8 train ids, 255 unlabeled), ``C/semantic/color_mask`` (rgb8 class colours),
``C/semantic/label_info`` (seg_perception_msgs/LabelInfo, transient-local), ``C/drivable_area`` (mono8 0/255),
``C/overlay`` (rgb8), ``C/camera_info`` (the latest input camera_info at the outputs' resolution) out;
with a detection model (the sidecar's task) also ``C/instances`` (ObjectInstanceArray), ``C/panoptic``
(PanopticSegmentation) and, where vision_msgs exists, ``C/detections`` (Detection2DArray) with ``C/label_info``
(vision_msgs/LabelInfo). Each output carries exactly its input's header; ``/diagnostics`` at
``diagnostics_period``. With ``subscribe_on_demand`` the cameras are subscribed only while some output topic has a
subscriber (checked every second).

Threads: the executor's subscription callbacks only convert (zero-copy) and hand the frame to the
FrameScheduler (newest frame per camera wins, drops counted); an inference thread takes batches of
stamp-matched frames, decodes compressed ones and runs pre-processing + the model; a publishing thread
post-processes and publishes each frame's outputs together, in order. The queue between the two threads is bounded
(``queue_size``), so latency stays bounded at any input rate. Lazy outputs: every output but semantic/mask is
computed only while someone subscribes.

Per frame the node times its way through it, into /diagnostics (``<stage>_ms_p50`` / ``_p99`` per window and
``_total`` since start): ``receive`` (header stamp -> subscription callback: the publisher's serialisation and DDS),
``convert``, ``queue`` (scheduler wait), ``preprocess``, ``infer``, ``handoff`` (results queue), ``finish``
(labels at the frame size), ``build_<output>`` and ``publish`` (all outputs' serialisation and sending);
``latency`` is stamp -> published.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from seg_perception.ground_projection import DrivableGrid
from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.pipeline.frame_sync import FrameScheduler, PendingFrame
from seg_perception.pipeline.loading import create_pipeline, open_backend, resolve_model_path, share_dirs
from seg_perception.pipeline.stats import PipelineStats, PublisherSequences
from seg_perception.ros.camera_input import TRANSPORTS, camera_frame, decode_frames, deserialize_input
from seg_perception.ros.camera_topics import MESSAGE_INFO_CALLBACKS, CameraTopics, camera_topics
from seg_perception.ros.conversions import BadImageError, stamp_ns
from seg_perception.ros.diagnostics import node_status
from seg_perception.ros.outputs import MASK, NEEDS_CAMERA_INFO, frame_builders, output_types

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

WAIT_S = 0.1
"""How often the worker threads look up from a blocking wait to check for shutdown."""
DEMAND_PERIOD_S = 1.0
"""How often ``subscribe_on_demand`` looks at the outputs' subscriber counts (Humble has no matched events)."""
STOP_TIMEOUT_S = 10.0


class SegmentationRuntime:
    """The segmentation pipeline on ``node``: loads the model and creates the output publishers, latched label
    tables and /diagnostics at construction; ``start`` / ``stop`` the camera input and the worker threads;
    ``close`` releases it all. Raises ConfigError / FileNotFoundError / ValueError / BackendUnavailableError at
    construction for an unusable model (nothing is left open then)."""

    def __init__(self, node: Node, config: SegmentationConfig) -> None:
        self.node, self.config = node, config
        cv2.setNumThreads(config.opencv_threads or cv2.getNumberOfCPUs())  # process-wide, see the parameter
        model_path = resolve_model_path(config, share_dirs())
        self.backend, self.info = open_backend(config, model_path)
        try:
            self.pipeline = create_pipeline(self.backend, self.info, config)
        except BaseException:
            self.backend.close()
            raise
        self.model_name = f"{self.info.model} ({model_path.name})"
        self.stats = PipelineStats()
        self.sequences = PublisherSequences()
        self._empty_queues()
        self.workers: list[threading.Thread] = []
        self.running = False
        self.input_subscribed = False
        self._stopping = threading.Event()
        self._lost = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
        outputs = output_types(self.info.is_detection, config.publish_detections)
        self.cameras: dict[str, CameraTopics] = {c: camera_topics(node, c, config, outputs) for c in config.cameras}
        self.grids = {
            camera: DrivableGrid(config.grid_spec, pose, config.grid_max_range)
            for camera, pose in config.camera_poses.items()
        }
        self.diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timers = [node.create_timer(config.diagnostics_period, self._publish_diagnostics)]
        if config.subscribe_on_demand:
            self._timers.append(node.create_timer(DEMAND_PERIOD_S, self._follow_demand))

    def _empty_queues(self) -> None:
        self.scheduler = FrameScheduler(self.config.cameras, self.config.sync_slop, self.config.sync_timeout)
        self.input_type = TRANSPORTS[self.config.input_transport][0]
        self.results: queue.Queue[tuple[list[PendingFrame], object]] = queue.Queue(self.config.queue_size)

    def describe(self) -> str:
        """What runs: model, backend, device, precision, model input, cameras."""
        height, width = self.pipeline.model_size
        backend = self.backend
        return (
            f"{self.model_name} via {backend.name} on {backend.device} {backend.precision}, "
            f"model input {height}x{width} ({self.config.resize_mode}), cameras {list(self.config.cameras)}"
        )

    def start(self) -> None:
        """Start the worker threads with empty queues, then take camera input (with ``subscribe_on_demand``: once
        an output has a subscriber)."""
        self._empty_queues()
        self._stopping = stopping = threading.Event()
        self.workers = [
            threading.Thread(target=self._infer_loop, args=(stopping,), name="seg-infer", daemon=True),
            threading.Thread(target=self._publish_loop, args=(stopping,), name="seg-publish", daemon=True),
        ]
        for worker in self.workers:
            worker.start()
        self.running = True
        self._set_input(not self.config.subscribe_on_demand or self._outputs_wanted())

    def stop(self) -> bool:
        """Unsubscribe the cameras, then stop the worker threads (a frame being published still goes out, frames
        waiting or in the model are dropped); no output is published after it returns. False when a worker did not
        stop within STOP_TIMEOUT_S (it stops at its next check)."""
        self.running = False
        self._set_input(False)
        self._stopping.set()
        self.scheduler.close()
        for worker in self.workers:
            worker.join(timeout=STOP_TIMEOUT_S)
        if any(worker.is_alive() for worker in self.workers):
            self.node.get_logger().warning(f"a worker thread did not stop within {STOP_TIMEOUT_S:g} s")
            return False
        return True

    def close(self) -> None:
        """Stop, destroy the timers, publishers and subscriptions, then release the backend (never while a worker
        may still be using it)."""
        stopped = self.stop()
        for timer in self._timers:
            self.node.destroy_timer(timer)
        for topics in self.cameras.values():
            topics.destroy(self.node)
        self.node.destroy_publisher(self.diagnostics)
        if stopped:
            self.backend.close()
        else:
            self.node.get_logger().warning("leaving the backend open: a worker thread may still use it")

    # -- camera input (executor thread) -----------------------------------------------------------------
    def _outputs_wanted(self) -> bool:
        return any(topics.wanted() for topics in self.cameras.values())

    def _follow_demand(self) -> None:
        """subscribe_on_demand: subscribe the cameras while some output has a subscriber, else unsubscribe."""
        if self.running:
            self._set_input(self._outputs_wanted())

    def _set_input(self, subscribed: bool) -> None:
        if subscribed == self.input_subscribed:
            return
        for camera, topics in self.cameras.items():
            if subscribed:
                topics.subscribe(self.node, self.config, self._image_callback(camera), self._lost)
            else:
                topics.unsubscribe(self.node)
        self.input_subscribed = subscribed
        if self.config.subscribe_on_demand and self.running:
            self.node.get_logger().info(
                "an output has a subscriber: camera input subscribed"
                if subscribed
                else "no output has a subscriber: camera input unsubscribed"
            )

    def _image_callback(self, camera: str) -> Callable:
        """The subscription callback of ``camera``: with the message info where rclpy passes it (to count the
        messages the middleware never delivered), else the message alone."""
        if MESSAGE_INFO_CALLBACKS:
            return lambda msg, info: self._on_image(camera, msg, info)
        return lambda msg: self._on_image(camera, msg)

    def _on_message_lost(self, info) -> None:
        """The middleware reports samples lost on an image subscription (incomplete or recycled large samples)."""
        self.stats.count("middleware_lost", info.total_count_change)

    def _on_image(self, camera: str, raw: bytes, info: dict | None = None) -> None:
        received_ns = self.node.get_clock().now().nanoseconds
        start = time.perf_counter()
        self.stats.count("received")
        sequence = info and info.get("publication_sequence_number")
        if sequence:
            gid = info.get("publisher_gid") or {}
            skipped = self.sequences.skipped(bytes(gid.get("data", b"")), sequence)
            if skipped:
                self.stats.count("input_skipped", skipped)
        try:
            msg = deserialize_input(raw, self.input_type)
            frame = camera_frame(msg, self.input_type, self.config.max_image_pixels)
        except BadImageError as error:
            self._bad_frame(camera, error)
            return
        stamp = stamp_ns(msg.header)
        frame.stages.update(receive=(received_ns - stamp) / 1e6, convert=(time.perf_counter() - start) * 1e3)
        if self.scheduler.put(camera, stamp, frame) is not None:
            self.stats.count("dropped")

    def _bad_frame(self, camera: str, error: BadImageError) -> None:
        """Count and log (rate-limited) a frame of ``camera`` dropped as bad input (executor or inference thread)."""
        self.stats.bad_frame(error.reason)
        self.node.get_logger().warning(
            f"dropped a bad frame on {self.cameras[camera].image_topic}: {error}",
            throttle_duration_sec=self.config.log_throttle,
        )

    # -- inference thread -----------------------------------------------------------------------------
    def _infer_loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            frames, decode_ms = decode_frames(
                self.scheduler.take(timeout=WAIT_S),
                self.config.max_image_pixels,
                lambda frame, error: self._bad_frame(frame.camera, error),
            )
            if not frames:
                continue
            taken = time.monotonic()  # the scheduler's clock
            for frame in frames:
                frame.payload.stages["queue"] = (taken - frame.arrival) * 1e3
            try:
                batch = self.pipeline.infer([frame.payload.image for frame in frames])
                self.stats.batch(len(frames), decode_ms + batch.preprocess_ms, batch.infer_ms)
            except Exception as error:  # a failing frame must not stop the node
                self.stats.count("failed", len(frames))
                self.node.get_logger().error(
                    f"inference failed: {error!r}", throttle_duration_sec=self.config.log_throttle
                )
                continue
            done = time.perf_counter()
            while not stopping.is_set():
                try:
                    self.results.put((frames, batch, done), timeout=WAIT_S)
                    break
                except queue.Full:
                    continue
            self.stats.queue_depth(self.results.qsize())

    # -- publishing thread ----------------------------------------------------------------------------
    def _publish_loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                frames, batch, done = self.results.get(timeout=WAIT_S)
            except queue.Empty:
                continue
            handoff_ms = (time.perf_counter() - done) * 1e3
            for frame in frames:
                frame.payload.stages["handoff"] = handoff_ms
            for index, frame in enumerate(frames):
                try:
                    self._publish_frame(frame, batch, index)
                except Exception as error:
                    if not self.node.context.ok():  # shutting down (SIGINT): publishers are gone, not a failure
                        return
                    self.stats.count("failed")
                    self.node.get_logger().error(
                        f"post-processing failed: {error!r}", throttle_duration_sec=self.config.log_throttle
                    )

    def _publish_frame(self, frame: PendingFrame, batch: object, index: int) -> None:
        """Build frame ``index`` of ``batch``'s outputs (each on its own: one failing output does not take the
        others with it), then publish them together."""
        start = time.perf_counter()
        topics = self.cameras[frame.camera]
        result = self.pipeline.finish(batch, index)
        stages = frame.payload.stages
        stages["finish"] = (time.perf_counter() - start) * 1e3
        wanted = [
            name
            for name in topics.publishers
            if name == MASK or (topics.subscribed(name) and self._enabled(name, topics))
        ]
        payload = frame.payload
        builders = frame_builders(
            self.pipeline,
            result,
            payload.image,
            payload.header,
            wanted,
            topics.camera_info,
            self.grids[frame.camera],
            self.config.grid_frame,
        )
        messages = self._build_outputs(
            {name: (topics.publishers[name], build) for name, build in builders.items()}, stages
        )
        if not messages:
            raise RuntimeError(f"no output of the frame could be built ({', '.join(builders)})")
        postprocess_ms = (time.perf_counter() - start) * 1e3
        published = time.perf_counter()
        for _, publisher, message in messages:
            publisher.publish(message)
        stages["publish"] = (time.perf_counter() - published) * 1e3
        latency_ms = (self.node.get_clock().now().nanoseconds - frame.stamp_ns) / 1e6
        sent = [name for name, _, _ in messages]
        self.stats.published(latency_ms, postprocess_ms, {**getattr(result, "timings", {}), **stages}, sent)

    def _enabled(self, output: str, topics: CameraTopics) -> bool:
        """Whether ``output`` can go out: publish_overlay for the overlay, a received camera_info for camera_info."""
        if output == "overlay":
            return self.config.publish_overlay
        return output not in NEEDS_CAMERA_INFO or topics.camera_info is not None

    def _build_outputs(
        self, builders: dict[str, tuple[object, Callable[[], object]]], stages: dict[str, float]
    ) -> list[tuple[str, object, object]]:
        """{output name: (publisher, message builder)} -> [(name, publisher, message)] of the outputs that could be
        built, each build's ms in ``stages`` as ``build_<name>``; each failure is counted per output and logged
        (rate-limited)."""
        messages = []
        for name, (publisher, build) in builders.items():
            try:
                start = time.perf_counter()
                messages.append((name, publisher, build()))
                stages[f"build_{name.replace('/', '_')}"] = (time.perf_counter() - start) * 1e3
            except Exception as error:  # one output's failure must not cost the frame its other outputs
                self.stats.output_failed(name)
                self.node.get_logger().error(
                    f"output {name} failed: {error!r}", throttle_duration_sec=self.config.log_throttle
                )
        return messages

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray(status=[node_status(self)])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.diagnostics.publish(array)
