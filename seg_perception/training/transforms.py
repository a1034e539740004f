"""Joint augmentations on the sample dicts of ``CityscapesTorchDataset``.

A sample holds "image" (3, H, W) uint8 RGB and "semantic" (H, W) int64 train ids (255 = ignore), and
optionally "instances" (``CityscapesTorchDataset(with_instances=True)``: "masks" (N, H, W) uint8, "boxes"
(N, 4) float32 xyxy, "labels" (N,) int64, "instance_ids" (N,) int64). Geometric transforms move them
together (bilinear for the image, nearest for labels and masks, all with half-pixel centres so they stay
aligned); boxes are recomputed from the moved masks and instances left without pixels are dropped.
Photometric jitter touches the image only; ``Normalize`` turns the image into (3, H, W) float32
``(x / 255 - mean) / std``.

Every transform is ``transform(sample, rng) -> sample`` with a ``numpy.random.Generator``;
``Compose(...)(sample)`` without a generator draws a fresh one (so it also fits the
``transform(sample) -> sample`` hook of the dataset). The training loop passes a generator seeded
per sample, which makes the augmentations independent of DataLoader workers and resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from seg_perception.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from seg_perception.labels import IGNORE_TRAIN_ID


def _with_masks(sample: dict, move: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """``sample`` whose instance masks (if any) went through ``move`` ((N, H, W) -> (N, H', W')), with boxes
    recomputed from them and instances without pixels left out."""
    if "instances" not in sample:
        return sample
    instances = sample["instances"]
    masks = move(instances["masks"])
    keep = masks.flatten(1).any(1).bool()
    masks = masks[keep]
    return {
        **sample,
        "instances": {
            **{key: value[keep] for key, value in instances.items() if key not in ("masks", "boxes")},
            "masks": masks,
            "boxes": masks_to_boxes(masks),
        },
    }


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) masks -> (N, 4) float32 boxes x0, y0, x1, y1 around their pixels (x1/y1 exclusive)."""
    boxes = torch.zeros((len(masks), 4), dtype=torch.float32)
    for index, mask in enumerate(masks):
        rows, cols = torch.nonzero(mask.any(1))[:, 0], torch.nonzero(mask.any(0))[:, 0]
        boxes[index] = torch.tensor([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=torch.float32)
    return boxes


class RandomScale:
    """Resize by a factor drawn uniformly in [min, max] (bilinear + antialias image, nearest labels)."""

    def __init__(self, scale_range: tuple[float, float] = (0.5, 2.0)):
        self.scale_range = scale_range

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        image, semantic = sample["image"], sample["semantic"]
        factor = rng.uniform(*self.scale_range)
        h, w = semantic.shape
        size = [max(1, round(h * factor)), max(1, round(w * factor))]
        if size == [h, w]:
            return sample
        image = TF.resize(image, size, TF.InterpolationMode.BILINEAR, antialias=True)
        semantic = TF.resize(semantic[None], size, TF.InterpolationMode.NEAREST_EXACT)[0]
        moved = {**sample, "image": image, "semantic": semantic}
        return _with_masks(moved, lambda masks: _resize_nearest(masks, size))


def _resize_nearest(masks: torch.Tensor, size: list[int]) -> torch.Tensor:
    if not len(masks):
        return masks.new_zeros((0, *size))
    return TF.resize(masks, size, TF.InterpolationMode.NEAREST_EXACT)


class RandomCrop:
    """Crop (height, width) at a random place; smaller samples are first padded at the bottom/right
    with ``image_fill`` (uint8 RGB, the dataset mean) and label 255."""

    def __init__(self, size: tuple[int, int], image_fill: Sequence[int]):
        self.size = size
        self.image_fill = torch.tensor(image_fill, dtype=torch.uint8).view(3, 1, 1)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        image, semantic = sample["image"], sample["semantic"]
        ch, cw = self.size
        h, w = semantic.shape
        ph, pw = max(h, ch), max(w, cw)
        if (ph, pw) != (h, w):
            padded_image = self.image_fill.expand(3, ph, pw).clone()
            padded_image[:, :h, :w] = image
            padded_semantic = torch.full((ph, pw), IGNORE_TRAIN_ID, dtype=semantic.dtype)
            padded_semantic[:h, :w] = semantic
            image, semantic = padded_image, padded_semantic
        top = int(rng.integers(0, ph - ch + 1))
        left = int(rng.integers(0, pw - cw + 1))
        cropped = {
            **sample,
            "image": image[:, top : top + ch, left : left + cw].contiguous(),
            "semantic": semantic[top : top + ch, left : left + cw].contiguous(),
        }

        def crop_masks(masks: torch.Tensor) -> torch.Tensor:
            padded = masks.new_zeros((len(masks), ph, pw))
            padded[:, :h, :w] = masks
            return padded[:, top : top + ch, left : left + cw].contiguous()

        return _with_masks(cropped, crop_masks)


class RandomHorizontalFlip:
    """Mirror image and labels left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        image, semantic = sample["image"], sample["semantic"]
        if rng.random() >= self.p:
            return sample
        return _with_masks({**sample, "image": image.flip(-1), "semantic": semantic.flip(-1)}, lambda m: m.flip(-1))


class PhotometricJitter:
    """Brightness, contrast, saturation factors in [1 - x, 1 + x] and a hue shift in [-hue, hue],
    applied in that order to the uint8 image only (0 disables one)."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.0):
        self.ops = [
            (TF.adjust_brightness, brightness, 1.0),
            (TF.adjust_contrast, contrast, 1.0),
            (TF.adjust_saturation, saturation, 1.0),
            (TF.adjust_hue, hue, 0.0),
        ]

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        image = sample["image"]
        for op, amount, centre in self.ops:
            if amount > 0:
                image = op(image, float(rng.uniform(centre - amount, centre + amount)))
        return {**sample, "image": image}


class Normalize:
    """(3, H, W) uint8 image -> float32 ``(x / 255 - mean) / std`` (mean/std in 0..1 RGB units)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        image = sample["image"].float().div_(255.0).sub_(self.mean).div_(self.std)
        return {**sample, "image": image}


class Compose:
    """Apply transforms in order with one generator (a fresh one when ``rng`` is None)."""

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        rng = np.random.default_rng() if rng is None else rng
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


def build_train_transforms(data_cfg) -> Compose:
    """Scale, crop (padding with the mean / 255), flip, jitter, normalise, from a ``DataConfig``."""
    fill = [round(255 * m) for m in data_cfg.mean]
    jitter = data_cfg.jitter
    return Compose(
        [
            RandomScale(data_cfg.scale_range),
            RandomCrop(data_cfg.crop_size, fill),
            RandomHorizontalFlip(data_cfg.flip_prob),
            PhotometricJitter(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue),
            Normalize(data_cfg.mean, data_cfg.std),
        ]
    )


def build_val_transforms(data_cfg) -> Compose:
    """Full-resolution frames, normalised only."""
    return Compose([Normalize(data_cfg.mean, data_cfg.std)])
