"""``seg-bag``: write camera bags (rosbag2, through ``rosbags``; no ROS needed) and summarise bags.

Examples::

    seg-bag from-cityscapes data/synth --split val --out build/bags/val --fps 17 [--storage sqlite3] [--compressed]
    seg-bag from-images frames/ --out build/bags/frames --fps 10       # a folder of images, sorted by name
    seg-bag from-images drive.avi --out build/bags/drive --fps 30      # a video OpenCV can read
    seg-bag info build/bags/val [--json]

Topic layout, stamps and the reading API: ``seg_perception.data.bags``. Errors: one line ``seg-bag: error: ...``
and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data.bags import (
    COMPRESSION_FORMATS,
    DEFAULT_CAMERA_TOPIC,
    DEFAULT_FRAME_ID,
    ENCODINGS,
    STORAGES,
    BagError,
    BagOptions,
    BagSummary,
    BagWriter,
    summarize_bag,
    write_cityscapes_bag,
)
from seg_perception.data.cityscapes import read_image
from seg_perception.data.layout import SPLITS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def image_source(source: Path) -> Iterator[np.ndarray]:
    """A folder of images (sorted by name) or a video file -> its frames, (H, W, 3) uint8 RGB, read lazily."""
    if source.is_dir():
        paths = sorted(path for path in source.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise BagError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)})")
        return (read_image(path) for path in paths)
    if not source.is_file():
        raise BagError(f"{source}: no such folder or video file")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise BagError(f"{source}: OpenCV cannot open it as a video")
    return _video_frames(capture)


def write_images_bag(source: Path, path: Path, fps: float, options: BagOptions) -> int:
    """The frames of ``image_source(source)`` -> a new bag at ``path`` (no camera info, no ground truth)."""
    images = image_source(source)
    with BagWriter(path, fps, options) as bag:
        for image in images:
            bag.write(image)
        if bag.frames == 0:
            raise BagError(f"{source}: no frames to write")
    return bag.frames


def format_summary(summary: BagSummary) -> str:
    """``seg-bag info`` as text: one line for the bag, one per topic."""
    messages = sum(topic.count for topic in summary.topics)
    lines = [f"{summary.path}: {summary.storage}, {messages} messages, duration {summary.duration_s:.3f} s"]
    name_width = max([len("topic"), *(len(topic.name) for topic in summary.topics)])
    type_width = max([len("type"), *(len(topic.msgtype) for topic in summary.topics)])
    lines.append(f"  {'topic':<{name_width}}  {'type':<{type_width}}  {'count':>7}  {'rate Hz':>9}")
    for topic in summary.topics:
        rate = "-" if topic.rate_hz is None else f"{topic.rate_hz:.3f}"
        lines.append(f"  {topic.name:<{name_width}}  {topic.msgtype:<{type_width}}  {topic.count:>7}  {rate:>9}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-bag", description="Write camera rosbag2 bags and summarise bags.")
    commands = parser.add_subparsers(dest="command", required=True)
    writing = argparse.ArgumentParser(add_help=False)
    writing.add_argument("--out", type=Path, required=True, help="bag folder to create (must not exist)")
    writing.add_argument("--fps", type=positive_float, required=True, help="frame rate of the stamps, Hz")
    writing.add_argument("--storage", choices=tuple(STORAGES), default="mcap", help="storage plugin (default mcap)")
    writing.add_argument("--camera-topic", default=DEFAULT_CAMERA_TOPIC, help=f"default {DEFAULT_CAMERA_TOPIC}")
    writing.add_argument("--frame-id", default=DEFAULT_FRAME_ID, help=f"header frame_id (default {DEFAULT_FRAME_ID})")
    writing.add_argument("--encoding", choices=ENCODINGS, default="rgb8", help="raw image encoding (default rgb8)")
    writing.add_argument(
        "--compressed", action="store_true", help="sensor_msgs/CompressedImage on <camera-topic>/compressed"
    )
    writing.add_argument(
        "--compression-format", choices=COMPRESSION_FORMATS, default="jpeg", help="with --compressed (default jpeg)"
    )
    cityscapes = commands.add_parser(
        "from-cityscapes", parents=[writing], help="a Cityscapes-layout split with camera info and ground truth"
    )
    cityscapes.add_argument("root", type=Path, help="Cityscapes-layout root (real Cityscapes or seg-synth output)")
    cityscapes.add_argument("--split", choices=SPLITS, default="val")
    images = commands.add_parser("from-images", parents=[writing], help="a folder of images or a video")
    images.add_argument("source", type=Path, help="folder of images (sorted by name) or a video file")
    info = commands.add_parser("info", help="topics, types, counts, rates, duration, storage")
    info.add_argument("bag", type=Path, help="bag folder, or a bare .mcap / .db3 file")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.command == "info":
        summary = summarize_bag(args.bag)
        print(json.dumps(summary.to_dict()) if args.json else format_summary(summary))
        return
    compression = args.compression_format if args.compressed else None
    options = BagOptions(args.camera_topic, args.frame_id, args.encoding, compression, args.storage)
    if args.command == "from-cityscapes":
        frames = write_cityscapes_bag(args.root, args.split, args.out, args.fps, options)
    else:
        frames = write_images_bag(args.source, args.out, args.fps, options)
    print(f"wrote {frames} frames at {args.fps:g} Hz to {args.out} ({args.storage}, {options.topics.image})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _run(args)
    except (ValueError, OSError) as error:  # BagError is a ValueError; the Cityscapes reader raises both
        message = " ".join(str(error).split())
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
