"""Segmentation losses; every one skips target pixels equal to ``ignore_index`` (255).

Shapes: multi-class logits (N, C, H, W) with targets (N, H, W) int64 train ids; the binary
drivable-area loss takes logits (N, 1, H, W) with targets (N, H, W) int64 in {0, 1, 255}.
Each loss returns a scalar tensor (0 with a gradient path when no pixel is valid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.labels import IGNORE_TRAIN_ID


def _zero(logits: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that keeps ``logits`` in the graph (no valid pixel in the batch)."""
    return logits.sum() * 0.0


class CrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy, mean over valid pixels (weighted mean with ``class_weights``)."""

    def __init__(self, class_weights: Sequence[float] | None = None, ignore_index: int = IGNORE_TRAIN_ID):
        super().__init__()
        self.ignore_index = ignore_index
        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (target != self.ignore_index).any():
            return _zero(logits)
        weight = None if self.weight is None else self.weight.to(logits.dtype)
        return F.cross_entropy(logits, target, weight=weight, ignore_index=self.ignore_index)


class OhemCrossEntropyLoss(nn.Module):
    """Online hard example mining cross-entropy (as in BiSeNet).

    Keeps the valid pixels whose gt-class probability is below ``thresh`` (loss above
    ``-log(thresh)``); if fewer than ``min_kept`` are kept, keeps the ``min_kept`` largest losses
    instead (all valid pixels if there are fewer). Returns the mean over the kept pixels.
    """

    def __init__(self, thresh: float = 0.7, min_kept: int = 100_000, ignore_index: int = IGNORE_TRAIN_ID):
        super().__init__()
        if not 0.0 < thresh <= 1.0:
            raise ValueError(f"OHEM thresh must be in (0, 1], got {thresh}")
        self.loss_thresh = -math.log(thresh)
        self.min_kept = min_kept
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pixel_loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        losses = pixel_loss[target != self.ignore_index]
        if losses.numel() == 0:
            return _zero(logits)
        hard = losses[losses > self.loss_thresh]
        if hard.numel() < self.min_kept:
            hard = losses.topk(min(self.min_kept, losses.numel())).values
        return hard.mean()


class DiceLoss(nn.Module):
    """Multi-class soft Dice over the softmax: ``1 - mean_c (2 Σ p_c g_c + s) / (Σ p_c + Σ g_c + s)``.

    Sums run over the valid pixels of the whole batch; every class counts in the mean
    (a class absent from the target scores well only if little probability goes to it).
    """

    def __init__(self, smooth: float = 1.0, ignore_index: int = IGNORE_TRAIN_ID):
        super().__init__()
        self.smooth = smooth
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        valid = target != self.ignore_index  # (N, H, W)
        prob = logits.float().softmax(dim=1) * valid.unsqueeze(1)
        onehot = F.one_hot(torch.where(valid, target, 0), num_classes).permute(0, 3, 1, 2) * valid.unsqueeze(1)
        dims = (0, 2, 3)
        intersection = (prob * onehot).sum(dims)
        denominator = prob.sum(dims) + onehot.sum(dims)
        dice = (2 * intersection + self.smooth) / (denominator + self.smooth)
        return 1.0 - dice.mean()


class FocalLoss(nn.Module):
    """Multi-class focal loss ``-alpha_t (1 - p_t)^gamma log p_t``, mean over valid pixels.

    ``alpha``: None (1 for every class), one float for every class, or one weight per class.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        ignore_index: int = IGNORE_TRAIN_ID,
    ):
        super().__init__()
        self.gamma = gamma
        self.ignore_index = ignore_index
        self.register_buffer("alpha", None if alpha is None else torch.tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != self.ignore_index
        if not valid.any():
            return _zero(logits)
        log_prob = logits.float().log_softmax(dim=1)  # (N, C, H, W)
        safe_target = torch.where(valid, target, 0)
        log_pt = log_prob.gather(1, safe_target.unsqueeze(1)).squeeze(1)[valid]  # (V,)
        loss = -((1.0 - log_pt.exp()) ** self.gamma) * log_pt
        if self.alpha is not None:
            loss = loss * (self.alpha if self.alpha.ndim == 0 else self.alpha[safe_target[valid]])
        return loss.mean()


class BCEDiceLoss(nn.Module):
    """Binary head loss ``bce_weight * BCE + dice_weight * (1 - soft Dice)`` over valid pixels.

    Logits (N, 1, H, W), target (N, H, W) with 1 = positive (drivable), 0 = negative, 255 = ignore.
    BCE is the mean over valid pixels; Dice is ``(2 Σ σ t + s) / (Σ σ + Σ t + s)`` over the batch.
    """

    def __init__(
        self,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        ignore_index: int = IGNORE_TRAIN_ID,
    ):
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 4 or logits.shape[1] != 1:
            raise ValueError(f"BCEDiceLoss expects logits (N, 1, H, W), got {tuple(logits.shape)}")
        valid = target != self.ignore_index
        if not valid.any():
            return _zero(logits)
        x = logits[:, 0].float()[valid]
        t = target[valid].float()
        bce = F.binary_cross_entropy_with_logits(x, t)
        p = x.sigmoid()
        dice = (2 * (p * t).sum() + self.smooth) / (p.sum() + t.sum() + self.smooth)
        return self.bce_weight * bce + self.dice_weight * (1.0 - dice)


class SegmentationLoss(nn.Module):
    """Total loss ``main + aux_weight * Σ aux`` of a model's output.

    ``outputs``: logits (N, C, H, W), or the train-mode dict {"out": logits, "aux": [logits, ...]}
    (aux logits at input resolution; "aux" may be absent or empty).
    """

    def __init__(self, criterion: nn.Module, aux_weight: float = 1.0):
        super().__init__()
        self.criterion = criterion
        self.aux_weight = aux_weight

    def forward(self, outputs: torch.Tensor | dict, target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.criterion(outputs, target)
        loss = self.criterion(outputs["out"], target)
        for aux in outputs.get("aux") or ():
            loss = loss + self.aux_weight * self.criterion(aux, target)
        return loss


LOSS_TYPES = ("ce", "ohem", "dice", "focal", "bce_dice")


def build_loss(cfg) -> SegmentationLoss:
    """The total loss of a ``LossConfig`` (``type`` one of LOSS_TYPES, its parameters, ``aux_weight``)."""
    if cfg.type == "ce":
        criterion = CrossEntropyLoss(cfg.class_weights)
    elif cfg.type == "ohem":
        criterion = OhemCrossEntropyLoss(cfg.ohem_thresh, cfg.ohem_min_kept)
    elif cfg.type == "dice":
        criterion = DiceLoss(cfg.dice_smooth)
    elif cfg.type == "focal":
        criterion = FocalLoss(cfg.focal_gamma, cfg.focal_alpha)
    elif cfg.type == "bce_dice":
        criterion = BCEDiceLoss(cfg.bce_weight, cfg.dice_weight, cfg.dice_smooth)
    else:
        raise ValueError(f"unknown loss type {cfg.type!r}; expected one of {LOSS_TYPES}")
    return SegmentationLoss(criterion, cfg.aux_weight)
