"""seg-predict-bev: a small synthetic split through segmentation_node (the shipped semantic model, one node per
sequence), its drivable grids written as seg-eval-bev reads them."""

from pathlib import Path

import cv2
import numpy as np

from seg_perception.data.synthetic import generate_split
from seg_perception.tools import predict_bev

CONFIG = Path(__file__).resolve().parents[1] / "config" / "semantic.yaml"


def test_grids_of_every_frame_are_written_with_the_road_ahead_free(tmp_path):
    generate_split(tmp_path / "gt", "val", 2, 2, 256, 512, seed=2)
    args = ["--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "pred"), "--params-file", str(CONFIG)]
    assert predict_bev.main([*args, "-p", "grid_resolution:=0.5"]) == 0
    grids = sorted((tmp_path / "pred").glob("*_drivableGrid.png"))
    assert [path.name.split("_drivableGrid")[0] for path in grids] == [
        f"synthcity_00000{s}_00000{f}" for s in range(2) for f in range(2)
    ]
    assert not list((tmp_path / "pred").glob("*_objects.json"))  # a semantic model locates no objects
    for path in grids:
        cells = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert cells.shape == (80, 80) and cells.dtype == np.uint8 and set(np.unique(cells)) <= {0, 100, 255}
        ahead = cells[40, 12:30]  # y = +0.25 m, x = 6..15 m: the ego lane
        assert (ahead == 0).mean() > 0.7, ahead


def test_a_split_without_camera_files_is_an_error(tmp_path):
    generate_split(tmp_path / "gt", "val", 1, 1, 64, 128, seed=2)
    for camera in (tmp_path / "gt" / "camera").rglob("*.json"):
        camera.unlink()
    args = ["--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "pred"), "--params-file", str(CONFIG)]
    assert predict_bev.main(args) == 1
