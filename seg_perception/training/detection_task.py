"""What the trainer does for the instance and panoptic models (mask_rcnn, panoptic_fpn): detection targets from
instanceIds (boxes from masks, crowd left out of the targets and ignored in the semantic loss), the models' own
loss dicts summed, and validation by PQ, mask AP and mIoU through the same post-processing the node and
``seg-predict`` use (``pipeline.panoptic``: masks pasted on the host, panoptic fusion)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.torch_dataset import CityscapesTorchDataset
from seg_perception.evaluation.combined import CombinedEvaluator
from seg_perception.labels import THING_TRAIN_IDS
from seg_perception.model_info import SEMANTIC_LOGITS_NAME
from seg_perception.model_input import InputMapping, normalize_batch
from seg_perception.models.checkpoint import ModelSpec, model_info
from seg_perception.pipeline.panoptic import (
    FusionSettings,
    channel_train_ids,
    evaluation_inputs,
    frame_detections,
    fuse_frame,
    semantic_channels_at,
)
from seg_perception.training.config import TrainingConfig

DETECTION_LABEL = torch.zeros(256, dtype=torch.int64)
"""Train id -> detection label (1..8 for the thing classes, 0 elsewhere)."""
DETECTION_LABEL[list(THING_TRAIN_IDS)] = torch.arange(1, len(THING_TRAIN_IDS) + 1)


class ValFrames(Dataset):
    """Val frames for scoring: {"stem", "image" (1, 3, H, W) float32 normalised, "instance_ids", "train_ids"}."""

    def __init__(self, root: str, split: str, mean, std) -> None:
        self.frames = CityscapesDataset(root, split)
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        frame = self.frames[index]
        image = normalize_batch([frame.image], self.mean, self.std)
        return {"image": image, "instance_ids": frame.instance_ids, "train_ids": frame.train_ids}


def _first(items: list[dict]) -> dict:
    return items[0]


def _as_batch(items: list[dict]) -> dict:
    """Training items -> {"image": (N, 3, h, w), "targets": [one detection target dict per image]}."""
    return {"image": torch.stack([item["image"] for item in items]), "targets": [item["target"] for item in items]}


class DetectionTask:
    """mask_rcnn / panoptic_fpn in the trainer; best checkpoint by val PQ (panoptic) or mask AP (instance)."""

    val_columns = ("val_PQ", "val_PQ_th", "val_PQ_st", "val_AP", "val_AP50", "val_mIoU")
    collate = staticmethod(_as_batch)
    val_collate = staticmethod(_first)

    def __init__(self, cfg: TrainingConfig, device: torch.device) -> None:
        self.cfg = cfg
        spec = ModelSpec(cfg.model.name, dict(cfg.model.options), mean=cfg.data.mean, std=cfg.data.std)
        self.info = model_info(spec, cfg.data.crop_size)
        self.score = "PQ" if self.info.task == "panoptic" else "AP"
        self.settings = FusionSettings()
        self._channel_lookup = channel_train_ids(self.info)

    def train_frames(self) -> CityscapesTorchDataset:
        cfg = self.cfg
        return CityscapesTorchDataset(cfg.data.root, cfg.data.train_split, with_instances=True, crowd_ignored=True)

    def item(self, sample: dict) -> dict:
        """An augmented sample -> its image and the model's target dict (labels 1..8, masks, boxes, semantic)."""
        instances = sample["instances"]
        target = {
            "boxes": instances["boxes"],
            "labels": DETECTION_LABEL[instances["labels"]],
            "masks": instances["masks"],
        }
        if self.info.task == "panoptic":
            target["semantic"] = sample["semantic"]
        return {"image": sample["image"], "target": target}

    def val_data(self) -> Dataset:
        cfg = self.cfg
        return ValFrames(cfg.data.root, cfg.data.val_split, cfg.data.mean, cfg.data.std)

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> torch.Tensor:
        image = batch["image"].to(device, non_blocking=True)
        targets = [{key: value.to(device) for key, value in target.items()} for target in batch["targets"]]
        return sum(model(image, targets).values())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, val_loader: DataLoader, device: torch.device) -> dict:
        """CombinedEvaluator numbers (PQ, PQ_th, PQ_st, SQ, RQ, AP, AP50, mIoU and the full reports) of ``model`` on
        the val frames at full resolution: detections above the model's own score threshold (0.05) scored for AP,
        the fusion (``FusionSettings()``) for PQ and the semantic labels."""
        was_training = model.training
        model.eval()
        evaluator = CombinedEvaluator()
        for frame in val_loader:
            image = torch.from_numpy(frame["image"]).to(device)
            (outputs,) = model(image)
            outputs = {key: (v.float() if v.is_floating_point() else v).cpu().numpy() for key, v in outputs.items()}
            height, width = frame["train_ids"].shape
            mapping = InputMapping((height, width), (height, width), (0, 0, height, width))
            detections = frame_detections(outputs, mapping, self.info)
            if SEMANTIC_LOGITS_NAME in outputs:
                channels = semantic_channels_at(outputs[SEMANTIC_LOGITS_NAME], mapping)
            else:
                channels = np.full((height, width), 255, np.uint8)
            result = fuse_frame(detections, channels, self._channel_lookup, self.settings)
            segments, instances = evaluation_inputs(detections, result)
            evaluator.process(
                frame["instance_ids"], frame["train_ids"], result.labels, result.segment_ids, segments, instances
            )
        model.train(was_training)
        return evaluator.evaluate()

    @staticmethod
    def val_row(metrics: dict) -> dict[str, str]:
        """The log.csv validation columns (None, nothing counted, logs as 0)."""
        return {f"val_{key}": f"{metrics[key] or 0.0:.6f}" for key in ("PQ", "PQ_th", "PQ_st", "AP", "AP50", "mIoU")}
