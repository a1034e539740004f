"""``seg-synth``: write a synthetic Cityscapes-like split (images, gtFine, camera) to disk.

Example::

    seg-synth --out data/synth --split val --sequences 4 --frames-per-sequence 10 --size 512x1024 --seed 0 --preview
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seg_perception.data.layout import SPLITS, STEM_RE
from seg_perception.data.synthetic import DEFAULT_CITY, MAX_FRAMES_PER_SEQUENCE, generate_split, write_preview
from seg_perception.tools.cli import non_negative_int, parse_size, positive_int


def _city(text: str) -> str:
    match = STEM_RE.fullmatch(f"{text}_000000_000000")
    if match is None or match.group("city") != text:
        raise argparse.ArgumentTypeError(f"city must be lowercase letters and underscores (got {text!r})")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seg-synth",
        description="Render synthetic driving sequences in the Cityscapes layout "
        "(leftImg8bit, gtFine labelIds/instanceIds/color/polygons, camera).",
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write into")
    parser.add_argument("--split", choices=SPLITS, default="val")
    parser.add_argument("--sequences", type=positive_int, default=2, help="number of sequences (default 2)")
    parser.add_argument(
        "--frames-per-sequence",
        type=positive_int,
        default=5,
        help=f"frames per sequence, at most {MAX_FRAMES_PER_SEQUENCE} (default 5)",
    )
    parser.add_argument("--size", type=parse_size, default=(512, 1024), help="HEIGHTxWIDTH (default 512x1024)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="base seed; the split is mixed in (default 0)")
    parser.add_argument(
        "--city", type=_city, default=DEFAULT_CITY, help=f"city name in file names (default {DEFAULT_CITY})"
    )
    parser.add_argument("--preview", action="store_true", help="also write <out>/preview_<split>.png")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes, one sequence each (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frames_per_sequence > MAX_FRAMES_PER_SEQUENCE:
        parser.error(f"--frames-per-sequence must be at most {MAX_FRAMES_PER_SEQUENCE}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a directory")
    height, width = args.size
    try:
        summary = generate_split(
            args.out,
            args.split,
            args.sequences,
            args.frames_per_sequence,
            height,
            width,
            args.seed,
            city=args.city,
            workers=args.workers,
        )
    except OSError as error:
        parser.exit(1, f"{parser.prog}: error: cannot write the dataset: {error}\n")
    print(
        f"wrote {summary.frames} frames ({args.split}, {height}x{width}) to {args.out} "
        f"in {summary.seconds:.2f} s: {summary.frames_per_second:.1f} frames/s"
    )
    print("pixel fraction per class:")
    cells = [f"{name:>13} {fraction:6.2%}" for name, fraction in summary.class_fractions().items()]
    for start in range(0, len(cells), 4):
        print("  ".join(cells[start : start + 4]))
    if args.preview:
        path = write_preview(args.out, args.split, summary.stems, args.out / f"preview_{args.split}.png")
        print(f"preview: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
