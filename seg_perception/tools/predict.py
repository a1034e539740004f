"""``seg-predict``: run an exported ONNX model (ONNX Runtime, no torch) over the frames of a
Cityscapes-layout split and write semantic predictions in the official format (labelIds PNGs),
ready for ``seg-eval --semantic-dir``.

The model's sidecar ``FILE.onnx.json`` (written by ``seg-export``) gives mean/std, class names
and the inference size (``input_size`` unless ``--size``); predictions come back at each
frame's own resolution.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnxruntime as ort
from tqdm import tqdm

from seg_perception.data.cityscapes import CityscapesDataset, read_image
from seg_perception.data.layout import SPLITS
from seg_perception.evaluation.formats import write_semantic_prediction
from seg_perception.labels import CLASS_NAMES
from seg_perception.model_info import read_model_info
from seg_perception.pipeline.postprocess import labels_from_logits
from seg_perception.pipeline.preprocess import normalize_image
from seg_perception.tools.cli import parse_size, positive_int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seg-predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", required=True, type=Path, help="model exported by seg-export (with its .json)")
    parser.add_argument("--gt", required=True, help="Cityscapes-layout root whose frames to segment")
    parser.add_argument("--split", default="val", choices=SPLITS)
    parser.add_argument("--out", required=True, type=Path, help="folder for <stem>_labelIds.png predictions")
    parser.add_argument("--size", type=parse_size, help="inference HxW (default: the sidecar's input_size)")
    parser.add_argument("--threads", type=positive_int, default=2, help="ONNX Runtime intra-op threads (default 2)")
    args = parser.parse_args(argv)
    try:
        info = read_model_info(args.onnx)
        if info.class_names != CLASS_NAMES:
            raise ValueError(f"{args.onnx}: not a Cityscapes 19-class semantic model ({info.num_classes} classes)")
        samples = CityscapesDataset(args.gt, args.split, require_gt=False).samples
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(args.onnx), options, providers=["CPUExecutionProvider"])
    except (OSError, ValueError, ort.capi.onnxruntime_pybind11_state.Fail) as error:
        parser.exit(2, f"seg-predict: error: {error}\n")
    size = args.size or info.input_size
    start = time.perf_counter()
    for sample in tqdm(samples, desc="predict", unit="frame"):
        image = read_image(sample.image)
        model_input = normalize_image(image, size, info.mean, info.std)
        (logits,) = session.run([info.output_name], {info.input_name: model_input})
        write_semantic_prediction(args.out, sample.stem, labels_from_logits(logits[0], image.shape[:2]))
    seconds = time.perf_counter() - start
    speed = len(samples) / seconds
    print(f"seg-predict: {len(samples)} frames at {size[0]}x{size[1]} -> {args.out} ({speed:.1f} frames/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
