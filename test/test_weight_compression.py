"""int8 weight storage (export.weight_compression): checkpoints and ONNX graphs at about a quarter of their size,
loading back to float32 weights within half a quantisation step, and an ONNX export of a compressed checkpoint
holding exactly the checkpoint's int8 values (so torch and ONNX Runtime compute with the same weights)."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from seg_perception.export.weight_compression import MIN_ELEMENTS, compress_checkpoint, quantize_per_channel
from seg_perception.models import build_model, load_checkpoint
from seg_perception.models.checkpoint import INT8_SCALES, INT8_WEIGHTS, CheckpointError
from seg_perception.tools import export


def test_quantize_per_channel_bounds_the_error_by_half_a_step_per_channel():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 4, 3, 3)).astype(np.float32) * np.arange(1, 7, dtype=np.float32)[:, None, None, None]
    weight[2] = 0.0  # an all-zero channel keeps a usable scale
    for axis in (0, 1):
        values, scales = quantize_per_channel(weight, axis)
        assert values.dtype == np.int8 and values.shape == weight.shape and scales.shape == (weight.shape[axis],)
        shape = [1] * weight.ndim
        shape[axis] = -1
        restored = values.astype(np.float32) * scales.reshape(shape)
        assert np.all(np.abs(restored - weight) <= scales.reshape(shape) / 2 + 1e-7)
        assert np.abs(values).max() == 127 and np.all(np.isfinite(scales))
    assert np.all(quantize_per_channel(weight, 0)[0][2] == 0)


def test_compressed_checkpoint_loads_back_within_half_a_step(export_random_bisenetv2, tmp_path):
    checkpoint = export_random_bisenetv2(dynamic=True).with_name("model.pt")
    original = torch.load(checkpoint, weights_only=True)["model"]
    float_bytes, size = compress_checkpoint(checkpoint, tmp_path / "int8.pt")
    assert size < 0.35 * float_bytes
    stored = torch.load(tmp_path / "int8.pt", weights_only=True)
    assert set(stored[INT8_WEIGHTS]) and all(t.dtype == torch.int8 for t in stored[INT8_WEIGHTS].values())
    assert all(original[name].numel() >= MIN_ELEMENTS for name in stored[INT8_WEIGHTS])
    loaded = load_checkpoint(build_model("bisenetv2"), tmp_path / "int8.pt").state_dict()
    for name, tensor in original.items():
        if name in stored[INT8_WEIGHTS]:
            step = stored[INT8_SCALES][name].reshape(-1, *([1] * (tensor.dim() - 1)))
            assert torch.all((loaded[name] - tensor).abs() <= step / 2 + 1e-7), name
        else:
            assert torch.equal(loaded[name], tensor), name


def test_int8_weights_without_their_scales_are_a_checkpoint_error(export_random_bisenetv2, tmp_path):
    checkpoint = export_random_bisenetv2(dynamic=True).with_name("model.pt")
    compress_checkpoint(checkpoint, tmp_path / "int8.pt")
    broken = torch.load(tmp_path / "int8.pt", weights_only=True)
    broken[INT8_SCALES].pop(next(iter(broken[INT8_SCALES])))
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="scales"):
        load_checkpoint(build_model("bisenetv2"), tmp_path / "broken.pt")


def test_onnx_export_of_a_compressed_checkpoint_holds_its_int8_values(random_panoptic_onnx, tmp_path):
    """A GroupNorm panoptic_fpn (no norm folded into its weights): every compressed ONNX weight that is a
    checkpoint parameter holds exactly the checkpoint's int8 values; parity as tight as in float32."""
    checkpoint = random_panoptic_onnx.with_name("model.pt")
    compress_checkpoint(checkpoint, tmp_path / "int8.pt")
    out = tmp_path / "int8.onnx"
    arguments = ["--checkpoint", str(tmp_path / "int8.pt"), "--out", str(out), "--height", "128", "--width", "256"]
    assert export.main([*arguments, "--int8-weights", "--parity-images", "2"]) == 0
    assert out.stat().st_size < 0.4 * random_panoptic_onnx.stat().st_size
    graph = onnx.load(str(out)).graph
    dequantized = [node for node in graph.node if node.op_type == "DequantizeLinear"]
    initializers = {initializer.name: numpy_helper.to_array(initializer) for initializer in graph.initializer}
    stored = torch.load(tmp_path / "int8.pt", weights_only=True)[INT8_WEIGHTS]
    matched = [node.output[0] for node in dequantized if node.output[0].removeprefix("model.") in stored]
    assert len(matched) >= 0.9 * len(dequantized) > 0, "ONNX weights should keep their parameter names"
    for name in matched:
        node = next(node for node in dequantized if node.output[0] == name)
        assert np.array_equal(initializers[node.input[0]], stored[name.removeprefix("model.")].numpy()), name
    parity = json.loads(out.with_name(out.name + ".json").read_text())["parity"]
    assert parity["paired"] == 1.0 and parity["max_score_diff"] < 1e-4 and parity["panoptic_agreement"] >= 0.995
