"""``seg-bench-detection``: CPU cost and ONNX Runtime fitness of the detection models (mask_rcnn, panoptic_fpn).

Per backbone, randomly initialised (weights barely change the timings; with random weights every frame has
``detections_per_image`` = 100 detections, the most the mask head ever runs on):

* ``train_s``: {"median", "p90"} seconds per SGD iteration (forward, backward, step) at ``--train-size`` for each
  ``--train-batches`` batch size, on made-up targets (``--instances`` per image). The mask head runs on the
  positive RoIs, so the cost grows with them: at random init few proposals are positive, while a trained RPN fills
  the quota (a quarter of ``roi_batch_size_per_image``); 40 instances per image emulate that.
* per ``--sizes`` entry, batch 1: ``torch_ms`` / ``ort_ms`` {"median", "p90"} of PyTorch eager
  (``torch.inference_mode``) and ONNX Runtime (the dynamic-size export of ``export.detection_onnx``, traced once
  at the first size, no thread spin-waiting) at the model's score threshold (100 detections), ``*_ms_empty`` the
  same at score threshold 1.0 (zero detections: no mask head), all four measured interleaved as
  ``seg-bench-models`` does; ``parity``: the ONNX Runtime vs PyTorch ``DetectionParityReport``; ``empty``: the
  output shapes of ONNX Runtime at threshold 1.0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from seg_perception.export.detection_onnx import (
    DetectionGraph,
    check_detection_parity,
    export_detection_onnx,
)
from seg_perception.labels import IGNORE_TRAIN_ID, THING_TRAIN_IDS
from seg_perception.model_info import INPUT_NAME, SCORE_THRESHOLD_NAME
from seg_perception.models import build_model, list_models
from seg_perception.models.detection_backbone import RESNET_BUILDERS
from seg_perception.tools.bench_models import benchmark_session
from seg_perception.tools.cli import non_negative_int, parse_size, positive_int
from seg_perception.tools.timing import time_interleaved

SKY, BUILDING, ROAD = 10, 2, 0


def synthetic_targets(batch: int, height: int, width: int, instances: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Made-up training targets: per image ``instances`` elliptic things in random boxes (labels cycling 1..8) over
    a sky / building / road layout, with a ``semantic`` map of train ids (things painted in, a few rows 255)."""
    generator = torch.Generator().manual_seed(seed)
    rows, columns = torch.arange(height)[:, None], torch.arange(width)[None, :]
    targets = []
    for _ in range(batch):
        corner = torch.rand(instances, 2, generator=generator) * torch.tensor([width * 0.8, height * 0.8])
        extent = 8 + torch.rand(instances, 2, generator=generator) * torch.tensor([width * 0.2, height * 0.2])
        boxes = torch.cat([corner, corner + extent], 1).floor()
        masks = torch.zeros(instances, height, width, dtype=torch.uint8)
        semantic = torch.full((height, width), ROAD, dtype=torch.int64)
        semantic[: height // 3], semantic[height // 3 : height // 2] = SKY, BUILDING
        semantic[-2:] = IGNORE_TRAIN_ID
        labels = torch.arange(instances, dtype=torch.int64) % len(THING_TRAIN_IDS) + 1
        for mask, (x1, y1, x2, y2), label in zip(masks, boxes.tolist(), labels.tolist(), strict=True):
            centre_x, centre_y, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
            mask[((columns - centre_x) / half_w) ** 2 + ((rows - centre_y) / half_h) ** 2 <= 1] = 1
            semantic[mask.bool()] = THING_TRAIN_IDS[label - 1]
        targets.append({"boxes": boxes, "labels": labels, "masks": masks, "semantic": semantic})
    return targets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-bench-detection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="panoptic_fpn", choices=list_models("instance") + list_models("panoptic"))
    parser.add_argument("--backbones", default="resnet18,resnet50", help="comma-separated (default resnet18,resnet50)")
    parser.add_argument("--sizes", default="256x512", help="inference sizes HxW; '' skips inference (default 256x512)")
    parser.add_argument("--train-size", type=parse_size, default=(256, 512), help="training size (default 256x512)")
    parser.add_argument("--train-batches", default="2,4", help="training batch sizes; '' skips training (default 2,4)")
    parser.add_argument(
        "--instances",
        type=non_negative_int,
        default=6,
        help="things per training image (default 6; 40 fills the RoI heads' positive quota as a trained RPN does)",
    )
    parser.add_argument("--iterations", type=positive_int, default=5, help="timed runs (default 5)")
    parser.add_argument("--warmup", type=non_negative_int, default=1, help="untimed runs (default 1)")
    parser.add_argument("--threads", type=positive_int, default=2, help="intra-op threads (default 2)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="model option, e.g. --option fpn_channels=128 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _seconds(values: list[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def train_seconds(
    model: torch.nn.Module, batch: int, size: tuple[int, int], instances: int, iterations: int, warmup: int
) -> dict[str, float]:
    """{"median", "p90"} seconds per SGD iteration of ``model`` on one made-up batch."""
    images = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    targets = synthetic_targets(batch, *size, instances, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()
    times = []
    for iteration in range(warmup + iterations):
        start = time.perf_counter()
        optimizer.zero_grad()
        sum(model(images, targets).values()).backward()
        optimizer.step()
        if iteration >= warmup:
            times.append(time.perf_counter() - start)
    return _seconds(times)


def inference_entries(
    model: torch.nn.Module, sizes: list[tuple[int, int]], iterations: int, warmup: int, threads: int
) -> dict[str, dict]:
    """{"HxW": {"torch_ms", "ort_ms", "torch_ms_empty", "ort_ms_empty", "ort_speedup", "parity", "empty"}}."""
    model.eval()
    graph = DetectionGraph(model).eval()
    threshold = float(model.roi_heads.score_thresh)
    entries = {}
    with tempfile.TemporaryDirectory() as folder:
        path = export_detection_onnx(model, Path(folder) / "model.onnx", *sizes[0])
        session = benchmark_session(path, threads)
        for height, width in sizes:
            image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1))
            runs = {}
            for suffix, value in (("", threshold), ("_empty", 1.0)):
                feed = {INPUT_NAME: image.numpy(), SCORE_THRESHOLD_NAME: np.array(value, np.float32)}
                runs[f"torch_ms{suffix}"] = partial(_torch_run, graph, image, torch.tensor(value))
                runs[f"ort_ms{suffix}"] = partial(session.run, None, feed)
            timings = time_interleaved(runs, iterations, warmup)
            empty = runs["ort_ms_empty"]()
            parity = check_detection_parity(model, path, [image.numpy()], threshold)
            entries[f"{height}x{width}"] = {
                **timings,
                "ort_speedup": timings["torch_ms"]["median"] / timings["ort_ms"]["median"],
                "parity": dataclasses.asdict(parity),
                "empty": {out.name: list(array.shape) for out, array in zip(session.get_outputs(), empty, strict=True)},
            }
    return entries


def _torch_run(graph: DetectionGraph, image: torch.Tensor, threshold: torch.Tensor) -> None:
    with torch.inference_mode():
        graph(image, threshold)


def format_table(result: dict) -> str:
    """The result object as short aligned text tables."""
    lines = [f"{result['model']} {result['options']}, {result['threads']} threads, random weights, CPU"]
    for backbone, entry in result["backbones"].items():
        for batch, seconds in entry["train_s"].items():
            lines.append(
                f"{backbone:<9} train {result['train_size']} batch {batch}: "
                f"{seconds['median']:.2f} s/iter (p90 {seconds['p90']:.2f})"
            )
        for size, run in entry["inference"].items():
            parity = run["parity"]
            lines.append(
                f"{backbone:<9} infer {size}: torch {run['torch_ms']['median']:.0f} ms, "
                f"ORT {run['ort_ms']['median']:.0f} ms ({run['ort_speedup']:.2f}x), no detections: torch "
                f"{run['torch_ms_empty']['median']:.0f} ms, ORT {run['ort_ms_empty']['median']:.0f} ms; "
                f"parity box {parity['max_box_diff']:.2g} px, score {parity['max_score_diff']:.2g}, "
                f"mask {parity['max_mask_diff']:.2g}, detections {parity['detections']} "
                f"/ ORT {parity['onnx_detections']} ({parity['paired']:.0%} paired); empty outputs {run['empty']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    backbones = [name.strip() for name in args.backbones.split(",") if name.strip()]
    if not backbones or set(backbones) - set(RESNET_BUILDERS):
        parser.exit(2, f"seg-bench-detection: error: --backbones takes {', '.join(sorted(RESNET_BUILDERS))}\n")
    try:
        options = {key: json.loads(value) for key, value in (option.split("=", 1) for option in args.option)}
        batches = [positive_int(text) for text in args.train_batches.split(",") if text.strip()]
        sizes = [parse_size(text) for text in args.sizes.split(",") if text.strip()]
    except (ValueError, argparse.ArgumentTypeError) as error:
        parser.exit(2, f"seg-bench-detection: error: {error}\n")
    torch.set_num_threads(args.threads)
    result = {
        "model": args.model,
        "options": options,
        "threads": args.threads,
        "train_size": "x".join(map(str, args.train_size)),
        "iterations": args.iterations,
        "warmup": args.warmup,
        "backbones": {},
    }
    for backbone in backbones:
        torch.manual_seed(0)
        model = build_model(args.model, backbone=backbone, **options)
        entry = {"params_m": sum(p.numel() for p in model.parameters()) / 1e6, "train_s": {}}
        for batch in batches:
            print(f"seg-bench-detection: {backbone} training, batch {batch} ...", file=sys.stderr, flush=True)
            entry["train_s"][batch] = train_seconds(
                model, batch, args.train_size, args.instances, args.iterations, args.warmup
            )
        print(f"seg-bench-detection: {backbone} inference ...", file=sys.stderr, flush=True)
        entry["inference"] = (
            inference_entries(model, sizes, args.iterations, args.warmup, args.threads) if sizes else {}
        )
        result["backbones"][backbone] = entry
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
