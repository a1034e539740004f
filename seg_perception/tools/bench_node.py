"""``seg-bench-node``: ``segmentation_node`` end to end in its own process, backend time vs what a subscriber sees.

The node runs from its console script with ``config/semantic.yaml`` (plus ``--backend/--device/--precision/--model``
and ``-p NAME:=VALUE`` overrides), as ``ros2 launch`` would; this process publishes synthetic drive frames
(``seg_perception.data.synthetic``, a few per size, cycled) through rclpy on loopback and collects the masks.
Per input size:

* warm-up: a few frames one at a time (each waits for its mask); capacity = 1000 / their median stamp -> mask ms;
* a run of ``--frames`` frames (or ``--duration`` s) published on a real-time schedule (absolute deadlines, no drift)
  at ``--rate`` Hz (default: 0.8 x capacity, so nothing queues), each stamped now; ``--flood``: 2 x capacity;
* backend ms = the node's ``infer_ms_p50`` (/diagnostics), end-to-end ms = stamp -> mask arrival here (p50, p99),
  overhead = end-to-end p50 - backend ms, and the node's own latency p50. The node reports percentiles per
  1-s diagnostics window; a run's node numbers are the frame-weighted median of its windows' p50s;
* frames: published here, ``frames_in`` received by the node (best-effort DDS may lose some), dropped by the
  node (its newest-wins input slot replaced a waiting frame), masks received here; drop rate = 1 - masks / published;
* ``--flood`` also: p50/p99 vs backend ms + 2 frame periods, and the node's RSS sampled every second (first, max,
  last, growth = mean of the last 10 % of samples - mean of the first 10 %; ``--duration 600`` for a long run).

``--json`` prints one JSON object (only JSON on stdout; progress goes to stderr). The run helpers here are shared
with ``seg-demo``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sensor_msgs.msg import Image

from seg_perception.data.synthetic import SyntheticScene
from seg_perception.pipeline.stats import percentile
from seg_perception.ros.harness import NodeClient, NodeProcess, image_msg
from seg_perception.tools.cli import parse_size, positive_int

MASK = "semantic/mask"
DEFAULT_SIZES = "512x1024,1024x2048"
CONFIG = Path("config") / "semantic.yaml"
AUTO_RATE_FACTOR = 0.8
FLOOD_FACTOR = 2.0
WARMUP_FRAMES = 4
RSS_PERIOD_S = 1.0
DIAG_TIMEOUT_S = 10.0


# -- node process + client -----------------------------------------------------------------------------------------
def default_params_file() -> Path:
    """``config/semantic.yaml`` of the installed share folder (ament_index), else of the source checkout."""
    from seg_perception.ros.segmentation_node import share_dirs

    for folder in share_dirs():
        if (folder / CONFIG).is_file():
            return folder / CONFIG
    raise FileNotFoundError(f"no {CONFIG} in the package's share folder or source checkout")


@dataclass
class NodeRun:
    """A running node process and this process's client; ``exit_code`` is set once the node stopped."""

    process: NodeProcess
    client: NodeClient
    ready_s: float
    exit_code: int | None = None


@contextmanager
def running_node(
    params_file: Path | str, params: dict[str, str] | None, outputs: Sequence[str], ready_timeout: float = 600.0
) -> Iterator[NodeRun]:
    """Start ``segmentation_node`` with ``params_file`` (+ ``params``), wait until it is ready and connected to a
    NodeClient collecting ``outputs``; on exit close the client and stop the node with SIGINT (``exit_code``).
    RuntimeError (with the node's output) when it fails to start or connect."""
    start = time.monotonic()
    process = NodeProcess(params_file, params)
    client = None
    run = None
    try:
        process.wait_ready(ready_timeout)
        client = NodeClient(name=f"seg_bench_client_{os.getpid()}", outputs=outputs, reliable_input=False)
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


# -- frames ----------------------------------------------------------------------------------------------------------
def synthetic_frames(height: int, width: int, count: int, seed: int = 2) -> list[np.ndarray]:
    """``count`` consecutive frames (H, W, 3) uint8 RGB of one synthetic val drive."""
    scene = SyntheticScene(height, width, seed, "val", 0)
    return [scene.render(index).image for index in range(count)]


def frame_messages(images: Sequence[np.ndarray]) -> list[Image]:
    """rgb8 messages built once; ``publish_now`` re-stamps them."""
    return [image_msg(image, 0) for image in images]


def mono8_array(msg: Image) -> np.ndarray:
    """(H, W) uint8 copy of a mono8 Image (honours ``step``)."""
    rows = np.frombuffer(msg.data, np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    return rows[:, : msg.width].copy()


def publish_now(client: NodeClient, msg: Image, camera: str = "") -> int:
    """Stamp ``msg`` with the client's clock now, publish it on ``camera``; returns the stamp (ns)."""
    stamp = client.now_ns()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    client.publish_msg(camera, msg)
    return stamp


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


def warm_up(client: NodeClient, messages: Sequence[Image], frames: int = WARMUP_FRAMES, timeout: float = 60.0):
    """Publish ``frames`` frames one at a time, each after the previous one's mask arrived; returns their
    stamp -> mask ms (the first includes cold-start costs). RuntimeError when a mask does not come."""
    latencies = []
    for index in range(frames):
        stamp = publish_now(client, messages[index % len(messages)])
        arrival = client.arrival[("", MASK)]
        if not client.spin_until(lambda s=stamp, a=arrival: s in a, timeout):
            raise RuntimeError(f"no mask for warm-up frame {index} within {timeout} s")
        latencies.append((arrival[stamp] - stamp) / 1e6)
    return latencies


def capacity_hz(warmup_ms: Sequence[float]) -> float:
    """Frames/s the node sustains, from warm-up latencies (the first, cold one left out when there are more)."""
    warm = list(warmup_ms[1:]) if len(warmup_ms) > 1 else list(warmup_ms)
    return 1000.0 / float(np.median(warm))


@dataclass
class Run:
    """One timed publishing run: stamps in publishing order, the schedule, node RSS samples (s, MB) and the
    /diagnostics statuses whose windows cover it (``diag_start`` closes the window before it)."""

    rate_hz: float
    stamps: list[int] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    diag_start: dict = field(default_factory=dict)
    windows: list[dict] = field(default_factory=list)


def stream(
    client: NodeClient,
    messages: Sequence[Image],
    rate_hz: float,
    count: int,
    rss: Callable[[], float] | None = None,
    keep_messages: bool = True,
    quiet_s: float = 2.0,
) -> Run:
    """Publish ``count`` frames (``messages`` cycled) at ``rate_hz`` on absolute deadlines, each stamped now; then
    wait until every mask arrived or none came for ``quiet_s``, and for the node's next /diagnostics so its
    windows cover the whole run. ``rss``: sampled every second while publishing. ``keep_messages=False`` drops
    the received messages as they come (arrival times stay), so long runs keep this process's memory flat."""
    run = Run(rate_hz)
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
        if not keep_messages:
            for key in client.received:
                client.received[key].clear()

    for index in range(count):
        spin_until_time(client, start + index * period, idle)
        run.stamps.append(publish_now(client, messages[index % len(messages)]))
    if rss is not None:
        sample(time.monotonic() - start)
    arrival = client.arrival[("", MASK)]
    pending = set(run.stamps) - set(arrival)
    last_change, last_pending = time.monotonic(), len(pending)
    while pending and time.monotonic() - last_change < quiet_s:
        client.executor.spin_once(timeout_sec=0.02)
        idle()
        pending = {stamp for stamp in pending if stamp not in arrival}
        if len(pending) != last_pending:
            last_change, last_pending = time.monotonic(), len(pending)
    end_index = next_diagnostics(client)
    run.windows = client.diagnostics[start_index + 1 : end_index + 1]
    return run


def _number(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def window_median(windows: Sequence[dict], key: str, weight_key: str = "frames_out", start: dict | None = None):
    """Median of the windows' ``key`` (a per-window p50) weighted by each window's new ``weight_key`` count."""
    values, weights = [], []
    previous = _number((start or {}).get(weight_key)) or 0.0
    for status in windows:
        total = _number(status.get(weight_key)) or previous
        value = _number(status.get(key))
        if value is not None and total > previous:
            values.append(value)
            weights.append(total - previous)
        previous = total
    if not values:
        return None
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def summarize(client: NodeClient, run: Run) -> dict:
    """The numbers of one run (see the module docstring); times in ms, rates in Hz."""
    arrival = client.arrival[("", MASK)]
    got = [stamp for stamp in run.stamps if stamp in arrival]
    latencies = [(arrival[stamp] - stamp) / 1e6 for stamp in got]
    arrivals = sorted(arrival[stamp] for stamp in got)
    end = run.windows[-1] if run.windows else run.diag_start

    def delta(key: str) -> int | None:
        after, before = _number(end.get(key)), _number(run.diag_start.get(key))
        return None if after is None or before is None else int(after - before)

    published = len(run.stamps)
    e2e_p50, e2e_p99 = percentile(latencies, 50), percentile(latencies, 99)
    backend = window_median(run.windows, "infer_ms_p50", start=run.diag_start)
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
        "preprocess_ms": window_median(run.windows, "preprocess_ms_p50", start=run.diag_start),
        "postprocess_ms": window_median(run.windows, "postprocess_ms_p50", start=run.diag_start),
        "e2e_ms_p50": e2e_p50,
        "e2e_ms_p99": e2e_p99,
        "overhead_ms": None if backend is None or e2e_p50 is None else e2e_p50 - backend,
        "backend_share": None if backend is None or not e2e_p50 else backend / e2e_p50,
        "node_latency_ms_p50": window_median(run.windows, "latency_ms_p50", start=run.diag_start),
    }


def flood_numbers(result: dict, run: Run) -> dict:
    """Overload checks of a run: p50/p99 vs backend ms + 2 frame periods, and the node's RSS over the run."""
    rate = result["publish_rate_hz"] or run.rate_hz
    bound = None if result["backend_ms"] is None else result["backend_ms"] + 2 * 1000.0 / rate
    rss = [mb for _, mb in run.rss]
    tenth = max(1, round(0.1 * len(rss)))

    def within(value: float | None) -> bool | None:
        return None if value is None or bound is None else value <= bound

    return {
        "latency_bound_ms": bound,
        "p50_within_bound": within(result["e2e_ms_p50"]),
        "p99_within_bound": within(result["e2e_ms_p99"]),
        "rss_samples": len(rss),
        "rss_mb_first": rss[0] if rss else None,
        "rss_mb_max": max(rss) if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "rss_mb_growth": float(np.mean(rss[-tenth:]) - np.mean(rss[:tenth])) if rss else None,
    }


def node_description(status: dict | None) -> dict:
    """backend, model, device, precision, model input of the node as its /diagnostics describe it."""
    keys = ("backend", "model", "device", "precision", "model_input")
    return {key: (status or {}).get(key) for key in keys}


# -- the command -----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-bench-node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated input HxW (default {DEFAULT_SIZES})")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=float, help="publish rate in Hz (default: 0.8 x the capacity from the warm-up)")
    rate.add_argument("--flood", action="store_true", help="publish at 2 x capacity; add latency bound and RSS checks")
    parser.add_argument("--frames", type=positive_int, default=30, help="frames per size (default 30)")
    parser.add_argument("--duration", type=float, help="seconds per size instead of --frames")
    parser.add_argument("--warmup", type=positive_int, default=WARMUP_FRAMES, help="warm-up frames (default 4)")
    parser.add_argument("--distinct", type=positive_int, default=4, help="frames rendered per size (default 4)")
    parser.add_argument("--params-file", type=Path, help="node parameters (default: the package's semantic.yaml)")
    parser.add_argument("--backend", help="node parameter override: auto | tensorrt | onnxruntime | torch")
    parser.add_argument("--device", help="node parameter override: auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", help="node parameter override: fp32 | fp16 | int8")
    parser.add_argument("--model", help="node parameter override: model_path")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="other overrides")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return parser


def node_params(args: argparse.Namespace) -> dict[str, str]:
    """The ``-p`` overrides for the node from the parsed arguments."""
    params = {
        name: value
        for name, value in (
            ("backend", args.backend),
            ("device", args.device),
            ("precision", args.precision),
            ("model_path", args.model),
        )
        if value is not None
    }
    for item in args.param:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"--param expects NAME:=VALUE, got {item!r}")
        params[name] = value
    return params


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[value]


RUN_COLUMNS = (
    ("size", 10, lambda e: e["size"]),
    ("cap Hz", 6, lambda e: _fmt(e["capacity_hz"])),
    ("rate Hz", 7, lambda e: _fmt(e["publish_rate_hz"])),
    ("pub", 5, lambda e: str(e["published"])),
    ("node in", 7, lambda e: str(e["frames_in"])),
    ("node drop", 9, lambda e: str(e["node_dropped"])),
    ("masks", 5, lambda e: str(e["masks"])),
    ("drop %", 6, lambda e: _fmt(100 * e["drop_rate"])),
    ("out fps", 7, lambda e: _fmt(e["fps_out"])),
    ("backend ms", 10, lambda e: _fmt(e["backend_ms"])),
    ("pre", 5, lambda e: _fmt(e["preprocess_ms"])),
    ("post", 5, lambda e: _fmt(e["postprocess_ms"])),
    ("e2e p50", 8, lambda e: _fmt(e["e2e_ms_p50"])),
    ("e2e p99", 8, lambda e: _fmt(e["e2e_ms_p99"])),
    ("overhead", 8, lambda e: _fmt(e["overhead_ms"])),
    ("bk/e2e", 6, lambda e: _fmt(e["backend_share"], ".2f")),
    ("node lat p50", 12, lambda e: _fmt(e["node_latency_ms_p50"])),
)
FLOOD_COLUMNS = (
    ("size", 10, lambda e: e["size"]),
    ("bound ms", 8, lambda e: _fmt(e["latency_bound_ms"])),
    ("e2e p50", 8, lambda e: _fmt(e["e2e_ms_p50"])),
    ("e2e p99", 8, lambda e: _fmt(e["e2e_ms_p99"])),
    ("p50 within", 10, lambda e: _yes(e["p50_within_bound"])),
    ("p99 within", 10, lambda e: _yes(e["p99_within_bound"])),
    ("RSS first", 9, lambda e: _fmt(e["rss_mb_first"])),
    ("max", 7, lambda e: _fmt(e["rss_mb_max"])),
    ("last", 7, lambda e: _fmt(e["rss_mb_last"])),
    ("growth MB", 9, lambda e: _fmt(e["rss_mb_growth"], "+.1f")),
    ("samples", 7, lambda e: str(e["rss_samples"])),
)


def _table(columns: tuple, entries: list[dict]) -> list[str]:
    rows = [[name for name, _, _ in columns]] + [[cell(entry) for _, _, cell in columns] for entry in entries]
    return [
        " ".join(
            text.ljust(width) if i == 0 else text.rjust(width)
            for i, (text, (_, width, _)) in enumerate(zip(row, columns, strict=True))
        )
        for row in rows
    ]


def format_tables(result: dict) -> str:
    """The result object as aligned text tables."""
    node = result["node"]
    if result["flood"]:
        mode = "flood (2 x capacity)"
    else:
        mode = f"rate {result['rate']:g} Hz" if result["rate"] else "rate auto (0.8 x capacity)"
    lines = [
        f"segmentation_node: {node['model']} via {node['backend']} on {node['device']} {node['precision']}, "
        f"model input {node['model_input']}; {mode}",
        "e2e = stamp -> mask arrival in this process, overhead = e2e p50 - backend; backend (infer), pre, post and "
        "node lat: the node's /diagnostics p50s; times in ms",
        *_table(RUN_COLUMNS, result["sizes"]),
    ]
    if result["flood"]:
        lines += [
            "flood: e2e latency vs bound = backend ms + 2 frame periods; node RSS (MB) sampled every second, growth ="
            " mean of the last 10 % of samples - mean of the first 10 %",
            *_table(FLOOD_COLUMNS, result["sizes"]),
        ]
    lines.append(f"node exit code after SIGINT: {result['node_exit_code']}")
    return "\n".join(lines)


def bench_size(node: NodeRun, size: tuple[int, int], args: argparse.Namespace, progress: Callable[[str], None]) -> dict:
    """Warm-up, then one run at one input size; the size's result entry."""
    height, width = size
    progress(f"{height}x{width}: rendering {args.distinct} synthetic frames ...")
    messages = frame_messages(synthetic_frames(height, width, args.distinct))
    warmup_ms = warm_up(node.client, messages, args.warmup)
    capacity = capacity_hz(warmup_ms)
    if args.flood:
        rate = FLOOD_FACTOR * capacity
    else:
        rate = args.rate if args.rate else AUTO_RATE_FACTOR * capacity
    count = max(2, math.ceil(args.duration * rate)) if args.duration else args.frames
    progress(f"{height}x{width}: capacity {capacity:.1f} Hz; publishing {count} frames at {rate:.1f} Hz ...")
    run = stream(
        node.client,
        messages,
        rate,
        count,
        rss=node.process.rss_mb if args.flood else None,
        keep_messages=False,
    )
    entry = {"size": f"{height}x{width}", "warmup_ms": warmup_ms, "capacity_hz": capacity}
    entry.update(summarize(node.client, run))
    if args.flood:
        entry.update(flood_numbers(entry, run))
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sizes = [parse_size(text) for text in args.sizes.split(",") if text.strip()]
        params = node_params(args)
        if any(value is not None and value <= 0 for value in (args.rate, args.duration)):
            raise ValueError("--rate and --duration must be positive")
        params_file = args.params_file or default_params_file()
    except (argparse.ArgumentTypeError, ValueError, FileNotFoundError) as error:
        parser.exit(2, f"seg-bench-node: error: {error}\n")
    if not sizes:
        parser.exit(2, "seg-bench-node: error: --sizes names no size\n")

    def progress(text: str) -> None:
        print(f"seg-bench-node: {text}", file=sys.stderr, flush=True)

    result = {
        "params_file": str(params_file),
        "params": params,
        "flood": args.flood,
        "rate": args.rate,
        "node": {},
        "sizes": [],
        "node_exit_code": None,
    }
    progress(f"starting segmentation_node with {params_file} {params or ''}")
    node = None
    try:
        with running_node(params_file, params, outputs=(MASK, "drivable_area")) as node:
            progress(f"node ready in {node.ready_s:.1f} s")
            for size in sizes:
                result["sizes"].append(bench_size(node, size, args, progress))
            result["node"] = node_description(node.client.latest_diagnostics())
    except RuntimeError as error:
        print(f"seg-bench-node: error: {error}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            result["node_exit_code"] = node.exit_code
    print(json.dumps(result, indent=2) if args.json else format_tables(result))
    return 0 if result["node_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
