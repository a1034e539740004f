"""``seg-quantize``: build the INT8 model of an ONNX model ahead of time, the one ``precision: int8`` runs on the CPU.

Static QDQ quantization by ONNX Runtime (``backends.ort_int8``: per-channel int8 weights, uint8 activations,
calibrated on a folder of frames with minmax, entropy or percentile), written to ``<stem>.int8.onnx`` and its
sidecar in ``--cache-dir`` (default: the model's folder) and reused while the model and the calibration frames stay
the same. ``--check FOLDER``: label agreement (argmax, at the model input size) and ms per frame of fp32 vs INT8 on
the frames of FOLDER, timed interleaved (a detection graph: fed its sidecar's score_threshold; the agreement is its
semantic labels', where it has them: panoptic, not instance).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from seg_perception.backends import CALIBRATION_METHODS, create_backend
from seg_perception.backends.calibration import DEFAULT_CALIBRATION_IMAGES, CalibrationBatches
from seg_perception.backends.ort_int8 import fixed_inputs_of
from seg_perception.model_info import read_model_info
from seg_perception.tools.cli import positive_int
from seg_perception.tools.timing import time_interleaved


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="fp32 ONNX model with its FILE.onnx.json sidecar (seg-export)")
    parser.add_argument("--calibration-images", type=Path, required=True, help="folder of frames (png/jpg, recursive)")
    parser.add_argument("--method", choices=CALIBRATION_METHODS, default="minmax", help="calibration (default minmax)")
    parser.add_argument(
        "--max-images", type=positive_int, default=DEFAULT_CALIBRATION_IMAGES, help="frames used at most"
    )
    parser.add_argument("--cache-dir", type=Path, help="where the INT8 model goes (default: the model's folder)")
    parser.add_argument("--check", type=Path, metavar="FOLDER", help="compare fp32 and INT8 on these frames")
    parser.add_argument("--check-frames", type=positive_int, default=20, help="frames of --check (default 20)")
    parser.add_argument("--threads", type=positive_int, default=2, help="intra-op threads (default 2)")
    return parser


def compare(model: Path, int8_model: Path, folder: Path, frames: int, threads: int) -> dict:
    """fp32 vs INT8 on up to ``frames`` frames of ``folder``: label agreement (None for a graph without semantic
    labels) and interleaved ms per frame."""
    info = read_model_info(model)
    batches = CalibrationBatches(folder, (1, 3, *info.input_size), info.mean, info.std, frames)
    fixed = fixed_inputs_of(info)
    runs = {
        name: create_backend("onnxruntime", path, device="cpu", intra_op_threads=threads)
        for name, path in (("fp32", model), ("int8", int8_model))
    }
    agree = total = 0
    for batch in batches if info.task != "instance" else ():
        feed = {info.input_name: batch, **fixed}
        labels = [backend.infer(feed)[info.output_name].argmax(1) for backend in runs.values()]
        agree += int(np.count_nonzero(labels[0] == labels[1]))
        total += labels[0].size
    feed = {info.input_name: next(iter(batches)), **fixed}
    timings = time_interleaved({name: (lambda b=b: b.infer(feed)) for name, b in runs.items()}, 20, 3)
    for backend in runs.values():
        backend.close()
    return {"frames": len(batches), "label_agreement": agree / total if total else None, "ms": timings}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="seg-quantize: %(message)s")
    try:
        backend = create_backend(
            "onnxruntime",
            args.model,
            device="cpu",
            precision="int8",
            calibration_images=args.calibration_images,
            calibration_method=args.method,
            calibration_max_images=args.max_images,
            cache_dir=args.cache_dir,
        )
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"seg-quantize: error: {error}\n")
    int8_model = backend.model_path
    backend.close()
    print(f"INT8 model: {int8_model}")
    if args.check:
        try:
            result = compare(args.model, int8_model, args.check, args.check_frames, args.threads)
        except (FileNotFoundError, ValueError) as error:
            parser.exit(2, f"seg-quantize: error: {error}\n")
        fp32, int8 = result["ms"]["fp32"]["median"], result["ms"]["int8"]["median"]
        agreement = result["label_agreement"]
        print(
            f"check on {result['frames']} frames of {args.check}: label agreement "
            f"{'n/a (no semantic labels)' if agreement is None else f'{100 * agreement:.2f} %'}; ms/frame median "
            f"fp32 {fp32:.1f}, int8 {int8:.1f} ({fp32 / int8:.2f} x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
