"""Runs of one node process and a client (single camera ''): start and connect them, warm up, measure capacity,
stream frames on a real-time schedule, summarise latency and accounting, score what came back."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sensor_msgs.msg import Image

from seg_perception.evaluation.combined import CombinedEvaluator
from seg_perception.pipeline.stats import PipelineStats, percentile
from seg_perception.ros.conversions import set_stamp
from seg_perception.ros.harness.client import MASK, NodeClient, image_msg
from seg_perception.ros.harness.process import NodeProcess
from seg_perception.ros.result_messages import evaluation_inputs_from_messages

CONFIG = Path("config") / "semantic.yaml"
WARMUP_FRAMES = 4
RSS_PERIOD_S = 1.0
DIAG_TIMEOUT_S = 10.0


# -- runs: one node process and a client -------------------------------------------------------------------------
def default_params_file(task: str = "semantic") -> Path:
    """``config/semantic.yaml`` (``task`` "panoptic": ``config/panoptic.yaml``) of the installed share folder
    (ament_index), else of the source checkout."""
    from seg_perception.pipeline.loading import share_dirs

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
def process_run(process: NodeProcess, ready_timeout: float = 600.0, **client_options) -> Iterator[NodeRun]:
    """Wait until the started ``process`` is ready and connected to a ``NodeClient(**client_options)``; on exit
    close the client and stop the process with SIGINT (``exit_code``). RuntimeError (with the process's output)
    when it fails to start or connect."""
    start = time.monotonic()
    client_options.setdefault("name", f"seg_run_client_{os.getpid()}")
    client = None
    run = None
    try:
        process.wait_ready(ready_timeout)
        client = NodeClient(**client_options)
        if not client.wait_connected(30.0):
            raise RuntimeError(f"client did not connect to {process.label} within 30 s:\n{process.output[-3000:]}")
        run = NodeRun(process, client, time.monotonic() - start)
        yield run
    finally:
        if client is not None:
            client.close()
        code = process.stop()
        if run is not None:
            run.exit_code = code


@contextmanager
def running_node(
    params_file: Path | str,
    params: dict[str, str] | None,
    outputs: Sequence[str],
    keep: int | None = None,
    ready_timeout: float = 600.0,
) -> Iterator[NodeRun]:
    """Start ``segmentation_node`` with ``params_file`` (+ ``params``) as a ``process_run`` whose client has
    best-effort input, collects ``outputs`` and keeps ``keep`` messages per topic."""
    process = NodeProcess(params_file, params)
    with process_run(process, ready_timeout, outputs=outputs, reliable_input=False, keep=keep) as run:
        yield run


def model_task_of(params_file: Path | str, params: dict[str, str] | None = None) -> str:
    """The task ("semantic", "instance", "panoptic") of the model a node started with ``params_file`` (its ``/**``
    and segmentation_node sections) and ``-p`` ``params`` (values in ROS YAML syntax) would load, read from the
    model's sidecar (a torch checkpoint: from the model it holds)."""
    from seg_perception.model_info import read_model_info
    from seg_perception.pipeline.config import SegmentationConfig, read_params_files
    from seg_perception.pipeline.loading import resolve_model_path, share_dirs

    config = SegmentationConfig.from_values(read_params_files([params_file], params))
    path = resolve_model_path(config, share_dirs())
    if path.suffix == ".onnx":
        return read_model_info(path).task
    from seg_perception.models import model_spec, model_task

    return model_task(model_spec(path).name)


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
        labels, segment_ids, segments, predictions = evaluation_inputs_from_messages(
            *(client.received[("", output)][stamp] for output in (MASK, "instances", "panoptic"))
        )
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
    client: NodeClient,
    messages: Sequence[Image],
    frames: int = WARMUP_FRAMES,
    timeout: float = 60.0,
    retry: float = 1.0,
) -> list[float]:
    """Publish ``frames`` frames one at a time, each after the previous one's mask arrived; returns their
    stamp -> mask ms (the first includes cold-start costs). The first frame is re-sent every ``retry`` s until
    one gets its mask (``NodeClient.prime``). RuntimeError when a mask does not come."""
    latencies = []
    arrival = client.arrival[("", MASK)]
    for index in range(frames):
        if index == 0:
            stamp = client.prime({"": messages[0]}, timeout, retry)
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
    """``publish_on_schedule`` between two /diagnostics statuses of the node: the last one before it and one that
    counts every mask received (so its since-start numbers cover the whole run)."""
    start_index = next_diagnostics(client)
    diag_start = client.diagnostics[start_index]
    end_index = start_index

    def settle(run: Run) -> None:
        nonlocal end_index
        end_index = covering_diagnostics(client, diag_start, len(run.arrival))

    run = publish_on_schedule(client, messages, rate_hz, count, rss, quiet_s, settle)
    run.diag_start = diag_start
    run.windows = client.diagnostics[start_index + 1 : end_index + 1]
    return run


def publish_on_schedule(
    client: NodeClient,
    messages: Sequence[Image],
    rate_hz: float,
    count: int,
    rss: Callable[[], float] | None = None,
    quiet_s: float = 2.0,
    settle: Callable[[Run], None] | None = None,
) -> Run:
    """Publish ``count`` frames (``messages`` cycled) at ``rate_hz`` on absolute deadlines, each stamped now; then
    wait until every mask arrived or none came for ``quiet_s``, and call ``settle(run)`` (late masks are still
    recorded while it spins). Mask arrival times are recorded as they come, whatever the client's ``keep``.
    ``rss``: sampled every second while publishing. Needs no /diagnostics."""
    run = Run(rate_hz)
    published: set[int] = set()

    def on_arrival(camera: str, output: str, stamp: int, arrival_ns: int) -> None:
        if camera == "" and output == MASK and stamp in published:
            run.arrival[stamp] = arrival_ns

    period = 1.0 / rate_hz
    start = time.monotonic()
    next_sample = start

    def sample(seconds: float) -> None:
        try:
            run.rss.append((seconds, rss()))
        except (OSError, RuntimeError):  # the node process is gone: its masks stop coming
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
        if settle is not None:
            settle(run)
    finally:
        client.listeners.remove(on_arrival)
    return run


def covering_diagnostics(client: NodeClient, diag_start: dict, masks: int) -> int:
    """Index in ``client.diagnostics`` of the node's first status after ``diag_start`` whose ``frames_out`` counts
    ``masks`` more frames (the node counts a frame just after publishing its outputs; at most 4 statuses waited)."""
    counted = (_number(diag_start.get("frames_out")) or 0) + masks
    end_index = next_diagnostics(client)
    for _ in range(3):
        if (_number(client.diagnostics[end_index].get("frames_out")) or 0) >= counted:
            break
        end_index = next_diagnostics(client)
    return end_index


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
        "stages_ms": {
            key.removesuffix("_ms_p50_total"): _number(value)
            for key, value in end.items()
            if key.endswith("_ms_p50_total") and key.removesuffix("_ms_p50_total") not in PipelineStats.STAGES
        },
    }
