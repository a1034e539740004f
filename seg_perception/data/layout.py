"""Cityscapes folder layout and file naming: the one place that knows where files live.

<root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_{labelIds,instanceIds,color}.png
<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json
<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_{drivableGrid.png,objects.json}  (bird's-eye truth, seg-synth)
<root>/camera/<split>/<city>/<city>_<seq>_<frame>_camera.json
"""

from __future__ import annotations

import re
from pathlib import Path

SPLITS = ("train", "val", "test")
GT_KINDS = ("labelIds", "instanceIds", "color", "polygons", "drivableGrid", "objects")
STEM_RE = re.compile(r"(?P<city>[a-z_]+?)_(?P<seq>\d{6})_(?P<frame>\d{6})")
"""Matches ``<city>_<seq>_<frame>`` at the start of any Cityscapes file name."""


def frame_stem(city: str, seq: int, frame: int) -> str:
    """``frankfurt``, 1, 19 -> ``frankfurt_000001_000019``."""
    return f"{city}_{seq:06d}_{frame:06d}"


def image_path(root: Path | str, split: str, stem: str) -> Path:
    return Path(root) / "leftImg8bit" / split / city_of(stem) / f"{stem}_leftImg8bit.png"


def gt_path(root: Path | str, split: str, stem: str, kind: str) -> Path:
    """Path of one gtFine file; ``kind`` is one of GT_KINDS."""
    if kind not in GT_KINDS:
        raise ValueError(f"unknown gtFine kind {kind!r}; expected one of {GT_KINDS}")
    suffix = "json" if kind in ("polygons", "objects") else "png"
    return Path(root) / "gtFine" / split / city_of(stem) / f"{stem}_gtFine_{kind}.{suffix}"


def camera_path(root: Path | str, split: str, stem: str) -> Path:
    return Path(root) / "camera" / split / city_of(stem) / f"{stem}_camera.json"


def city_of(stem: str) -> str:
    """The city part of a frame stem or file name; raises ValueError if it is not Cityscapes-named."""
    match = STEM_RE.match(Path(stem).name)
    if match is None:
        raise ValueError(f"not a Cityscapes file name (<city>_<seq>_<frame>...): {stem!r}")
    return match.group("city")


def stem_of(path: Path | str) -> str:
    """``.../frankfurt_000001_000019_leftImg8bit.png`` -> ``frankfurt_000001_000019``."""
    match = STEM_RE.match(Path(path).name)
    if match is None:
        raise ValueError(f"not a Cityscapes file name (<city>_<seq>_<frame>...): {str(path)!r}")
    return match.group(0)
