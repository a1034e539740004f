"""The /diagnostics status of segmentation_node: what runs (backend, model, device), its counters and latency
percentiles (``PipelineStats``), the frame scheduler's queue, whether the camera input is subscribed, and a level
with a one-line message naming the worst problem of the last window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from seg_perception.ros.camera_topics import MESSAGE_INFO_CALLBACKS

if TYPE_CHECKING:
    from seg_perception.ros.runtime import SegmentationRuntime


def node_status(runtime: SegmentationRuntime) -> DiagnosticStatus:
    """The status of ``runtime`` now."""
    config = runtime.config
    values = runtime.stats.report()
    slots = runtime.scheduler.stats()
    values.update(
        pending=runtime.scheduler.pending(),
        pending_bound=runtime.scheduler.capacity,
        pending_max=slots.max_pending,
        queue_bound=config.queue_size,
    )
    if len(config.cameras) > 1:
        for camera in config.cameras:
            values[f"{camera}.received"] = slots.received[camera]
            values[f"{camera}.dropped"] = slots.dropped[camera]
    if not MESSAGE_INFO_CALLBACKS:
        values["input_skipped"] = None  # rclpy before Jazzy passes no sequence numbers
    values["input_subscribed"] = str(runtime.input_subscribed).lower()
    values["nodes_with_this_name"] = twins = nodes_with_this_name(runtime.node, config.log_throttle)
    level, message = _level(runtime, values, twins)
    height, width = runtime.pipeline.model_size
    described = {
        "backend": runtime.backend.name,
        "model": runtime.model_name,
        "precision": runtime.backend.precision,
        "device": runtime.backend.device,
        "model_input": f"{height}x{width}",
        "task": runtime.info.task,
        "cameras": ",".join(config.cameras),
        **values,
    }
    return DiagnosticStatus(
        level=level,
        name=f"{runtime.node.get_fully_qualified_name()}: {runtime.info.task} segmentation",
        message=message,
        hardware_id=runtime.backend.device,
        values=[KeyValue(key=key, value=_format(value)) for key, value in described.items()],
    )


def _level(runtime: SegmentationRuntime, values: dict, twins: int) -> tuple[bytes, str]:
    """(level, message) of the worst problem of the last window."""
    if not runtime.running:
        return DiagnosticStatus.OK, "inactive: no input, no outputs"
    dead = [worker.name for worker in runtime.workers if not worker.is_alive()]
    if dead:
        return DiagnosticStatus.ERROR, f"worker thread(s) stopped: {', '.join(dead)}"
    if values["window_failed"]:
        return DiagnosticStatus.ERROR, "inference or publishing failed"
    if twins > 1:
        return DiagnosticStatus.WARN, f"{twins} nodes share this name: every frame is answered {twins}x"
    if values["window_output_failed"]:
        return DiagnosticStatus.WARN, "an output could not be built for some frames"
    if values["window_bad"]:
        return DiagnosticStatus.WARN, "bad input frames dropped"
    if values["window_lost"]:
        return DiagnosticStatus.WARN, "input frames lost before the node (middleware or input history)"
    if values["window_dropped"]:
        return DiagnosticStatus.WARN, "input faster than inference: oldest frames dropped"
    if not runtime.input_subscribed:
        return DiagnosticStatus.OK, "no output has a subscriber: camera input unsubscribed (subscribe_on_demand)"
    return DiagnosticStatus.OK, "ok"


def nodes_with_this_name(node, log_throttle: float) -> int:
    """How many nodes of ``node``'s name and namespace the ROS graph holds (1 unless a twin runs); warns on twins."""
    name, namespace = node.get_name(), node.get_namespace()
    count = sum(1 for other in node.get_node_names_and_namespaces() if other == (name, namespace))
    if count > 1:
        node.get_logger().warning(
            f"{count} nodes named {node.get_fully_qualified_name()} are running: each answers every frame; "
            "give each its own name (-r __node:=NAME) or namespace",
            throttle_duration_sec=log_throttle,
        )
    return max(count, 1)


def _format(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
