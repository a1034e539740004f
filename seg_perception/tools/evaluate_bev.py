"""``seg-eval-bev``: score bird's-eye predictions (drivable grids, object positions) against seg-synth's truth.

Example::

    seg-eval-bev --gt data/synth --split val --pred-dir preds/bev [--json] [--picture STEM OUT.png]

``--pred-dir`` holds ``<stem>_drivableGrid.png`` per frame (0 free, 100 occupied, 255 unknown; the truth's grid)
and optionally ``<stem>_objects.json``; the scores are those of ``evaluation.bev``. Exit 2 with one line for a
missing folder or a malformed file.
"""

from __future__ import annotations

import argparse
import json
import sys

from seg_perception.data.layout import SPLITS
from seg_perception.evaluation.bev import evaluate_bev, format_table
from seg_perception.tools.bev_picture import write_picture


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-eval-bev", description=__doc__.split("\n\n")[0].strip("`"))
    parser.add_argument("--gt", required=True, help="seg-synth root (gtFine/<split>/ with the drivableGrid truth)")
    parser.add_argument("--split", default="val", choices=SPLITS)
    parser.add_argument("--pred-dir", required=True, help="folder of <stem>_drivableGrid.png [+ <stem>_objects.json]")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--picture", nargs=2, metavar=("STEM", "OUT"), help="also draw frame STEM: image | predicted | true grid"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = evaluate_bev(args.gt, args.split, args.pred_dir)
        if args.picture:
            write_picture(args.gt, args.split, args.pred_dir, *args.picture)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
