"""``seg-eval``: score Cityscapes-format predictions against a Cityscapes-layout root.

Prints one JSON object (mIoU, per_class_iou, mDice, pixel_accuracy, fwIoU, PQ, SQ, RQ, PQ_th,
PQ_st, AP, AP50, ...; tasks without predictions are omitted).
"""

from __future__ import annotations

import argparse
import json
import sys

from seg_perception.data.layout import SPLITS
from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", required=True, help="Cityscapes-layout root (leftImg8bit/, gtFine/)")
    parser.add_argument("--split", default="val", choices=SPLITS)
    parser.add_argument("--cities", nargs="+", help="only these cities (default: all of the split)")
    parser.add_argument("--semantic-dir", help="labelIds PNG per frame, named <city>_<seq>_<frame>*.png")
    parser.add_argument("--train-ids", action="store_true", help="semantic PNGs hold train ids (0..18, 255)")
    parser.add_argument("--instance-dir", help="<city>_<seq>_<frame>*.txt + mask PNGs (official format)")
    parser.add_argument("--panoptic-json", help="COCO panoptic JSON (category ids = Cityscapes label ids)")
    parser.add_argument("--panoptic-dir", help="folder of the panoptic PNGs named in --panoptic-json")
    parser.add_argument("--workers", type=int, default=2, help="threads reading files (default 2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = evaluate_cityscapes(
            args.gt,
            args.split,
            semantic_dir=args.semantic_dir,
            instance_dir=args.instance_dir,
            panoptic_json=args.panoptic_json,
            panoptic_dir=args.panoptic_dir,
            train_ids=args.train_ids,
            cities=args.cities,
            workers=args.workers,
        )
    except (OSError, ValueError) as exc:
        parser.exit(2, f"seg-eval: error: {exc}\n")
    json.dump(result, sys.stdout, indent=2, allow_nan=False)  # strict JSON: no NaN in any metric
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
