"""The three Cityscapes metrics of an instance or panoptic model over frames, in one pass: PQ/SQ/RQ (panoptic),
mask AP/AP50 (instance) and mIoU (semantic), each by its evaluator of this package.

Ground truth per frame is the gtFine instanceIds image (panoptic ground truth as ``createPanopticImgs`` builds it)
and the train ids; predictions are the fused panoptic map with its segments (category ids = Cityscapes label ids),
the semantic labels (train ids) and every detection with its own mask (for AP, scored unfused, as the official
instance evaluator expects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from seg_perception.data.cityscapes import panoptic_target
from seg_perception.evaluation.instance import InstanceEvaluator, InstancePrediction
from seg_perception.evaluation.panoptic import PanopticEvaluator
from seg_perception.evaluation.semantic import SemanticEvaluator

HEADLINE = ("PQ", "PQ_th", "PQ_st", "SQ", "RQ", "AP", "AP50", "mIoU")


class CombinedEvaluator:
    """Streaming PQ, mask AP and mIoU: ``process`` frame by frame, then ``evaluate``."""

    def __init__(self) -> None:
        self.semantic = SemanticEvaluator()
        self.instance = InstanceEvaluator()
        self.panoptic = PanopticEvaluator()

    def process(
        self,
        gt_instance_ids: np.ndarray,
        gt_train_ids: np.ndarray,
        pred_train_ids: np.ndarray,
        pred_segment_ids: np.ndarray,
        pred_segments: Sequence[Mapping],
        pred_instances: Sequence[InstancePrediction],
    ) -> None:
        """One frame: gt (H, W) instanceIds and train ids; predicted (H, W) train ids, (H, W) panoptic segment ids
        with their segments ({id, category_id (label id)}), and the detections."""
        self.semantic.process(pred_train_ids, gt_train_ids)
        self.instance.process(gt_instance_ids, list(pred_instances))
        target = panoptic_target(gt_instance_ids)
        self.panoptic.process(target.segment_ids, target.segments, pred_segment_ids, pred_segments)

    def evaluate(self) -> dict:
        """The headline numbers (``HEADLINE``: PQ, PQ_th, PQ_st, SQ, RQ, AP, AP50, mIoU; None where nothing counts)
        and each evaluator's full report under "panoptic", "instance" and "semantic"."""
        panoptic, instance, semantic = self.panoptic.evaluate(), self.instance.evaluate(), self.semantic.evaluate()
        headline = {key: panoptic[key] for key in ("PQ", "PQ_th", "PQ_st", "SQ", "RQ")}
        headline.update(AP=instance["AP"], AP50=instance["AP50"], mIoU=semantic["mIoU"])
        return {**headline, "panoptic": panoptic, "instance": instance, "semantic": semantic}
