"""TensorRT backend and engine building; every TensorRT call of the package lives in this module.

Pure logic, no tensorrt and no GPU needed (unit-tested on the CPU): ``shape_profile`` (optimisation-profile
validation), ``EngineKey`` and ``engine_cache_paths`` (engine cache), ``read_cached_engine`` /
``write_cached_engine`` and ``preprocess_image`` (torch, any
device). TensorRT (imported lazily, on first use): ``build_engine``, ``entropy_calibrator`` and
``TensorRTBackend``, which runs ``execute_async_v3`` on a CUDA stream with torch CUDA tensors as I/O buffers.

Engine cache, in ``cache_dir`` (default: the ONNX file's folder): ``<onnx stem>.<precision>.<digest>.engine``
plus ``<that name>.json`` holding the full key (sha256 of the ONNX bytes, TensorRT version, GPU name, compute
capability, precision, min/opt/max shapes). The JSON is written last, so an engine without it is incomplete and
rebuilt; a changed key gives another file name, so engines are rebuilt exactly when a part of the key changes.
The INT8 calibration cache ``<onnx stem>.int8.<digest>.calib`` (ONNX hash, TensorRT version, opt shape) sits
beside it; delete it to recalibrate on other images.

Written against the TensorRT 10 Python API. TensorRT 11 removed the builder precision flags and implicit INT8
calibration (strongly typed networks only), so there ``supported_precisions`` offers only "fp32": an FP16 or
INT8 engine then needs an ONNX model converted or quantised (Q/DQ) beforehand.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from google.protobuf.message import DecodeError

from seg_perception.backends.base import (
    BackendUnavailableError,
    InferenceBackend,
    TensorSpec,
    UnsupportedPrecisionError,
    parse_device,
)
from seg_perception.backends.calibration import DEFAULT_CALIBRATION_IMAGES, CalibrationBatches
from seg_perception.model_info import read_model_info, sidecar_path
from seg_perception.model_input import resize_plan

LOGGER = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 2 << 30
"""Builder workspace memory-pool limit (2 GiB)."""


# --------------------------------------------------------------------------- pure logic (no tensorrt, no CUDA)


@dataclass(frozen=True)
class ShapeProfile:
    """Optimisation profile of the engine's one input: the smallest, the tuned-for and the largest full shape,
    e.g. (N, 3, H, W) each."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def contains(self, shape: Sequence[int]) -> bool:
        """Whether ``shape`` lies within min..max in every dimension."""
        return len(shape) == len(self.min) and all(
            low <= d <= high for low, d, high in zip(self.min, shape, self.max, strict=True)
        )

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def shape_profile(
    declared: Sequence[int | None],
    shapes: ShapeProfile | Mapping[str, Sequence[int]] | None = None,
    default_size: Sequence[int] | None = None,
) -> ShapeProfile:
    """The validated profile for an input declared with shape ``declared`` (None or -1: dynamic dimension).

    ``shapes``: a ShapeProfile or ``{"min": shape, "opt": shape, "max": shape}`` (as in a YAML config); each
    shape must have the declared rank, positive dimensions, the declared value for every fixed dimension, and
    min <= opt <= max everywhere. ``None``: the declared shape itself when fully fixed; otherwise, for an
    (N, C, H, W) input, one fixed shape (1, C, *default_size) (the sidecar's ``input_size``). ValueError
    otherwise, naming the offending shape.
    """
    declared = tuple(None if d is None or d < 0 else int(d) for d in declared)
    text = "(" + ", ".join("?" if d is None else str(d) for d in declared) + ")"
    if shapes is None:
        if None not in declared:
            return ShapeProfile(declared, declared, declared)
        if len(declared) != 4 or declared[1] is None or default_size is None or len(default_size) != 2:
            raise ValueError(f"input {text} has dynamic dimensions: give shapes={{'min': ..., 'opt': ..., 'max': ...}}")
        fixed = tuple(d if d is not None else fill for d, fill in zip(declared, (1, None, *default_size), strict=True))
        return ShapeProfile(fixed, fixed, fixed)
    if isinstance(shapes, ShapeProfile):
        parts = {"min": shapes.min, "opt": shapes.opt, "max": shapes.max}
    elif isinstance(shapes, Mapping) and set(shapes) == {"min", "opt", "max"}:
        parts = dict(shapes)
    else:
        raise ValueError(
            f"shapes must be a ShapeProfile or {{'min': shape, 'opt': shape, 'max': shape}}, got {shapes!r}"
        )
    profile = {}
    for label, shape in parts.items():
        shape = tuple(shape)
        if len(shape) != len(declared) or not all(isinstance(d, int) and d >= 1 for d in shape):
            raise ValueError(
                f"shapes[{label!r}] = {shape}: expected {len(declared)} positive integers for input {text}"
            )
        if any(want not in (None, got) for want, got in zip(declared, shape, strict=True)):
            raise ValueError(f"shapes[{label!r}] = {shape} does not fit input {text} (a fixed dimension differs)")
        profile[label] = shape
    result = ShapeProfile(profile["min"], profile["opt"], profile["max"])
    if not all(low <= mid <= high for low, mid, high in zip(result.min, result.opt, result.max, strict=True)):
        raise ValueError(f"shapes must satisfy min <= opt <= max in every dimension, got {result.as_dict()}")
    return result


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on; ``digest()`` names its cache file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profile: ShapeProfile

    def as_dict(self) -> dict:
        """JSON-ready key (what the cache stores next to the engine)."""
        return {**asdict(self), "profile": self.profile.as_dict()}

    def digest(self) -> str:
        """sha256 hex digest of the canonical JSON of the key."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class EngineCachePaths:
    """The engine file, its key JSON and the INT8 calibration cache."""

    engine: Path
    info: Path
    calibration: Path


def engine_cache_paths(cache_dir: str | Path, onnx_path: str | Path, key: EngineKey) -> EngineCachePaths:
    """Cache file names of ``key`` for the model ``onnx_path`` (see the module docstring)."""
    cache_dir, stem = Path(cache_dir), Path(onnx_path).stem
    engine = cache_dir / f"{stem}.{key.precision}.{key.digest()[:16]}.engine"
    calibration_key = json.dumps([key.onnx_sha256, key.tensorrt_version, list(key.profile.opt)])
    calibration = cache_dir / f"{stem}.int8.{hashlib.sha256(calibration_key.encode()).hexdigest()[:16]}.calib"
    return EngineCachePaths(engine, engine.with_name(engine.name + ".json"), calibration)


def read_cached_engine(paths: EngineCachePaths, key: EngineKey) -> bytes | None:
    """The engine stored for ``key``; None when absent, incomplete (no key JSON) or stored for another key."""
    try:
        info = json.loads(paths.info.read_text())
        engine = paths.engine.read_bytes()
    except (OSError, ValueError):
        return None
    return engine if isinstance(info, dict) and info.get("key") == key.as_dict() else None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_cached_engine(paths: EngineCachePaths, key: EngineKey, engine: bytes, onnx_path: str | Path) -> None:
    """Store ``engine`` and then its key JSON, each atomically (concurrent builders never leave a torn file)."""
    _write_atomically(paths.engine, engine)
    info = {"key": key.as_dict(), "onnx": str(Path(onnx_path).resolve()), "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_atomically(paths.info, (json.dumps(info, indent=2) + "\n").encode())


def preprocess_image(
    image: torch.Tensor, size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """(H, W, 3) uint8 RGB tensor -> (1, 3, h, w) float32 ``(x / 255 - mean) / std`` at ``size`` = (h, w), on the
    tensor's device.

    The torch twin of ``model_input.normalize_image``: same formula (identical at the input size) and the
    same resize (``model_input.resize_plan``) rounded to 0..255 like OpenCV's uint8 resizes: 2x2 halvings,
    area averaging, bilinear half-pixel (within one grey level).
    """
    height, width = size
    pixels = image.permute(2, 0, 1).unsqueeze(0).float()
    halvings, final = resize_plan(tuple(image.shape[:2]), (height, width))
    for _ in range(halvings):  # rounded half up per step, as OpenCV's uint8 halvings: (a + b + c + d + 2) >> 2
        pixels = F.avg_pool2d(pixels, 2).add_(0.5).floor_()
    if final is not None:
        mode = {"area": "area", "linear": "bilinear"}[final]
        corners = {"align_corners": False} if mode == "bilinear" else {}
        pixels = F.interpolate(pixels, size=(height, width), mode=mode, **corners).round_().clamp_(0, 255)
    std32 = np.asarray(std, np.float32)
    scale = torch.from_numpy(np.float32(1.0 / 255.0) / std32).to(image.device).view(1, 3, 1, 1)
    offset = torch.from_numpy(np.asarray(mean, np.float32) / std32).to(image.device).view(1, 3, 1, 1)
    return (pixels * scale - offset).contiguous()


def onnx_input(onnx_bytes: bytes, path: Path) -> tuple[str, tuple[int | None, ...]]:
    """(name, declared shape with None for dynamic dimensions) of the model's one input."""
    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except DecodeError as error:
        raise ValueError(f"{path} is not an ONNX model (as written by seg-export): {error}") from None
    weights = {initializer.name for initializer in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected an ONNX model with one input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


# --------------------------------------------------------------------------- TensorRT


def _tensorrt():
    """The tensorrt module; BackendUnavailableError when it is not installed or does not load."""
    try:
        import tensorrt  # lazy: this module (its pure logic) imports without TensorRT
    except ImportError as error:
        raise BackendUnavailableError(
            f"tensorrt is not installed or does not load ({error}); on an NVIDIA GPU machine: pip install tensorrt-cu13"
        ) from None
    return tensorrt


@functools.cache
def _trt_logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def tensorrt_precisions(trt) -> tuple[str, ...]:
    """Precisions the installed TensorRT builds: fp32 always; fp16 / int8 while the builder has the precision
    flags and the entropy calibrator (TensorRT 10)."""
    precisions = ["fp32"]
    if hasattr(trt.BuilderFlag, "FP16"):
        precisions.append("fp16")
        if hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2"):
            precisions.append("int8")
    return tuple(precisions)


def build_engine(
    onnx_path: str | Path,
    precision: str,
    shapes: ShapeProfile,
    calibrator=None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> bytes:
    """Serialized TensorRT engine of the one-input ONNX model for the optimisation profile ``shapes``.

    "fp32": FP32 kernels only (TF32 off); "fp16": FP16 kernels allowed; "int8": INT8 and FP16 kernels, scales
    from ``calibrator`` (``entropy_calibrator``, fed at ``shapes.opt``). I/O stays as declared (float32).
    Seconds to minutes. ValueError when TensorRT cannot parse the model or the profile does not fit it,
    RuntimeError when the build fails (TensorRT's log says why).
    """
    trt = _tensorrt()
    if precision not in tensorrt_precisions(trt):
        raise ValueError(f"TensorRT {trt.__version__} cannot build precision {precision!r} here")
    if (precision == "int8") != (calibrator is not None):
        raise ValueError("an INT8 calibrator is needed for, and only for, precision 'int8'")
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    if network.num_inputs != 1:
        raise ValueError(f"{onnx_path}: expected one input, TensorRT sees {network.num_inputs}")
    tensor = network.get_input(0)
    shape_profile(tuple(tensor.shape), shapes)  # the profile must fit the parsed input

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, shapes.min, shapes.opt, shapes.max)
    config.add_optimization_profile(profile)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    LOGGER.info("building a TensorRT %s %s engine for %s (%s)", trt.__version__, precision, onnx_path, shapes)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(
            f"TensorRT {trt.__version__} could not build a {precision} engine for {onnx_path} with profile "
            f"{shapes.as_dict()} (see the TensorRT log above)"
        )
    LOGGER.info("built the engine in %.1f s", time.perf_counter() - start)
    return bytes(serialized)


def entropy_calibrator(batches: CalibrationBatches | None, cache_path: Path, device: torch.device):
    """A ``trt.IInt8EntropyCalibrator2`` feeding ``batches`` through one CUDA buffer on ``device``.

    It reads the calibration cache ``cache_path`` when present (TensorRT then skips calibration; ``batches`` may
    be None) and writes it after calibrating.
    """
    trt = _tensorrt()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches if batches is not None else ())
            shape = batches.shape if batches is not None else (1,)
            self._buffer = torch.empty(shape, dtype=torch.float32, device=device)

        def get_batch_size(self) -> int:
            return batches.shape[0] if batches is not None else 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._buffer.copy_(torch.from_numpy(batch))  # synchronous: the buffer is ready when TensorRT reads it
            return [self._buffer.data_ptr()]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            _write_atomically(cache_path, bytes(cache))

    return EntropyCalibrator()


class TensorRTBackend(InferenceBackend):
    """A TensorRT engine of an ONNX model, built once per cache key and then loaded from the engine cache.

    ``device``: "auto" / "cuda" (GPU 0) or "cuda:N". ``precision``: "fp32", "fp16" or "int8" (TensorRT 10;
    see ``tensorrt_precisions``). ``shapes``: the optimisation profile of the input (see ``shape_profile``;
    default: the sidecar's ``input_size``, batch 1). ``cache_dir``: engine cache folder (default: the model's).
    INT8 needs ``calibration_images`` (a folder, up to ``calibration_max_images`` used, normalised with the
    sidecar's mean/std) unless its calibration cache exists. ``workspace_bytes``: builder workspace limit.

    ``engine_path`` is the cached engine; ``engine_from_cache`` says whether it was reused. ``infer_image``
    runs one uint8 image with pre-processing on the GPU. Inputs must lie within the profile (ValueError).
    Raises BackendUnavailableError without tensorrt or CUDA, FileNotFoundError / ValueError for a missing or
    unusable model file.
    """

    name = "tensorrt"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "auto",
        precision: str = "fp32",
        shapes: ShapeProfile | Mapping[str, Sequence[int]] | None = None,
        cache_dir: str | Path | None = None,
        calibration_images: str | Path | None = None,
        calibration_max_images: int = DEFAULT_CALIBRATION_IMAGES,
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        trt = _tensorrt()
        if not torch.cuda.is_available():
            raise BackendUnavailableError(f"CUDA is not available (torch {torch.__version__} sees no CUDA device)")
        _, index = parse_device("cuda" if device == "auto" else device, ("cuda",))
        supported = tensorrt_precisions(trt)
        if precision not in supported:
            removed = " (TensorRT 11 removed the FP16/INT8 builder flags)" if precision in ("fp16", "int8") else ""
            raise UnsupportedPrecisionError(
                f"TensorRT {trt.__version__} builds precision {', '.join(supported)} from an FP32 ONNX model, "
                f"not {precision!r}{removed}"
            )
        onnx_bytes = path.read_bytes()
        self._input_name, declared = onnx_input(onnx_bytes, path)
        info = read_model_info(path) if sidecar_path(path).is_file() else None
        self._profile = shape_profile(declared, shapes, info.input_size if info else None)
        self._mean, self._std = (info.mean, info.std) if info else (None, None)
        self._device = torch.device("cuda", index)
        key = EngineKey(
            onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
            tensorrt_version=trt.__version__,
            gpu_name=torch.cuda.get_device_name(self._device),
            compute_capability="{}.{}".format(*torch.cuda.get_device_capability(self._device)),
            precision=precision,
            profile=self._profile,
        )
        paths = engine_cache_paths(cache_dir if cache_dir is not None else path.parent, path, key)
        self.engine_path = paths.engine

        with torch.cuda.device(self._device):
            self._runtime = trt.Runtime(_trt_logger(trt))
            cached = read_cached_engine(paths, key)
            self._engine = self._runtime.deserialize_cuda_engine(cached) if cached is not None else None
            self.engine_from_cache = self._engine is not None
            if cached is not None and self._engine is None:
                LOGGER.warning("cached engine %s does not deserialize; rebuilding it", paths.engine)
            if self._engine is None:
                calibrator = None
                if precision == "int8":
                    calibrator = self._calibrator(paths.calibration, calibration_images, calibration_max_images)
                engine = build_engine(path, precision, self._profile, calibrator, workspace_bytes)
                write_cached_engine(paths, key, engine, path)
                self._engine = self._runtime.deserialize_cuda_engine(engine)
                if self._engine is None:
                    raise RuntimeError(f"TensorRT could not load the engine it just built ({paths.engine})")
            else:
                LOGGER.info("reusing the TensorRT engine %s", paths.engine)
            self._context = self._engine.create_execution_context()
            self._stream = torch.cuda.Stream(self._device)

        specs = {True: [], False: []}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            specs[is_input].append(TensorSpec(name, tuple(self._engine.get_tensor_shape(name)), dtype))
        super().__init__(
            device=str(self._device), precision=precision, input_specs=specs[True], output_specs=specs[False]
        )

    @staticmethod
    def supported_precisions(device: str) -> tuple[str, ...]:
        return tensorrt_precisions(_tensorrt())

    def _calibrator(self, cache_path: Path, images: str | Path | None, max_images: int):
        """The INT8 calibrator: over ``images`` (sidecar mean/std needed), or replaying ``cache_path``."""
        if images is None:
            if not cache_path.is_file():
                raise ValueError(
                    f"precision 'int8' needs calibration_images=FOLDER (no calibration cache {cache_path})"
                )
            return entropy_calibrator(None, cache_path, self._device)
        if self._mean is None or self._std is None:
            raise ValueError("INT8 calibration needs the model's mean/std from its seg-export sidecar FILE.onnx.json")
        batches = CalibrationBatches(images, self._profile.opt, self._mean, self._std, max_images)
        LOGGER.info("calibrating INT8 on %d batch(es) of %s", len(batches), batches.shape)
        return entropy_calibrator(batches, cache_path, self._device)

    def _execute(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Enqueue the engine on the current stream (ours) with ``inputs`` (CUDA tensors); returns CUDA outputs."""
        for name, tensor in inputs.items():
            shape = tuple(tensor.shape)
            if not self._profile.contains(shape):
                raise ValueError(
                    f"input {name!r} {shape} is outside the engine's optimisation profile {self._profile.as_dict()}; "
                    "build it with other shapes"
                )
            self._context.set_input_shape(name, shape)
            self._context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for spec in self._output_specs:
            dtype = torch.from_numpy(np.empty(0, spec.dtype)).dtype
            output = torch.empty(tuple(self._context.get_tensor_shape(spec.name)), dtype=dtype, device=self._device)
            self._context.set_tensor_address(spec.name, output.data_ptr())
            outputs[spec.name] = output
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError(f"TensorRT could not enqueue {self.engine_path}")
        return outputs

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.cuda.device(self._device), torch.cuda.stream(self._stream):
            device_inputs = {name: torch.from_numpy(array).to(self._device) for name, array in inputs.items()}
            outputs = {name: tensor.cpu() for name, tensor in self._execute(device_inputs).items()}
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def infer_image(self, image: np.ndarray, size: Sequence[int] | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB image -> (1, C, h, w) float32 logits, pre-processed on the GPU.

        The image is uploaded as uint8, resized to ``size`` = (h, w) (default: the profile's opt size) and
        normalised with the sidecar's mean/std there (``preprocess_image``, the twin of the CPU path).
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self._mean is None or self._std is None:
            raise ValueError("infer_image needs the model's mean/std from its seg-export sidecar FILE.onnx.json")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"infer_image expects an (H, W, 3) uint8 RGB array, got {getattr(image, 'shape', image)}")
        size = tuple(size) if size is not None else self._profile.opt[2:]
        start = time.perf_counter()
        with torch.cuda.device(self._device), torch.cuda.stream(self._stream):
            pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self._device)
            tensor = preprocess_image(pixels, size, self._mean, self._std)
            logits = self._execute({self._input_name: tensor})[self._output_specs[0].name].cpu()
        self.last_latency_ms = (time.perf_counter() - start) * 1e3
        return logits.numpy()

    def _release(self) -> None:
        del self._context, self._engine, self._runtime, self._stream
