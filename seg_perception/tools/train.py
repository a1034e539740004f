"""``seg-train``: train a model of the zoo from a YAML config (config/train/<model>.yaml).

    seg-train --config config/train/bisenetv2.yaml data.root=data/synth train.iterations=2000
    seg-train --resume runs/bisenetv2/iter_002000.pt            # continue where it stopped
    torchrun --nproc-per-node 4 -m seg_perception.tools.train --config ...   # DDP

Trailing ``dotted.key=value`` arguments override config values (parsed as YAML). With
``--resume`` and no ``--config`` the checkpoint's own config is used (overrides still apply).
"""

from __future__ import annotations

import argparse
import os
import sys

from seg_perception.training.config import load_config
from seg_perception.training.engine import Trainer, check_data_root, config_of_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seg-train",
        description=__doc__.split("\n\n")[0],
        epilog="example: seg-train --config config/train/bisenetv2.yaml data.root=data/synth train.iterations=2000",
    )
    parser.add_argument("--config", help="training YAML (config/train/<model>.yaml); optional with --resume")
    parser.add_argument("--resume", metavar="CKPT", help="checkpoint (iter_XXXXXX.pt or best.pt) to continue from")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.batch_size=8")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.config is None and args.resume is None:
        parser.error("--config is required (unless --resume names a checkpoint)")
    is_main = int(os.environ.get("RANK", "0")) == 0
    try:
        if args.config is not None:
            cfg = load_config(args.config, args.overrides)
        else:
            cfg = config_of_checkpoint(args.resume, args.overrides)
        check_data_root(cfg)
        if is_main:
            out = cfg.output_dir
            print(f"seg-train: {cfg.model.name} on {cfg.data.root} ({cfg.train.iterations} iterations)")
            print(f"seg-train: log {out}/log.csv, checkpoints {out}/iter_XXXXXX.pt, best {out}/best.pt")
        trainer = Trainer(cfg, resume=args.resume)
    except (OSError, ValueError, TypeError) as exc:
        parser.exit(2, f"seg-train: error: {exc}\n")
    result = trainer.run()
    if is_main:
        score = result["best_score"]
        best = "none" if score is None else f"{score:.4f} ({result['best']})"
        print(f"seg-train: done at iteration {result['iteration']}; best val {result['score_name']} {best}")
        print(f"seg-train: last checkpoint {result['checkpoint']}, log {result['log']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
