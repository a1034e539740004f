"""``seg-bench-models``: size, compute and CPU latency of the model zoo, PyTorch eager vs ONNX Runtime.

Per model, randomly initialised (weights do not change the timings), one (1, 3, H, W) float32 input:

* ``params_m``: all parameters in millions (train-only auxiliary heads included); ``inference_params_m``: those
  of the modules the eval-mode forward runs.
* ``gflops``: 2 x multiply-accumulates / 1e9 of one forward at H x W, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products only: elementwise ops, pooling,
  normalisation and resampling are not counted).
* ``torch_ms`` / ``ort_ms``: {"median", "p90"} ms per frame of PyTorch eager (``torch.inference_mode``, fp32) and
  ONNX Runtime CPUExecutionProvider (all graph optimisations, fixed-size export, no thread spin-waiting), both on
  ``--threads`` intra-op threads. The two are measured interleaved, alternating which runs first, so that drift
  (other work on the machine, clocks) affects both alike.
* ``ort_speedup``: torch median / ORT median (> 1: ONNX Runtime is faster).
* ``--int8 FOLDER`` (semantic models): also the static INT8 (QDQ) model ``seg-quantize`` / ``precision: int8``
  build (``backends.ort_int8``), calibrated on frames of FOLDER at H x W: ``ort_int8_ms`` and ``int8_speedup`` =
  ORT fp32 median / INT8 median, interleaved with the others.

Instance and panoptic models (mask_rcnn, panoptic_fpn) are timed as the node runs them: the whole detection
graph (``export.detection_onnx``: dynamic H/W, NMS and RoIAlign inside) at score threshold ``--score-threshold``
(the node's instance threshold, 0.5), PyTorch through the same graph view; ``detections``: how many the frame
gave. Random weights make every detection score ~1/9; ``--checkpoint`` times trained weights (the model and its
options come from the checkpoint) and ``--frames ROOT`` a real frame (the first val frame of a Cityscapes-layout
root, resized to H x W) instead of noise, so that the detection count, and the mask head's work, is the real one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seg_perception.backends import CALIBRATION_METHODS
from seg_perception.backends.calibration import CalibrationBatches
from seg_perception.backends.ort_int8 import quantize_model
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from seg_perception.export import INPUT_NAME, OUTPUT_NAME, export_onnx
from seg_perception.export.detection_onnx import DetectionGraph, export_detection_onnx
from seg_perception.export.weight_compression import compress_onnx_weights
from seg_perception.model_info import SCORE_THRESHOLD_NAME
from seg_perception.model_input import normalize_image
from seg_perception.models import build_model, list_models, load_checkpoint, model_spec, model_task
from seg_perception.tools.cli import non_negative_int, positive_int
from seg_perception.tools.timing import time_interleaved

NOTE = (
    "batch 1, fp32, CPU; GFLOPs = 2 x multiply-accumulates of conv/matmul layers; "
    "ms/frame median and p90, torch eager and ONNX Runtime measured interleaved"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-bench-models", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default=",".join(list_models()), help="comma-separated names (default: every semantic model)"
    )
    parser.add_argument("--checkpoint", type=Path, help="time these trained weights (their model; --models ignored)")
    parser.add_argument("--frames", type=Path, help="Cityscapes-layout root: time its first val frame, not noise")
    parser.add_argument(
        "--score-threshold", type=float, default=0.5, help="detection models' score threshold (default 0.5)"
    )
    parser.add_argument("--height", type=positive_int, default=512, help="input height (default 512)")
    parser.add_argument("--width", type=positive_int, default=1024, help="input width (default 1024)")
    parser.add_argument("--iterations", type=positive_int, default=20, help="timed runs per backend (default 20)")
    parser.add_argument("--warmup", type=non_negative_int, default=3, help="untimed runs per backend (default 3)")
    parser.add_argument("--threads", type=positive_int, default=2, help="intra-op threads of both backends (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--int8-weights",
        action="store_true",
        help="also time the export with int8 weight storage (seg-export --int8-weights, as models/ ships it)",
    )
    parser.add_argument("--int8", type=Path, metavar="FOLDER", help="also time static INT8, calibrated on FOLDER")
    parser.add_argument("--int8-method", choices=CALIBRATION_METHODS, default="minmax", help="default minmax")
    parser.add_argument("--int8-images", type=positive_int, default=32, help="calibration frames (default 32)")
    return parser


def count_compute(model: nn.Module, image: torch.Tensor) -> tuple[float, int]:
    """(GFLOPs = 2 * MACs / 1e9, parameters of the modules that ran) of one eval forward of (1, 3, H, W) ``image``."""
    ran: list[nn.Module] = []
    hooks = [module.register_forward_hook(lambda module, _in, _out: ran.append(module)) for module in model.modules()]
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(image)
    finally:
        for hook in hooks:
            hook.remove()
    used = {id(p): p.numel() for module in ran for p in module.parameters(recurse=False)}
    return counter.get_total_flops() / 1e9, sum(used.values())


def benchmark_session(path: Path, threads: int) -> ort.InferenceSession:
    """ONNX Runtime CPU session for timing: all graph optimisations, ``threads`` intra-op threads, no spin-waiting."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning ORT workers would take CPU from the interleaved PyTorch runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Int8Calibration:
    """Static INT8 of a semantic export: calibration frames, method, count, normalisation."""

    folder: Path
    method: str
    max_images: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _sessions(
    export: Callable[[Path], Path], threads: int, int8_weights: bool, int8: Int8Calibration | None = None
) -> dict[str, ort.InferenceSession]:
    """{"ort": session of the float32 export} (+ "ort_int8_weights": of the same export with int8 weights, +
    "ort_int8": its static INT8 model)."""
    with tempfile.TemporaryDirectory() as folder:
        path = export(Path(folder) / "model.onnx")
        sessions = {"ort": benchmark_session(path, threads)}
        if int8_weights:
            compressed = Path(folder) / "model_int8_weights.onnx"
            shutil.copyfile(path, compressed)
            compress_onnx_weights(compressed)
            sessions["ort_int8_weights"] = benchmark_session(compressed, threads)
        if int8 is not None:
            shape = (1, 3, *sessions["ort"].get_inputs()[0].shape[2:])
            batches = CalibrationBatches(int8.folder, shape, int8.mean, int8.std, int8.max_images)
            quantized = Path(folder) / "model.int8.onnx"
            quantize_model(path, quantized, batches, int8.method, INPUT_NAME)
            sessions["ort_int8"] = benchmark_session(quantized, threads)
    return sessions


def _timing_entry(timings: dict) -> dict:
    """ms entries and speed-ups (torch median / ORT median) of ``time_interleaved``'s result."""
    entry = {"torch_ms": timings["torch"], "ort_ms": timings["ort"]}
    entry["ort_speedup"] = timings["torch"]["median"] / timings["ort"]["median"]
    if "ort_int8_weights" in timings:
        entry["ort_int8_weights_ms"] = timings["ort_int8_weights"]
        entry["int8_weights_vs_fp32"] = timings["ort_int8_weights"]["median"] / timings["ort"]["median"]
    if "ort_int8" in timings:
        entry["ort_int8_ms"] = timings["ort_int8"]
        entry["int8_speedup"] = timings["ort"]["median"] / timings["ort_int8"]["median"]
    return entry


def bench_model(
    model: nn.Module,
    name: str,
    image: torch.Tensor,
    iterations: int,
    warmup: int,
    threads: int,
    threshold: float,
    int8_weights: bool = False,
    int8: Int8Calibration | None = None,
) -> dict:
    """The result entry of one eval-mode model on one (1, 3, H, W) ``image`` (see the module docstring)."""
    if model_task(name) != "semantic":
        return _bench_detection(model, image, iterations, warmup, threads, threshold, int8_weights)
    height, width = image.shape[2:]
    gflops, inference_params = count_compute(model, image)
    sessions = _sessions(
        lambda path: export_onnx(model, path, height, width, dynamic=False), threads, int8_weights, int8
    )
    feed = {INPUT_NAME: image.numpy()}

    def torch_run() -> None:
        with torch.inference_mode():
            model(image)

    runs = {name: (lambda s=session: s.run([OUTPUT_NAME], feed)) for name, session in sessions.items()}
    timings = time_interleaved({"torch": torch_run, **runs}, iterations, warmup)
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "inference_params_m": inference_params / 1e6,
        "gflops": gflops,
        **_timing_entry(timings),
    }


def _bench_detection(
    model: nn.Module,
    image: torch.Tensor,
    iterations: int,
    warmup: int,
    threads: int,
    threshold: float,
    int8_weights: bool,
) -> dict:
    graph = DetectionGraph(model).eval()
    score = torch.tensor(threshold)
    sessions = _sessions(lambda path: export_detection_onnx(model, path, *image.shape[2:]), threads, int8_weights)
    feed = {INPUT_NAME: image.numpy(), SCORE_THRESHOLD_NAME: np.array(threshold, np.float32)}

    def torch_run() -> None:
        with torch.inference_mode():
            graph(image, score)

    runs = {name: (lambda s=session: s.run(None, feed)) for name, session in sessions.items()}
    timings = time_interleaved({"torch": torch_run, **runs}, iterations, warmup)
    with torch.inference_mode():
        detections = len(graph(image, score)[1])
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "inference_params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": None,  # data-dependent (the heads run per detection): not counted
        "detections": detections,
        **_timing_entry(timings),
    }


def _input(frames: Path | None, height: int, width: int, mean, std) -> torch.Tensor:
    """(1, 3, H, W): the first val frame of ``frames`` resized and normalised, else seeded noise."""
    if frames is None:
        return torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    image = CityscapesDataset(frames, "val", require_gt=False)[0].image
    return torch.from_numpy(normalize_image(image, (height, width), mean, std))


def format_table(result: dict) -> str:
    """The result object as an aligned text table with a header note."""
    height, width = result["size"]
    lines = [
        f"{height}x{width}, {result['threads']} threads, {result['iterations']} iterations after "
        f"{result['warmup']} warm-up; {result['note']}",
        f"{'model':<14} {'params M':>8} {'infer M':>8} {'GFLOPs':>8} {'torch med':>10} {'torch p90':>10} "
        f"{'ORT med':>10} {'ORT p90':>10} {'torch/ORT':>9}",
    ]
    for name, entry in result["models"].items():
        gflops = "n/a" if entry["gflops"] is None else f"{entry['gflops']:.1f}"
        lines.append(
            f"{name:<14} {entry['params_m']:>8.2f} {entry['inference_params_m']:>8.2f} {gflops:>8} "
            f"{entry['torch_ms']['median']:>10.1f} {entry['torch_ms']['p90']:>10.1f} "
            f"{entry['ort_ms']['median']:>10.1f} {entry['ort_ms']['p90']:>10.1f} {entry['ort_speedup']:>9.2f}"
        )
        if "ort_int8_weights_ms" in entry:
            timing = entry["ort_int8_weights_ms"]
            lines.append(
                f"{'  int8 weights':<14} ORT med {timing['median']:.1f} p90 {timing['p90']:.1f}: "
                f"{entry['int8_weights_vs_fp32']:.2f} x the float32 export's median"
            )
        if "ort_int8_ms" in entry:
            timing = entry["ort_int8_ms"]
            lines.append(
                f"{'  static int8':<14} ORT med {timing['median']:.1f} p90 {timing['p90']:.1f}: "
                f"{entry['int8_speedup']:.2f} x faster than the float32 export (median)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = model_spec(args.checkpoint) if args.checkpoint else None
    except (OSError, ValueError, RuntimeError) as error:
        parser.exit(2, f"seg-bench-models: error: {error}\n")
    names = [spec.name] if spec else [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in names if name not in list_models(None)]
    if not names or unknown:
        problem = f"unknown models {', '.join(unknown)}" if unknown else "--models names no model"
        parser.exit(2, f"seg-bench-models: error: {problem}; known models: {', '.join(list_models(None))}\n")

    torch.set_num_threads(args.threads)
    result = {
        "size": [args.height, args.width],
        "threads": args.threads,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "note": f"{'trained weights of ' + str(args.checkpoint) if spec else 'random weights'}; "
        f"{'the first val frame of ' + str(args.frames) if args.frames else 'seeded noise'}; {NOTE}",
        "models": {},
    }
    if spec:
        result.update(checkpoint=str(args.checkpoint), options=spec.options)
    for name in names:
        print(f"seg-bench-models: {name} at {args.height}x{args.width} ...", file=sys.stderr, flush=True)
        torch.manual_seed(0)
        if spec:
            model = load_checkpoint(build_model(name, spec.num_classes, **spec.options), args.checkpoint)
        else:
            model = build_model(name)
        mean, std = (spec.mean, spec.std) if spec else (IMAGENET_MEAN, IMAGENET_STD)
        image = _input(args.frames, args.height, args.width, mean, std)
        int8 = Int8Calibration(args.int8, args.int8_method, args.int8_images, mean, std) if args.int8 else None
        result["models"][name] = bench_model(
            model.eval(),
            name,
            image,
            args.iterations,
            args.warmup,
            args.threads,
            args.score_threshold,
            args.int8_weights,
            int8,
        )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
