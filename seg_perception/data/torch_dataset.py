"""torch ``Dataset`` over a Cityscapes-layout split (training and evaluation loops).

One sample is a dict of tensors:
    image      (3, H, W) uint8 RGB
    semantic   (H, W) int64 train ids, 255 = ignore
    instances  {"boxes": (N, 4) float32 xyxy, "labels": (N,) int64 train ids,
                "masks": (N, H, W) uint8, "instance_ids": (N,) int64}   (torchvision detection format)
    stem       str
``crowd_ignored`` (with instances): the pixels of crowd (group) regions, thing pixels without an instance, are 255
in "semantic", so a model trained on instances and semantics counts them in no loss.
``transform(sample) -> sample`` (joint augmentations) runs last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from seg_perception.data.cityscapes import CityscapesDataset, instance_targets
from seg_perception.labels import IGNORE_TRAIN_ID


class CityscapesTorchDataset(Dataset):
    def __init__(
        self,
        root: Path | str,
        split: str,
        cities: list[str] | None = None,
        with_instances: bool = False,
        transform: Callable[[dict], dict] | None = None,
        crowd_ignored: bool = False,
    ):
        self.frames = CityscapesDataset(root, split, cities=cities)
        self.with_instances = with_instances
        self.crowd_ignored = crowd_ignored
        self.transform = transform

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        frame = self.frames[index]
        sample = {
            "stem": frame.sample.stem,
            "image": torch.from_numpy(frame.image).permute(2, 0, 1).contiguous(),
            "semantic": torch.from_numpy(frame.train_ids).long(),
        }
        if self.with_instances:
            targets = instance_targets(frame.instance_ids)
            if self.crowd_ignored:
                sample["semantic"][torch.from_numpy(targets.crowd_mask)] = IGNORE_TRAIN_ID
            sample["instances"] = {
                "boxes": torch.from_numpy(targets.boxes),
                "labels": torch.from_numpy(targets.train_ids),
                "masks": torch.from_numpy(targets.masks.astype("uint8")),
                "instance_ids": torch.from_numpy(targets.instance_ids),
            }
        return self.transform(sample) if self.transform else sample
