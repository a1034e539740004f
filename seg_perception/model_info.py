"""The sidecar ``FILE.onnx.json`` that ``seg-export`` writes next to every exported model: what the
inference side needs to feed the model and name its outputs (torch-free, so nodes and TensorRT
backends read it without importing torch)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

INPUT_NAME = "image"
"""Input of every exported graph: (N, 3, H, W) float32, normalised RGB."""
OUTPUT_NAME = "logits"
"""Output of every exported graph: (N, C, H, W) float32 class scores."""


@dataclass(frozen=True)
class ModelInfo:
    model: str
    options: dict
    num_classes: int
    class_names: tuple[str, ...]
    """One name per output channel."""
    input_name: str
    output_name: str
    input_size: tuple[int, int]
    """(H, W) the graph was traced at; the only accepted size unless ``dynamic``."""
    dynamic: bool
    opset: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    """Input normalisation, RGB in 0..1 units: (x / 255 - mean) / std."""
    checkpoint: str
    parity: dict = field(default_factory=dict)
    """seg-export's ONNX Runtime vs PyTorch check: source, sizes, max_abs_diff, argmax_agreement, ..."""

    def write(self, onnx_path: Path | str) -> Path:
        """Write the sidecar of ``onnx_path``; returns its path."""
        path = sidecar_path(onnx_path)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path


def sidecar_path(onnx_path: Path | str) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".json")


def read_model_info(onnx_path: Path | str) -> ModelInfo:
    """The ModelInfo of ``onnx_path``; FileNotFoundError / ValueError naming the sidecar when absent or malformed."""
    path = sidecar_path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model sidecar (seg-export writes it next to the ONNX file)")
    names = {f.name for f in dataclasses.fields(ModelInfo)}
    try:
        data = json.loads(path.read_text())
        missing = names - set(data) - {"parity"}
        if missing:
            raise ValueError(f"missing keys {sorted(missing)}")
        info = ModelInfo(**{key: data[key] for key in names if key in data})
        info = dataclasses.replace(
            info,
            class_names=tuple(info.class_names),
            input_size=(int(info.input_size[0]), int(info.input_size[1])),
            mean=tuple(float(v) for v in info.mean),
            std=tuple(float(v) for v in info.std),
        )
    except (ValueError, TypeError, IndexError) as error:
        raise ValueError(f"{path}: malformed model sidecar: {error}") from None
    if len(info.class_names) != info.num_classes or len(info.mean) != 3 or len(info.std) != 3 or min(info.std) <= 0:
        raise ValueError(f"{path}: inconsistent model sidecar (class names vs num_classes, or mean/std)")
    return info
