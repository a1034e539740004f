"""``seg-bench-node --compare-plain``: ``segmentation_node`` against a plain single-callback node
(``seg_perception.tools.plain_node``) on the same frames, interleaved, per input size, with the transport floor
both stand on (``seg_perception.tools.null_node``: ours' input handling, no model, all-zero masks out).

The three nodes are alive at once, each its own process: ours from its console script with the params file and
overrides (root namespace), the plain one with ``python -m`` in ``/plain``, on the model file ours loaded (checked
against its /diagnostics) or ``--plain-model``, with ours' ``threads``, the null one in ``/null``. Per size:

* warm-up: ours, plain, null, a few frames one at a time; capacity = 1000 / median stamp -> mask ms;
* sequential: ``--frames`` rounds of one frame to ours, wait for its mask and drivable area, the same frame to
  plain, wait, then to null, wait; ``--settle`` s idle after each frame (default ``SETTLE_S``), so that no node's
  idle threads (ONNX Runtime's default spin-waiting in the plain node) compete with the next one's frame; e2e =
  stamp -> mask arrival here; CPU ms per frame = the node process's utime + stime (/proc) from publishing a frame
  until both outputs arrived;
* flood: blocks ours, plain, ours, plain, each ``FLOOD_BLOCK_S`` s at 2 x that node's capacity (ours: best-effort
  input, newest frame wins; plain: default QoS, reliable, depth 10); e2e p50/p99 and drop rate = 1 - masks /
  published over its blocks; the load it was = flood rate x sequential e2e p50 (a short warm-up can misjudge
  capacity: ``--warmup`` more frames);
* RSS MB: the most of samples after each sequential frame and every second of the flood blocks;
* ours only: backend ms (``infer_ms_p50_total``) and every ``<stage>_ms_p50_total`` of its /diagnostics after the
  sequential rounds (since start: warm-up + sequential), overhead = sequential e2e p50 - backend ms, its share of e2e,
  and of it ours' own = overhead - the null node's sequential e2e p50 (the floor: frame in, two masks out).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sensor_msgs.msg import Image

from seg_perception.model_info import read_model_info
from seg_perception.pipeline.config import SegmentationConfig, read_params_files
from seg_perception.pipeline.loading import resolve_model_path, share_dirs
from seg_perception.pipeline.stats import percentile
from seg_perception.ros.harness import (
    MASK,
    NodeProcess,
    NodeRun,
    Run,
    capacity_hz,
    covering_diagnostics,
    frame_messages,
    model_task_of,
    next_diagnostics,
    node_description,
    process_run,
    publish_now,
    publish_on_schedule,
    running_node,
    spin_until_time,
    warm_up,
)

PLAIN_NAMESPACE = "/plain"
NULL_NAMESPACE = "/null"
OUTPUTS = (MASK, "drivable_area")
KEEP_MESSAGES = 8
FLOOD_FACTOR = 2.0
FLOOD_BLOCK_S = 3.0
FLOOD_BLOCKS = 2
"""Flood blocks per node, alternating with the other node's."""
MIN_BLOCK_FRAMES = 4
SETTLE_S = 0.1
"""Default idle time after each sequential frame (ONNX Runtime's spinning threads give up well within it). On a
machine whose idle cores slow down (this one's: the shipped INT8 model takes 13-15 ms run back to back, ~23 ms after
50 ms idle, ~30 ms after 100 ms; docs/experiments/idle_slowdown.py), every stage of the next frame is slower than
in a stream of frames; ``--settle`` sets it."""
WARMUP_TIMEOUT_S = 60.0
METRICS = (
    ("capacity Hz (warm-up)", "capacity_hz", ".1f"),
    ("sequential frames", "sequential_frames", "d"),
    ("sequential masks", "sequential_masks", "d"),
    ("e2e p50 ms, sequential", "e2e_ms_p50", ".1f"),
    ("e2e p99 ms, sequential", "e2e_ms_p99", ".1f"),
    ("CPU ms / frame", "cpu_ms_per_frame", ".1f"),
    ("RSS MB, max", "rss_mb_max", ".1f"),
    ("flood rate Hz", "flood_rate_hz", ".1f"),
    ("flood x seq. capacity", "flood_load", ".2f"),
    ("flood frames", "flood_frames", "d"),
    ("flood masks", "flood_masks", "d"),
    ("e2e p50 ms, flood", "flood_e2e_ms_p50", ".1f"),
    ("e2e p99 ms, flood", "flood_e2e_ms_p99", ".1f"),
    ("drop rate, flood", "flood_drop_rate", ".3f"),
)
"""Table rows: label, key in each node's numbers, format."""
NULL_KEYS = ("capacity_hz", "sequential_frames", "sequential_masks", "e2e_ms_p50", "e2e_ms_p99", "cpu_ms_per_frame")
"""What is measured on the null node (no flood: it has nothing to shed)."""


def plain_command(model: Path | str, threads: int = 0) -> list[str]:
    """The plain node's command line (ROS arguments follow it)."""
    return [sys.executable, "-m", "seg_perception.tools.plain_node", "--model", str(model), "--threads", str(threads)]


@contextmanager
def running_plain_node(model: Path | str, threads: int = 0, keep: int | None = KEEP_MESSAGES) -> Iterator[NodeRun]:
    """The plain node on ``model`` in ``/plain`` and a client (reliable input, as its default QoS) collecting its
    mask and drivable area; stopped with SIGINT on exit (``exit_code``)."""
    process = NodeProcess([], command=plain_command(model, threads), namespace=PLAIN_NAMESPACE)
    client = {"name": f"plain_run_client_{os.getpid()}", "namespace": PLAIN_NAMESPACE, "label_info": False}
    with process_run(process, outputs=OUTPUTS, keep=keep, **client) as run:
        yield run


@contextmanager
def running_null_node(keep: int | None = KEEP_MESSAGES) -> Iterator[NodeRun]:
    """The null node in ``/null`` and a client (best-effort input, as ours') collecting its two masks; stopped with
    SIGINT on exit (``exit_code``)."""
    command = [sys.executable, "-m", "seg_perception.tools.null_node"]
    process = NodeProcess([], command=command, namespace=NULL_NAMESPACE)
    client = {"name": f"null_run_client_{os.getpid()}", "namespace": NULL_NAMESPACE, "label_info": False}
    with process_run(process, outputs=OUTPUTS, keep=keep, reliable_input=False, **client) as run:
        yield run


@dataclass(frozen=True)
class PlainSettings:
    """What the plain node runs: ``model`` (ours' unless ``override``) and ONNX Runtime ``threads`` (ours')."""

    model: Path
    threads: int
    override: bool


def plain_settings(params_file: Path, params: dict[str, str], plain_model: Path | None) -> PlainSettings:
    """The plain node's model and threads for ours started with ``params_file`` + ``params`` (resolved as the node
    does). ValueError when ours or the plain model is not a semantic ONNX model."""
    config = SegmentationConfig.from_values(read_params_files([params_file], params))
    if model_task_of(params_file, params) != "semantic":
        raise ValueError("--compare-plain needs a semantic model in segmentation_node")
    model = plain_model or resolve_model_path(config, share_dirs())
    if model.suffix != ".onnx":
        raise ValueError(f"the plain node runs ONNX models only, not {model}: pass --plain-model FILE.onnx")
    if read_model_info(model).task != "semantic":
        raise ValueError(f"{model} is not a semantic model")
    return PlainSettings(model, config.threads, plain_model is not None)


@dataclass
class Side:
    """One node of the comparison and what was measured on it."""

    node: NodeRun
    warmup_ms: list[float] = field(default_factory=list)
    sequential_frames: int = 0
    sequential_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    flood: list[Run] = field(default_factory=list)

    def round_trip(self, msg: Image, timeout: float) -> None:
        """Publish ``msg`` stamped now and wait until both outputs of it arrived (or ``timeout``)."""
        client, process = self.node.client, self.node.process
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.label} exited with {process.process.returncode}:\n{process.output[-3000:]}")
        cpu = process.cpu_seconds()
        stamp = publish_now(client, msg)
        self.sequential_frames += 1
        if client.spin_until(lambda: all(client.has("", output, stamp) for output in OUTPUTS), timeout):
            self.cpu_s += process.cpu_seconds() - cpu
            self.sequential_ms.append((client.arrival[("", MASK)][stamp] - stamp) / 1e6)
        self.rss_mb.append(process.rss_mb())

    def numbers(self) -> dict:
        """The table's numbers of this node (``METRICS`` keys)."""
        flood_ms = [(run.arrival[s] - s) / 1e6 for run in self.flood for s in run.stamps if s in run.arrival]
        flood_frames = sum(len(run.stamps) for run in self.flood)
        rss = self.rss_mb + [mb for run in self.flood for _, mb in run.rss]
        masks = len(self.sequential_ms)
        e2e_p50 = percentile(self.sequential_ms, 50)
        flood_rate = self.flood[0].rate_hz if self.flood else None
        return {
            "capacity_hz": capacity_hz(self.warmup_ms),
            "sequential_frames": self.sequential_frames,
            "sequential_masks": masks,
            "e2e_ms_p50": e2e_p50,
            "e2e_ms_p99": percentile(self.sequential_ms, 99),
            "cpu_ms_per_frame": 1000 * self.cpu_s / masks if masks else None,
            "rss_mb_max": max(rss) if rss else None,
            "flood_rate_hz": flood_rate,
            "flood_load": None if flood_rate is None or e2e_p50 is None else flood_rate * e2e_p50 / 1000,
            "flood_frames": flood_frames,
            "flood_masks": len(flood_ms),
            "flood_e2e_ms_p50": percentile(flood_ms, 50),
            "flood_e2e_ms_p99": percentile(flood_ms, 99),
            "flood_drop_rate": 1 - len(flood_ms) / flood_frames if flood_frames else None,
        }


def measure(
    sides: Sequence[Side],
    messages: Sequence[Image],
    frames: int,
    warmup: int,
    settle: float,
    progress: Callable[[str], None],
) -> dict:
    """Warm-up, interleaved sequential rounds of ``sides`` (ours, plain, null) and flood blocks of ours and plain;
    returns ours' /diagnostics status after the rounds."""
    ours, plain, null = sides
    for side in (ours, null):  # best-effort input: the first frame re-sent until one arrives
        side.warmup_ms = warm_up(side.node.client, messages, warmup, WARMUP_TIMEOUT_S)
    plain.warmup_ms = warm_up(plain.node.client, messages, warmup, WARMUP_TIMEOUT_S, retry=WARMUP_TIMEOUT_S)
    ours_client = ours.node.client
    start = ours_client.diagnostics[next_diagnostics(ours_client)]
    timeouts = [5.0 + 5 * max(side.warmup_ms) / 1000 for side in sides]
    progress(f"sequential: {frames} rounds of one frame to ours, then to plain, then to null ...")
    for index in range(frames):
        for side, timeout in zip(sides, timeouts, strict=True):
            side.round_trip(messages[index % len(messages)], timeout)
            spin_until_time(side.node.client, time.monotonic() + settle)
    status = ours_client.diagnostics[covering_diagnostics(ours_client, start, len(ours.sequential_ms))]
    for block in range(FLOOD_BLOCKS):
        for name, side in (("ours", ours), ("plain", plain)):
            rate = FLOOD_FACTOR * capacity_hz(side.warmup_ms)
            count = max(MIN_BLOCK_FRAMES, math.ceil(FLOOD_BLOCK_S * rate))
            progress(f"flood block {block + 1}/{FLOOD_BLOCKS} of {name}: {count} frames at {rate:.1f} Hz ...")
            run = publish_on_schedule(side.node.client, messages, rate, count, rss=side.node.process.rss_mb)
            side.flood.append(run)
    return status


def _number(value: str | None) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ours_breakdown(status: dict, e2e_ms_p50: float | None, floor_ms: float | None) -> dict:
    """Backend ms, every stage's since-start p50, the overhead over the backend from ours' status and of it ours'
    own: less the transport floor ``floor_ms`` (the null node's e2e p50)."""
    backend = _number(status.get("infer_ms_p50_total"))
    overhead = None if backend is None or e2e_ms_p50 is None else e2e_ms_p50 - backend
    own = None if overhead is None or floor_ms is None else overhead - floor_ms
    return {
        "ours_backend_ms": backend,
        "ours_stages_ms": {
            key.removesuffix("_ms_p50_total"): _number(value)
            for key, value in status.items()
            if key.endswith("_ms_p50_total")
        },
        "ours_overhead_ms": overhead,
        "ours_overhead_share": None if overhead is None or not e2e_ms_p50 else overhead / e2e_ms_p50,
        "floor_share": None if floor_ms is None or not e2e_ms_p50 else floor_ms / e2e_ms_p50,
        "ours_own_overhead_ms": own,
        "ours_own_overhead_share": None if own is None or not e2e_ms_p50 else own / e2e_ms_p50,
    }


def ratios(ours: dict, plain: dict) -> dict:
    """ours / plain of every metric (None where either is missing or plain's is 0)."""
    return {key: ours[key] / plain[key] if ours[key] is not None and plain[key] else None for _, key, _ in METRICS}


def compare_size(
    size: tuple[int, int],
    images: Sequence,
    params_file: Path,
    params: dict[str, str],
    plain: PlainSettings,
    args: argparse.Namespace,
    progress: Callable[[str], None],
) -> dict:
    """The three nodes started for one input size of ``images``, measured interleaved (``args.frames`` rounds after
    ``args.warmup`` frames, ``args.settle`` s apart); the size's result entry."""
    messages = frame_messages(images)
    with running_node(params_file, params, outputs=OUTPUTS, keep=KEEP_MESSAGES) as ours_run:
        loaded = node_description(ours_run.client.diagnostics[next_diagnostics(ours_run.client)])
        if not plain.override and not str(loaded["model"]).endswith(f"({plain.model.name})"):
            raise RuntimeError(f"segmentation_node loaded {loaded['model']}, not {plain.model}: pass --plain-model")
        progress(f"ours ready in {ours_run.ready_s:.1f} s ({loaded['model']}); starting the plain and null nodes ...")
        with running_plain_node(plain.model, plain.threads) as plain_run, running_null_node() as null_run:
            sides = [Side(ours_run), Side(plain_run), Side(null_run)]
            status = measure(sides, messages, args.frames, args.warmup, args.settle, progress)
    numbers = {"ours": sides[0].numbers(), "plain": sides[1].numbers()}
    null = {key: sides[2].numbers()[key] for key in NULL_KEYS}
    return {
        "size": f"{size[0]}x{size[1]}",
        "ours_node": loaded,
        "plain_model": str(plain.model),
        "plain_threads": plain.threads,
        **numbers,
        "null": null,
        "settle_s": args.settle,
        "ratio": ratios(numbers["ours"], numbers["plain"]),
        **ours_breakdown(status, numbers["ours"]["e2e_ms_p50"], null["e2e_ms_p50"]),
        "ours_exit_code": ours_run.exit_code,
        "plain_exit_code": plain_run.exit_code,
        "null_exit_code": null_run.exit_code,
    }


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f} %"


def format_comparison(result: dict) -> str:
    """The comparison result as one text table per size."""
    lines = []
    for entry in result["sizes"]:
        node = entry["ours_node"]
        lines += [
            f"{entry['size']}",
            f"  ours:  segmentation_node, {node['model']} via {node['backend']} on {node['device']} {node['precision']}"
            f", model input {node['model_input']}; best-effort input, newest frame wins",
            f"  plain: plain_node, {entry['plain_model']}, ONNX Runtime default session options, threads "
            f"{entry['plain_threads'] or 'default'}; one callback, default QoS (reliable, depth 10)",
            "  null:  null_node, ours' input handling, no model, two all-zero masks out: the transport floor",
            f"  sequential: ours, plain, null, one frame at a time, {entry['settle_s']:g} s idle after each; flood:"
            f" {FLOOD_BLOCKS} blocks per node, alternating"
            f" (ours, plain, ...), {FLOOD_BLOCK_S:g} s each at {FLOOD_FACTOR:g} x that node's warm-up capacity",
            "  e2e = stamp -> mask arrival here; CPU = node process utime + stime over its sequential frames",
            f"{'metric':<24} {'ours':>9} {'plain':>9} {'ours/plain':>10}",
        ]
        for label, key, spec in METRICS:
            ours, plain, ratio = entry["ours"][key], entry["plain"][key], entry["ratio"][key]
            lines.append(f"{label:<24} {_fmt(ours, spec):>9} {_fmt(plain, spec):>9} {_fmt(ratio, '.2f'):>10}")
        stages = ", ".join(f"{name} {_fmt(ms, '.1f')}" for name, ms in entry["ours_stages_ms"].items())
        null = entry["null"]
        lines += [
            f"null: e2e p50 {_fmt(null['e2e_ms_p50'], '.1f')} ms, p99 {_fmt(null['e2e_ms_p99'], '.1f')} ms, CPU"
            f" {_fmt(null['cpu_ms_per_frame'], '.1f')} ms / frame ({null['sequential_masks']} of"
            f" {null['sequential_frames']} frames)",
            f"ours: backend (infer_ms_p50_total) {_fmt(entry['ours_backend_ms'], '.1f')} ms; overhead = sequential e2e"
            f" p50 - backend = {_fmt(entry['ours_overhead_ms'], '.1f')} ms ({_percent(entry['ours_overhead_share'])}"
            f" of e2e) = transport floor (null e2e p50) {_fmt(null['e2e_ms_p50'], '.1f')} ms"
            f" ({_percent(entry['floor_share'])}) + ours' own {_fmt(entry['ours_own_overhead_ms'], '.1f')} ms"
            f" ({_percent(entry['ours_own_overhead_share'])})",
            f"ours: stage p50 ms since start (warm-up + sequential): {stages or 'none'}",
            f"exit codes after SIGINT: ours {entry['ours_exit_code']}, plain {entry['plain_exit_code']}, null"
            f" {entry['null_exit_code']}",
            "",
        ]
    return "\n".join(lines).rstrip()
