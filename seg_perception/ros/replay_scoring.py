"""Accuracy of a replay: each frame's outputs, as they arrive through ROS, against the bag's ground truth.

A frame is scored once all its scored outputs arrived (semantic/mask; with a panoptic node also instances and
panoptic), by the project's evaluators (``SemanticEvaluator``; ``CombinedEvaluator`` for PQ/SQ/RQ, AP, AP50, mIoU),
then its messages are let go, so memory stays flat on long bags. Every scored frame is also written in the
official layout under ``eval_dir``: the ground truth as a Cityscapes root (``ground_truth/``, city ``replay``,
stem ``replay_000000_<frame index>``: the frame, gtFine labelIds and instanceIds) and the predictions
(``predictions/semantic``, ``predictions/instance``, ``predictions/panoptic.json`` + ``predictions/panoptic/``),
so ``seg-eval`` reproduces
the numbers from the files.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seg_perception.data import layout
from seg_perception.evaluation.combined import CombinedEvaluator
from seg_perception.evaluation.formats import (
    write_instance_predictions,
    write_panoptic_predictions,
    write_semantic_prediction,
)
from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import label_ids_to_train_ids
from seg_perception.ros.conversions import mono8_array
from seg_perception.ros.outputs import MASK
from seg_perception.ros.result_messages import evaluation_inputs_from_messages

CITY = "replay"
SPLIT = "val"
PANOPTIC_OUTPUTS = (MASK, "instances", "panoptic")


def frame_stem(index: int) -> str:
    """The Cityscapes stem of bag frame ``index`` in the evaluation files."""
    return layout.frame_stem(CITY, 0, index)


class ReplayScorer:
    """Scores frames as their outputs arrive. ``truth``: {frame index: (image (H, W, 3) uint8 RGB, label ids (H, W)
    uint8, instance ids (H, W) int32 or None)}; ``panoptic``: the node publishes instances and panoptic maps."""

    def __init__(self, truth: dict[int, tuple], panoptic: bool, eval_dir: Path | None) -> None:
        self.truth, self.eval_dir = truth, eval_dir
        self.panoptic = panoptic and all(instance_ids is not None for _, _, instance_ids in truth.values())
        self.outputs = PANOPTIC_OUTPUTS if self.panoptic else (MASK,)
        self.semantic = SemanticEvaluator()
        self.combined = CombinedEvaluator() if self.panoptic else None
        self.scored: list[int] = []
        self._pending: dict[int, dict] = {}
        self._panoptic_files: list[tuple[str, np.ndarray, list[dict]]] = []

    def add(self, index: int, output: str, msg) -> None:
        """One output message of bag frame ``index``; scores the frame when its outputs are complete."""
        if index not in self.truth or output not in self.outputs:
            return
        messages = self._pending.setdefault(index, {})
        messages[output] = msg
        if len(messages) == len(self.outputs):
            self._score(index, self._pending.pop(index))

    def _score(self, index: int, messages: dict) -> None:
        image, label_ids, instance_ids = self.truth[index]
        train_ids = label_ids_to_train_ids(label_ids)
        stem = frame_stem(index)
        if self.panoptic:
            labels, segment_ids, segments, predictions = evaluation_inputs_from_messages(
                *(messages[output] for output in PANOPTIC_OUTPUTS)
            )
            self.combined.process(instance_ids, train_ids, labels, segment_ids, segments, predictions)
            self._panoptic_files.append((stem, segment_ids, segments))
            if self.eval_dir is not None:
                write_instance_predictions(self.eval_dir / "predictions" / "instance", stem, predictions)
        else:
            labels = mono8_array(messages[MASK])
        self.semantic.process(labels, train_ids)
        if self.eval_dir is not None:
            self._write(stem, image, label_ids, instance_ids, labels)
        self.scored.append(index)

    def _write(self, stem: str, image, label_ids, instance_ids, labels) -> None:
        root = self.eval_dir / "ground_truth"
        files = [(layout.image_path(root, SPLIT, stem), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))]
        files.append((layout.gt_path(root, SPLIT, stem, "labelIds"), label_ids))
        if instance_ids is not None:
            files.append((layout.gt_path(root, SPLIT, stem, "instanceIds"), instance_ids.astype(np.uint16)))
        for path, pixels in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), pixels):
                raise OSError(f"could not write {path}")
        write_semantic_prediction(self.eval_dir / "predictions" / "semantic", stem, labels)

    def result(self) -> dict:
        """{"frames_scored", "semantic" (SemanticEvaluator), and with a panoptic node "panoptic" (CombinedEvaluator
        headline numbers)}; writes the panoptic predictions file. None values where nothing was scored."""
        if self.eval_dir is not None and self._panoptic_files:
            predictions = self.eval_dir / "predictions"
            write_panoptic_predictions(predictions / "panoptic.json", predictions / "panoptic", self._panoptic_files)
        result = {"frames_scored": len(self.scored), "semantic": self.semantic.evaluate() if self.scored else None}
        if self.panoptic and self.scored:
            combined = self.combined.evaluate()
            result["panoptic"] = {key: combined[key] for key in ("PQ", "PQ_th", "PQ_st", "SQ", "RQ", "AP", "AP50")}
        return result
