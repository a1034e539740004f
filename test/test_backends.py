"""Inference backends: ONNX Runtime vs PyTorch parity, specs, input validation, ``create_backend`` (auto choice,
errors, lazy imports), the TensorRT engine-cache / profile / calibration / GPU pre-processing logic (pure, on the
CPU), and the TensorRT path itself (NVIDIA GPU with the tensorrt package only; skipped elsewhere with the reason).

One tiny bisenetv2 at 64x128 and one intra-op thread: the CPU part takes seconds on two cores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from seg_perception.backends import BACKEND_OPTIONS, BackendUnavailableError, TensorSpec, create_backend
from seg_perception.backends.calibration import CalibrationBatches
from seg_perception.backends.onnxruntime_backend import OnnxRuntimeBackend
from seg_perception.backends.tensorrt_backend import (
    EngineKey,
    ShapeProfile,
    TensorRTBackend,
    engine_cache_paths,
    preprocess_image,
    read_cached_engine,
    shape_profile,
    write_cached_engine,
)
from seg_perception.backends.torch_backend import TorchBackend
from seg_perception.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from seg_perception.export import export_onnx
from seg_perception.labels import NUM_CLASSES
from seg_perception.model_input import normalize_image
from seg_perception.models import build_model

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SIZE = (64, 128)
IMAGE_SPEC = TensorSpec("image", (None, 3, None, None), np.float32)
LOGITS_SPEC = TensorSpec("logits", (None, NUM_CLASSES, None, None), np.float32)
GREY_LEVEL = 1.0 / (255.0 * min(IMAGENET_STD))
"""One uint8 step of the input, in normalised units (the largest over the channels)."""


def _gpu_missing() -> str:
    """Why the TensorRT path cannot run here ("" when it can)."""
    reasons = []
    if importlib.util.find_spec("tensorrt") is None:
        reasons.append("tensorrt is not installed")
    if not torch.cuda.is_available():
        reasons.append("CUDA is not available")
    return "; ".join(reasons)


GPU_MISSING = _gpu_missing()
needs_gpu = pytest.mark.skipif(
    bool(GPU_MISSING),
    reason=f"needs an NVIDIA GPU with CUDA and the tensorrt package (tensorrt-cu13): {GPU_MISSING} here",
)


def _cuda_provider() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    checkpoint: Path
    onnx: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> ModelFiles:
    """bisenetv2 (non-trivial BatchNorm statistics) as a seg-train-style checkpoint and a dynamic ONNX export at
    64x128 with the sidecar fields the backends read."""
    torch.manual_seed(0)
    model = build_model("bisenetv2")
    with torch.no_grad():
        model.train()(torch.randn(2, 3, 32, 64, generator=torch.Generator().manual_seed(0)))
    model.eval()
    folder = tmp_path_factory.mktemp("backends")
    checkpoint = folder / "bisenetv2.pt"
    torch.save({"model": model.state_dict(), "config": {"model": {"name": "bisenetv2"}}}, checkpoint)
    onnx_path = export_onnx(model, folder / "bisenetv2.onnx", *SIZE)
    sidecar = {"input_size": list(SIZE), "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    onnx_path.with_name(onnx_path.name + ".json").write_text(json.dumps(sidecar))
    return ModelFiles(checkpoint, onnx_path)


def _images(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)).numpy()


def _ort(files: ModelFiles) -> OnnxRuntimeBackend:
    return create_backend("onnxruntime", files.onnx, device="cpu", intra_op_threads=1)


def _assert_close_logits(actual: np.ndarray, expected: np.ndarray, agreement: float, relative: float) -> None:
    """Same shape, argmax agreement >= ``agreement``, max |difference| <= ``relative`` * max |expected|."""
    assert actual.shape == expected.shape
    assert (actual.argmax(1) == expected.argmax(1)).mean() >= agreement
    np.testing.assert_allclose(actual, expected, rtol=0, atol=relative * np.abs(expected).max())


# --------------------------------------------------------------------------- ONNX Runtime and PyTorch


def test_onnxruntime_matches_torch_at_another_size(files):
    images = _images(2, 72, 136, seed=1)  # neither the traced size nor batch
    with _ort(files) as ort_backend, create_backend("torch", files.checkpoint, device="cpu") as torch_backend:
        actual = ort_backend.infer({"image": images})["logits"]
        expected = torch_backend.infer({"image": images})["logits"]
    assert expected.shape == (2, NUM_CLASSES, 72, 136)
    _assert_close_logits(actual, expected, agreement=0.999, relative=1e-3)


@pytest.mark.parametrize("kind", ["onnxruntime", "torch"])
def test_specs_name_device_precision(files, kind):
    path = files.onnx if kind == "onnxruntime" else files.checkpoint
    with create_backend(kind, path, device="cpu") as backend:
        assert backend.input_specs == [IMAGE_SPEC]
        assert backend.output_specs == [LOGITS_SPEC]
        assert (backend.name, backend.device, backend.precision) == (kind, "cpu", "fp32")
    assert str(IMAGE_SPEC) == "image float32 (?, 3, ?, ?)"
    assert TensorSpec("x", (-1, 3), "float32") == TensorSpec("x", (None, 3), np.float32)


@pytest.mark.parametrize("kind", ["onnxruntime", "torch"])
def test_input_validation_is_the_same_for_every_backend(files, kind):
    path = files.onnx if kind == "onnxruntime" else files.checkpoint
    image = _images(1, *SIZE, seed=2)
    spec = r"image float32 \(\?, 3, \?, \?\)"
    backend = create_backend(kind, path, device="cpu")
    with backend:
        cases = [
            ({}, rf"missing input\(s\) \['image'\]; expected {spec}"),
            ({"image": image, "mask": image}, r"unexpected input\(s\) \['mask'\]"),
            ({"image": image[0]}, rf"'image' is float32 \(3, 64, 128\), expected {spec}"),
            ({"image": image.astype(np.float64)}, rf"'image' is float64 \(1, 3, 64, 128\), expected {spec}"),
            ({"image": np.zeros((1, 4, *SIZE), np.float32)}, r"'image' is float32 \(1, 4, 64, 128\)"),
        ]
        for inputs, message in cases:
            with pytest.raises(ValueError, match=message):
                backend.infer(inputs)
        with pytest.raises(TypeError, match="not a numpy array"):
            backend.infer({"image": image.tolist()})
        with pytest.raises(TypeError, match="dict of numpy arrays"):
            backend.infer(image)
        assert backend.last_latency_ms is None
        outputs = backend.infer({"image": image[:, :, ::-1]})  # non-contiguous views are accepted
        assert list(outputs) == ["logits"] and outputs["logits"].shape == (1, NUM_CLASSES, *SIZE)
        assert backend.last_latency_ms > 0
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer({"image": image})
    backend.close()  # idempotent


# --------------------------------------------------------------------------- create_backend


@pytest.mark.skipif(
    not GPU_MISSING or _cuda_provider(), reason="a GPU backend is available here, so auto does not pick the CPU"
)
def test_auto_picks_onnxruntime_on_the_cpu(files):
    with create_backend("auto", files.onnx, intra_op_threads=1, model_options={}) as backend:
        assert (backend.name, backend.device, backend.precision) == ("onnxruntime", "cpu", "fp32")
    with create_backend("auto", files.onnx, precision="fp16", intra_op_threads=1) as backend:
        assert (backend.name, backend.precision) == ("onnxruntime", "fp32")  # fp16 does not run there: fp32
    with create_backend("auto", files.checkpoint) as backend:  # only torch reads a checkpoint
        assert (backend.name, backend.device) == ("torch", "cpu")
    with pytest.raises(
        BackendUnavailableError,
        match=r"no backend can run .*: tensorrt on cuda: tensorrt is not installed.*; onnxruntime on cuda: .*"
        r"no CUDAExecutionProvider.*; torch: reads PyTorch checkpoints, not ONNX models",
    ):
        create_backend("auto", files.onnx, device="cuda")


@pytest.mark.skipif(not GPU_MISSING, reason="TensorRT and CUDA are available here")
def test_tensorrt_is_unavailable_here_with_the_reason(files):
    with pytest.raises(RuntimeError, match=r"tensorrt is not installed|CUDA is not available") as error:
        create_backend("tensorrt", files.onnx)
    assert isinstance(error.value, BackendUnavailableError)


@pytest.mark.skipif(_cuda_provider(), reason="onnxruntime has the CUDA provider here")
def test_onnxruntime_cuda_is_unavailable_here_with_the_reason(files):
    with pytest.raises(BackendUnavailableError, match="no CUDAExecutionProvider"):
        create_backend("onnxruntime", files.onnx, device="cuda")


def test_create_backend_errors_name_the_problem(files, tmp_path):
    with pytest.raises(ValueError, match="unknown backend kind 'openvino'"):
        create_backend("openvino", files.onnx)
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        create_backend("onnxruntime", files.onnx, precision="fp8")
    missing = tmp_path / "missing.onnx"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        create_backend("auto", missing)
    empty = tmp_path / "empty.onnx"
    empty.touch()
    with pytest.raises(ValueError, match=re.escape(f"{empty} is empty")):
        create_backend("onnxruntime", empty)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a protobuf \xff\xff\xff")
    with pytest.raises(ValueError, match=re.escape(f"{corrupt} is not a loadable ONNX model")):
        create_backend("onnxruntime", corrupt, device="cpu")
    corrupt_checkpoint = tmp_path / "corrupt.pt"
    corrupt_checkpoint.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=re.escape(f"cannot read checkpoint {corrupt_checkpoint}")):
        create_backend("torch", corrupt_checkpoint, device="cpu")
    with pytest.raises(ValueError, match="the torch backend expects a model-zoo checkpoint"):
        create_backend("torch", files.onnx)
    with pytest.raises(ValueError, match="the onnxruntime backend expects an ONNX model"):
        create_backend("onnxruntime", files.checkpoint)
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'threads' for the onnxruntime backend"):
        create_backend("onnxruntime", files.onnx, threads=1)
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'threads'"):
        create_backend("auto", files.onnx, threads=1)
    with pytest.raises(ValueError, match="does not run precision 'fp16'"):
        create_backend("onnxruntime", files.onnx, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="device 'gpu'"):
        create_backend("onnxruntime", files.onnx, device="gpu")
    with pytest.raises(ValueError, match=r"--model bisenetv1 but checkpoint .* holds a bisenetv2 model"):
        create_backend("torch", files.checkpoint, device="cpu", model="bisenetv1")


def test_backend_options_table_matches_the_constructors():
    for kind, backend_class in [
        ("onnxruntime", OnnxRuntimeBackend),
        ("torch", TorchBackend),
        ("tensorrt", TensorRTBackend),
    ]:
        parameters = inspect.signature(backend_class).parameters.values()
        keyword_only = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        assert keyword_only == ["device", "precision", *BACKEND_OPTIONS[kind]], kind


def test_imports_stay_lazy(files):
    """Importing the package loads no inference framework, and an ONNX Runtime backend never loads torch."""
    code = (
        "import sys\n"
        "import seg_perception.backends as backends\n"
        "heavy = sorted({'torch', 'onnxruntime', 'tensorrt'} & set(sys.modules))\n"
        "assert not heavy, f'importing seg_perception.backends imported {heavy}'\n"
        "backend = backends.create_backend('onnxruntime', sys.argv[1], device='cpu', intra_op_threads=1)\n"
        "backend.infer({'image': __import__('numpy').zeros((1, 3, 64, 128), 'float32')})\n"
        "assert 'torch' not in sys.modules, 'the onnxruntime backend imported torch'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(files.onnx)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- TensorRT logic without TensorRT


def _key(**changes) -> EngineKey:
    base = EngineKey(
        onnx_sha256="ab" * 32,
        tensorrt_version="10.13.3",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        precision="fp16",
        profile=ShapeProfile((1, 3, 64, 128), (1, 3, 512, 1024), (2, 3, 1024, 2048)),
    )
    return dataclasses.replace(base, **changes)


KEY_CHANGES = {
    "onnx_sha256": "cd" * 32,
    "tensorrt_version": "10.14.1",
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "compute_capability": "8.9",
    "precision": "int8",
    "profile": ShapeProfile((1, 3, 64, 128), (1, 3, 512, 1024), (4, 3, 1024, 2048)),
}


@pytest.mark.parametrize("part", sorted(KEY_CHANGES))
def test_engine_cache_key_changes_with_each_part(part, tmp_path):
    key, changed = _key(), _key(**{part: KEY_CHANGES[part]})
    assert changed.digest() != key.digest()
    assert engine_cache_paths(tmp_path, "m.onnx", changed).engine != engine_cache_paths(tmp_path, "m.onnx", key).engine


def test_engine_cache_key_and_names_are_stable(tmp_path):
    key = _key()
    assert _key().digest() == key.digest() == EngineKey(**{**vars(key)}).digest()
    assert len(key.digest()) == 64
    paths = engine_cache_paths(tmp_path, Path("models") / "bisenetv2.onnx", key)
    assert paths.engine == tmp_path / f"bisenetv2.fp16.{key.digest()[:16]}.engine"
    assert paths.info == tmp_path / f"bisenetv2.fp16.{key.digest()[:16]}.engine.json"
    assert paths == engine_cache_paths(tmp_path, "bisenetv2.onnx", _key())
    assert json.loads(json.dumps(key.as_dict())) == key.as_dict()
    # The calibration cache follows the model, TensorRT version and calibration shape, not the GPU or precision.
    calibration = paths.calibration
    assert calibration.suffix == ".calib"
    assert engine_cache_paths(tmp_path, "bisenetv2.onnx", _key(gpu_name="other", precision="int8")).calibration == (
        calibration
    )
    for part in ("onnx_sha256", "tensorrt_version", "profile"):
        changes = {part: KEY_CHANGES[part]} if part != "profile" else {"profile": ShapeProfile(*[(1, 3, 64, 64)] * 3)}
        assert engine_cache_paths(tmp_path, "bisenetv2.onnx", _key(**changes)).calibration != calibration


def test_engine_cache_is_read_back_only_for_its_key(tmp_path):
    key = _key()
    paths = engine_cache_paths(tmp_path / "cache", "m.onnx", key)
    assert read_cached_engine(paths, key) is None
    write_cached_engine(paths, key, b"serialized engine", "m.onnx")
    assert read_cached_engine(paths, key) == b"serialized engine"
    assert json.loads(paths.info.read_text())["key"] == key.as_dict()
    assert not [path for path in paths.engine.parent.iterdir() if path.name.endswith(".partial")]
    assert read_cached_engine(paths, _key(gpu_name="another GPU")) is None  # key differs from the stored one
    paths.info.write_text("{ torn")
    assert read_cached_engine(paths, key) is None
    paths.info.unlink()  # an engine without its key JSON is an interrupted write
    assert read_cached_engine(paths, key) is None


def test_shape_profile_defaults_and_validation():
    dynamic = (None, 3, -1, None)
    assert shape_profile(dynamic, None, SIZE) == ShapeProfile(*[(1, 3, 64, 128)] * 3)
    assert shape_profile((1, 3, 32, 48)) == ShapeProfile(*[(1, 3, 32, 48)] * 3)
    shapes = {"min": [1, 3, 32, 64], "opt": [1, 3, 64, 128], "max": [2, 3, 96, 192]}
    profile = shape_profile(dynamic, shapes)
    assert profile == ShapeProfile((1, 3, 32, 64), (1, 3, 64, 128), (2, 3, 96, 192))
    assert shape_profile(dynamic, profile) == profile
    assert profile.contains((2, 3, 72, 136)) and not profile.contains((3, 3, 64, 128))
    assert not profile.contains((1, 3, 64))
    bad = [
        ((None, 3, None, None), None, None, "has dynamic dimensions: give shapes"),
        (dynamic, {"min": [1, 3, 32, 64], "opt": [1, 3, 64, 128]}, None, "shapes must be a ShapeProfile"),
        (dynamic, {**shapes, "max": [2, 3, 96]}, None, r"shapes\['max'\] = \(2, 3, 96\): expected 4 positive"),
        (dynamic, {**shapes, "min": [0, 3, 32, 64]}, None, "positive integers"),
        (dynamic, {**shapes, "opt": [1, 4, 64, 128]}, None, r"does not fit input \(\?, 3, \?, \?\)"),
        (dynamic, {**shapes, "min": [1, 3, 80, 64]}, None, "min <= opt <= max"),
        ((1, 3, 32, 48), {"min": [1, 3, 32, 48], "opt": [1, 3, 32, 48], "max": [2, 3, 32, 48]}, None, "fixed"),
    ]
    for declared, given, default, message in bad:
        with pytest.raises(ValueError, match=message):
            shape_profile(declared, given, default)


def _write_images(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    """Smooth random RGB images (PNG, written as BGR like any camera file) in nested folders."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (height, width) in enumerate(sizes):
        small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        path = folder / f"city_{i % 2}" / f"frame_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def test_calibration_batches_follow_the_cpu_pipeline(tmp_path):
    paths = _write_images(tmp_path / "calibration", [(64, 128), (80, 160), (48, 96), (64, 128), (100, 200)])
    (tmp_path / "calibration" / "notes.txt").write_text("not an image")
    batches = CalibrationBatches(tmp_path / "calibration", (2, 3, 64, 128), IMAGENET_MEAN, IMAGENET_STD)
    assert batches.files == sorted(paths) and len(batches) == 2  # the fifth image makes no full batch
    produced = list(batches)
    assert [batch.shape for batch in produced] == [(2, 3, 64, 128)] * 2
    for index, path in enumerate(sorted(paths)[:4]):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        expected = normalize_image(rgb, SIZE, IMAGENET_MEAN, IMAGENET_STD)[0]
        np.testing.assert_array_equal(produced[index // 2][index % 2], expected)
    with pytest.raises(ValueError, match="has 1 image"):
        CalibrationBatches(tmp_path / "calibration", (2, 3, 64, 128), IMAGENET_MEAN, IMAGENET_STD, max_images=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CalibrationBatches(tmp_path / "nowhere", (1, 3, 64, 128), IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("source", [(64, 128), (100, 180), (48, 96), (37, 53), (256, 512)])
def test_gpu_preprocessing_code_matches_the_cpu_pipeline_on_the_cpu(source):
    """``preprocess_image`` is device-agnostic torch: checked here on the CPU (and on CUDA by a GPU test)."""
    image = np.random.default_rng(1).integers(0, 256, (*source, 3), dtype=np.uint8)
    expected = normalize_image(image, SIZE, IMAGENET_MEAN, IMAGENET_STD)
    actual = preprocess_image(torch.from_numpy(image), SIZE, IMAGENET_MEAN, IMAGENET_STD).numpy()
    assert actual.shape == expected.shape == (1, 3, *SIZE) and actual.dtype == np.float32
    difference = np.abs(actual - expected)
    if source == SIZE:
        assert difference.max() <= 1e-6
    else:  # OpenCV's fixed-point uint8 resize vs float bilinear + rounding: at most one grey level, rarely
        assert difference.max() <= 1.001 * GREY_LEVEL
        assert (difference > 1e-6).mean() < 0.25


# --------------------------------------------------------------------------- TensorRT on an NVIDIA GPU

SHAPES = {"min": (1, 3, 32, 64), "opt": (1, 3, 64, 128), "max": (2, 3, 96, 192)}


@needs_gpu
def test_tensorrt_fp32_matches_onnxruntime(files, tmp_path):
    images = _images(2, 72, 136, seed=3)
    with create_backend("tensorrt", files.onnx, shapes=SHAPES, cache_dir=tmp_path) as backend, _ort(files) as ort:
        assert (backend.name, backend.device, backend.precision) == ("tensorrt", "cuda:0", "fp32")
        assert backend.input_specs == [IMAGE_SPEC] and backend.output_specs == [LOGITS_SPEC]
        _assert_close_logits(
            backend.infer({"image": images})["logits"], ort.infer({"image": images})["logits"], 0.999, 1e-3
        )
        assert backend.last_latency_ms > 0
        with pytest.raises(ValueError, match="outside the engine's optimisation profile"):
            backend.infer({"image": _images(3, 64, 128, seed=4)})


@needs_gpu
def test_tensorrt_engine_cache_is_reused_and_rebuilt_when_the_key_changes(files, tmp_path):
    with create_backend("tensorrt", files.onnx, shapes=SHAPES, cache_dir=tmp_path) as first:
        assert not first.engine_from_cache and first.engine_path.is_file()
        engine_path, built = first.engine_path, first.engine_path.stat().st_mtime_ns
    with create_backend("tensorrt", files.onnx, shapes=SHAPES, cache_dir=tmp_path) as second:
        assert second.engine_from_cache and second.engine_path == engine_path
        assert engine_path.stat().st_mtime_ns == built  # loaded, not rebuilt
    other = {**SHAPES, "max": (4, 3, 96, 192)}
    with create_backend("tensorrt", files.onnx, shapes=other, cache_dir=tmp_path) as third:
        assert not third.engine_from_cache and third.engine_path != engine_path


@needs_gpu
def test_tensorrt_fp16_matches_onnxruntime(files, tmp_path):
    import tensorrt

    from seg_perception.backends.tensorrt_backend import tensorrt_precisions

    if "fp16" not in tensorrt_precisions(tensorrt):
        pytest.skip(f"TensorRT {tensorrt.__version__} has no FP16 builder flag (removed in TensorRT 11)")
    images = _images(1, *SIZE, seed=5)
    with create_backend("tensorrt", files.onnx, precision="fp16", cache_dir=tmp_path) as backend, _ort(files) as ort:
        assert backend.precision == "fp16"
        _assert_close_logits(
            backend.infer({"image": images})["logits"], ort.infer({"image": images})["logits"], 0.95, 0.1
        )


@needs_gpu
def test_tensorrt_int8_calibrates_once_and_reuses_the_calibration_cache(files, tmp_path):
    import tensorrt

    from seg_perception.backends.tensorrt_backend import tensorrt_precisions

    if "int8" not in tensorrt_precisions(tensorrt):
        pytest.skip(f"TensorRT {tensorrt.__version__} has no implicit INT8 calibration (removed in TensorRT 11)")
    folder = tmp_path / "calibration"
    _write_images(folder, [SIZE] * 4)
    image = cv2.cvtColor(cv2.imread(str(sorted(folder.rglob("*.png"))[0])), cv2.COLOR_BGR2RGB)
    inputs = {"image": normalize_image(image, SIZE, IMAGENET_MEAN, IMAGENET_STD)}
    with _ort(files) as ort:
        expected = ort.infer(inputs)["logits"]
    cache = tmp_path / "cache"
    with create_backend("tensorrt", files.onnx, precision="int8", cache_dir=cache, calibration_images=folder) as first:
        actual = first.infer(inputs)["logits"]
        engine_path = first.engine_path
    calibration = list(cache.glob("*.calib"))
    assert len(calibration) == 1 and calibration[0].stat().st_size > 0
    assert actual.shape == expected.shape and np.isfinite(actual).all()
    assert np.corrcoef(actual.ravel(), expected.ravel())[0, 1] > 0.9
    engine_path.unlink()  # rebuild without images: the calibration cache is enough
    with create_backend("tensorrt", files.onnx, precision="int8", cache_dir=cache) as second:
        assert not second.engine_from_cache and second.precision == "int8"
        assert np.isfinite(second.infer(inputs)["logits"]).all()
    shutil.rmtree(cache)
    with pytest.raises(ValueError, match="needs calibration_images"):
        create_backend("tensorrt", files.onnx, precision="int8", cache_dir=cache)


@needs_gpu
def test_tensorrt_gpu_preprocessing_matches_the_cpu_pipeline(files, tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (100, 180, 3), dtype=np.uint8)
    expected = normalize_image(image, SIZE, IMAGENET_MEAN, IMAGENET_STD)
    on_gpu = preprocess_image(torch.from_numpy(image).cuda(), SIZE, IMAGENET_MEAN, IMAGENET_STD).cpu().numpy()
    assert np.abs(on_gpu - expected).max() <= 1.001 * GREY_LEVEL
    with create_backend("tensorrt", files.onnx, cache_dir=tmp_path) as backend:
        from_gpu = backend.infer_image(image)
        assert backend.last_latency_ms > 0
        from_cpu = backend.infer({"image": expected})["logits"]
    _assert_close_logits(from_gpu, from_cpu, 0.99, 0.05)


@needs_gpu
def test_auto_prefers_tensorrt_on_a_gpu(files, tmp_path):
    with create_backend("auto", files.onnx, cache_dir=tmp_path, intra_op_threads=1) as backend:
        assert (backend.name, backend.device) == ("tensorrt", "cuda:0")
