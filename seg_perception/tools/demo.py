"""``seg-demo``: the node end to end on synthetic data, published live (``make demo`` replays a bag: seg-replay-bench).

1. Generate a synthetic val drive in the Cityscapes layout (default: exactly the model card's val set, 10
   sequences x 5 frames at 256x512, seed 2) and a preview mosaic; score its ground truth written as
   predictions in the three official formats (every metric must come out 1.0: a check of the evaluators).
2. Start ``segmentation_node`` as its own process with ``config/semantic.yaml`` (``--task panoptic``:
   ``config/panoptic.yaml``, the shipped Panoptic FPN; backend ``auto``: TensorRT where a GPU and TensorRT exist,
   else ONNX Runtime), publish every frame through rclpy at ``--rate`` Hz (each stamped now; the node keeps only
   the newest frame, so too high a rate drops frames, and the summary says so), collect ``semantic/mask``,
   ``drivable_area`` and ``overlay`` (panoptic: also ``instances`` and ``panoptic``).
3. Print frames in / out / dropped, achieved fps, stamp -> mask latency here (p50/p99) and the node's own
   /diagnostics numbers since it started (the 3 warm-up frames included), mIoU of the masks vs the ground truth
   (train ids) and drivable-area IoU (panoptic: PQ, PQ_th, PQ_st, AP, AP50 of the published instances and
   panoptic maps too), write a few overlay PNGs, stop the node with SIGINT. Exit code 1 when the node fails or
   the headline metric is below its floor (mIoU 0.5; panoptic PQ 0.3).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data.cityscapes import (
    CityscapesDataset,
    instance_targets,
    panoptic_target,
    read_instance_ids,
    read_label_ids,
)
from seg_perception.data.synthetic import generate_split, write_preview
from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes
from seg_perception.evaluation.formats import (
    write_instance_predictions,
    write_panoptic_predictions,
    write_semantic_prediction,
)
from seg_perception.evaluation.instance import InstancePrediction
from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import CLASS_NAMES, IGNORE_TRAIN_ID, label_ids_to_train_ids
from seg_perception.ros.conversions import image_to_rgb, mono8_array
from seg_perception.ros.harness import (
    MASK,
    capacity_hz,
    default_params_file,
    frame_messages,
    next_diagnostics,
    node_description,
    panoptic_scores,
    running_node,
    stream,
    summarize,
    warm_up,
)
from seg_perception.tools.cli import non_negative_int, parse_size, positive_int

SPLIT = "val"
DRIVABLE = "drivable_area"
OVERLAY = "overlay"
ROAD_TRAIN_ID = CLASS_NAMES.index("road")
FLOORS = {"semantic": ("mIoU", 0.5), "panoptic": ("PQ", 0.3)}
"""Per task, the headline metric and the value below which the demo fails."""
DETECTION_OUTPUTS = ("instances", "panoptic")
WARMUP_FRAMES = 3
HEADLINE = ("mIoU", "mDice", "pixel_accuracy", "fwIoU", "PQ", "SQ", "RQ", "AP", "AP50")


def write_ground_truth_as_predictions(root: Path, out: Path) -> dict[str, Path]:
    """Every val frame's gt -> official prediction formats under ``out``; returns the folders."""
    folders = {"semantic": out / "semantic", "instance": out / "instance", "panoptic": out / "panoptic"}
    panoptic_frames = []
    for sample in CityscapesDataset(root, SPLIT).samples:
        write_semantic_prediction(
            folders["semantic"], sample.stem, label_ids_to_train_ids(read_label_ids(sample.label_ids))
        )
        instance_ids = read_instance_ids(sample.instance_ids)
        targets = instance_targets(instance_ids)
        instances = [
            InstancePrediction(m, int(lb), 1.0) for m, lb in zip(targets.masks, targets.label_ids, strict=True)
        ]
        write_instance_predictions(folders["instance"], sample.stem, instances)
        panoptic = panoptic_target(instance_ids)
        panoptic_frames.append((sample.stem, panoptic.segment_ids, panoptic.segments))
    write_panoptic_predictions(out / "panoptic.json", folders["panoptic"], panoptic_frames)
    return folders


def check_evaluators(root: Path, out: Path) -> tuple[bool, dict]:
    """Ground truth scored as prediction in the official formats: (every headline metric 1.0, metrics)."""
    folders = write_ground_truth_as_predictions(root, out)
    metrics = evaluate_cityscapes(
        root,
        SPLIT,
        semantic_dir=folders["semantic"],
        instance_dir=folders["instance"],
        panoptic_json=out / "panoptic.json",
        panoptic_dir=folders["panoptic"],
    )
    return all(abs(metrics[key] - 1.0) < 1e-12 for key in HEADLINE), metrics


def score_masks(client, stamps: list[int], truths: list[np.ndarray]) -> tuple[dict, float | None, int]:
    """mIoU etc. of the received masks vs the train-id ground truth, drivable-area IoU (mask 255 vs gt road, gt
    ignore pixels left out) over the frames with a drivable_area, and the number of masks scored."""
    evaluator = SemanticEvaluator()
    masks, drivable = client.received[("", MASK)], client.received[("", DRIVABLE)]
    intersection = union = scored = 0
    for stamp, truth in zip(stamps, truths, strict=True):
        if stamp in masks:
            evaluator.process(mono8_array(masks[stamp]), truth)
            scored += 1
        if stamp in drivable:
            valid = truth != IGNORE_TRAIN_ID
            predicted, road = mono8_array(drivable[stamp])[valid] == 255, truth[valid] == ROAD_TRAIN_ID
            intersection += int(np.count_nonzero(predicted & road))
            union += int(np.count_nonzero(predicted | road))
    return evaluator.evaluate(), (intersection / union if union else None), scored


def write_overlays(client, stamps: list[int], stems: list[str], folder: Path, count: int) -> list[Path]:
    """Up to ``count`` received overlays spread over the drive, as RGB PNGs ``<stem>_overlay.png``."""
    received = client.received[("", OVERLAY)]
    have = [index for index, stamp in enumerate(stamps) if stamp in received]
    if not have or count == 0:
        return []
    picks = sorted({have[i] for i in np.linspace(0, len(have) - 1, min(count, len(have))).round().astype(int)})
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in picks:
        path = folder / f"{stems[index]}_overlay.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(image_to_rgb(received[stamps[index]]), cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seg-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/demo", help="output folder (default build/demo)")
    parser.add_argument("--sequences", type=positive_int, default=10, help="default 10 (the model card's val set)")
    parser.add_argument("--frames-per-sequence", type=positive_int, default=5, help="default 5")
    parser.add_argument("--size", type=parse_size, default=(256, 512), help="HxW (default 256x512, the model's)")
    parser.add_argument("--seed", type=int, default=2, help="default 2 (the model card's val seed)")
    parser.add_argument("--rate", type=float, default=5.0, help="publish rate in Hz (default 5)")
    parser.add_argument("--overlays", type=non_negative_int, default=4, help="overlay PNGs to write (default 4)")
    parser.add_argument("--task", choices=sorted(FLOORS), default="semantic", help="which node (default semantic)")
    parser.add_argument(
        "--params-file", type=Path, help="node parameters (default: the package's semantic.yaml / panoptic.yaml)"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.exit(2, "seg-demo: error: --rate must be positive\n")
    started = time.monotonic()
    out = Path(args.out)
    root = out / "cityscapes"
    height, width = args.size

    synth = generate_split(root, SPLIT, args.sequences, args.frames_per_sequence, height, width, args.seed)
    preview = write_preview(root, SPLIT, synth.stems, out / "preview_val.png")
    print(
        f"synthetic drive: {synth.frames} frames {height}x{width} (seed {args.seed}, {args.sequences} x "
        f"{args.frames_per_sequence}) in {root} ({synth.frames_per_second:.1f} frames/s); preview {preview}"
    )
    perfect, metrics = check_evaluators(root, out / "predictions")
    print(
        f"evaluator check, ground truth scored as prediction ({metrics['images']} images, "
        f"{', '.join(HEADLINE)}): all 1.0: {'yes' if perfect else 'NO'}"
    )

    frames = [CityscapesDataset(root, SPLIT)[index] for index in range(synth.frames)]
    messages = frame_messages([frame.image for frame in frames])
    params_file = args.params_file or default_params_file(args.task)
    outputs = (MASK, DRIVABLE, OVERLAY) + (DETECTION_OUTPUTS if args.task == "panoptic" else ())
    node = None
    try:
        with running_node(params_file, {}, outputs=outputs) as node:
            capacity = capacity_hz(warm_up(node.client, messages, WARMUP_FRAMES))
            described = node_description(node.client.diagnostics[next_diagnostics(node.client)])
            print(
                f"segmentation_node ({params_file}): {described['model']} via {described['backend']} on "
                f"{described['device']} {described['precision']}, model input {described['model_input']}; ready in "
                f"{node.ready_s:.1f} s; capacity ~{capacity:.1f} frames/s ({WARMUP_FRAMES} warm-up frames, not counted "
                "here)"
            )
            if args.rate > capacity:
                print(f"  note: --rate {args.rate:g} Hz is above that capacity: the node will drop frames")
            run = stream(node.client, messages, args.rate, len(messages))
            numbers = summarize(run)
            scores, drivable_iou, scored = score_masks(node.client, run.stamps, [f.train_ids for f in frames])
            panoptic = panoptic_scores(node.client, run.stamps, frames)[0] if args.task == "panoptic" else {}
            overlays = write_overlays(node.client, run.stamps, synth.stems, out / "overlays", args.overlays)
    except RuntimeError as error:
        print(f"seg-demo: error: {error}", file=sys.stderr)
        if node is not None:
            print(f"segmentation_node exit code {node.exit_code}", file=sys.stderr)
        return 1

    published, masks = numbers["published"], numbers["masks"]
    print(
        f"frames: in {published} / out {masks} / dropped {published - masks} (published at "
        f"{numbers['publish_rate_hz'] or 0:.2f} Hz; node received {numbers['frames_in']}, node dropped "
        f"{numbers['node_dropped']}; output {numbers['fps_out'] or 0:.2f} fps)"
    )
    print(
        f"latency stamp -> mask here: p50 {_ms(numbers['e2e_ms_p50'])}, p99 {_ms(numbers['e2e_ms_p99'])}; "
        f"node diagnostics since start (warm-up included): infer p50 {_ms(numbers['backend_ms'])}, latency p50 "
        f"{_ms(numbers['node_latency_ms_p50'])}, p99 {_ms(numbers['node_latency_ms_p99'])}"
    )
    miou = scores["mIoU"]
    drivable = "n/a" if drivable_iou is None else f"{drivable_iou:.3f}"
    if miou is None:
        print("mIoU n/a: no masks received")
    else:
        print(
            f"mIoU {miou:.3f} over {scored} masks (SemanticEvaluator, train ids), pixel accuracy "
            f"{scores['pixel_accuracy']:.3f}; drivable-area IoU {drivable} (mask 255 vs gt road)"
        )
    if panoptic:
        print(
            "panoptic through ROS: "
            + ", ".join(f"{key} {_number(panoptic[key])}" for key in ("PQ", "PQ_th", "PQ_st", "SQ", "RQ"))
            + f"; instances (published, fused): AP {_number(panoptic['AP'])}, AP50 {_number(panoptic['AP50'])}"
        )
    classes = [f"{name} {iou:.2f}" for name, iou in scores["per_class_iou"].items() if iou is not None]
    for start in range(0, len(classes), 7):
        print(("per-class IoU: " if start == 0 else "               ") + ", ".join(classes[start : start + 7]))
    print("overlays (RGB):" + "".join(f"\n  {path}" for path in overlays))
    print(f"segmentation_node exit code after SIGINT: {node.exit_code}")
    print(f"total wall time {time.monotonic() - started:.1f} s")
    metric, floor = FLOORS[args.task]
    value = (panoptic or scores)[metric]
    ok = perfect and node.exit_code == 0 and masks > 0 and value is not None and value >= floor
    if not ok:
        print(f"seg-demo: FAILED (evaluator check, node exit code, no masks or {metric} < {floor})", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
