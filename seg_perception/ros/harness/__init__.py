"""Drive a running ``segmentation_node`` from another process: what tests, ``seg-demo`` and ``seg-bench-node`` share.

``NodeProcess`` starts the node from its console script with a params file (what ``ros2 launch`` does) and
stops it with SIGINT; ``NodeClient`` is an rclpy node that publishes camera frames and collects the node's
outputs by stamp, spinning on the caller's thread with deadlines (never fixed sleeps).

Runs (single camera ''): ``running_node`` starts both and waits until they are connected (``process_run``: the same
for any node process); ``warm_up`` and ``capacity_hz`` measure what the node sustains; ``stream`` publishes frames
on a real-time schedule and records when each mask came back (``publish_on_schedule``: without /diagnostics);
``summarize`` turns a ``Run`` into frame counts, end-to-end latency measured here and the node's own since-start
/diagnostics percentiles.
"""

from seg_perception.ros.harness.client import MASK, NodeClient, image_msg
from seg_perception.ros.harness.process import EXECUTABLE, READY_MARK, NodeProcess, node_executable
from seg_perception.ros.harness.runs import (
    WARMUP_FRAMES,
    NodeRun,
    Run,
    capacity_hz,
    covering_diagnostics,
    default_params_file,
    frame_messages,
    model_task_of,
    next_diagnostics,
    node_description,
    panoptic_scores,
    process_run,
    publish_now,
    publish_on_schedule,
    running_node,
    settled,
    spin_until_time,
    stream,
    summarize,
    warm_up,
)

__all__ = [
    "EXECUTABLE",
    "MASK",
    "READY_MARK",
    "WARMUP_FRAMES",
    "NodeClient",
    "NodeProcess",
    "NodeRun",
    "Run",
    "capacity_hz",
    "covering_diagnostics",
    "default_params_file",
    "frame_messages",
    "image_msg",
    "model_task_of",
    "next_diagnostics",
    "node_description",
    "node_executable",
    "panoptic_scores",
    "process_run",
    "publish_now",
    "publish_on_schedule",
    "running_node",
    "settled",
    "spin_until_time",
    "stream",
    "summarize",
    "warm_up",
]
