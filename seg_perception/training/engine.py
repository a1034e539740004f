"""Iteration-based training loop for every model of the zoo (single process or DDP under torchrun).

Per iteration: a batch of augmented crops -> the task's loss (``semantic_task``: the semantic models'
``main + aux_weight * Σ aux`` on train ids; ``detection_task``: the sum of mask_rcnn's / panoptic_fpn's loss dict
on instance targets) -> SGD/AdamW step -> poly LR with linear warm-up. AMP (fp16 autocast + GradScaler) only
on CUDA.

Output folder (``output_dir``; only rank 0 writes):
    config.yaml          the resolved config
    log.csv              iteration, lr, loss, the task's val columns (val_mIoU, val_mDice | val_PQ, val_PQ_th,
                         val_PQ_st, val_AP, val_AP50, val_mIoU), seconds
    iter_XXXXXX.pt       checkpoints (the newest ``train.keep_checkpoints``)
    best.pt              the checkpoint with the best val score (mIoU; PQ for panoptic, AP for instance models)
A checkpoint is a dict of plain values and tensors (loadable with ``weights_only=True``): model,
optimizer, scheduler, scaler, iteration, config (dict), rng (python/numpy/torch/cuda states),
best_score (with score_name), elapsed. Resuming from one continues exactly: data order and augmentations are a
pure function of (seed, rank, sample position), and every optimiser and RNG state is restored.
"""

from __future__ import annotations

import csv
import datetime
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from seg_perception.models import build_model, list_models, load_checkpoint, model_task, read_checkpoint
from seg_perception.training.config import ConfigError, TrainingConfig, config_from_dict
from seg_perception.training.detection_task import DetectionTask
from seg_perception.training.semantic_task import SemanticTask
from seg_perception.training.transforms import build_train_transforms

CHECKPOINT_RE = re.compile(r"iter_(\d+)\.pt")


# --------------------------------------------------------------------------- process set-up


@dataclass(frozen=True)
class DistInfo:
    """Where this process runs: rank / world size (1 without torchrun) and its device."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # this module initialised the process group (and destroys it at the end)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` -> cuda:<local rank> (error if absent)."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available (use auto or cpu)")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def setup_distributed(device_choice: str) -> DistInfo:
    """Join the torchrun process group if WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if world_size <= 1:
        return DistInfo(0, 1, device, owns_group=False)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(minutes=60),  # non-zero ranks wait while rank 0 validates
        )
    return DistInfo(dist.get_rank(), dist.get_world_size(), device, owns_group)


def seed_everything(seed: int) -> None:
    """Seed python, numpy (the legacy global state other code may use) and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict:
    """Global RNG states as weights_only-loadable values (lists, ints, floats, tensors)."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "python": [version, list(state), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what ``rng_state`` returned."""
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- data


class TrainSampler(Sampler):
    """Endless stream of ``(dataset index, augmentation key)`` for one process, from ``start``.

    Epoch e is ``DistributedSampler`` order with ``set_epoch(e)`` (this rank's shard); sample
    position p (counted from 0 over all epochs) gets key ``(seed, rank, p)``. So the stream from
    any position is the same whether training ran through or resumed there.
    """

    def __init__(self, dataset: Dataset, seed: int, rank: int, world_size: int, start: int = 0):
        self.order = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.seed, self.rank, self.start = seed, rank, start

    def __iter__(self):
        per_epoch = len(self.order)
        position = self.start
        while True:
            epoch, offset = divmod(position, per_epoch)
            self.order.set_epoch(epoch)
            for index in list(self.order)[offset:]:
                yield index, (self.seed, self.rank, position)
                position += 1


class AugmentedDataset(Dataset):
    """Indexed by ``(index, key)``: the frame ``index`` through ``transform`` with ``default_rng(key)``, then
    ``item`` (the task's part of the sample)."""

    def __init__(self, frames: Dataset, transform, item):
        self.frames = frames
        self.transform = transform
        self.item = item

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: tuple[int, tuple[int, int, int]]) -> dict:
        index, key = item
        return self.item(self.transform(self.frames[index], np.random.default_rng(list(key))))


def make_task(cfg: TrainingConfig, device: torch.device) -> SemanticTask | DetectionTask:
    """The model's task in the trainer; a model outside the zoo (given to the Trainer directly) is a semantic one."""
    semantic = cfg.model.name not in list_models(None) or model_task(cfg.model.name) == "semantic"
    return (SemanticTask if semantic else DetectionTask)(cfg, device)


def check_data_root(cfg: TrainingConfig) -> None:
    """FileNotFoundError naming data.root unless it holds leftImg8bit/ and gtFine/ of both splits."""
    root = Path(cfg.data.root)
    for split in (cfg.data.train_split, cfg.data.val_split):
        for kind in ("leftImg8bit", "gtFine"):
            if not (root / kind / split).is_dir():
                raise FileNotFoundError(
                    f"data.root={root}: no {kind}/{split} folder; point data.root at a Cityscapes-layout root "
                    f"(real Cityscapes or seg-synth output)"
                )


# --------------------------------------------------------------------------- optimisation


def lr_factor(iteration: int, cfg: TrainingConfig) -> float:
    """LR multiplier at ``iteration``: ``(1 - i / T)^power``, ramped linearly from
    ``warmup_start_factor`` to 1 over the first ``warmup_iterations``."""
    optim, total = cfg.optim, cfg.train.iterations
    factor = max(0.0, 1.0 - iteration / total) ** optim.poly_power
    if iteration < optim.warmup_iterations:
        start = optim.warmup_start_factor
        factor *= start + (1.0 - start) * iteration / optim.warmup_iterations
    return factor


def build_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or AdamW (betas, decoupled weight decay) over all parameters."""
    optim = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if optim.type == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


# --------------------------------------------------------------------------- checkpoints and log


def load_training_checkpoint(path: Path | str) -> dict:
    """A checkpoint written by the trainer, read with ``weights_only=True`` on the CPU."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    missing = {"model", "optimizer", "scheduler", "iteration", "config", "rng"} - set(checkpoint)
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (missing {sorted(missing)})")
    return checkpoint


def config_of_checkpoint(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> TrainingConfig:
    """The config a checkpoint was trained with, plus overrides."""
    return config_from_dict(load_training_checkpoint(path)["config"], overrides)


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class CsvLog:
    """log.csv with ``columns``; on resume, rows after the resumed iteration are dropped."""

    def __init__(self, path: Path, resume_iteration: int, columns: tuple[str, ...]):
        self.path = path
        self.columns = columns
        rows = []
        if resume_iteration > 0 and path.is_file():
            with path.open(newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["iteration"]) <= resume_iteration]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, **row) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(row)


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Trains ``cfg.model`` (or the given ``model``, same output contract) as configured.

    ``resume``: a checkpoint path; training continues from its iteration with every state restored.
    Under torchrun each process builds its own Trainer; DDP, the DistributedSampler shards and the
    rank-0-only validation/logging/saving follow from the environment.
    """

    def __init__(self, cfg: TrainingConfig, model: nn.Module | None = None, resume: Path | str | None = None):
        self.cfg = cfg
        self.dist = setup_distributed(cfg.train.device)
        self.device = self.dist.device
        self.output_dir = Path(cfg.output_dir)
        self.use_amp = cfg.train.amp and self.device.type == "cuda"
        checkpoint = None if resume is None else load_training_checkpoint(resume)
        seed_everything(cfg.train.seed)
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cudnn.deterministic = cfg.train.deterministic
        check_data_root(cfg)
        self.task = make_task(cfg, self.device)
        self.train_frames = self.task.train_frames()
        self.val_frames = self.task.val_data()

        if model is None:
            model = build_model(cfg.model.name, num_classes=cfg.loss.num_classes, **cfg.model.options)
        if cfg.model.init_weights and checkpoint is None:
            load_checkpoint(model, cfg.model.init_weights)
        model = model.to(self.device)
        if self.dist.distributed and self.device.type == "cuda" and cfg.train.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model  # unwrapped: validation and checkpoints
        self.train_model = (
            DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.dist.distributed
            else model
        )
        self.optimizer = build_optimizer(model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda i: lr_factor(i, cfg))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.iteration = 0
        self.best_score: float | None = None
        self.elapsed = 0.0
        if checkpoint is not None:
            self._restore(checkpoint)

    def _restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler") and self.use_amp:
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.iteration = int(checkpoint["iteration"])
        self.best_score = checkpoint.get("best_score")
        self.elapsed = float(checkpoint.get("elapsed", 0.0))
        set_rng_state(checkpoint["rng"], self.device)

    def checkpoint(self) -> dict:
        """Everything needed to resume, as weights_only-loadable values."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
            "config": self.cfg.to_dict(),
            "rng": rng_state(self.device),
            "best_score": self.best_score,
            "score_name": self.task.score,
            "elapsed": self.elapsed,
        }

    def _save(self, state: dict) -> Path:
        path = self.output_dir / f"iter_{self.iteration:06d}.pt"
        _atomic_save(state, path)
        numbered = sorted(
            (int(m.group(1)), p) for p in self.output_dir.iterdir() if (m := CHECKPOINT_RE.fullmatch(p.name))
        )
        for _, old in numbered[: -self.cfg.train.keep_checkpoints]:
            old.unlink()
        return path

    def _loaders(self) -> tuple[DataLoader, DataLoader]:
        cfg = self.cfg
        pin = self.device.type == "cuda"
        sampler = TrainSampler(
            self.train_frames,
            cfg.train.seed,
            self.dist.rank,
            self.dist.world_size,
            start=self.iteration * cfg.train.batch_size,
        )
        # Own generators: creating loader iterators must not draw from the global torch RNG.
        train_loader = DataLoader(
            AugmentedDataset(self.train_frames, build_train_transforms(cfg.data), self.task.item),
            batch_size=cfg.train.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=cfg.data.workers,
            collate_fn=self.task.collate,
            pin_memory=pin,
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )
        val_loader = DataLoader(
            self.val_frames,
            batch_size=1,
            num_workers=cfg.data.workers,
            collate_fn=getattr(self.task, "val_collate", None),
            pin_memory=pin,
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )
        return train_loader, val_loader

    def _step(self, batch: dict) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp):
            loss = self.task.loss(self.train_model, batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def _mean_over_ranks(self, value: torch.Tensor) -> float:
        if self.dist.distributed:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.dist.world_size
        return float(value)

    def run(self) -> dict:
        """Train up to ``train.iterations``; returns {"iteration", "score_name", "best_score", "val" (the last
        validation's metrics), "log", "checkpoint", "best"}."""
        cfg, main = self.cfg, self.dist.is_main
        total = cfg.train.iterations
        log = last_checkpoint = None
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.yaml").write_text(cfg.to_yaml())
            columns = ("iteration", "lr", "loss", *self.task.val_columns, "seconds")
            log = CsvLog(self.output_dir / "log.csv", self.iteration, columns)
        train_loader, val_loader = self._loaders()
        batches = iter(train_loader)
        progress = tqdm(
            total=total,
            initial=self.iteration,
            desc="train",
            dynamic_ncols=True,
            disable=not (main and cfg.train.progress),
        )
        loss_sum = torch.zeros((), device=self.device)
        loss_count = 0
        val_metrics: dict | None = None
        start_time = time.perf_counter() - self.elapsed
        try:
            while self.iteration < total:
                lr = self.optimizer.param_groups[0]["lr"]
                loss_sum += self._step(next(batches))
                loss_count += 1
                self.iteration += 1
                progress.update(1)
                it = self.iteration
                do_val = it % cfg.train.val_interval == 0 or it == total
                do_log = do_val or it % cfg.train.log_interval == 0
                do_save = it % cfg.train.checkpoint_interval == 0 or it == total
                if not (do_log or do_save):
                    continue
                row = {"iteration": it, "lr": f"{lr:.8g}", **dict.fromkeys(self.task.val_columns, "")}
                if do_log:
                    loss = self._mean_over_ranks(loss_sum / loss_count)
                    if not np.isfinite(loss):
                        raise FloatingPointError(f"loss is {loss} at iteration {it}; lower optim.lr or check the data")
                    loss_sum.zero_()
                    loss_count = 0
                    row["loss"] = f"{loss:.6f}"
                    progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}")
                improved = False
                if do_val and main:
                    val_metrics = self.task.evaluate(self.model, val_loader, self.device)
                    values = self.task.val_row(val_metrics)
                    row.update(values)
                    progress.write(f"iteration {it}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in values.items()))
                    score = val_metrics[self.task.score] or 0.0  # None: nothing counted
                    improved = self.best_score is None or score > self.best_score
                    self.best_score = score if improved else self.best_score
                self.elapsed = time.perf_counter() - start_time
                if main and do_log:
                    log.write(**row, seconds=f"{self.elapsed:.3f}")
                if main and (do_save or improved):
                    state = self.checkpoint()
                    if improved:
                        _atomic_save(state, self.output_dir / "best.pt")
                    if do_save:
                        last_checkpoint = self._save(state)
                if self.dist.distributed and do_val:
                    dist.barrier()  # the other ranks wait for rank 0's validation
        finally:
            progress.close()
            if self.dist.owns_group:
                dist.destroy_process_group()
        return {
            "iteration": self.iteration,
            "score_name": self.task.score,
            "best_score": self.best_score,
            "val": val_metrics,
            "log": None if log is None else log.path,
            "checkpoint": last_checkpoint,
            "best": self.output_dir / "best.pt" if self.best_score is not None else None,
        }


def train(cfg: TrainingConfig, model: nn.Module | None = None, resume: Path | str | None = None) -> dict:
    """Build a Trainer and run it; see ``Trainer.run`` for the result."""
    return Trainer(cfg, model=model, resume=resume).run()
