"""What the trainer does for the semantic models: their loss on (N, C, h, w) logits, and validation by mIoU on
full-resolution val frames (whole-frame or sliding-window inference)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seg_perception.data.torch_dataset import CityscapesTorchDataset
from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import IGNORE_TRAIN_ID
from seg_perception.training.config import TrainingConfig
from seg_perception.training.losses import build_loss
from seg_perception.training.transforms import build_val_transforms


def main_logits(outputs: torch.Tensor | dict) -> torch.Tensor:
    """The (N, C, H, W) logits of a model output (a tensor, or the train-mode dict's "out")."""
    return outputs if isinstance(outputs, torch.Tensor) else outputs["out"]


def binary_targets(semantic: torch.Tensor, positive_ids: torch.Tensor) -> torch.Tensor:
    """(N, H, W) train ids -> 1 where the id is in ``positive_ids``, 0 elsewhere, 255 kept."""
    return torch.where(semantic == IGNORE_TRAIN_ID, semantic, torch.isin(semantic, positive_ids).long())


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    return [*range(0, size - window, stride), size - window]


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    image: torch.Tensor,
    mode: str = "whole",
    window: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
) -> torch.Tensor:
    """(N, 3, H, W) normalised images -> (N, C, H, W) float32 logits of an eval-mode model.

    ``whole``: one forward pass. ``slide``: windows of ``window`` (h, w) every ``stride`` pixels
    (images smaller than a window are zero-padded, i.e. with the mean), overlapping logits averaged.
    """
    if mode == "whole":
        return main_logits(model(image)).float()
    n, _, h, w = image.shape
    (wh, ww), (sh, sw) = window, stride
    ph, pw = max(h, wh), max(w, ww)
    image = F.pad(image, (0, pw - w, 0, ph - h))
    total = count = None
    for top in _window_starts(ph, wh, sh):
        for left in _window_starts(pw, ww, sw):
            logits = main_logits(model(image[..., top : top + wh, left : left + ww])).float()
            if total is None:
                total = logits.new_zeros(n, logits.shape[1], ph, pw)
                count = logits.new_zeros(1, 1, ph, pw)
            total[..., top : top + wh, left : left + ww] += logits
            count[..., top : top + wh, left : left + ww] += 1
    return (total / count)[..., :h, :w]


def val_window(cfg: TrainingConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    """Sliding-window size and stride: ``train.val_window`` / ``val_stride`` or crop size and 2/3 of it."""
    window = cfg.train.val_window or cfg.data.crop_size
    stride = cfg.train.val_stride or (max(1, window[0] * 2 // 3), max(1, window[1] * 2 // 3))
    return window, stride


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, cfg: TrainingConfig, device: torch.device) -> dict:
    """SemanticEvaluator metrics (mIoU, mDice, ...) of ``model`` over full-resolution val frames.

    19-class models predict the argmax; a binary (bce_dice) model predicts logit > 0 and is scored
    as two classes, "other" and "drivable".
    """
    binary = cfg.loss.num_classes == 1
    evaluator = SemanticEvaluator(2, class_names=("other", "drivable")) if binary else SemanticEvaluator()
    positive = torch.tensor(cfg.loss.positive_train_ids)
    window, stride = val_window(cfg)
    was_training = model.training
    model.eval()
    use_amp = cfg.train.amp and device.type == "cuda"
    for batch in loader:
        image = batch["image"].to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            logits = predict_logits(model, image, cfg.train.val_mode, window, stride)
        pred = (logits[:, 0] > 0) if binary else logits.argmax(1)
        gt = binary_targets(batch["semantic"], positive) if binary else batch["semantic"]
        evaluator.process(pred.to(torch.uint8).cpu().numpy(), gt.to(torch.uint8).numpy())
    model.train(was_training)
    return evaluator.evaluate()


class SemanticTask:
    """The semantic models in the trainer: cross-entropy-family loss (``cfg.loss``) on train ids, best
    checkpoint by val mIoU."""

    score = "mIoU"
    val_columns = ("val_mIoU", "val_mDice")
    collate = None  # the default: stacked images and label maps

    def __init__(self, cfg: TrainingConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.criterion = build_loss(cfg.loss).to(device)
        self.positive_ids = torch.tensor(cfg.loss.positive_train_ids, device=device)

    def train_frames(self) -> CityscapesTorchDataset:
        return CityscapesTorchDataset(self.cfg.data.root, self.cfg.data.train_split)

    def item(self, sample: dict) -> dict:
        """What one augmented training sample contributes to a batch."""
        return {"image": sample["image"], "semantic": sample["semantic"]}

    def val_data(self) -> Dataset:
        cfg = self.cfg
        return CityscapesTorchDataset(cfg.data.root, cfg.data.val_split, transform=build_val_transforms(cfg.data))

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> torch.Tensor:
        image = batch["image"].to(device, non_blocking=True)
        target = batch["semantic"].to(device, non_blocking=True)
        if self.cfg.loss.num_classes == 1:
            target = binary_targets(target, self.positive_ids)
        return self.criterion(model(image), target)

    def evaluate(self, model: nn.Module, val_loader: DataLoader, device: torch.device) -> dict:
        return evaluate(model, val_loader, self.cfg, device)

    @staticmethod
    def val_row(metrics: dict) -> dict[str, str]:
        """The log.csv validation columns (None, no labelled pixel, logs as 0)."""
        return {"val_mIoU": f"{metrics['mIoU'] or 0.0:.6f}", "val_mDice": f"{metrics['mDice'] or 0.0:.6f}"}
