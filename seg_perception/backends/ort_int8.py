"""INT8 models for ONNX Runtime on the CPU: static QDQ quantization (``onnxruntime.quantization``), built once
and cached next to the model (onnx + onnxruntime; no torch).

The recipe is what ran fastest on an AVX-512 VNNI CPU (issue 14, BiSeNetV2 256x512, 2 threads, interleaved):

* QDQ format (ONNX Runtime fuses it into QLinearConv & co.; QOperator was no faster), int8 weights per output
  channel, uint8 activations (U8S8: MLAS's VNNI kernels), calibrated on frames normalised like the pipeline;
* a grouped convolution with a channel multiplier (BiSeNetV2's gather-and-expansion layers: 16 -> 96 channels in
  16 groups) has no fast int8 kernel (~7x slower than fp32 there), so it is first rewritten, exactly, as a channel
  Gather (each input channel repeated ``multiplier`` times) + a depthwise convolution, which has one;
* a Resize that makes a graph output (the logits upsampling) stays fp32: quantizing it saves nothing and
  costs a Q/DQ pair on the largest tensor plus logit precision;
* a detection graph (Mask R-CNN, Panoptic FPN) is quantized only in its feature layers (``DETECTION_SCOPES``:
  backbone + FPN, semantic head, the RPN's shared conv, the box head, the mask head's convolutions); its predictors
  (RPN objectness and box deltas, box classifier and regressor, mask logits) and everything between them (anchors,
  box decoding, NMS, RoIAlign) stay fp32, and so do the mask head's GroupNorms: quantized, they crash ONNX Runtime
  1.32 (segmentation fault) on a frame without detections, whose mask batch is empty. Measured on the shipped
  panoptic_fpn_synth (synthetic val, 50 frames, minmax on 32): all nodes 1.51x faster at -1.46 mIoU points and
  -1.6 AP; these scopes 1.40x at -0.09 mIoU, +0.11 PQ, -0.36 AP (models/panoptic_fpn_synth.int8.md).

Cache: ``<cache_dir>/<stem>.int8.onnx`` and its sidecar ``<stem>.int8.onnx.json`` (the fp32 model's sidecar plus an
``int8`` entry: the key = sha256 of the fp32 ONNX, sha256 of the calibration frames, their count, the calibration
method, input size, mean/std, onnxruntime version and recipe). The sidecar is written last, so an INT8 model
without it is incomplete; a key that differs means a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from seg_perception.backends.calibration import (
    DEFAULT_CALIBRATION_IMAGES,
    CalibrationBatches,
    calibration_digest,
    calibration_files,
)
from seg_perception.model_info import SCORE_THRESHOLD_NAME, ModelInfo, read_model_info, sidecar_path

LOGGER = logging.getLogger(__name__)

CALIBRATION_METHOD = {  # keys: backends.CALIBRATION_METHODS
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
DEFAULT_METHOD = "minmax"
USER_CACHE = Path.home() / ".cache" / "seg_perception" / "int8"
"""Where INT8 models go when no cache_dir is given and the model's folder is read-only."""
RECIPE = "qdq-u8s8-per-channel, grouped convs expanded, output resize fp32 (v1)"
DETECTION_SCOPES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("/model/backbone/", None),
    ("/model/semantic_head/", None),
    ("/model/rpn/head/conv/", None),
    ("/model/roi_heads/box_head/", None),
    ("/model/roi_heads/mask_head/", ("Conv",)),  # not its GroupNorms: see the module doc
)
"""(node-name prefix, op types or None for all) of a detection graph's feature layers (torch.onnx names nodes by
module path; seg-export's graph holds the model as ``model``): the only nodes of such a graph that are quantized."""
DETECTION_RECIPE = (
    f"{RECIPE}; detection graphs: only "
    + ", ".join(prefix + (f" ({'/'.join(ops)})" if ops else "") for prefix, ops in DETECTION_SCOPES)
    + " (v2)"
)


@dataclass(frozen=True)
class Int8Key:
    """What an INT8 model was built from; a cached model is reused only under an equal key."""

    model_sha256: str
    calibration_sha256: str
    calibration_images: int
    method: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    onnxruntime_version: str = onnxruntime.__version__
    recipe: str = RECIPE

    @classmethod
    def from_dict(cls, data: dict) -> Int8Key:
        data = dict(data)
        for name in ("input_size", "mean", "std"):
            data[name] = tuple(data[name])
        return cls(**data)


def int8_model_path(model_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir or the model's folder>/<stem>.int8.onnx``."""
    model_path = Path(model_path)
    return Path(cache_dir or model_path.parent) / f"{model_path.stem}.int8.onnx"


def cached_key(int8_path: Path) -> Int8Key | None:
    """The key in ``int8_path``'s sidecar, None when the model or its sidecar is missing or unreadable."""
    if not int8_path.is_file():
        return None
    try:
        return Int8Key.from_dict(json.loads(sidecar_path(int8_path).read_text())["int8"]["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def expand_grouped_convs(model: onnx.ModelProto) -> int:
    """Rewrite, in place, every Conv with ``1 < group < out_channels`` and one input channel per group as
    Gather(input, channel indices ``c // multiplier``, axis 1) + a depthwise Conv (group = out_channels), which
    computes the same values; -> the number rewritten."""
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes, rewritten = [], 0
    for node in model.graph.node:
        group = next((a for a in node.attribute if a.name == "group"), None)
        weight = weights.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if group is not None and weight is not None and group.i > 1:
            out_channels, in_per_group = weight.dims[0], weight.dims[1]
            if in_per_group == 1 and out_channels != group.i:
                multiplier = out_channels // group.i
                indices = numpy_helper.from_array(
                    (np.arange(out_channels) // multiplier).astype(np.int64), f"{node.name}_channel_repeat"
                )
                model.graph.initializer.append(indices)
                expanded = f"{node.name}_repeated_input"
                nodes.append(
                    onnx.helper.make_node(
                        "Gather", [node.input[0], indices.name], [expanded], axis=1, name=f"{node.name}_repeat"
                    )
                )
                node.input[0] = expanded
                group.i = out_channels
                rewritten += 1
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return rewritten


def scoped_nodes(model: onnx.ModelProto, scopes: tuple[tuple[str, tuple[str, ...] | None], ...]) -> list[str]:
    """Names of the nodes under any ``scopes`` entry (name prefix, op types or None for any). ValueError when there
    is none (a graph not named as seg-export names it would otherwise be left entirely fp32 without a word)."""
    names = [
        node.name
        for node in model.graph.node
        if any(node.name.startswith(prefix) and (ops is None or node.op_type in ops) for prefix, ops in scopes)
    ]
    if not names:
        prefixes = ", ".join(prefix for prefix, _ in scopes)
        raise ValueError(f"no node of the graph is under {prefixes}: not a seg-export detection graph?")
    return names


def fixed_inputs_of(info: ModelInfo) -> dict[str, np.ndarray]:
    """The inputs besides the image that every run of ``info``'s graph takes while calibrating or checking it: a
    detection graph's score_threshold at the sidecar's value (0.5 when it has none); none for a semantic graph."""
    if not info.is_detection:
        return {}
    return {SCORE_THRESHOLD_NAME: np.array(info.thresholds.get("score_threshold", 0.5), np.float32)}


def output_resizes(model: onnx.ModelProto) -> list[str]:
    """Names of the Resize nodes that produce a graph output (kept fp32)."""
    outputs = {value.name for value in model.graph.output}
    return [node.name for node in model.graph.node if node.op_type == "Resize" and set(node.output) & outputs]


class _Frames(CalibrationDataReader):
    """CalibrationBatches of one frame as ONNX Runtime's calibration reader (one pass)."""

    def __init__(self, batches: CalibrationBatches, input_name: str, fixed: dict[str, np.ndarray]) -> None:
        self._batches: Iterator[np.ndarray] = iter(batches)
        self._input_name, self._fixed = input_name, fixed

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._input_name: batch, **self._fixed}


def quantize_model(
    model_path: Path,
    out_path: Path,
    batches: CalibrationBatches,
    method: str,
    input_name: str,
    fixed_inputs: dict[str, np.ndarray] | None = None,
    scopes: tuple[tuple[str, tuple[str, ...] | None], ...] | None = None,
) -> dict:
    """Write the INT8 (QDQ) model of the fp32 ONNX ``model_path`` to ``out_path`` (see the module doc), calibrated
    on ``batches`` with ``method``; ``fixed_inputs`` ({name: array}) go with every frame (a detection graph's
    score_threshold; such graphs skip the symbolic shape inference: NMS has data-dependent shapes); ``scopes``: only
    the nodes these (name prefix, op types) entries select are quantized (``scoped_nodes``), None: all but the
    output resizes; -> what was done (rewritten convs, fp32 nodes, nodes in scope, seconds)."""
    start = time.perf_counter()
    model = onnx.load(str(model_path))
    rewritten = expand_grouped_convs(model)
    kept_fp32 = output_resizes(model)
    in_scope = None if scopes is None else [name for name in scoped_nodes(model, scopes) if name not in kept_fp32]
    with tempfile.TemporaryDirectory() as folder:
        expanded, prepared = Path(folder) / "expanded.onnx", Path(folder) / "prepared.onnx"
        onnx.save(model, str(expanded))
        quant_pre_process(str(expanded), str(prepared), skip_symbolic_shape=bool(fixed_inputs))
        quantize_static(
            str(prepared),
            str(out_path),
            _Frames(batches, input_name, fixed_inputs or {}),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CALIBRATION_METHOD[method],
            nodes_to_quantize=in_scope,
            nodes_to_exclude=kept_fp32,
        )
    return {
        "grouped_convs_expanded": rewritten,
        "fp32_nodes": kept_fp32,
        "scopes": [[prefix, list(ops) if ops else None] for prefix, ops in scopes or ()],
        "nodes_in_scope": None if in_scope is None else len(in_scope),
        "seconds": time.perf_counter() - start,
    }


def _write_atomically(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def int8_model(
    model_path: str | Path,
    *,
    calibration_images: str | Path | None = None,
    method: str = DEFAULT_METHOD,
    max_images: int = DEFAULT_CALIBRATION_IMAGES,
    cache_dir: str | Path | None = None,
) -> Path:
    """The INT8 model of the fp32 ONNX ``model_path``: reused from the cache when its key matches, else quantized
    now (calibrated on ``calibration_images``, at the sidecar's input size) and cached in ``cache_dir`` (default:
    the model's folder, or ``USER_CACHE`` when that is read-only).

    Without ``calibration_images``, an INT8 model of this very fp32 model (any calibration set) is looked up in
    ``cache_dir`` and then the model's folder (where one may be shipped). Raises ValueError for an unknown method,
    a missing sidecar's mean/std, a calibration folder without images or with an unreadable one, or no INT8 model
    and no calibration folder; FileNotFoundError for a missing folder.
    """
    model_path = Path(model_path)
    if method not in CALIBRATION_METHOD:
        raise ValueError(f"calibration_method must be one of {', '.join(CALIBRATION_METHOD)}, got {method!r}")
    model_sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if cache_dir is None and not os.access(model_path.parent, os.W_OK):  # e.g. an installed share folder
        cache_dir = USER_CACHE
    target = int8_model_path(model_path, cache_dir)
    if calibration_images is None or str(calibration_images) == "":
        for candidate in dict.fromkeys((target, int8_model_path(model_path))):
            key = cached_key(candidate)
            if key is not None and key.model_sha256 == model_sha256:
                LOGGER.info("using the INT8 model %s (calibrated on %d frames)", candidate, key.calibration_images)
                return candidate
        raise ValueError(
            f"precision 'int8' needs calibration_images=FOLDER: there is no INT8 model of {model_path} "
            f"(sha256 {model_sha256[:12]}) at {target}"
        )
    info = read_model_info(model_path)
    files = calibration_files(calibration_images, max_images)
    key = Int8Key(
        model_sha256=model_sha256,
        calibration_sha256=calibration_digest(files),
        calibration_images=len(files),
        method=method,
        input_size=tuple(info.input_size),
        mean=tuple(info.mean),
        std=tuple(info.std),
        recipe=DETECTION_RECIPE if info.is_detection else RECIPE,
    )
    if cached_key(target) == key:
        LOGGER.info("reusing the INT8 model %s", target)
        return target
    LOGGER.info("quantizing %s to INT8 on %d calibration frames (%s) ...", model_path, len(files), method)
    batches = CalibrationBatches(calibration_images, (1, 3, *info.input_size), info.mean, info.std, max_images)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        built = Path(folder) / target.name
        scopes = DETECTION_SCOPES if info.is_detection else None
        report = quantize_model(model_path, built, batches, method, info.input_name, fixed_inputs_of(info), scopes)
        _write_atomically(target, lambda path: os.replace(built, path))
    sidecar = json.loads(sidecar_path(model_path).read_text())
    sidecar["int8"] = {
        "key": asdict(key),
        "source": str(model_path.resolve()),
        "calibration_folder": str(Path(calibration_images).resolve()),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **report,
    }
    _write_atomically(sidecar_path(target), lambda path: path.write_text(json.dumps(sidecar, indent=2) + "\n"))
    LOGGER.info("wrote %s in %.1f s", target, report["seconds"])
    return target
