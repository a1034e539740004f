"""Loading a model for the pipelines: which file, which backend, and a start-up check that the model is what its
sidecar says (numpy only; the backend imports its own runtime).

``open_backend`` loads the model and checks it (``check_model``: the graph's input and output names against the
sidecar's task contract, and one warm-up inference at the model input size whose outputs must have the sidecar's
shapes); ``create_pipeline`` builds the task's pipeline around it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seg_perception.backends import InferenceBackend, UnsupportedPrecisionError, create_backend
from seg_perception.model_info import (
    DETECTION_OUTPUTS,
    SCORE_THRESHOLD_NAME,
    SEMANTIC_LOGITS_NAME,
    ModelInfo,
    read_model_info,
)
from seg_perception.pipeline.base import FramePipeline, model_input_size
from seg_perception.pipeline.config import ConfigError, SegmentationConfig
from seg_perception.pipeline.panoptic import PanopticPipeline
from seg_perception.pipeline.semantic import SemanticPipeline

SHIPPED_MODEL = Path("models") / "bisenetv2_synth.onnx"
"""The default model, relative to the package's share folder (or the source checkout)."""
SHIPPED_CHECKPOINT = SHIPPED_MODEL.with_suffix(".pt")
"""The default for the torch backend: the same model's PyTorch checkpoint."""
PACKAGE = "seg_perception"
LOGGER = logging.getLogger(__name__)


def check_model(
    backend: InferenceBackend, info: ModelInfo, size: tuple[int, int], score_threshold: float = 0.5
) -> None:
    """Check at start-up that ``backend`` is the model ``info`` (the sidecar) describes: the input and output names
    of its task's contract, the image input's rank and channels, and, by one warm-up inference on a zero frame at
    ``size`` (H, W), the outputs' shapes (the class count included). ValueError saying what does not match."""
    inputs = {spec.name: spec for spec in backend.input_specs}
    outputs = [spec.name for spec in backend.output_specs]
    wanted_inputs = [info.input_name, *([SCORE_THRESHOLD_NAME] if info.is_detection else [])]
    if sorted(inputs) != sorted(wanted_inputs):
        named = f"input {wanted_inputs[0]!r}" if len(wanted_inputs) == 1 else f"inputs {wanted_inputs}"
        raise ValueError(f"the sidecar names {named}, the model has input(s) {list(inputs)}")
    for name in _expected_outputs(info):
        if name not in outputs:
            raise ValueError(f"the sidecar names output {name!r}, the model has output(s) {outputs}")
    shape = inputs[info.input_name].shape
    if len(shape) != 4 or shape[1] not in (None, 3):
        raise ValueError(f"the model input {inputs[info.input_name]} is not (N, 3, H, W) images")
    feed = {info.input_name: np.zeros((1, 3, *size), np.float32)}
    if info.is_detection:
        feed[SCORE_THRESHOLD_NAME] = np.array(score_threshold, np.float32)
    try:
        result = backend.infer(feed)
    except Exception as error:  # any backend failure at this size means the node cannot run
        raise ValueError(f"the model does not run at {size[0]}x{size[1]}: {error}") from None
    if info.task != "instance":
        name = info.output_name
        logits = result[name]
        if logits.ndim != 4 or logits.shape[:2] != (1, info.num_classes):
            raise ValueError(
                f"the model's {name!r} is {tuple(logits.shape)} for one frame, the sidecar says "
                f"(1, {info.num_classes}, H, W) ({info.num_classes} classes)"
            )
    if info.is_detection:
        count = len(result["scores"])
        shapes = {name: tuple(result[name].shape) for name in DETECTION_OUTPUTS}
        masks = shapes["masks"]
        if shapes["boxes"] != (count, 4) or shapes["labels"] != (count,) or len(masks) != 3 or masks[0] != count:
            raise ValueError(f"the model's detection outputs do not fit together: {shapes}")


def _expected_outputs(info: ModelInfo) -> tuple[str, ...]:
    if info.task == "semantic":
        return (info.output_name,)
    return DETECTION_OUTPUTS + ((SEMANTIC_LOGITS_NAME,) if info.task == "panoptic" else ())


def share_dirs() -> list[Path]:
    """Where the shipped model may live: the share folder found through ament_index, the one of the Python
    prefix this package is installed into (pip), then the source checkout."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError):  # not installed with ament, or AMENT_PREFIX_PATH unset
        pass
    dirs += [Path(sys.prefix) / "share" / PACKAGE, Path(__file__).resolve().parents[2]]
    return dirs


def resolve_model_path(config: SegmentationConfig, share_dirs: Sequence[Path]) -> Path:
    """``config.model_path``, or the shipped model (its checkpoint for the torch backend) found in the first of
    ``share_dirs`` that holds it. A relative model_path is looked up from the working directory, then in each of
    ``share_dirs`` (so ``models/panoptic_fpn_synth.onnx`` names a model shipped in the package's share folder).

    FileNotFoundError naming the places searched.
    """
    if config.model_path:
        path = Path(config.model_path).expanduser()
        candidates = [path] if path.is_absolute() else [path, *(Path(folder) / path for folder in share_dirs)]
        for candidate in candidates:
            if candidate.is_dir():
                raise FileNotFoundError(f"model_path: {candidate} is a directory, not a model file")
            if candidate.is_file():
                return candidate
        searched = "" if path.is_absolute() else f" (nor under {', '.join(map(str, share_dirs))})"
        raise FileNotFoundError(f"model_path: {path} does not exist{searched}")
    shipped = SHIPPED_CHECKPOINT if config.backend == "torch" else SHIPPED_MODEL
    for folder in share_dirs:
        if (folder / shipped).is_file():
            return folder / shipped
    raise FileNotFoundError(f"model_path is empty and no {shipped} in {', '.join(map(str, share_dirs))}")


def open_backend(config: SegmentationConfig, model_path: Path) -> tuple[InferenceBackend, ModelInfo]:
    """Load ``model_path`` into the backend ``config`` names and check it against its sidecar (``check_model``, one
    warm-up inference at the model input size); returns (backend, model info).

    Raises FileNotFoundError / ValueError for a missing, unreadable or mismatching model (or sidecar), ConfigError
    for an input size the model cannot take, and BackendUnavailableError when the backend cannot run here; the
    messages name the file and the reason.
    """
    options: dict[str, object] = {}
    if config.backend in ("auto", "onnxruntime"):
        options.update(
            allow_spinning=config.intra_op_spinning,
            graph_optimization=config.graph_optimization,
            calibration_method=config.calibration_method,
        )
        if config.threads:
            options["intra_op_threads"] = config.threads
    if config.backend in ("auto", "tensorrt", "onnxruntime"):
        if config.engine_cache_dir:
            options["cache_dir"] = config.engine_cache_dir
        if config.calibration_images:
            options["calibration_images"] = config.calibration_images
    try:
        backend = create_backend(
            config.backend, model_path, device=config.device, precision=config.precision, **options
        )
    except UnsupportedPrecisionError as error:
        LOGGER.warning("%s; falling back to fp32", error)
        backend = create_backend(config.backend, model_path, device=config.device, precision="fp32", **options)
    try:
        if backend.name == "torch":
            from seg_perception.models.checkpoint import checkpoint_model_info

            info = checkpoint_model_info(model_path, tuple(config.input_size))
        else:
            info = read_model_info(model_path)
        try:
            check_model(backend, info, model_input_size(info, config), config.instance_score_threshold)
        except ValueError as error:
            if isinstance(error, ConfigError):
                raise
            raise ValueError(f"{model_path}: {error}") from None
    except BaseException:
        backend.close()
        raise
    return backend, info


def create_pipeline(backend: InferenceBackend, info: ModelInfo, config: SegmentationConfig) -> FramePipeline:
    """The pipeline of the model's task: SemanticPipeline, or PanopticPipeline for instance and panoptic models."""
    return (PanopticPipeline if info.is_detection else SemanticPipeline)(backend, info, config)
