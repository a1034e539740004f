"""``seg-export``: export a model-zoo checkpoint to ONNX, check it against PyTorch, write a JSON sidecar.

A semantic model's graph takes "image" (N, 3, H, W) float32, RGB normalised as ``(pixel / 255 - mean) / std``,
and returns "logits" (N, C, H, W). An instance or panoptic model's graph (always free H and W, one frame per call)
takes "image" (1, 3, H, W) and "score_threshold" () and returns boxes, scores, labels, 28x28 masks (and the
semantic logits): see ``seg_perception.model_info``; its parity check compares boxes, scores, classes, masks and
the fused panoptic map. ``--int8-weights`` stores the large weights as int8 (``export.weight_compression``; the
parity check then runs on that graph). What the checkpoint holds (model, options, classes, mean/std) comes from
``seg_perception.models.model_spec``; ``--model`` names the model of a raw state_dict and ``--option`` overrides
options (``--option num_classes=N`` the class count). The sidecar ``FILE.onnx.json`` is a
``seg_perception.model_info.ModelInfo`` (task, classes, thresholds, input size), parity numbers included.

Exit status 2 with a message naming the problem for a missing or unreadable checkpoint, an unknown model or
option, weights that do not fit the model or a bad ``--parity-images`` value.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import yaml

from seg_perception.data.cityscapes import CityscapesDataset, read_image
from seg_perception.export import check_parity, export_onnx
from seg_perception.export.detection_onnx import check_detection_parity, export_detection_onnx
from seg_perception.export.weight_compression import compress_onnx_weights
from seg_perception.model_input import normalize_image
from seg_perception.models import CheckpointError, build_model, list_models, load_checkpoint, model_spec, model_task
from seg_perception.models.checkpoint import model_info
from seg_perception.pipeline.panoptic import FusionSettings
from seg_perception.tools.cli import positive_int

"""Frames taken (sorted by name) from a Cityscapes-layout root for the parity check."""
PARITY_SPLITS = ("val", "train", "test")
"""Splits searched in this order for parity frames; the first with a leftImg8bit folder is used."""


def _option(text: str) -> tuple[str, object]:
    """``key=value`` -> (key, value parsed as YAML: ``aux=false``, ``atrous_rates=[6,12,18]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form key=value")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: value is not valid YAML ({error})") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=f"model name ({', '.join(list_models(None))}); default: the checkpoint's")
    parser.add_argument("--checkpoint", required=True, type=Path, help="state_dict or {'model': ...} .pt file")
    parser.add_argument("--out", required=True, type=Path, help="output FILE.onnx (sidecar: FILE.onnx.json)")
    parser.add_argument("--height", type=positive_int, default=512, help="traced input height (default 512)")
    parser.add_argument("--width", type=positive_int, default=1024, help="traced input width (default 1024)")
    parser.add_argument(
        "--dynamic", action="store_true", help="free batch, height and width axes (detection graphs: always free H/W)"
    )
    parser.add_argument(
        "--parity-score-threshold",
        type=float,
        default=0.05,
        help="detection models: the score threshold of the parity runs (default 0.05)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--int8-weights",
        action="store_true",
        help="store large weights as int8 per channel + DequantizeLinear (a quarter of the size; fp32 arithmetic)",
    )
    parser.add_argument(
        "--option", type=_option, action="append", default=[], metavar="KEY=VALUE", help="model option (repeatable)"
    )
    parser.add_argument(
        "--parity-images",
        default="3",
        metavar="DIR_OR_N",
        help="N random images (default 3) or a Cityscapes-layout root (its first --parity-frames frames); with "
        "--dynamic every second input is at another, odd size",
    )
    parser.add_argument(
        "--parity-frames", type=positive_int, default=3, help="frames of a --parity-images root to check (default 3)"
    )
    return parser


def _parity_sizes(height: int, width: int, dynamic: bool) -> list[tuple[int, int]]:
    """The traced size, plus an odd size about 3/4 of it for a dynamic export (no trace-time sizes left)."""
    return [(height, width), (height * 3 // 4 + 1, width * 3 // 4 + 1)] if dynamic else [(height, width)]


def _parity_frames(spec: str, height: int, width: int, max_frames: int) -> tuple[str, list[np.ndarray]]:
    """(description, (h, w, 3) uint8 RGB images) for ``--parity-images``: N random (height, width) images or the
    frames of a Cityscapes-layout root."""
    if spec.isdigit():
        count = int(spec)
        if count < 1:
            raise ValueError("--parity-images must be a count >= 1 or a Cityscapes-layout root")
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]
        return f"{count} random images", images
    root = Path(spec)
    for split in PARITY_SPLITS:
        if (root / "leftImg8bit" / split).is_dir():
            samples = CityscapesDataset(root, split, require_gt=False).samples[:max_frames]
            return f"{len(samples)} frames of {root} ({split})", [read_image(sample.image) for sample in samples]
    raise FileNotFoundError(
        f"--parity-images {spec!r} is neither a count nor a Cityscapes-layout root (no leftImg8bit/{{val,train,test}})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = model_spec(args.checkpoint, args.model, dict(args.option))
        name, options, num_classes = spec.name, spec.options, spec.num_classes
        model = load_checkpoint(build_model(name, num_classes, **options), args.checkpoint).eval()
        source, frames = _parity_frames(args.parity_images, args.height, args.width, args.parity_frames)
    except (OSError, ValueError, TypeError, CheckpointError) as error:
        parser.exit(2, f"seg-export: error: {error}\n")

    detection = model_task(name) != "semantic"
    dynamic = args.dynamic or detection
    if detection:
        export_detection_onnx(model, args.out, args.height, args.width, opset=args.opset)
    else:
        export_onnx(model, args.out, args.height, args.width, dynamic=dynamic, opset=args.opset)
    shape = "dynamic H/W, one frame per call" if detection else "dynamic N/H/W" if dynamic else "fixed size"
    if args.int8_weights:
        print(f"int8 weights: {compress_onnx_weights(args.out)} weight tensors, {args.out.stat().st_size / 1e6:.1f} MB")
    print(
        f"exported {name} (options {options}, {num_classes} classes) from {args.checkpoint} -> {args.out} "
        f"(traced at {args.height}x{args.width}, {shape}, opset {args.opset})"
    )

    info = model_info(spec, (args.height, args.width), str(args.checkpoint.resolve()))
    info = dataclasses.replace(info, dynamic=dynamic, opset=args.opset)
    sizes = _parity_sizes(args.height, args.width, dynamic)
    inputs = [normalize_image(frame, sizes[i % len(sizes)], spec.mean, spec.std) for i, frame in enumerate(frames)]
    used_sizes = sorted({tuple(array.shape[2:]) for array in inputs})
    at = f"parity on {source} at {', '.join(f'{h}x{w}' for h, w in used_sizes)}"
    if detection:
        report = check_detection_parity(model, args.out, inputs, args.parity_score_threshold, info=info)
        semantic = "none" if report.max_semantic_diff is None else f"{report.max_semantic_diff:.3g}"
        print(
            f"{at}: {sum(report.detections)} torch / {sum(report.onnx_detections)} ORT detections, "
            f"{100 * report.paired:.1f}% paired, max box diff {report.max_box_diff:.3g} px, "
            f"score {report.max_score_diff:.3g}, mask {report.max_mask_diff:.3g} (lowest mask IoU "
            f"{report.min_mask_iou:.4f}), "
            f"semantic logits {semantic}, "
            f"panoptic maps equal on {100 * report.panoptic_agreement:.3f}% of pixels"
        )
        info = dataclasses.replace(info, thresholds=dataclasses.asdict(FusionSettings()))
    else:
        report = check_parity(model, args.out, inputs)
        print(
            f"{at}: max |ORT - torch| logit diff {report.max_abs_diff:.3g} (max |logit| {report.max_abs_logit:.3g}), "
            f"mean {report.mean_abs_diff:.3g}, argmax agreement {100 * report.argmax_agreement:.4f}%"
        )
    parity = {"source": source, "sizes": [list(size) for size in used_sizes], **dataclasses.asdict(report)}
    info = dataclasses.replace(info, parity=parity)
    sidecar = info.write(args.out)
    print(f"sidecar: {sidecar}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
