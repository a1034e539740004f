"""Offline training of every model of the zoo: config, losses, joint augmentations, train/val loop (the task's
parts in ``semantic_task`` and ``detection_task``).

``load_config(path, overrides)`` -> ``TrainingConfig``; ``train(cfg, model=None, resume=None)``
runs the loop (see ``engine``); ``build_loss(cfg.loss)`` and ``build_train_transforms(cfg.data)``
are the pieces it uses.
"""

from seg_perception.training.config import ConfigError, TrainingConfig, config_from_dict, load_config
from seg_perception.training.engine import Trainer, train
from seg_perception.training.losses import build_loss
from seg_perception.training.semantic_task import evaluate, predict_logits
from seg_perception.training.transforms import build_train_transforms, build_val_transforms

__all__ = [
    "ConfigError",
    "Trainer",
    "TrainingConfig",
    "build_loss",
    "build_train_transforms",
    "build_val_transforms",
    "config_from_dict",
    "evaluate",
    "load_config",
    "predict_logits",
    "train",
]
