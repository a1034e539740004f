"""Experiment behind the detection graph split (docs/ARCHITECTURE.md, "Detection models"): torchvision's mask paste
inside the ONNX graph vs the 28x28 mask-head output pasted on the host (``pipeline.instance_masks.paste_masks``).

Exports the light panoptic_fpn (random weights) twice, traced at 256x512, and runs both in ONNX Runtime (2 threads) at
256x512 and 512x1024 with detections (score threshold 0.05: 100 detections) and without (threshold 1.0); prints
whether each runs, its ms per frame (median of 3 after 1 warm-up) and, for the in-graph paste, its largest
difference to the host paste of the split graph. Run from the repository root:

    PYTHONPATH=. nice -n 10 python docs/experiments/onnx_paste_in_graph.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.roi_heads import paste_masks_in_image

from seg_perception.export import detection_onnx
from seg_perception.export.detection_onnx import DetectionGraph
from seg_perception.export.onnx_export import cpu_session
from seg_perception.model_info import INPUT_NAME, SCORE_THRESHOLD_NAME
from seg_perception.models import build_model
from seg_perception.pipeline.instance_masks import paste_masks


class PastingGraph(DetectionGraph):
    """The detection graph with torchvision's paste inside: masks become (K, H, W) probabilities."""

    def forward(self, image: torch.Tensor, score_threshold: torch.Tensor) -> tuple[torch.Tensor, ...]:
        boxes, scores, labels, masks, *rest = super().forward(image, score_threshold)
        pasted = paste_masks_in_image(masks[:, None], boxes, image.shape[-2:])[:, 0]
        return (boxes, scores, labels, pasted, *rest)


def export_with_graph(model: nn.Module, graph_class: type[DetectionGraph], path: Path) -> Path:
    """export_detection_onnx with ``graph_class`` as the exported view."""
    with mock.patch.object(detection_onnx, "DetectionGraph", graph_class):
        return detection_onnx.export_detection_onnx(model, path, 256, 512)


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = build_model("panoptic_fpn", backbone="resnet18").eval()
    with tempfile.TemporaryDirectory() as folder:
        split = cpu_session(export_with_graph(model, DetectionGraph, Path(folder) / "split.onnx"))
        pasting = cpu_session(export_with_graph(model, PastingGraph, Path(folder) / "pasting.onnx"))
        for height, width in ((256, 512), (512, 1024)):
            image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1)).numpy()
            for threshold in (0.05, 1.0):
                feed = {INPUT_NAME: image, SCORE_THRESHOLD_NAME: np.array(threshold, np.float32)}
                line = [f"{height}x{width} threshold {threshold}:"]
                results = {}
                for name, session in (("split", split), ("in-graph paste", pasting)):
                    try:
                        session.run(None, feed)
                        times = []
                        for _ in range(3):
                            start = time.perf_counter()
                            results[name] = session.run(None, feed)
                            times.append(1e3 * (time.perf_counter() - start))
                        line.append(f"{name} {np.median(times):.0f} ms (masks {results[name][3].shape})")
                    except Exception as error:  # the point of the experiment: which graph fails, and how
                        line.append(f"{name} FAILED: {type(error).__name__}: {str(error)[:160]}")
                if len(results) == 2:
                    start = time.perf_counter()
                    host = paste_masks(results["split"][3], results["split"][0], height, width)
                    line.append(f"host paste {1e3 * (time.perf_counter() - start):.0f} ms")
                    difference = np.abs(results["in-graph paste"][3] - host).max(initial=0.0)
                    line.append(f"max |in-graph - host| {difference:.2g}")
                print("; ".join(line), flush=True)


if __name__ == "__main__":
    main()
