"""Offline training of the semantic models: config, losses, joint augmentations, train/val loop.

``load_config(path, overrides)`` -> ``TrainingConfig``; ``train(cfg, model=None, resume=None)``
runs the loop (see ``engine``); ``build_loss(cfg.loss)`` and ``build_train_transforms(cfg.data)``
are the pieces it uses.
"""

from seg_perception.training.config import ConfigError, TrainingConfig, config_from_dict, load_config
from seg_perception.training.engine import Trainer, evaluate, predict_logits, train
from seg_perception.training.losses import build_loss
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
