"""``seg-eval-bev --picture STEM OUT.png``: one frame's camera image beside its predicted and its true drivable grid,
the grids drawn as a planner sees them (x forward up, y left to the left; white free, dark occupied, grey unknown,
the camera's ground point in red; 1 px per cell)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seg_perception.data.layout import gt_path, image_path

COLOURS = {0: (255, 255, 255), 100: (60, 60, 60), 255: (150, 150, 150)}
"""drivableGrid PNG value -> BGR."""
HEIGHT = 400


def grid_view(cells: np.ndarray, camera_cell: tuple[int, int] | None = None) -> np.ndarray:
    """(rows = y, cols = x) uint8 drivableGrid -> (W, H, 3) BGR with x up and y left, scaled to ``HEIGHT`` rows."""
    view = np.zeros((*cells.shape, 3), np.uint8)
    for value, colour in COLOURS.items():
        view[cells == value] = colour
    if camera_cell is not None:
        cv2.circle(view, (camera_cell[1], camera_cell[0]), 2, (0, 0, 255), -1)
    view = np.ascontiguousarray(view[::-1, ::-1].transpose(1, 0, 2))
    return cv2.resize(view, (HEIGHT * view.shape[1] // view.shape[0], HEIGHT), interpolation=cv2.INTER_NEAREST)


def write_picture(gt_root: str | Path, split: str, pred_dir: str | Path, stem: str, out: str | Path) -> Path:
    """Image | predicted grid | true grid of frame ``stem``, labelled, as a PNG at ``out``."""
    image = cv2.imread(str(image_path(gt_root, split, stem)))
    predicted = cv2.imread(str(Path(pred_dir) / f"{stem}_drivableGrid.png"), cv2.IMREAD_UNCHANGED)
    truth = cv2.imread(str(gt_path(gt_root, split, stem, "drivableGrid")), cv2.IMREAD_UNCHANGED)
    if image is None or predicted is None or truth is None:
        raise FileNotFoundError(f"{stem}: image, predicted or true drivableGrid missing or unreadable")
    image = cv2.resize(image, (HEIGHT * image.shape[1] // image.shape[0], HEIGHT))
    panels = [image, grid_view(predicted), grid_view(truth)]
    for panel, title in zip(panels, ("camera", "drivable_grid (node)", "truth (scene geometry)"), strict=True):
        cv2.putText(panel, title, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
    gap = np.full((HEIGHT, 6, 3), 255, np.uint8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.hstack([panels[0], gap, panels[1], gap, panels[2]]))
    return out
