"""ONNX Runtime backend: an ``InferenceSession`` on the CPU, CUDA or TensorRT execution provider (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from seg_perception.backends.base import BackendUnavailableError, InferenceBackend, TensorSpec, parse_device

ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}
MODEL_ERRORS = (
    ort_errors.InvalidProtobuf,
    ort_errors.InvalidGraph,
    ort_errors.Fail,
    ort_errors.NotImplemented,
    ort_errors.InvalidArgument,
)
"""What ``InferenceSession`` raises for a file that is not a loadable ONNX model."""
PRIMARY_PROVIDER = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def _providers(kind: str, index: int | None, precision: str, cache_dir: Path) -> list:
    """Execution providers, best first: tensorrt -> TensorRT, CUDA, CPU; cuda -> CUDA, CPU; cpu -> CPU."""
    cuda = ("CUDAExecutionProvider", {"device_id": index})
    if kind == "tensorrt":
        tensorrt_options = {
            "device_id": index,
            "trt_fp16_enable": precision == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir),
        }
        return [("TensorrtExecutionProvider", tensorrt_options), cuda, "CPUExecutionProvider"]
    if kind == "cuda":
        return [cuda, "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _specs(args: list) -> list[TensorSpec]:
    """ONNX Runtime NodeArgs -> TensorSpecs (symbolic or unknown dimensions -> None)."""
    return [
        TensorSpec(arg.name, tuple(d if isinstance(d, int) else None for d in arg.shape), ORT_DTYPES[arg.type])
        for arg in args
    ]


class OnnxRuntimeBackend(InferenceBackend):
    """An ONNX model in ONNX Runtime (graph optimisations: all).

    ``device``: "auto" (CUDA when onnxruntime has the CUDA provider, else CPU), "cpu", "cuda[:N]" (CUDA, then
    CPU for unsupported nodes) or "tensorrt[:N]" (ONNX Runtime's TensorRT provider, then CUDA, then CPU;
    precision "fp16" allowed there, its engines cached in ``cache_dir``, default: the model's folder).
    ``intra_op_threads``: ONNX Runtime's intra-op thread count (default: its own choice).

    Raises FileNotFoundError / ValueError for a missing / unloadable model file and BackendUnavailableError
    when the requested provider is not available here.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "auto",
        precision: str = "fp32",
        intra_op_threads: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        available = ort.get_available_providers()
        if device == "auto":
            device = "cuda" if PRIMARY_PROVIDER["cuda"] in available else "cpu"
        kind, index = parse_device(device, PRIMARY_PROVIDER)
        self._require_precision(precision, kind)
        wanted = PRIMARY_PROVIDER[kind]
        if wanted not in available:
            package = "onnxruntime-gpu built with TensorRT" if kind == "tensorrt" else "onnxruntime-gpu"
            raise BackendUnavailableError(
                f"onnxruntime {ort.__version__} has no {wanted} (available: {', '.join(available)}; install {package})"
            )
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        providers = _providers(kind, index, precision, Path(cache_dir) if cache_dir else path.parent)
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except MODEL_ERRORS as error:
            raise ValueError(f"{path} is not a loadable ONNX model (as written by seg-export): {error}") from None
        except (ort_errors.EPFail, ort_errors.RuntimeException) as error:
            if kind == "cpu":
                raise
            raise BackendUnavailableError(f"onnxruntime could not start {wanted}: {error}") from None
        used = self._session.get_providers()
        if used[0] != wanted:
            raise BackendUnavailableError(
                f"onnxruntime could not start {wanted} (is CUDA available?); it fell back to {', '.join(used)}"
            )
        super().__init__(
            device="cpu" if kind == "cpu" else f"{kind}:{index}",
            precision=precision,
            input_specs=_specs(self._session.get_inputs()),
            output_specs=_specs(self._session.get_outputs()),
        )
        self._output_names = [spec.name for spec in self._output_specs]

    @staticmethod
    def supported_precisions(device: str) -> tuple[str, ...]:
        return ("fp32", "fp16") if device.startswith("tensorrt") else ("fp32",)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._output_names, self._session.run(self._output_names, inputs), strict=True))

    def _release(self) -> None:
        del self._session
