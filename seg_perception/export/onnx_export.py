"""ONNX export of the segmentation models and an ONNX Runtime vs PyTorch parity check.

The exported graph has one input ``"image"`` (N, 3, H, W) float32 (RGB, normalised as the model was trained) and
one output ``"logits"`` (N, C, H, W) float32, the eval-mode output of the model. It is written by the legacy
TorchScript exporter (``dynamo=False``), the one that handles every model of the zoo with free H and W.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from seg_perception.model_info import INPUT_NAME, OUTPUT_NAME

DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}


@dataclass(frozen=True)
class ParityReport:
    """ONNX Runtime (CPU) vs PyTorch logits over ``num_inputs`` input arrays.

    ``max_abs_diff`` / ``mean_abs_diff``: over every logit; ``argmax_agreement``: fraction of pixels whose
    predicted class is the same (argmax over channels; logit > 0 for one-channel binary models);
    ``max_abs_logit``: the largest |PyTorch logit|, the scale to read the differences against.
    """

    num_inputs: int
    max_abs_diff: float
    mean_abs_diff: float
    argmax_agreement: float
    max_abs_logit: float


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``model`` in eval mode, then restore its train/eval mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextmanager
def quiet_legacy_exporter() -> Iterator[None]:
    """Silence the legacy exporter's deprecation notices: it is chosen on purpose (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        yield


def cpu_session(onnx_path: str | Path) -> ort.InferenceSession:
    """ONNX Runtime session on the CPU with as many intra-op threads as torch uses."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def _classes(logits: np.ndarray) -> np.ndarray:
    """(N, C, H, W) logits -> (N, H, W) predicted classes: argmax over C, or logit > 0 when C == 1."""
    return logits.argmax(1) if logits.shape[1] > 1 else logits[:, 0] > 0


def export_onnx(
    model: nn.Module, out_path: str | Path, height: int, width: int, dynamic: bool = True, opset: int = 17
) -> Path:
    """Export the eval-mode ``model`` to ``out_path`` and validate it with ``onnx.checker``; returns the path.

    Traced on one (1, 3, height, width) input. ``dynamic``: batch, height and width are free axes of "image" and
    "logits" (declared (batch, 3, height, width) and (batch, C, height, width)); otherwise the graph takes exactly
    (1, 3, height, width). The model's train/eval mode is restored.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    axes = {INPUT_NAME: DYNAMIC_AXES, OUTPUT_NAME: DYNAMIC_AXES} if dynamic else None
    with eval_mode(model), quiet_legacy_exporter():
        torch.onnx.export(
            model,
            (example,),
            str(out_path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
        )
    if dynamic:  # the exporter may leave C symbolic (after a Resize to a dynamic size): declare it
        with eval_mode(model), torch.inference_mode():
            channels = model(example).shape[1]
        proto = onnx.load(str(out_path))
        proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = channels
        onnx.save(proto, str(out_path))
    onnx.checker.check_model(str(out_path))
    return out_path


def check_parity(model: nn.Module, onnx_path: str | Path, images: Sequence[np.ndarray | torch.Tensor]) -> ParityReport:
    """Compare ONNX Runtime (CPUExecutionProvider) with the eval-mode ``model`` on each (N, 3, H, W) float32 input.

    Sizes may differ between inputs (for a dynamic export). Raises ValueError when ``images`` is empty or an output
    shape differs between the two. The model's train/eval mode is restored.
    """
    if not images:
        raise ValueError("check_parity needs at least one input array")
    session = cpu_session(onnx_path)
    max_diff = sum_diff = max_logit = 0.0
    logits_count = agreeing = pixels = 0
    with eval_mode(model), torch.inference_mode():
        for image in images:
            array = np.ascontiguousarray(image, dtype=np.float32)
            expected = model(torch.from_numpy(array)).numpy()
            (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: array})
            if actual.shape != expected.shape:
                raise ValueError(f"{onnx_path}: ONNX output {actual.shape} != PyTorch output {expected.shape}")
            difference = np.abs(actual - expected)
            max_diff = max(max_diff, float(difference.max()))
            sum_diff += float(difference.sum(dtype=np.float64))
            logits_count += difference.size
            max_logit = max(max_logit, float(np.abs(expected).max()))
            agreeing += int((_classes(actual) == _classes(expected)).sum())
            pixels += expected.shape[0] * expected.shape[2] * expected.shape[3]
    return ParityReport(len(images), max_diff, sum_diff / logits_count, agreeing / pixels, max_logit)
