"""Drive a running ``segmentation_node`` from another process: what tests, ``seg-demo`` and ``seg-bench-node`` share.

``NodeProcess`` starts the node from its console script with a params file (what ``ros2 launch`` does) and
stops it with SIGINT; ``NodeClient`` is an rclpy node that publishes camera frames and collects the node's
outputs by stamp, spinning on the caller's thread with deadlines (never fixed sleeps).

Runs (single camera ''): ``running_node`` starts both and waits until they are connected; ``warm_up`` and
``capacity_hz`` measure what the node sustains; ``stream`` publishes frames on a real-time schedule and records
when each mask came back; ``summarize`` turns a ``Run`` into frame counts, end-to-end latency measured here and
the node's own since-start /diagnostics percentiles.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.evaluation.combined import CombinedEvaluator
from seg_perception.evaluation.instance import InstancePrediction
from seg_perception.labels import TRAIN_ID_TO_ID
from seg_perception.pipeline.stats import percentile
from seg_perception.ros.conversions import mono8_array, mono16_array, rgb8_msg, set_stamp, stamp_ns
from seg_perception.ros.outputs import output_types
from seg_perception.ros.segmentation_node import camera_topic
from seg_perception_msgs.msg import LabelInfo

EXECUTABLE = "segmentation_node"
READY_MARK = "ready:"
MASK = "semantic/mask"
CONFIG = Path("config") / "semantic.yaml"
WARMUP_FRAMES = 4
RSS_PERIOD_S = 1.0
DIAG_TIMEOUT_S = 10.0


def node_executable() -> list[str]:
    """The console script next to this Python (a venv or a ROS install), else the one on PATH."""
    beside = Path(sys.executable).with_name(EXECUTABLE)
    found = str(beside) if beside.is_file() else shutil.which(EXECUTABLE)
    if found is None:
        raise FileNotFoundError(f"{EXECUTABLE} is not installed (pip install . or colcon build)")
    return [found]


class NodeProcess:
    """``segmentation_node --ros-args --params-file PARAMS [-p name:=value ...]`` as a child process.

    ``params_file``: one params file or several (applied in order); ``params``: extra ``name: value`` overrides
    (values written in ROS YAML syntax); ``name``: the node name (``-r __node:=``), ``namespace`` its namespace
    (``-r __ns:=``, absolute, e.g. "/test_a": keeps its topics apart from other nodes'). ``command``: what to run in
    place of the console script (e.g. ``[python, "-c", code]`` for a fault-injection test); the ROS arguments are
    appended to it. Output lines (stdout and stderr) are kept in ``lines``; ``wait_ready`` waits for the node's
    "ready:" log line.
    """

    def __init__(
        self,
        params_file: Path | str | Sequence[Path | str],
        params: dict[str, str] | None = None,
        name: str | None = None,
        namespace: str | None = None,
        command: Sequence[str] | None = None,
    ):
        files = [params_file] if isinstance(params_file, (str, Path)) else list(params_file)
        command = [*(command or node_executable()), "--ros-args"]
        for file in files:
            command += ["--params-file", str(file)]
        for key, value in (params or {}).items():
            command += ["-p", f"{key}:={value}"]
        if name:
            command += ["-r", f"__node:={name}"]
        if namespace:
            command += ["-r", f"__ns:={namespace}"]
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


def image_msg(image: np.ndarray, stamp: int, frame_id: str = "camera") -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 Image stamped ``stamp`` ns."""
    header = Header(frame_id=frame_id)
    set_stamp(header, stamp)
    return rgb8_msg(image, header)


class NodeClient:
    """An rclpy node in this process that feeds cameras and collects the segmentation node's outputs.

    ``namespace``: the segmentation node's namespace; ``cameras``: its camera namespaces; ``outputs``: which
    per-camera topics to subscribe (semantic/mask, drivable_area, overlay, instances, panoptic); the latched label
    table of each camera is kept in ``label_info`` (seg_perception_msgs/LabelInfo). Received messages are kept in
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
        self.publishers = {
            c: self.node.create_publisher(Image, prefix + camera_topic(c, "image"), input_qos) for c in cameras
        }
        self.subscriptions = []
        types = output_types(detection=True, with_detections=True)
        for camera in cameras:
            for output in outputs:
                self.subscriptions.append(
                    self.node.create_subscription(
                        types[output],
                        prefix + camera_topic(camera, output),
                        self._keeper(camera, output),
                        QoSProfile(depth=50),
                    )
                )
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.subscriptions.append(
                self.node.create_subscription(
                    LabelInfo,
                    prefix + camera_topic(camera, "semantic/label_info"),
                    lambda msg, c=camera: self.label_info.__setitem__(c, msg),
                    latched,
                )
            )
        self.subscriptions.append(
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, QoSProfile(depth=20))
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
                all(p.get_subscription_count() > 0 for p in self.publishers.values())
                # node.count_publishers, not Subscription.get_publisher_count (Iron and later, not in Humble)
                and all(self.node.count_publishers(s.topic_name) > 0 for s in self.subscriptions[:-1])
            ),
            timeout,
        )

    def prime(self, frames: dict[str, Image], timeout: float = 60.0, retry: float = 1.0) -> int:
        """Publish ``frames`` ({camera: Image}, stamped with one shared stamp now) again every ``retry`` s, with a
        new stamp, until every camera's mask of one stamp arrived; returns that stamp. The first frames after
        discovery can be lost (a publisher may match the node's subscription before the subscription matches
        it). RuntimeError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamp = self.now_ns()
            for camera, msg in frames.items():
                set_stamp(msg.header, stamp)
                self.publish_msg(camera, msg)
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

    def publish_msg(self, camera: str, msg: Image) -> None:
        self.publishers[camera].publish(msg)

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


# -- runs: one node process and a client -------------------------------------------------------------------------
def default_params_file(task: str = "semantic") -> Path:
    """``config/semantic.yaml`` (``task`` "panoptic": ``config/panoptic.yaml``) of the installed share folder
    (ament_index), else of the source checkout."""
    from seg_perception.ros.segmentation_node import share_dirs

    config = CONFIG.with_name(f"{task}.yaml")
    for folder in share_dirs():
        if (folder / config).is_file():
            return folder / config
    raise FileNotFoundError(f"no {config} in the package's share folder or source checkout")


@dataclass
class NodeRun:
    """A running node process and this process's client; ``exit_code`` is set once the node stopped."""

    process: NodeProcess
    client: NodeClient
    ready_s: float
    exit_code: int | None = None


@contextmanager
def running_node(
    params_file: Path | str,
    params: dict[str, str] | None,
    outputs: Sequence[str],
    keep: int | None = None,
    ready_timeout: float = 600.0,
) -> Iterator[NodeRun]:
    """Start ``segmentation_node`` with ``params_file`` (+ ``params``), wait until it is ready and connected to a
    NodeClient (best-effort input, ``keep`` as there) collecting ``outputs``; on exit close the client and stop
    the node with SIGINT (``exit_code``). RuntimeError (with the node's output) when it fails to start or connect."""
    start = time.monotonic()
    process = NodeProcess(params_file, params)
    client = None
    run = None
    try:
        process.wait_ready(ready_timeout)
        client = NodeClient(name=f"seg_run_client_{os.getpid()}", outputs=outputs, reliable_input=False, keep=keep)
        if not client.wait_connected(30.0):
            raise RuntimeError(f"client did not connect to segmentation_node within 30 s:\n{process.output[-3000:]}")
        run = NodeRun(process, client, time.monotonic() - start)
        yield run
    finally:
        if client is not None:
            client.close()
        code = process.stop()
        if run is not None:
            run.exit_code = code


def settled(status: dict[str, str]) -> bool:
    """Every frame the node received is accounted for (published, dropped, bad or failed) and none is pending."""
    done = sum(int(status[key]) for key in ("frames_out", "dropped", "bad_frames", "failed"))
    return done == int(status["frames_in"]) and status["pending"] == "0"


def frame_messages(images: Sequence[np.ndarray]) -> list[Image]:
    """(H, W, 3) uint8 RGB frames -> rgb8 messages built once; ``publish_now`` re-stamps them."""
    return [image_msg(image, 0) for image in images]


def publish_now(client: NodeClient, msg: Image, camera: str = "") -> int:
    """Stamp ``msg`` with the client's clock now, publish it on ``camera``; returns the stamp (ns)."""
    stamp = client.now_ns()
    set_stamp(msg.header, stamp)
    client.publish_msg(camera, msg)
    return stamp


def node_description(status: dict | None) -> dict:
    """backend, model, device, precision, model input of the node as its /diagnostics describe it."""
    keys = ("backend", "model", "device", "precision", "model_input")
    return {key: (status or {}).get(key) for key in keys}


def panoptic_scores(client: NodeClient, stamps: Sequence[int], frames: Sequence) -> tuple[dict, int]:
    """CombinedEvaluator numbers (PQ, PQ_th, PQ_st, SQ, RQ, AP, AP50, mIoU) of what came back through ROS for the
    published ``stamps`` of ``frames`` (CityscapesFrames, same order): semantic/mask, the instances (the node's
    published instances: fused, at or above its score threshold) and the panoptic map of every frame whose three
    messages arrived; and how many frames were scored."""
    evaluator = CombinedEvaluator()
    scored = 0
    for stamp, frame in zip(stamps, frames, strict=True):
        if not all(client.has("", output, stamp) for output in (MASK, "instances", "panoptic")):
            continue
        instances = client.received[("", "instances")][stamp]
        panoptic = client.received[("", "panoptic")][stamp]
        instance_ids = mono16_array(instances.mask)
        segments = [{"id": s.id, "category_id": int(TRAIN_ID_TO_ID[s.class_id])} for s in panoptic.segments]
        predictions = [
            InstancePrediction(instance_ids == i.id, int(TRAIN_ID_TO_ID[i.class_id]), float(i.score))
            for i in instances.instances
        ]
        labels = mono8_array(client.received[("", MASK)][stamp])
        segment_ids = mono16_array(panoptic.id_map).astype(np.int32)
        evaluator.process(frame.instance_ids, frame.train_ids, labels, segment_ids, segments, predictions)
        scored += 1
    return evaluator.evaluate(), scored


# -- measuring -------------------------------------------------------------------------------------------------------
def spin_until_time(client: NodeClient, deadline: float, on_idle: Callable[[], None] | None = None) -> None:
    """Process the client's callbacks until ``time.monotonic()`` reaches ``deadline``."""
    while True:
        if on_idle is not None:
            on_idle()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        client.executor.spin_once(timeout_sec=min(remaining, 0.05))


def next_diagnostics(client: NodeClient, timeout: float = DIAG_TIMEOUT_S) -> int:
    """Wait for the node's next /diagnostics status; returns its index in ``client.diagnostics``."""
    seen = len(client.diagnostics)
    if not client.spin_until(lambda: len(client.diagnostics) > seen, timeout):
        raise RuntimeError(f"no /diagnostics from segmentation_node within {timeout} s")
    return len(client.diagnostics) - 1


def warm_up(
    client: NodeClient, messages: Sequence[Image], frames: int = WARMUP_FRAMES, timeout: float = 60.0
) -> list[float]:
    """Publish ``frames`` frames one at a time, each after the previous one's mask arrived; returns their
    stamp -> mask ms (the first includes cold-start costs). RuntimeError when a mask does not come."""
    latencies = []
    arrival = client.arrival[("", MASK)]
    for index in range(frames):
        if index == 0:
            stamp = client.prime({"": messages[0]}, timeout)
        else:
            stamp = publish_now(client, messages[index % len(messages)])
            if not client.spin_until(lambda s=stamp: s in arrival, timeout):
                raise RuntimeError(f"no mask for warm-up frame {index} within {timeout} s")
        latencies.append((arrival[stamp] - stamp) / 1e6)
    return latencies


def capacity_hz(warmup_ms: Sequence[float]) -> float:
    """Frames/s the node sustains, from warm-up latencies (the first, cold one left out when there are more)."""
    warm = list(warmup_ms[1:]) if len(warmup_ms) > 1 else list(warmup_ms)
    return 1000.0 / float(np.median(warm))


@dataclass
class Run:
    """One timed publishing run: stamps in publishing order, mask arrival times here by stamp (ns), node RSS
    samples (s, MB) and the /diagnostics statuses that cover it (``diag_start``: the last one before it)."""

    rate_hz: float
    stamps: list[int] = field(default_factory=list)
    arrival: dict[int, int] = field(default_factory=dict)
    rss: list[tuple[float, float]] = field(default_factory=list)
    diag_start: dict = field(default_factory=dict)
    windows: list[dict] = field(default_factory=list)


def stream(
    client: NodeClient,
    messages: Sequence[Image],
    rate_hz: float,
    count: int,
    rss: Callable[[], float] | None = None,
    quiet_s: float = 2.0,
) -> Run:
    """Publish ``count`` frames (``messages`` cycled) at ``rate_hz`` on absolute deadlines, each stamped now; then
    wait until every mask arrived or none came for ``quiet_s``, and for a /diagnostics status that counts every
    mask received (so its since-start numbers cover the whole run). Mask arrival times are recorded as they come,
    whatever the client's ``keep``. ``rss``: sampled every second while publishing."""
    run = Run(rate_hz)
    published: set[int] = set()

    def on_arrival(camera: str, output: str, stamp: int, arrival_ns: int) -> None:
        if camera == "" and output == MASK and stamp in published:
            run.arrival[stamp] = arrival_ns

    start_index = next_diagnostics(client)
    run.diag_start = client.diagnostics[start_index]
    period = 1.0 / rate_hz
    start = time.monotonic()
    next_sample = start

    def sample(seconds: float) -> None:
        try:
            run.rss.append((seconds, rss()))
        except (OSError, RuntimeError):  # the node process is gone: the run will fail on its diagnostics
            pass

    def idle() -> None:
        nonlocal next_sample
        if rss is not None and time.monotonic() >= next_sample:
            sample(time.monotonic() - start)
            next_sample += RSS_PERIOD_S

    client.listeners.append(on_arrival)
    try:
        for index in range(count):
            spin_until_time(client, start + index * period, idle)
            stamp = publish_now(client, messages[index % len(messages)])
            run.stamps.append(stamp)
            published.add(stamp)
        if rss is not None:
            sample(time.monotonic() - start)
        last_change, last_count = time.monotonic(), len(run.arrival)
        while len(run.arrival) < len(published) and time.monotonic() - last_change < quiet_s:
            client.executor.spin_once(timeout_sec=0.02)
            idle()
            if len(run.arrival) != last_count:
                last_change, last_count = time.monotonic(), len(run.arrival)
        # the node counts a frame just after publishing its outputs: wait for a status that has every mask seen here
        counted = (_number(run.diag_start.get("frames_out")) or 0) + len(run.arrival)
        end_index = next_diagnostics(client)
        for _ in range(3):
            if (_number(client.diagnostics[end_index].get("frames_out")) or 0) >= counted:
                break
            end_index = next_diagnostics(client)
    finally:
        client.listeners.remove(on_arrival)
    run.windows = client.diagnostics[start_index + 1 : end_index + 1]
    return run


def _number(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summarize(run: Run) -> dict:
    """The numbers of one run; times in ms, rates in Hz. Frame counts: published here, ``frames_in`` /
    ``node_dropped`` / ``node_bad`` / ``node_failed`` of the node over the run, masks received here. ``e2e_ms_*``:
    stamp -> mask arrival here over the run. ``backend_ms`` (infer), ``preprocess_ms``, ``postprocess_ms`` and
    ``node_latency_ms_*``: the node's since-start percentiles (``*_ms_p50_total``) at the end of the run, i.e. over
    every frame that node process handled (warm-up included)."""
    got = [stamp for stamp in run.stamps if stamp in run.arrival]
    latencies = [(run.arrival[stamp] - stamp) / 1e6 for stamp in got]
    arrivals = sorted(run.arrival[stamp] for stamp in got)
    end = run.windows[-1] if run.windows else run.diag_start

    def delta(key: str) -> int | None:
        after, before = _number(end.get(key)), _number(run.diag_start.get(key))
        return None if after is None or before is None else int(after - before)

    published = len(run.stamps)
    e2e_p50, e2e_p99 = percentile(latencies, 50), percentile(latencies, 99)
    backend = _number(end.get("infer_ms_p50_total"))
    span = (run.stamps[-1] - run.stamps[0]) / 1e9 if published > 1 else 0.0
    out_span = (arrivals[-1] - arrivals[0]) / 1e9 if len(arrivals) > 1 else 0.0
    return {
        "rate_hz": run.rate_hz,
        "publish_rate_hz": (published - 1) / span if span > 0 else None,
        "published": published,
        "frames_in": delta("frames_in"),
        "node_dropped": delta("dropped"),
        "node_bad": delta("bad_frames"),
        "node_failed": delta("failed"),
        "masks": len(got),
        "drop_rate": 1.0 - len(got) / published if published else None,
        "fps_out": (len(arrivals) - 1) / out_span if out_span > 0 else None,
        "backend_ms": backend,
        "preprocess_ms": _number(end.get("preprocess_ms_p50_total")),
        "postprocess_ms": _number(end.get("postprocess_ms_p50_total")),
        "e2e_ms_p50": e2e_p50,
        "e2e_ms_p99": e2e_p99,
        "overhead_ms": None if backend is None or e2e_p50 is None else e2e_p50 - backend,
        "backend_share": None if backend is None or not e2e_p50 else backend / e2e_p50,
        "node_latency_ms_p50": _number(end.get("latency_ms_p50_total")),
        "node_latency_ms_p99": _number(end.get("latency_ms_p99_total")),
    }
