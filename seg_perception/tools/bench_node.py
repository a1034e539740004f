"""``seg-bench-node``: ``segmentation_node`` end to end in its own process, backend time vs what a subscriber sees.

Per input size a fresh node runs from its console script with ``config/semantic.yaml`` (``--task panoptic``:
``config/panoptic.yaml``, and the instances and panoptic outputs are subscribed too, so the node builds them) (plus
``--backend/--device/--precision/--model`` and ``-p NAME:=VALUE`` overrides), as ``ros2 launch`` would; this process
publishes synthetic drive frames (``seg_perception.data.synthetic``, a few per size, cycled) through rclpy on
loopback and collects the masks (the run machinery is ``seg_perception.ros.harness``):

* warm-up: a few frames one at a time (each waits for its mask); capacity = 1000 / their median stamp -> mask ms;
* a run of ``--frames`` frames (or ``--duration`` s) published on a real-time schedule (absolute deadlines, no drift)
  at ``--rate`` Hz (default: 0.8 x capacity, so nothing queues), each stamped now; ``--flood``: 2 x capacity;
* backend ms = the node's ``infer_ms_p50_total`` (/diagnostics, since the node started: with one node per size,
  that size's warm-up and run frames), end-to-end ms = stamp -> mask arrival here (p50, p99), overhead =
  end-to-end p50 - backend ms, and the node's own latency p50/p99 (since start, likewise); a panoptic node's
  post-processing stages (paste, semantic, fusion, maps: p50 since start) too;
* frames: published here, ``frames_in`` received by the node (best-effort DDS may lose some), dropped by the
  node (its newest-wins input slot replaced a waiting frame), masks received here; drop rate = 1 - masks / published;
* ``--flood`` also: p50/p99 vs backend ms + 2 frame periods, and the node's RSS sampled every second (first, max,
  last, growth = mean of the last 10 % of samples - mean of the first 10 %; ``--duration 600`` for a long run).

``--compare-plain``: per size, ours, a plain single-callback node (``seg_perception.tools.plain_node``: the way a
ROS tutorial writes one; same model file, or ``--plain-model``) and a null node (``seg_perception.tools.null_node``:
ours' input handling, no model, two all-zero masks out: the transport floor) alive at once, fed the same frames
interleaved: warm-up, ``--frames`` sequential rounds (one frame to ours, then to plain, then to null, each waiting for
its mask, ``--settle`` s idle after each), alternating flood blocks of ours and plain at 2 x each node's capacity; one
table per size (rows: capacity, e2e p50/p99 sequential and flood, flood drop rate, node CPU ms per frame, RSS;
columns ours, plain, ours/plain), the null node's e2e, and ours' backend ms, stages and overhead = transport floor +
ours' own (``seg_perception.tools.bench_compare``).

``--json`` prints one JSON object (only JSON on stdout; progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seg_perception.data.synthetic import SyntheticScene
from seg_perception.ros.harness import (
    MASK,
    WARMUP_FRAMES,
    NodeRun,
    Run,
    capacity_hz,
    default_params_file,
    frame_messages,
    node_description,
    running_node,
    stream,
    summarize,
    warm_up,
)
from seg_perception.tools.bench_compare import (
    SETTLE_S,
    PlainSettings,
    compare_size,
    format_comparison,
    plain_settings,
)
from seg_perception.tools.cli import parse_size, positive_int

DEFAULT_SIZES = "512x1024,1024x2048"
AUTO_RATE_FACTOR = 0.8
FLOOD_FACTOR = 2.0
KEEP_MESSAGES = 8
"""Received messages the client keeps per topic: arrival times are recorded per run, the images are not needed."""


def synthetic_frames(height: int, width: int, count: int, seed: int = 2) -> list[np.ndarray]:
    """``count`` consecutive frames (H, W, 3) uint8 RGB of one synthetic val drive."""
    scene = SyntheticScene(height, width, seed, "val", 0)
    return [scene.render(index).image for index in range(count)]


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
    parser.add_argument("--task", choices=("semantic", "panoptic"), default="semantic", help="default semantic")
    parser.add_argument(
        "--params-file", type=Path, help="node parameters (default: the package's semantic.yaml / panoptic.yaml)"
    )
    parser.add_argument("--backend", help="node parameter override: auto | tensorrt | onnxruntime | torch")
    parser.add_argument("--device", help="node parameter override: auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", help="node parameter override: fp32 | fp16 | int8")
    parser.add_argument("--model", help="node parameter override: model_path")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="other overrides")
    parser.add_argument(
        "--compare-plain", action="store_true", help="ours vs a plain single-callback node, interleaved, with ratios"
    )
    parser.add_argument(
        "--plain-model", type=Path, help="--compare-plain: the plain node's ONNX model (default: ours')"
    )
    parser.add_argument(
        "--settle",
        type=float,
        help=f"--compare-plain: idle seconds after each sequential frame (default {SETTLE_S:g}; see the docs)",
    )
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
    ("p99", 6, lambda e: _fmt(e["node_latency_ms_p99"])),
    ("post stages", 11, lambda e: " ".join(f"{k} {_fmt(v)}" for k, v in e["stages_ms"].items()) or "-"),
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
        "node lat: the node's /diagnostics since start (a fresh node per size, warm-up included); times in ms",
        *_table(RUN_COLUMNS, result["sizes"]),
    ]
    if result["flood"]:
        lines += [
            "flood: e2e latency vs bound = backend ms + 2 frame periods; node RSS (MB) sampled every second, growth ="
            " mean of the last 10 % of samples - mean of the first 10 %",
            *_table(FLOOD_COLUMNS, result["sizes"]),
        ]
    codes = ", ".join(str(entry["node_exit_code"]) for entry in result["sizes"])
    lines.append(f"node exit code after SIGINT: {result['node_exit_code']} (per size: {codes})")
    return "\n".join(lines)


def bench_size(node: NodeRun, size: tuple[int, int], args: argparse.Namespace, progress: Callable[[str], None]) -> dict:
    """Warm-up, then one run at one input size on a node started for it; the size's result entry."""
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
    run = stream(node.client, messages, rate, count, rss=node.process.rss_mb if args.flood else None)
    entry = {"size": f"{height}x{width}", "node_ready_s": node.ready_s, "warmup_ms": warmup_ms, "capacity_hz": capacity}
    entry.update(summarize(run))
    if args.flood:
        entry.update(flood_numbers(entry, run))
    return entry


def compare_plain(
    sizes: list[tuple[int, int]],
    params_file: Path,
    params: dict[str, str],
    plain: PlainSettings,
    args: argparse.Namespace,
    progress: Callable[[str], None],
) -> int:
    """``--compare-plain``: ours, plain and null per size, one table per size (or JSON); 1 when a node failed."""
    result = {"compare_plain": True, "params_file": str(params_file), "params": params, "sizes": []}
    args.settle = SETTLE_S if args.settle is None else args.settle
    for height, width in sizes:
        progress(f"{height}x{width}: starting segmentation_node with {params_file} {params or ''}")
        try:
            images = synthetic_frames(height, width, args.distinct)
            entry = compare_size((height, width), images, params_file, params, plain, args, progress)
        except RuntimeError as error:
            print(f"seg-bench-node: error: {error}", file=sys.stderr)
            return 1
        result["sizes"].append(entry)
    print(json.dumps(result, indent=2) if args.json else format_comparison(result))
    codes = [entry[f"{side}_exit_code"] for entry in result["sizes"] for side in ("ours", "plain", "null")]
    return 0 if all(code == 0 for code in codes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sizes = [parse_size(text) for text in args.sizes.split(",") if text.strip()]
        params = node_params(args)
        if any(value is not None and value <= 0 for value in (args.rate, args.duration)):
            raise ValueError("--rate and --duration must be positive")
        params_file = args.params_file or default_params_file(args.task)
        if (args.plain_model or args.settle is not None) and not args.compare_plain:
            raise ValueError("--plain-model and --settle need --compare-plain")
        if args.settle is not None and args.settle < 0:
            raise ValueError("--settle must be >= 0")
        if args.compare_plain and (args.rate or args.flood or args.duration or args.task != "semantic"):
            raise ValueError(
                "--compare-plain has its own sequential and flood phases of a semantic node: no --rate, "
                "--flood, --duration or --task panoptic"
            )
        plain = plain_settings(params_file, params, args.plain_model) if args.compare_plain else None
    except (argparse.ArgumentTypeError, ValueError, FileNotFoundError) as error:
        parser.exit(2, f"seg-bench-node: error: {error}\n")
    if not sizes:
        parser.exit(2, "seg-bench-node: error: --sizes names no size\n")

    def progress(text: str) -> None:
        print(f"seg-bench-node: {text}", file=sys.stderr, flush=True)

    if plain is not None:
        return compare_plain(sizes, params_file, params, plain, args, progress)
    result = {
        "params_file": str(params_file),
        "params": params,
        "flood": args.flood,
        "rate": args.rate,
        "node": {},
        "sizes": [],
        "node_exit_code": None,
    }
    for size in sizes:
        progress(f"{size[0]}x{size[1]}: starting segmentation_node with {params_file} {params or ''}")
        node = None
        try:
            outputs = (MASK, "drivable_area") + (("instances", "panoptic") if args.task == "panoptic" else ())
            with running_node(params_file, params, outputs=outputs, keep=KEEP_MESSAGES) as node:
                progress(f"node ready in {node.ready_s:.1f} s")
                entry = bench_size(node, size, args, progress)
                result["node"] = node_description(node.client.latest_diagnostics())
        except RuntimeError as error:
            print(f"seg-bench-node: error: {error}", file=sys.stderr)
            if node is not None:
                print(f"segmentation_node exit code {node.exit_code}", file=sys.stderr)
            return 1
        entry["node_exit_code"] = node.exit_code
        result["sizes"].append(entry)
    result["node_exit_code"] = next((e["node_exit_code"] for e in result["sizes"] if e["node_exit_code"] != 0), 0)
    print(json.dumps(result, indent=2) if args.json else format_tables(result))
    return 0 if result["node_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
