"""argparse value types shared by the command-line tools (one place for their messages)."""

from __future__ import annotations

import argparse
import re

SIZE_RE = re.compile(r"(\d+)x(\d+)")
MIN_SIZE = 16
"""Smallest height or width ``parse_size`` accepts."""


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _integer(text, 1, "positive")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _integer(text, 0, "non-negative")


def parse_size(text: str) -> tuple[int, int]:
    """``"512x1024"`` -> ``(512, 1024)`` (height, width); an argparse type, raises ArgumentTypeError."""
    match = SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH, e.g. 512x1024 (got {text!r})")
    height, width = int(match.group(1)), int(match.group(2))
    if height < MIN_SIZE or width < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"size must be at least {MIN_SIZE}x{MIN_SIZE} (got {text!r})")
    return height, width
