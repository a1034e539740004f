"""Bird's-eye scores: predicted drivable grids and object positions against the truth ``seg-synth`` writes
(``data/synthetic/truth.py``: ``<stem>_gtFine_drivableGrid.png`` + ``<stem>_gtFine_objects.json``); the engine
behind ``seg-eval-bev``. numpy (OpenCV only decodes the PNGs); no ROS.

Predictions, one folder: ``<stem>_drivableGrid.png`` per truth frame (same grid and values: 0 free, 100 occupied,
255 unknown) and optionally ``<stem>_objects.json`` (``{"objects": [{"label", "x", "y", ...}]}``, base_link metres).

- Free space: IoU of the FREE cells (FREE in both / FREE in either) over the cells whose truth is not UNKNOWN (a
  predicted UNKNOWN is not free), summed over all frames, per band of cell-centre distance from the camera's
  ground point (``FREE_BANDS``) and over 0-20 m.
- Objects: per frame with an objects file, each truth object is matched to the nearest unmatched prediction of
  its label within max(``GATE_MIN``, ``GATE_FRACTION`` x range), greedily by distance over all pairs; per band of
  truth range (``OBJECT_BANDS``, and over 0-30 m; farther objects take part in matching only): count, matched,
  median and p90 position error in metres and in % of the range.
A missing folder or file and a malformed file are a ``BevError`` naming it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data import layout

FREE, OCCUPIED, UNKNOWN = 0, 100, 255
FREE_BANDS = ((0.0, 10.0), (10.0, 20.0), (20.0, 40.0))
FREE_OVERALL = (0.0, 20.0)
OBJECT_BANDS = ((0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 40.0))
OBJECT_OVERALL = (0.0, 30.0)
GATE_MIN, GATE_FRACTION = 2.0, 0.2


class BevError(ValueError):
    """A missing or malformed input folder or file (the message names it, one line)."""


@dataclass
class TruthFrame:
    """stem; grid: (H, W) uint8 truth cells; distance: (H, W) float64 cell-centre distance (m) from the camera's
    ground point; objects: the truth objects (dicts with label, x, y, range)."""

    stem: str
    grid: np.ndarray
    distance: np.ndarray
    objects: list[dict]


def band_name(band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g}"


def in_band(values: np.ndarray, band: tuple[float, float], bands: tuple) -> np.ndarray:
    """values in [lo, hi); the last of ``bands`` also takes hi."""
    values = np.asarray(values)
    upper = values <= band[1] if band == bands[-1] else values < band[1]
    return (values >= band[0]) & upper


def read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise BevError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BevError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BevError(f"{path}: expected a JSON object")
    return document


def read_grid(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 grid PNG of ``shape`` holding only 0, 100 and 255."""
    if not path.is_file():
        raise BevError(f"{path}: no such file")
    grid = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if grid is None:
        raise BevError(f"{path}: not a readable PNG")
    if grid.dtype != np.uint8 or grid.shape != shape:
        raise BevError(f"{path}: expected a {shape[0]}x{shape[1]} uint8 grid, got {grid.shape} {grid.dtype}")
    values = np.unique(grid)
    if not np.isin(values, (FREE, OCCUPIED, UNKNOWN)).all():
        raise BevError(f"{path}: cell values must be 0, 100 or 255, found {values.tolist()}")
    return grid


def read_objects(path: Path) -> list[dict]:
    """The ``objects`` list of a truth or prediction JSON, each with a string label and finite x, y."""
    objects = read_json(path).get("objects")
    if not isinstance(objects, list):
        raise BevError(f"{path}: expected an 'objects' list")
    for k, obj in enumerate(objects):
        try:
            valid = isinstance(obj["label"], str) and math.isfinite(obj["x"]) and math.isfinite(obj["y"])
        except (KeyError, TypeError):
            valid = False
        if not valid:
            raise BevError(f"{path}: object {k} needs a string 'label' and numbers 'x', 'y'")
    return objects


def cell_distance(document: dict, path: Path) -> np.ndarray:
    """(H, W) float64 distance (m) of every cell centre of the truth JSON's ``grid`` (GridSpec fields: row = y,
    column = x, origin corner (x_min, y_min)) from its ``camera_ground_point``."""
    try:
        grid, camera = document["grid"], document["camera_ground_point"]
        resolution = float(grid["resolution"])
        width = round((float(grid["x_max"]) - float(grid["x_min"])) / resolution)
        height = round((float(grid["y_max"]) - float(grid["y_min"])) / resolution)
        x = float(grid["x_min"]) + (np.arange(width) + 0.5) * resolution - float(camera["x"])
        y = float(grid["y_min"]) + (np.arange(height) + 0.5) * resolution - float(camera["y"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise BevError(f"{path}: malformed 'grid' or 'camera_ground_point' ({exc!r})") from None
    if width < 1 or height < 1:
        raise BevError(f"{path}: empty grid {grid}")
    return np.hypot(x[None, :], y[:, None])


def load_truth(root: Path | str, split: str) -> list[TruthFrame]:
    """Every truth frame of ``split`` under the Cityscapes-layout ``root``, sorted by stem."""
    folder = Path(root) / "gtFine" / split
    if not folder.is_dir():
        raise BevError(f"{folder}: no such ground-truth folder")
    frames = []
    for path in sorted(folder.glob("*/*_gtFine_drivableGrid.png")):
        stem = layout.stem_of(path)
        objects_path = layout.gt_path(root, split, stem, "objects")
        distance = cell_distance(read_json(objects_path), objects_path)
        truth_objects = read_objects(objects_path)
        if not all(isinstance(o.get("range"), (int, float)) for o in truth_objects):
            raise BevError(f"{objects_path}: every truth object needs a 'range'")
        frames.append(TruthFrame(stem, read_grid(path, distance.shape), distance, truth_objects))
    if not frames:
        raise BevError(f"{folder}: no *_gtFine_drivableGrid.png truth (written by seg-synth)")
    return frames


def match_objects(truth: list[dict], predictions: list[dict]) -> list[float | None]:
    """Position error (m) of each truth object's match, None where unmatched (greedy by distance, same label,
    within max(GATE_MIN, GATE_FRACTION x range))."""
    pairs = []
    for i, t in enumerate(truth):
        gate = max(GATE_MIN, GATE_FRACTION * t["range"])
        for j, p in enumerate(predictions):
            distance = math.hypot(p["x"] - t["x"], p["y"] - t["y"])
            if p["label"] == t["label"] and distance <= gate:
                pairs.append((distance, i, j))
    errors: list[float | None] = [None] * len(truth)
    used = set()
    for distance, i, j in sorted(pairs):
        if errors[i] is None and j not in used:
            errors[i] = distance
            used.add(j)
    return errors


class BevEvaluator:
    """Accumulates free-space cell counts and object matches over frames; ``result()`` gives the scores."""

    def __init__(self) -> None:
        self.bands = (*FREE_BANDS, FREE_OVERALL)
        self.intersection = np.zeros(len(self.bands), np.int64)
        self.union = np.zeros(len(self.bands), np.int64)
        self.frames = 0
        self.object_frames = 0
        self.ranges: list[float] = []
        self.errors: list[float | None] = []
        self.predictions = 0
        self.unmatched_predictions = 0

    def add_grid(self, truth: TruthFrame, predicted: np.ndarray) -> None:
        """One frame's (H, W) uint8 predicted grid."""
        known = truth.grid != UNKNOWN
        true_free, predicted_free = truth.grid == FREE, predicted == FREE
        for k, band in enumerate(self.bands):
            cells = known & in_band(truth.distance, band, FREE_BANDS)
            self.intersection[k] += np.count_nonzero(cells & true_free & predicted_free)
            self.union[k] += np.count_nonzero(cells & (true_free | predicted_free))
        self.frames += 1

    def add_objects(self, truth: TruthFrame, predictions: list[dict]) -> None:
        errors = match_objects(truth.objects, predictions)
        self.ranges += [float(t["range"]) for t in truth.objects]
        self.errors += errors
        self.predictions += len(predictions)
        self.unmatched_predictions += len(predictions) - sum(e is not None for e in errors)
        self.object_frames += 1

    def result(self) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = self.intersection / self.union
        free = {band_name(b): (float(v) if u else None) for b, v, u in zip(self.bands, iou, self.union, strict=True)}
        result = {"frames": self.frames, "free_space_iou": free, "objects": None}
        if self.object_frames:
            ranges = np.array(self.ranges)
            errors = np.array([np.nan if e is None else e for e in self.errors])
            result["objects"] = {
                "frames": self.object_frames,
                "predictions": self.predictions,
                "unmatched_predictions": self.unmatched_predictions,
                "bands": {band_name(b): _object_band(ranges, errors, b) for b in (*OBJECT_BANDS, OBJECT_OVERALL)},
            }
        return result


def _object_band(ranges: np.ndarray, errors: np.ndarray, band: tuple[float, float]) -> dict:
    selected = in_band(ranges, band, OBJECT_BANDS)
    matched = selected & ~np.isnan(errors)
    metres, percent = errors[matched], 100.0 * errors[matched] / np.maximum(ranges[matched], 1e-9)

    def stat(values: np.ndarray, q: float) -> float | None:
        return float(np.percentile(values, q)) if len(values) else None

    return {
        "count": int(selected.sum()),
        "matched": int(matched.sum()),
        "median_error_m": stat(metres, 50),
        "p90_error_m": stat(metres, 90),
        "median_error_pct": stat(percent, 50),
        "p90_error_pct": stat(percent, 90),
    }


def evaluate_bev(gt_root: Path | str, split: str, pred_dir: Path | str) -> dict:
    """Scores of the predictions in ``pred_dir`` against every truth frame of ``split`` (see the module docstring)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise BevError(f"{pred_dir}: no such prediction folder")
    evaluator = BevEvaluator()
    for truth in load_truth(gt_root, split):
        evaluator.add_grid(truth, read_grid(pred_dir / f"{truth.stem}_drivableGrid.png", truth.grid.shape))
        objects_path = pred_dir / f"{truth.stem}_objects.json"
        if objects_path.exists():
            evaluator.add_objects(truth, read_objects(objects_path))
    return evaluator.result()


def format_table(result: dict) -> str:
    """The scores as a plain-text table."""

    def number(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    free = result["free_space_iou"]
    lines = [
        f"frames: {result['frames']}",
        "free-space IoU  " + "".join(f"{name + ' m':>10}" for name in free),
        "                " + "".join(f"{number(v, 4):>10}" for v in free.values()),
    ]
    objects = result["objects"]
    if objects is None:
        return "\n".join([*lines, "objects: no <stem>_objects.json predictions"])
    lines += [
        f"objects ({objects['frames']} frames, {objects['predictions']} predictions, "
        f"{objects['unmatched_predictions']} unmatched)",
        f"{'range':>9}{'count':>7}{'matched':>9}{'median m':>10}{'p90 m':>8}{'median %':>10}{'p90 %':>8}",
    ]
    for name, band in objects["bands"].items():
        lines.append(
            f"{name + ' m':>9}{band['count']:>7}{band['matched']:>9}{number(band['median_error_m'], 3):>10}"
            f"{number(band['p90_error_m'], 3):>8}{number(band['median_error_pct'], 2):>10}"
            f"{number(band['p90_error_pct'], 2):>8}"
        )
    return "\n".join(lines)
