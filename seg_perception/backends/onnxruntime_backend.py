"""ONNX Runtime backend: an ``InferenceSession`` on the CPU, CUDA or TensorRT execution provider (no torch); INT8
on the CPU through ``ort_int8`` (static QDQ quantization, cached)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from seg_perception.backends.base import BackendUnavailableError, InferenceBackend, TensorSpec, parse_device
from seg_perception.backends.calibration import DEFAULT_CALIBRATION_IMAGES

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
GRAPH_OPTIMIZATION = {  # keys: GRAPH_OPTIMIZATION_LEVELS
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
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
    """An ONNX model in ONNX Runtime.

    ``device``: "auto" (CUDA when onnxruntime has the CUDA provider, else CPU), "cpu", "cuda[:N]" (CUDA, then
    CPU for unsupported nodes) or "tensorrt[:N]" (ONNX Runtime's TensorRT provider, then CUDA, then CPU;
    precision "fp16" allowed there, its engines cached in ``cache_dir``, default: the model's folder).
    Precision "int8" (CPU): the model's INT8 twin from ``ort_int8.int8_model`` (built from ``calibration_images``
    with ``calibration_method`` minmax | entropy | percentile, at most ``calibration_max_images`` frames, cached in
    ``cache_dir``; without a folder, a cached or shipped one of this model). ``model_path`` is the file that runs.

    Session settings: ``intra_op_threads`` (default: ONNX Runtime's choice, one per core), ``allow_spinning``
    (intra-op threads spin-wait for work; default off: measured -19 % node CPU per frame at equal latency),
    ``graph_optimization`` (disable | basic | extended | all, default all).

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
        allow_spinning: bool = False,
        graph_optimization: str = "all",
        cache_dir: str | Path | None = None,
        calibration_images: str | Path | None = None,
        calibration_method: str = "minmax",
        calibration_max_images: int = DEFAULT_CALIBRATION_IMAGES,
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
        if graph_optimization not in GRAPH_OPTIMIZATION:
            levels = ", ".join(GRAPH_OPTIMIZATION)
            raise ValueError(f"graph_optimization must be one of {levels}, got {graph_optimization!r}")
        if precision == "int8":
            from seg_perception.backends.ort_int8 import int8_model  # onnx + onnxruntime.quantization: only for int8

            path = int8_model(
                path,
                calibration_images=calibration_images,
                method=calibration_method,
                max_images=calibration_max_images,
                cache_dir=cache_dir,
            )
        self.model_path = path

        options = ort.SessionOptions()
        options.graph_optimization_level = GRAPH_OPTIMIZATION[graph_optimization]
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
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
        if device.startswith("tensorrt"):
            return ("fp32", "fp16")
        return ("fp32", "int8") if device == "cpu" else ("fp32",)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._output_names, self._session.run(self._output_names, inputs), strict=True))

    def _release(self) -> None:
        del self._session
