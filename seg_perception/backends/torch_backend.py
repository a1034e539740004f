"""PyTorch backend: a model-zoo checkpoint run eagerly (eval mode, inference mode) on the CPU or a CUDA GPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from seg_perception.backends.base import BackendUnavailableError, InferenceBackend, TensorSpec, parse_device
from seg_perception.model_info import INPUT_NAME, OUTPUT_NAME
from seg_perception.models import CheckpointError, build_model, load_checkpoint, model_spec


class TorchBackend(InferenceBackend):
    """A model-zoo checkpoint (raw state_dict or ``{"model": state_dict, "config": {...}}`` from seg-train).

    The model and its options come from the checkpoint's ``config["model"]`` exactly as in seg-export;
    ``model`` names it for a raw state_dict, ``model_options`` overrides options (``num_classes`` included).
    Input "image" (N, 3, H, W) float32 -> output "logits" (N, C, H, W) float32, the names of the ONNX export.
    ``device``: "auto" (CUDA when available), "cpu" or "cuda[:N]"; precision "fp16" (CUDA only) runs under
    autocast and returns float32 logits.

    Raises FileNotFoundError / ValueError for a missing / unreadable or mismatching checkpoint, TypeError for
    an unknown model option and BackendUnavailableError when CUDA is requested but not available.
    """

    name = "torch"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "auto",
        precision: str = "fp32",
        model: str | None = None,
        model_options: Mapping[str, object] | None = None,
    ) -> None:
        path = Path(model_path)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        kind, index = parse_device(device, ("cpu", "cuda"))
        self._require_precision(precision, kind)
        if kind == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError(f"CUDA is not available (torch {torch.__version__} sees no CUDA device)")
        self._device = torch.device(kind, index)
        try:
            spec = model_spec(path, model, model_options)
            network = load_checkpoint(build_model(spec.name, spec.num_classes, **spec.options), path)
        except CheckpointError as error:
            raise ValueError(f"{error} (expected a model-zoo checkpoint written by seg-train or torch.save)") from None
        self._model = network.eval().to(self._device)
        self._fp16 = precision == "fp16"
        super().__init__(
            device=str(self._device),
            precision=precision,
            input_specs=[TensorSpec(INPUT_NAME, (None, 3, None, None), np.float32)],
            output_specs=[TensorSpec(OUTPUT_NAME, (None, spec.num_classes, None, None), np.float32)],
        )

    @staticmethod
    def supported_precisions(device: str) -> tuple[str, ...]:
        return ("fp32", "fp16") if device.startswith("cuda") else ("fp32",)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = torch.from_numpy(inputs[INPUT_NAME]).to(self._device)
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=torch.float16, enabled=self._fp16):
            logits = self._model(images)
        return {OUTPUT_NAME: logits.float().cpu().numpy()}

    def _release(self) -> None:
        del self._model
        if self._device.type == "cuda":
            torch.cuda.empty_cache()
