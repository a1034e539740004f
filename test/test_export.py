"""ONNX export API, ``seg-export`` (checkpoint -> ONNX + sidecar, parity, errors) and ``seg-bench-models --json``.

Tiny sizes (64x128 and below), small models, two threads: the whole file takes well under a minute on two cores.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seg_perception.data import layout
from seg_perception.export import INPUT_NAME, OUTPUT_NAME, check_parity, export_onnx
from seg_perception.labels import CLASS_NAMES, NUM_CLASSES
from seg_perception.models import build_model
from seg_perception.tools import bench_models
from seg_perception.tools import export as export_cli

torch.set_num_threads(2)

pytestmark = pytest.mark.filterwarnings("ignore:Constant folding - Only steps=1:UserWarning")  # unet, static export

REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 128)


def _model(name: str, seed: int = 0, **options) -> torch.nn.Module:
    """A model with non-trivial BatchNorm statistics (one train-mode pass on a batch of 2), in eval mode."""
    torch.manual_seed(seed)
    model = build_model(name, **options)
    with torch.no_grad():
        model.train()(torch.randn(2, 3, 32, 64, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def _images(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)).numpy()


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _ort(path: Path, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: image})[0]


@pytest.fixture(scope="module")
def bisenet(tmp_path_factory):
    """(model, path) of bisenetv2 exported with dynamic axes at 64x128."""
    model = _model("bisenetv2")
    return model, export_onnx(model, tmp_path_factory.mktemp("onnx") / "nested" / "bisenetv2.onnx", *SIZE)


def test_dynamic_export_names_and_axes(bisenet):
    _, path = bisenet
    assert path.is_file()
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert [o.name for o in graph.output] == [OUTPUT_NAME]
    assert _dims(graph.input[0]) == ["batch", 3, "height", "width"]
    assert _dims(graph.output[0]) == ["batch", NUM_CLASSES, "height", "width"]


def test_parity_at_other_sizes_and_batches(bisenet):
    model, path = bisenet
    images = [_images(2, 72, 136, seed=1), _images(1, 41, 87, seed=2)]
    report = check_parity(model, path, images)
    assert report.num_inputs == 2
    assert report.max_abs_logit > 0
    assert 0 <= report.mean_abs_diff <= report.max_abs_diff <= 1e-3 * report.max_abs_logit
    assert report.argmax_agreement >= 0.999


def test_static_export_fixes_the_shape_and_keeps_the_training_mode(tmp_path):
    model = _model("unet", base_width=4).train()
    path = export_onnx(model, tmp_path / "unet.onnx", 32, 48, dynamic=False)
    assert model.training
    graph = onnx.load(str(path)).graph
    assert _dims(graph.input[0]) == [1, 3, 32, 48]
    assert _dims(graph.output[0]) == [1, NUM_CLASSES, 32, 48]
    report = check_parity(model, path, [_images(1, 32, 48, seed=3)])
    assert model.training
    assert report.max_abs_diff <= 1e-3 * report.max_abs_logit


def test_check_parity_needs_inputs(bisenet):
    with pytest.raises(ValueError, match="at least one"):
        check_parity(*bisenet, [])


# --------------------------------------------------------------------------- seg-export


def _export(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``seg-export`` run in this process."""
    try:
        code = export_cli.main([str(arg) for arg in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_round_trip_of_a_raw_state_dict(tmp_path, capsys):
    model = _model("bisenetv2", seed=3)
    checkpoint = tmp_path / "bisenetv2.pt"
    torch.save(model.state_dict(), checkpoint)
    out = tmp_path / "bisenetv2.onnx"
    code, stdout, stderr = _export(
        capsys, "--model", "bisenetv2", "--checkpoint", checkpoint, "--out", out,
        "--height", SIZE[0], "--width", SIZE[1], "--dynamic", "--parity-images", 2,
    )  # fmt: skip
    assert code == 0, stderr
    assert "argmax agreement 100.0000%" in stdout

    image = _images(1, 56, 120, seed=4)
    with torch.no_grad():
        expected = model(torch.from_numpy(image)).numpy()
    actual = _ort(out, image)
    assert actual.shape == expected.shape == (1, NUM_CLASSES, 56, 120)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * np.abs(expected).max())

    sidecar = json.loads(out.with_name("bisenetv2.onnx.json").read_text())
    assert sidecar["model"] == "bisenetv2"
    assert sidecar["options"] == {}
    assert sidecar["num_classes"] == NUM_CLASSES
    assert sidecar["class_names"] == list(CLASS_NAMES)
    assert (sidecar["input_name"], sidecar["output_name"]) == (INPUT_NAME, OUTPUT_NAME)
    assert sidecar["input_size"] == list(SIZE)
    assert sidecar["dynamic"] is True
    assert sidecar["opset"] == 17
    assert sidecar["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert sidecar["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert sidecar["checkpoint"] == str(checkpoint.resolve())
    parity = sidecar["parity"]
    assert parity["source"] == "2 random images"
    assert parity["num_inputs"] == 2
    assert parity["sizes"] == [[49, 97], list(SIZE)]  # a dynamic export is also checked at another, odd size
    assert parity["argmax_agreement"] == 1.0
    assert 0 <= parity["mean_abs_diff"] <= parity["max_abs_diff"] <= 1e-3 * parity["max_abs_logit"]


def _cityscapes_root(root: Path, count: int) -> Path:
    """``count`` random 40x72 leftImg8bit frames in val/aachen (no ground truth)."""
    rng = np.random.default_rng(0)
    for frame in range(count):
        path = layout.image_path(root, "val", layout.frame_stem("aachen", 0, frame))
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 256, (40, 72, 3), dtype=np.uint8))
    return root


def test_cli_reads_model_config_normalization_and_frames(tmp_path, capsys):
    """A seg-train-style checkpoint: model and options from its config (one option overridden on the command
    line), a binary bce_dice model (one channel), its own normalisation, parity on real frames."""
    model = _model("unet", num_classes=1, base_width=4, bilinear=True)
    checkpoint = tmp_path / "drivable.pt"
    normalization = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    config = {
        "model": {"name": "unet", "options": {"base_width": 4, "bilinear": False}},
        "loss": {"type": "bce_dice", "positive_train_ids": [0, 1]},
        "data": {"mean": [0.1, 0.2, 0.3], "std": [1.0, 1.0, 1.0]},  # "normalization" takes precedence
    }
    torch.save({"model": model.state_dict(), "config": config, "normalization": normalization}, checkpoint)
    out = tmp_path / "drivable.onnx"
    root = _cityscapes_root(tmp_path / "cityscapes", count=4)
    code, stdout, stderr = _export(
        capsys, "--checkpoint", checkpoint, "--out", out, "--height", 32, "--width", 48,
        "--option", "bilinear=true", "--parity-images", root,
    )  # fmt: skip
    assert code == 0, stderr
    assert "argmax agreement" in stdout

    sidecar = json.loads(out.with_name("drivable.onnx.json").read_text())
    assert sidecar["model"] == "unet"
    assert sidecar["options"] == {"base_width": 4, "bilinear": True}
    assert sidecar["num_classes"] == 1
    assert sidecar["class_names"] == ["road+sidewalk"]
    assert (sidecar["mean"], sidecar["std"]) == (normalization["mean"], normalization["std"])
    assert sidecar["dynamic"] is False
    assert sidecar["parity"]["source"] == f"3 frames of {root} (val)"
    assert sidecar["parity"]["sizes"] == [[32, 48]]
    assert sidecar["parity"]["argmax_agreement"] >= 0.999
    assert _dims(onnx.load(str(out)).graph.input[0]) == [1, 3, 32, 48]

    code, _, stderr = _export(capsys, "--model", "bisenetv2", "--checkpoint", checkpoint, "--out", out)
    assert code == 2
    assert f"--model bisenetv2 but checkpoint {checkpoint} holds a unet model" in stderr


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A raw state_dict of unet with base_width 4."""
    path = tmp_path_factory.mktemp("ckpt") / "unet4.pt"
    torch.save(build_model("unet", base_width=4).state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "unet", "--checkpoint", "{tmp}/missing.pt"], "checkpoint {tmp}/missing.pt does not exist"),
        (["--model", "pspnet", "--checkpoint", "{ckpt}"], "unknown model 'pspnet'"),
        (["--model", "unet", "--checkpoint", "{ckpt}"], "checkpoint {ckpt} does not fit UNet"),
        (["--model", "bisenetv2", "--checkpoint", "{ckpt}"], "does not fit BiSeNetV2"),
        (["--model", "unet", "--checkpoint", "{ckpt}", "--option", "depth=3"], "unknown option(s) 'depth'"),
        (["--model", "unet", "--checkpoint", "{ckpt}", "--option", "base_width"], "'base_width' is not of the form"),
        (["--checkpoint", "{ckpt}"], "names no model: give --model"),
        (["--model", "unet", "--checkpoint", "{garbage}"], "cannot read checkpoint {garbage}"),
        (
            ["--model", "unet", "--checkpoint", "{ckpt}", "--option", "base_width=4", "--parity-images", "{tmp}"],
            "is neither a count nor a Cityscapes-layout root",
        ),
        (
            ["--model", "unet", "--checkpoint", "{ckpt}", "--option", "base_width=4", "--parity-images", "0"],
            "count >= 1",
        ),
    ],
    ids=[
        "missing", "unknown_model", "mismatch", "other_model", "unknown_option", "option_syntax", "no_model",
        "garbage", "no_frames", "zero_images",
    ],
)  # fmt: skip
def test_cli_errors_exit_2_with_a_message(tmp_path, capsys, small_checkpoint, args, message):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    fill = {"tmp": tmp_path, "ckpt": small_checkpoint, "garbage": garbage}
    out = tmp_path / "model.onnx"
    code, _, stderr = _export(capsys, *[arg.format(**fill) for arg in args], "--out", out)
    assert code == 2
    assert message.format(**fill) in stderr
    assert not out.exists()


def test_cli_runs_as_a_module(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "seg_perception.tools.export", "--checkpoint", tmp_path / "x.pt", "--out", "x.onnx"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "seg-export: error: checkpoint" in run.stderr


# --------------------------------------------------------------------------- seg-bench-models


def test_bench_models_json(capsys):
    code = bench_models.main(
        ["--models", "bisenetv2,unet", "--height", "32", "--width", "64", "--iterations", "2", "--warmup", "1",
         "--threads", "2", "--json"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == [32, 64]
    assert result["threads"] == 2
    assert list(result["models"]) == ["bisenetv2", "unet"]
    for name, entry in result["models"].items():
        numbers = [entry["params_m"], entry["inference_params_m"], entry["gflops"], entry["ort_speedup"]]
        numbers += [entry[backend][stat] for backend in ("torch_ms", "ort_ms") for stat in ("median", "p90")]
        assert all(math.isfinite(x) and x > 0 for x in numbers), (name, entry)
        assert entry["inference_params_m"] <= entry["params_m"]
    bisenet = result["models"]["bisenetv2"]
    assert bisenet["inference_params_m"] < bisenet["params_m"]  # the four booster heads only train


def test_bench_models_times_int8_weight_storage_beside_float32(capsys):
    arguments = ["--models", "bisenetv2", "--height", "32", "--width", "64", "--iterations", "2", "--warmup", "0"]
    assert bench_models.main([*arguments, "--int8-weights", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["models"]["bisenetv2"]
    ratio = entry["ort_int8_weights_ms"]["median"] / entry["ort_ms"]["median"]
    assert entry["int8_weights_vs_fp32"] == pytest.approx(ratio) and ratio > 0


def test_bench_models_table_and_unknown_model(capsys, monkeypatch):
    fake = {"median": 2.0, "p90": 3.0}
    monkeypatch.setattr(bench_models, "time_interleaved", lambda runs, *_: dict.fromkeys(runs, fake))
    assert bench_models.main(["--models", "unet", "--height", "16", "--width", "16", "--iterations", "1"]) == 0
    table = capsys.readouterr().out
    assert "random weights" in table
    assert table.splitlines()[-1].split()[0] == "unet"
    with pytest.raises(SystemExit) as exit_:
        bench_models.main(["--models", "unet,pspnet"])
    assert exit_.value.code == 2
    assert "unknown models pspnet" in capsys.readouterr().err
