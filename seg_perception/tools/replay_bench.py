"""``seg-replay-bench``: replay a rosbag2 drive into ``segmentation_node`` and report how fast, how late and how
good its outputs are, in one run.

    seg-replay-bench --bag BAG --config config/panoptic.yaml --out DIR [--rate R | --sweep HZ,HZ,... | --peak]

The node starts in its own process exactly as the launch file would (same executable, same params file, plus
``--backend`` / ``-p``). The bag's camera frames (``--image-topic``, default: its one camera topic) are loaded into
memory first and published through rclpy with the bag's timing scaled by ``--rate`` (``seg_perception.ros.replay``:
raw images as recorded, compressed ones decoded and sent as rgb8; stamps set to the publishing time). ``--sweep``
runs fixed rates in Hz instead, ``--peak`` searches the highest rate with at most 5 % of the frames lost
(bisection between a lower and an upper rate, as NVIDIA's ros2_benchmark does). Every output the node publishes
for its task is subscribed and timed (``tools/replay_report.py``); where the bag has ground truth, the first run's
outputs are scored against it (``ros/replay_scoring.py``) and written in the official formats so ``seg-eval``
reproduces the numbers. ``--record BAG`` writes the outputs of the first run to a bag.

Writes DIR/report.json, DIR/report.md, DIR/plots/*.png, DIR/overlays/*.png and DIR/eval/; exit 2 with one line
for a bag it cannot read, 1 when the node fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from tqdm import tqdm

from seg_perception.data.bags import COMPRESSED_IMAGE, BagError, read_bag
from seg_perception.ros.conversions import image_to_rgb, rgb8_msg
from seg_perception.ros.harness import (
    MASK,
    capacity_hz,
    default_params_file,
    model_task_of,
    next_diagnostics,
    node_description,
    running_node,
    warm_up,
)
from seg_perception.ros.replay import ReplayFrame, replay
from seg_perception.ros.replay_scoring import ReplayScorer
from seg_perception.tools import replay_report
from seg_perception.tools.cli import non_negative_int, positive_int

OUTPUTS = {
    "semantic": (MASK, "drivable_area", "overlay"),
    "panoptic": (MASK, "drivable_area", "overlay", "instances", "panoptic"),
}
PEAK_PROBES = 5
"""Bisection steps of ``--peak`` after its two bracket runs."""
PEAK_FRAMES = 40
"""Frames replayed per ``--peak`` probe (the first ones of the bag)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-replay-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bag", required=True, type=Path, help="rosbag2 folder (or .mcap / .db3 file)")
    parser.add_argument("--config", type=Path, help="node parameters (default: the package's panoptic.yaml)")
    parser.add_argument("--out", required=True, type=Path, help="report folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, default=1.0, help="x the bag's timing (default 1.0)")
    mode.add_argument("--sweep", help="comma-separated fixed rates in Hz, one run each")
    mode.add_argument("--peak", action="store_true", help="search the highest rate with <= 5 %% frames lost")
    parser.add_argument("--backend", help="node parameter override: auto | tensorrt | onnxruntime | torch")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="other overrides")
    parser.add_argument("--image-topic", help="the bag's camera topic (default: its one camera topic)")
    parser.add_argument("--frames", type=positive_int, help="replay only the first N frames")
    parser.add_argument("--overlays", type=non_negative_int, default=4, help="overlay PNGs to keep (default 4)")
    parser.add_argument("--record", type=Path, help="write the first run's outputs to this bag")
    return parser


def load_frames(path: Path, topic: str | None, limit: int | None):
    """(bag contents, [ReplayFrame] (rgb8 / raw Images), {frame index: (image, label ids, instance ids)})."""
    contents = read_bag(path, topic)
    frames, truth = [], {}
    for index, frame in enumerate(contents.frames()):
        if limit is not None and index >= limit:
            break
        raw = frame.raw
        if frame.msgtype == COMPRESSED_IMAGE:  # the node takes raw images: decode here, before timing starts
            raw = serialize_message(rgb8_msg(frame.image, deserialize_message(frame.raw, CompressedImage).header))
        frames.append(ReplayFrame(bytes(raw), frame.stamp_ns, index))
        if frame.label_ids is not None:
            truth[index] = (frame.image, frame.label_ids, frame.instance_ids)
    if not frames:
        raise BagError(f"{path}: {contents.image_topic} holds no frames")
    return contents, frames, truth


def _rates(args: argparse.Namespace, bag_hz: float | None) -> list[tuple[str, float]]:
    if args.sweep:
        hz = [float(text) for text in args.sweep.split(",") if text.strip()]
        if not hz or min(hz) <= 0 or not bag_hz:
            raise ValueError("--sweep takes positive rates in Hz (and a bag of at least two frames)")
        return [(f"{value:g} Hz", value / bag_hz) for value in hz]
    if args.rate <= 0:
        raise ValueError("--rate must be positive")
    return [("replay", args.rate)]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        params = dict(item.split(":=", 1) for item in args.param)
        if args.backend:
            params["backend"] = args.backend
        params_file = args.config or default_params_file("panoptic")
        task = "panoptic" if model_task_of(params_file, params) != "semantic" else "semantic"
        contents, frames, truth = load_frames(args.bag, args.image_topic, args.frames)
        stamps = [frame.bag_stamp_ns for frame in frames]
        bag_hz = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9) if stamps[-1] > stamps[0] else None
        rates = _rates(args, bag_hz)
    except (BagError, OSError, ValueError) as error:
        parser.exit(2, f"seg-replay-bench: error: {error}\n")
    outputs = OUTPUTS[task]
    report = {
        "bag": str(args.bag),
        "image_topic": contents.image_topic,
        "frames": len(frames),
        "bag_rate_hz": bag_hz,
        "params_file": str(params_file),
        "params": params,
        "task": task,
        "runs": {},
        "files": [],
    }
    overlays = _OverlayKeeper(args.out / "overlays", len(frames), args.overlays)
    scorer = ReplayScorer(truth, task == "panoptic", args.out / "eval") if truth else None
    recorder = None
    try:
        with running_node(params_file, params, outputs=outputs, keep=8) as node:
            client = node.client
            client.prime({"": deserialize_message(frames[0].raw, Image)})
            status = client.latest_diagnostics() or client.diagnostics[next_diagnostics(client)]
            report["node"] = node_description(status) | {"task": task}
            if args.record:
                from seg_perception.tools.replay_record import OutputRecorder

                recorder = OutputRecorder(args.record)
            if args.peak:
                report["peak"] = _peak(client, node.process, frames, outputs, bag_hz)
                rates = [(f"peak {report['peak']['rate_hz']:.2f} Hz", report["peak"]["rate"])]
            for run_index, (name, rate) in enumerate(rates):
                first = run_index == 0

                def on_output(index, output, msg, first=first):
                    if first:
                        if scorer is not None:
                            scorer.add(index, output, msg)
                        overlays.add(index, output, msg)
                        if recorder is not None:
                            recorder.add(output, msg)

                with tqdm(total=len(frames), desc=name, unit="frame", file=sys.stderr) as bar:
                    run = replay(client, node.process, frames, rate, outputs, progress=bar.update, on_output=on_output)
                report["runs"][name] = replay_report.run_numbers(run)
                if first:
                    report["files"] += [str(path) for path in replay_report.write_run_plots(run, args.out / "plots")]
        report["node_exit_code"] = node.exit_code
    except RuntimeError as error:
        print(f"seg-replay-bench: error: {error}", file=sys.stderr)
        return 1
    finally:
        if recorder is not None:
            report["files"].append(str(recorder.close()))
    report["accuracy"] = _accuracy(scorer, rates[0][0], args.out / "eval")
    iou_plot = replay_report.write_iou_plot(report["accuracy"], args.out / "plots")
    report["files"] += [str(iou_plot)] if iou_plot else []
    report["files"] += [str(path) for path in overlays.paths]
    json_path, md_path = replay_report.write_report(report, args.out)
    print(replay_report.markdown(report))
    print(f"seg-replay-bench: report {json_path}, {md_path}")
    return 0 if report["node_exit_code"] == 0 else 1


def _peak(client, process, frames, outputs, bag_hz: float | None) -> dict:
    """The highest publishing rate (Hz) at which at most LOSS_LIMIT of the first PEAK_FRAMES frames are lost:
    bracketed around the node's capacity (from sequential warm-up frames), then bisected (geometric means)."""
    messages = [deserialize_message(frame.raw, Image) for frame in frames[:3]]
    capacity = capacity_hz(warm_up(client, messages, len(messages)))
    probe_frames = frames[:PEAK_FRAMES]
    spacing = 1.0 / bag_hz if bag_hz else 1.0
    probe_frames = [ReplayFrame(f.raw, round(i * spacing * 1e9), f.index) for i, f in enumerate(probe_frames)]
    probes = []

    def lost(hz: float) -> float:
        run = replay(client, process, probe_frames, hz * spacing, outputs)
        fraction = replay_report.run_numbers(run)["lost_fraction"]
        probes.append((round(hz, 3), round(fraction, 4)))
        return fraction

    good, bad = 0.5 * capacity, 3.0 * capacity
    if lost(good) > replay_report.LOSS_LIMIT:
        good = 0.0
    if lost(bad) <= replay_report.LOSS_LIMIT:
        good = bad  # keeps up even there: reported as at least this
    else:
        for _ in range(PEAK_PROBES):
            middle = (good * bad) ** 0.5 if good > 0 else bad / 2
            if lost(middle) <= replay_report.LOSS_LIMIT:
                good = middle
            else:
                bad = middle
    rate_hz = max(good, 1e-3)
    return {
        "rate_hz": rate_hz,
        "rate": rate_hz / bag_hz if bag_hz else rate_hz,
        "capacity_hz": capacity,
        "probes": probes,
    }


def _accuracy(scorer: ReplayScorer | None, run_name: str, eval_dir: Path) -> dict:
    """The report's accuracy section: the scorer's numbers and the seg-eval command that reproduces them."""
    if scorer is None:
        return {"frames_scored": 0, "note": "the bag carries no ground truth: no accuracy"}
    result = {**scorer.result(), "run": run_name}
    predictions = eval_dir / "predictions"
    command = f"seg-eval --gt {eval_dir / 'ground_truth'} --split val --semantic-dir {predictions / 'semantic'}"
    if "panoptic" in result:
        command += (
            f" --instance-dir {predictions / 'instance'} --panoptic-json {predictions / 'panoptic.json'}"
            f" --panoptic-dir {predictions / 'panoptic'}"
        )
    result["seg_eval"] = command
    return result


class _OverlayKeeper:
    """Writes the overlays of up to ``count`` frames spread over the bag as ``<folder>/frame_<index>.png``."""

    def __init__(self, folder: Path, frames: int, count: int) -> None:
        self.folder, self.paths = folder, []
        self.wanted = (
            set(np.linspace(0, frames - 1, min(count, frames)).round().astype(int).tolist()) if count else set()
        )

    def add(self, index: int, output: str, msg) -> None:
        if output != "overlay" or index not in self.wanted:
            return
        self.wanted.discard(index)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"frame_{index:06d}.png"
        if cv2.imwrite(str(path), cv2.cvtColor(image_to_rgb(msg), cv2.COLOR_RGB2BGR)):
            self.paths.append(path)


if __name__ == "__main__":
    sys.exit(main())
