"""Inference backends behind one interface: ``create_backend(kind, model_path, device=, precision=, **options)``.

``kind``: "tensorrt" (ONNX -> cached TensorRT engine, NVIDIA GPU), "onnxruntime" (ONNX), "torch" (model-zoo
checkpoint) or "auto". Every backend is an ``InferenceBackend`` (see ``base``): ``infer({"image": (N, 3, H, W)
float32})`` -> ``{"logits": (N, C, H, W) float32}`` for the models of this package, ``input_specs`` /
``output_specs``, ``last_latency_ms``, ``name`` / ``device`` / ``precision``, context manager.

Backend modules are imported only when created: importing this package imports neither torch, onnxruntime nor
tensorrt, and an ONNX Runtime backend never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

from seg_perception.backends.base import (
    BackendUnavailableError,
    InferenceBackend,
    TensorSpec,
    UnsupportedPrecisionError,
)

__all__ = [
    "BACKEND_OPTIONS",
    "CALIBRATION_METHODS",
    "GRAPH_OPTIMIZATION_LEVELS",
    "KINDS",
    "PRECISIONS",
    "BackendUnavailableError",
    "InferenceBackend",
    "TensorSpec",
    "UnsupportedPrecisionError",
    "create_backend",
]

LOGGER = logging.getLogger(__name__)

KINDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
"""ONNX Runtime INT8 calibration methods (``ort_int8``)."""
GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
"""ONNX Runtime graph optimisation levels (``onnxruntime_backend``)."""
BACKEND_OPTIONS = {
    "tensorrt": ("shapes", "cache_dir", "calibration_images", "calibration_max_images", "workspace_bytes"),
    "onnxruntime": (
        "intra_op_threads",
        "allow_spinning",
        "graph_optimization",
        "cache_dir",
        "calibration_images",
        "calibration_method",
        "calibration_max_images",
    ),
    "torch": ("model", "model_options"),
}
"""The keyword options each backend takes beyond device and precision (see its class)."""
_CLASSES = {
    "tensorrt": ("seg_perception.backends.tensorrt_backend", "TensorRTBackend"),
    "onnxruntime": ("seg_perception.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "torch": ("seg_perception.backends.torch_backend", "TorchBackend"),
}
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_ZIP_MAGIC = b"PK\x03\x04"
"""torch.save writes zip archives; an ONNX file (protobuf) never starts with these bytes."""


def _model_format(path: Path) -> str:
    """The file's format, "checkpoint" (a torch.save zip, or .pt/.pth/.ckpt) or "onnx".

    FileNotFoundError for a missing file, ValueError for an empty one.
    """
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    with path.open("rb") as file:
        head = file.read(len(_ZIP_MAGIC))
    if not head:
        raise ValueError(f"model file {path} is empty (expected an ONNX model or a PyTorch checkpoint)")
    return "checkpoint" if head == _ZIP_MAGIC or path.suffix in _CHECKPOINT_SUFFIXES else "onnx"


def _backend_class(kind: str) -> type[InferenceBackend]:
    """The backend class, imported now; BackendUnavailableError when its packages are missing."""
    if kind == "tensorrt" and importlib.util.find_spec("tensorrt") is None:  # checked first: no torch import
        raise BackendUnavailableError("tensorrt is not installed (on an NVIDIA GPU machine: pip install tensorrt-cu13)")
    module_name, class_name = _CLASSES[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendUnavailableError(f"the {kind} backend cannot be imported: {error}") from None
    return getattr(module, class_name)


def create_backend(
    kind: str, model_path: str | Path, *, device: str = "auto", precision: str = "fp32", **options: object
) -> InferenceBackend:
    """Load ``model_path`` into the backend ``kind`` on ``device`` ("auto", "cpu", "cuda[:N]"; ONNX Runtime
    also "tensorrt[:N]", its TensorRT provider) at ``precision`` ("fp32", "fp16", "int8").

    ``"auto"``: for an ONNX model, the first that runs here of TensorRT (tensorrt installed and CUDA), ONNX
    Runtime with CUDA, ONNX Runtime on the CPU (``device`` "cpu" or "cuda[:N]" restricts the choice); for a
    PyTorch checkpoint, torch (the only backend that reads one). A precision the chosen backend does not run
    falls back to fp32, and options of the other backends are ignored; the choice and the reasons are logged, and
    ``backend.name`` / ``device`` / ``precision`` say what runs.

    Raises ValueError for an unknown kind or precision, a model file of the wrong format or an unusable one;
    FileNotFoundError for a missing file; TypeError for an option no candidate backend takes;
    BackendUnavailableError (a RuntimeError) saying why when the backend (for "auto": every candidate) cannot
    run here, e.g. "tensorrt is not installed" or "CUDA is not available".
    """
    if kind not in KINDS:
        raise ValueError(f"unknown backend kind {kind!r}; expected one of {', '.join(KINDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    path = Path(model_path)
    model_format = _model_format(path)
    if kind == "auto":
        return _create_auto(path, model_format, device, precision, options)

    expected = "checkpoint" if kind == "torch" else "onnx"
    if model_format != expected:
        wanted = "a model-zoo checkpoint (.pt)" if kind == "torch" else "an ONNX model (FILE.onnx from seg-export)"
        raise ValueError(f"the {kind} backend expects {wanted}; {path} looks like a {model_format} file")
    unknown = sorted(set(options) - set(BACKEND_OPTIONS[kind]))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for the {kind} backend; "
            f"accepted: {', '.join(BACKEND_OPTIONS[kind])}"
        )
    return _backend_class(kind)(path, device=device, precision=precision, **options)


def _create_auto(
    path: Path, model_format: str, device: str, precision: str, options: dict[str, object]
) -> InferenceBackend:
    """The first candidate backend that runs here (see ``create_backend``)."""
    known = {name for names in BACKEND_OPTIONS.values() for name in names}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(known))}")
    if model_format == "checkpoint":
        candidates = [("torch", device)]
    elif device == "cpu":
        candidates = [("onnxruntime", "cpu")]
    elif device == "auto" or device.startswith("cuda"):
        gpu = "cuda" if device == "auto" else device
        candidates = [("tensorrt", gpu), ("onnxruntime", gpu)] + ([("onnxruntime", "cpu")] if device == "auto" else [])
    else:
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda[:N] (for kind 'auto')")

    reasons = []
    for kind, candidate_device in candidates:
        try:
            backend_class = _backend_class(kind)
            supported = backend_class.supported_precisions(candidate_device)
            used = precision if precision in supported else "fp32"
            kind_options = {name: value for name, value in options.items() if name in BACKEND_OPTIONS[kind]}
            backend = backend_class(path, device=candidate_device, precision=used, **kind_options)
        except BackendUnavailableError as error:
            reasons.append(f"{kind} on {candidate_device}: {error}")
            continue
        notes = reasons + ([f"precision {precision} not supported, running fp32"] if used != precision else [])
        LOGGER.info("auto backend for %s: %r%s", path, backend, f" ({'; '.join(notes)})" if notes else "")
        return backend
    if model_format == "onnx":
        reasons.append("torch: reads PyTorch checkpoints, not ONNX models")
    raise BackendUnavailableError(f"no backend can run {path} here: {'; '.join(reasons)}")
