"""``seg-predict``: run an exported ONNX model (ONNX Runtime, no torch) over the frames of a
Cityscapes-layout split and write its predictions in the official formats, ready for ``seg-eval``.

Semantic models: ``--out`` is the folder of ``<stem>_labelIds.png`` predictions (``seg-eval --semantic-dir``).
Instance and panoptic models write all three formats under ``--out P``: ``P/semantic/`` (labelIds PNGs: stuff of
the semantic branch, things of the fused instances), ``P/instance/`` (``<stem>.txt`` + mask PNGs: every detection
at or above ``--detection-threshold``, unfused, as the official instance evaluator expects; ``--instances fused``:
the instances the node publishes instead, fused and at or above the sidecar's score threshold) and
``P/panoptic/<name>.json`` with its PNG folder ``P/panoptic/<name>/`` (COCO panoptic; ``<name>`` the model file's
stem), fused with the sidecar's thresholds. So one run gives what ``seg-eval`` scores in one pass:

    seg-eval --gt ROOT --split val --semantic-dir P/semantic --instance-dir P/instance \\
        --panoptic-json P/panoptic/NAME.json --panoptic-dir P/panoptic/NAME

The model's sidecar ``FILE.onnx.json`` (written by ``seg-export``) gives mean/std, classes, the task and the
inference size (``input_size`` unless ``--size``); predictions come back at each frame's own resolution.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from seg_perception.backends import create_backend
from seg_perception.data.cityscapes import CityscapesDataset, read_image
from seg_perception.data.layout import SPLITS
from seg_perception.evaluation.formats import (
    write_instance_predictions,
    write_panoptic_predictions,
    write_semantic_prediction,
)
from seg_perception.labels import CLASS_NAMES
from seg_perception.model_info import read_model_info
from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.pipeline.loading import check_model
from seg_perception.pipeline.panoptic import PanopticPipeline, evaluation_inputs
from seg_perception.pipeline.semantic import SemanticPipeline
from seg_perception.tools.cli import parse_size, positive_int

DETECTION_THRESHOLD = 0.05
"""Detections scored for mask AP: as low as the models' own eval-mode filter."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", required=True, type=Path, help="model exported by seg-export (with its .json)")
    parser.add_argument("--gt", required=True, help="Cityscapes-layout root whose frames to segment")
    parser.add_argument("--split", default="val", choices=SPLITS)
    parser.add_argument("--out", required=True, type=Path, help="output folder (see above)")
    parser.add_argument("--size", type=parse_size, help="inference HxW (default: the sidecar's input_size)")
    parser.add_argument("--threads", type=positive_int, default=2, help="ONNX Runtime intra-op threads (default 2)")
    parser.add_argument(
        "--detection-threshold",
        type=float,
        default=DETECTION_THRESHOLD,
        help=f"instance/panoptic models: lowest score of the detections written for AP (default {DETECTION_THRESHOLD})",
    )
    parser.add_argument(
        "--instances",
        choices=("all", "fused"),
        default="all",
        help="instance/panoptic models: every detection (default) or the node's published instances",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        info = read_model_info(args.onnx)
        if not info.is_detection and info.class_names != CLASS_NAMES:
            raise ValueError(f"{args.onnx}: not a Cityscapes 19-class semantic model ({info.num_classes} classes)")
        samples = CityscapesDataset(args.gt, args.split, require_gt=False).samples
        size = args.size or info.input_size
        config = SegmentationConfig(input_size=size, **_fusion_settings(info))
        backend = create_backend("onnxruntime", args.onnx, device="cpu", intra_op_threads=args.threads)
        check_model(backend, info, size)
    except (OSError, ValueError, RuntimeError) as error:
        parser.exit(2, f"seg-predict: error: {error}\n")
    start = time.perf_counter()
    with backend:
        if info.is_detection:
            pipeline = PanopticPipeline(backend, info, config, detection_threshold=args.detection_threshold)
            _predict_panoptic(pipeline, samples, args.out, args.onnx.stem, args.instances == "fused")
        else:
            _predict_semantic(SemanticPipeline(backend, info, config), samples, args.out)
    speed = len(samples) / (time.perf_counter() - start)
    print(f"seg-predict: {len(samples)} frames at {size[0]}x{size[1]} -> {args.out} ({speed:.1f} frames/s)")
    return 0


def _fusion_settings(info) -> dict:
    """The sidecar's fusion thresholds as SegmentationConfig fields (the config's defaults where it has none)."""
    names = {"score_threshold": "instance_score_threshold", "overlap_threshold": "instance_overlap_threshold"}
    return {names.get(key, key): value for key, value in info.thresholds.items()}


def _predict_semantic(pipeline: SemanticPipeline, samples, out: Path) -> None:
    for sample in tqdm(samples, desc="predict", unit="frame"):
        labels = pipeline.finish(pipeline.infer([read_image(sample.image)]), 0).labels
        write_semantic_prediction(out, sample.stem, labels)


def _predict_panoptic(pipeline: PanopticPipeline, samples, out: Path, name: str, fused: bool) -> None:
    panoptic = []
    for sample in tqdm(samples, desc="predict", unit="frame"):
        detections, result = pipeline.finish_with_detections(pipeline.infer([read_image(sample.image)]), 0)
        segments, instances = evaluation_inputs(detections, result, fused)
        write_semantic_prediction(out / "semantic", sample.stem, result.labels)
        write_instance_predictions(out / "instance", sample.stem, instances)
        panoptic.append((sample.stem, result.segment_ids, segments))
    write_panoptic_predictions(out / "panoptic" / f"{name}.json", out / "panoptic" / name, panoptic)


if __name__ == "__main__":
    sys.exit(main())
