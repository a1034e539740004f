"""Drive a running ``segmentation_node`` from another process: what tests, ``seg-demo`` and ``seg-bench-node`` share.

``NodeProcess`` starts the node from its console script with a params file (what ``ros2 launch`` does) and
stops it with SIGINT; ``NodeClient`` is an rclpy node that publishes camera frames and collects the node's
outputs by stamp, spinning on the caller's thread with deadlines (never fixed sleeps).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from seg_perception.ros.conversions import rgb8_msg

EXECUTABLE = "segmentation_node"
READY_MARK = "ready:"


def node_executable() -> list[str]:
    """The console script next to this Python (a venv or a ROS install), else the one on PATH."""
    beside = Path(sys.executable).with_name(EXECUTABLE)
    found = str(beside) if beside.is_file() else shutil.which(EXECUTABLE)
    if found is None:
        raise FileNotFoundError(f"{EXECUTABLE} is not installed (pip install . or colcon build)")
    return [found]


class NodeProcess:
    """``segmentation_node --ros-args --params-file PARAMS [-p name:=value ...]`` as a child process.

    ``params``: extra ``name: value`` overrides (values written in ROS YAML syntax). Output lines are kept in
    ``lines``; ``wait_ready`` waits for the node's "ready:" log line.
    """

    def __init__(self, params_file: Path | str, params: dict[str, str] | None = None, name: str | None = None):
        command = [*node_executable(), "--ros-args", "--params-file", str(params_file)]
        for key, value in (params or {}).items():
            command += ["-p", f"{key}:={value}"]
        if name:
            command += ["-r", f"__node:={name}"]
        self.command = command
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the node logged that it is ready; RuntimeError with its output if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(READY_MARK in line for line in self.lines):
                return
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(f"{EXECUTABLE} exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.05)
        raise RuntimeError(f"{EXECUTABLE} not ready after {timeout} s:\n{self.output}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to end on its own; returns its exit code."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def rss_mb(self) -> float:
        """Resident memory of the node process in MB (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT (so Fast DDS releases its shared memory), then wait; kill after ``timeout``. Returns the code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stamp_ns(header: Header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def image_msg(image: np.ndarray, stamp: int, frame_id: str = "camera") -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 Image stamped ``stamp`` ns."""
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp), 1_000_000_000)
    return rgb8_msg(image, header)


def _topic(camera: str, name: str) -> str:
    return f"{camera}/{name}" if camera else name


class NodeClient:
    """An rclpy node in this process that feeds cameras and collects the segmentation node's outputs.

    ``namespace``: the segmentation node's namespace; ``cameras``: its camera namespaces; ``outputs``: which
    per-camera topics to subscribe (semantic/mask, drivable_area, overlay). Received messages are kept in
    ``received[(camera, topic)][stamp_ns]`` with their arrival time (node clock, ns) in ``arrival``;
    ``diagnostics`` holds {key: value} of every status the node published.
    """

    def __init__(
        self,
        name: str = "seg_client",
        namespace: str = "",
        cameras: Sequence[str] = ("",),
        outputs: Sequence[str] = ("semantic/mask", "drivable_area"),
        reliable_input: bool = True,
    ) -> None:
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
        self.order: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.label_info: dict[str, str] = {}
        self.diagnostics: list[dict[str, str]] = []
        self.publishers = {
            c: self.node.create_publisher(Image, prefix + _topic(c, "image"), input_qos) for c in cameras
        }
        self.subscriptions = []
        for camera in cameras:
            for output in outputs:
                self.subscriptions.append(
                    self.node.create_subscription(
                        Image, prefix + _topic(camera, output), self._keeper(camera, output), QoSProfile(depth=50)
                    )
                )
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.subscriptions.append(
                self.node.create_subscription(
                    String,
                    prefix + _topic(camera, "semantic/label_info"),
                    lambda msg, c=camera: self.label_info.__setitem__(c, msg.data),
                    latched,
                )
            )
        self.subscriptions.append(
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, QoSProfile(depth=20))
        )

    def _keeper(self, camera: str, output: str) -> Callable[[Image], None]:
        def keep(msg: Image) -> None:
            stamp = stamp_ns(msg.header)
            self.received[(camera, output)][stamp] = msg
            self.arrival[(camera, output)][stamp] = self.node.get_clock().now().nanoseconds
            self.order[(camera, output)].append(stamp)

        return keep

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if "semantic segmentation" in status.name:
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
                all(p.get_subscription_count() > 0 for p in self.publishers.values())
                and all(s.get_publisher_count() > 0 for s in self.subscriptions[:-1])
            ),
            timeout,
        )

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def publish(self, camera: str, image: np.ndarray, stamp: int | None = None, frame_id: str = "camera") -> int:
        """Publish ``image`` (H, W, 3) RGB on ``camera``; returns its stamp (ns, default now)."""
        stamp = self.now_ns() if stamp is None else stamp
        self.publishers[camera].publish(image_msg(image, stamp, frame_id))
        return stamp

    def publish_msg(self, camera: str, msg: Image) -> None:
        self.publishers[camera].publish(msg)

    def has(self, camera: str, output: str, stamp: int) -> bool:
        return stamp in self.received[(camera, output)]

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
