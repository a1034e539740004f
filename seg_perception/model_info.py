"""The sidecar ``FILE.onnx.json`` that ``seg-export`` writes next to every exported model: what the
inference side needs to feed the model and name its outputs (torch-free, so nodes and TensorRT
backends read it without importing torch).

Its ``task`` says which graph contract the model follows:

* ``semantic``: "image" (N, 3, H, W) float32 -> "logits" (N, C, H, W) float32 (C = ``num_classes``).
* ``instance`` (Mask R-CNN) and ``panoptic`` (Panoptic FPN), one frame per call: "image" (1, 3, H, W) float32 and
  "score_threshold" () float32 -> "boxes" (K, 4) float32 xyxy model-input pixels, "scores" (K,) float32
  descending, "labels" (K,) int64 in 1..len(``thing_train_ids``) (label k is train id ``thing_train_ids[k - 1]``),
  "masks" (K, M, M) float32 mask probabilities over each box; ``panoptic`` adds "semantic_logits" (1, C, H, W)
  float32 whose C = ``num_classes`` channels are named by ``class_names`` (stuff train classes, then "thing").
  ``thresholds``: the fusion settings the model was evaluated with (score_threshold, overlap_threshold,
  min_stuff_area at 1024x2048).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

INPUT_NAME = "image"
"""Input of every exported graph: (N, 3, H, W) float32, normalised RGB."""
OUTPUT_NAME = "logits"
"""Output of a semantic graph: (N, C, H, W) float32 class scores."""
TASKS = ("semantic", "instance", "panoptic")
SCORE_THRESHOLD_NAME = "score_threshold"
"""Second input of a detection graph: () float32, detections scoring below it are left out before NMS."""
DETECTION_OUTPUTS = ("boxes", "scores", "labels", "masks")
SEMANTIC_LOGITS_NAME = "semantic_logits"
"""The extra output of a panoptic graph."""


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
    task: str = "semantic"
    thing_train_ids: tuple[int, ...] = ()
    """Detection tasks: train id of detection label k (1..) at index k - 1."""
    thresholds: dict = field(default_factory=dict)
    """Detection tasks: score_threshold, overlap_threshold, min_stuff_area (pixels at 1024x2048)."""

    @property
    def is_detection(self) -> bool:
        """The model follows the instance / panoptic graph contract."""
        return self.task != "semantic"

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
        missing = names - set(data) - {"parity", "task", "thing_train_ids", "thresholds"}
        if missing:
            raise ValueError(f"missing keys {sorted(missing)}")
        info = ModelInfo(**{key: data[key] for key in names if key in data})
        info = dataclasses.replace(
            info,
            class_names=tuple(info.class_names),
            input_size=(int(info.input_size[0]), int(info.input_size[1])),
            mean=tuple(float(v) for v in info.mean),
            std=tuple(float(v) for v in info.std),
            thing_train_ids=tuple(int(v) for v in info.thing_train_ids),
        )
    except (ValueError, TypeError, IndexError) as error:
        raise ValueError(f"{path}: malformed model sidecar: {error}") from None
    if len(info.class_names) != info.num_classes or len(info.mean) != 3 or len(info.std) != 3 or min(info.std) <= 0:
        raise ValueError(f"{path}: inconsistent model sidecar (class names vs num_classes, or mean/std)")
    if info.task not in TASKS:
        raise ValueError(f"{path}: unknown task {info.task!r} (expected one of {', '.join(TASKS)})")
    if info.is_detection and not info.thing_train_ids:
        raise ValueError(f"{path}: a {info.task} model's sidecar must list its thing_train_ids")
    return info
