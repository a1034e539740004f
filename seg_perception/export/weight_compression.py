"""Large weights stored as int8 per output channel (symmetric, weight-only: activations and arithmetic stay
float32), so a model ships at about a quarter of its float32 size.

- ``compress_checkpoint``: a seg-train checkpoint -> ``{"model": small tensors, INT8_WEIGHTS, INT8_SCALES,
  "config", "iteration"}`` (see ``models.checkpoint``; ``load_checkpoint`` expands it again).
- ``compress_onnx_weights``: every large float weight of a Conv, ConvTranspose, Gemm or MatMul becomes an int8
  initializer + per-channel scale feeding a standard ``DequantizeLinear`` (opset >= 13) named as the weight was.

Both quantise along the weight's output-channel axis as torch lays it out, with scale = max |w| / 127, so an ONNX
export of an expanded checkpoint re-quantises to the very same int8 values: torch and ONNX Runtime then compute
with identical float32 weights. Written here because ONNX Runtime's quantizers quantise activations too (static
or dynamic); this is the storage half only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from seg_perception.models.checkpoint import INT8_SCALES, INT8_WEIGHTS, read_checkpoint

MIN_ELEMENTS = 4096
"""Smaller tensors (biases, norms, small convolutions) stay float32: they cost little and are often sensitive."""
KEPT_KEYS = ("config", "iteration")
WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 0, "MatMul": 1}
"""Per op: the axis of its weight input (input 1) that is torch's dim 0 (Gemm: 0, or 1 when transB = 0)."""


def quantize_per_channel(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """float (..., C, ...) -> (int8 values of the same shape, float32 scales (C,)) with weight ~= values * scale."""
    moved = np.moveaxis(weight.astype(np.float32), axis, 0)
    scales = np.abs(moved).reshape(len(moved), -1).max(1) / np.float32(127)
    scales = np.where(scales > 0, scales, np.float32(1)).astype(np.float32)
    values = np.clip(np.rint(moved / scales.reshape(-1, *([1] * (moved.ndim - 1)))), -127, 127).astype(np.int8)
    return np.moveaxis(values, 0, axis), scales


def compress_checkpoint(source: str | Path, destination: str | Path) -> tuple[int, int]:
    """Write ``source``'s weights (``"model"``) with every float tensor of >= MIN_ELEMENTS and >= 2 dims as int8,
    plus its config and iteration (optimizer state etc. dropped); -> (float32 bytes of the weights, file bytes)."""
    checkpoint = read_checkpoint(source)
    state = checkpoint["model"]
    kept, quantized, scales = {}, {}, {}
    for name, tensor in state.items():
        if tensor.is_floating_point() and tensor.dim() >= 2 and tensor.numel() >= MIN_ELEMENTS:
            values, scale = quantize_per_channel(tensor.numpy(), 0)
            quantized[name], scales[name] = torch.from_numpy(values), torch.from_numpy(scale)
        else:
            kept[name] = tensor
    compressed = {"model": kept, INT8_WEIGHTS: quantized, INT8_SCALES: scales}
    compressed.update({key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint})
    torch.save(compressed, destination)
    float_bytes = sum(4 * tensor.numel() for tensor in state.values() if tensor.is_floating_point())
    return float_bytes, Path(destination).stat().st_size


def _weight_axis(node: onnx.NodeProto) -> int:
    if node.op_type == "Gemm":
        trans_b = next((attribute.i for attribute in node.attribute if attribute.name == "transB"), 0)
        return 0 if trans_b else 1
    return WEIGHT_AXIS[node.op_type]


def compress_onnx_weights(path: str | Path) -> int:
    """Rewrite the ONNX model at ``path`` in place with int8 weights (see the module doc); -> weights compressed."""
    model = onnx.load(str(path))
    graph = model.graph
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    axes: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in (*WEIGHT_AXIS, "Gemm") and len(node.input) > 1 and node.input[1] in initializers:
            axes.setdefault(node.input[1], _weight_axis(node))
    dequantize_nodes = []
    for name, axis in axes.items():
        weight = numpy_helper.to_array(initializers[name])
        if weight.dtype != np.float32 or weight.ndim < 2 or weight.size < MIN_ELEMENTS:
            continue
        values, scales = quantize_per_channel(weight, axis)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend(
            [
                numpy_helper.from_array(values, f"{name}_int8"),
                numpy_helper.from_array(scales, f"{name}_scale"),
                numpy_helper.from_array(np.zeros(len(scales), np.int8), f"{name}_zero_point"),
            ]
        )
        inputs = [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"]
        node = helper.make_node("DequantizeLinear", inputs, [name], name=f"{name}_dequantize", axis=axis)
        dequantize_nodes.append(node)
    for position, node in enumerate(dequantize_nodes):  # first: they read initializers only
        graph.node.insert(position, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return len(dequantize_nodes)
