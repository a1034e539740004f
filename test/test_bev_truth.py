"""Tests of seg-synth's bird's-eye truth (drivableGrid, objects) and of seg-eval-bev.

Expected values come from the rendered labels and instance masks, the road users' own sizes and positions, and
numbers worked out by hand, not from the truth module's code.
"""

from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from seg_perception.data.layout import camera_path, frame_stem, gt_path
from seg_perception.data.synthetic import DEFAULT_CITY, SyntheticScene, generate_split
from seg_perception.data.synthetic.actors import Vehicle
from seg_perception.data.synthetic.constants import FRAME_RATE_HZ
from seg_perception.evaluation.bev import evaluate_bev
from seg_perception.ground_projection import CameraModel, GridSpec, GroundProjection
from seg_perception.labels import LABEL_BY_ID, LABEL_BY_NAME
from seg_perception.tools.evaluate_bev import main

HEIGHT, WIDTH, SEED = 256, 512, 2
SEQUENCES, FRAMES = 3, 2
FREE, OCCUPIED, UNKNOWN = 0, 100, 255
THINGS = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
GROUND_IDS = [LABEL_BY_NAME[n].id for n in ("road", "sidewalk", "parking", "rail track", "terrain", "ground")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(root, [(sequence, frame, stem)]) of a small written split."""
    root = tmp_path_factory.mktemp("bev")
    generate_split(root, "val", SEQUENCES, FRAMES, HEIGHT, WIDTH, SEED)
    return root, [(s, k, frame_stem(DEFAULT_CITY, s, k)) for s in range(SEQUENCES) for k in range(FRAMES)]


def _frame(root, stem):
    """grid (200, 200) uint8, objects document, labelIds, instanceIds, camera JSON of one written frame."""
    grid = cv2.imread(str(gt_path(root, "val", stem, "drivableGrid")), cv2.IMREAD_UNCHANGED)
    objects = json.loads(gt_path(root, "val", stem, "objects").read_text())
    labels = cv2.imread(str(gt_path(root, "val", stem, "labelIds")), cv2.IMREAD_UNCHANGED)
    instances = cv2.imread(str(gt_path(root, "val", stem, "instanceIds")), cv2.IMREAD_UNCHANGED)
    camera = json.loads(camera_path(root, "val", stem).read_text())
    return grid, objects, labels, instances, camera


def _cell_pixels(camera: dict):
    """Cell centres (x, y) (200, 200), their rounded pixel (col, row), depth and whether it lies in the image."""
    x, y = GridSpec().cell_centres()
    u, v, depth = GroundProjection(CameraModel.from_cityscapes(camera)).ground_to_pixel(x, y)
    with np.errstate(invalid="ignore"):
        col, row = np.rint(np.nan_to_num(u, nan=-9)), np.rint(np.nan_to_num(v, nan=-9))
        inside = (depth > 0) & (col >= 0) & (col < WIDTH) & (row >= 0) & (row < HEIGHT)
    return x, y, np.where(inside, col, 0).astype(int), np.where(inside, row, 0).astype(int), depth, inside


def test_truth_files_and_objects_match_the_instance_masks(dataset):
    root, frames = dataset
    for _, _, stem in frames:
        grid, document, _, instances, _ = _frame(root, stem)
        assert grid.dtype == np.uint8 and grid.shape == (200, 200)
        assert set(np.unique(grid).tolist()) <= {FREE, OCCUPIED, UNKNOWN}
        assert document["grid"] == {"resolution": 0.2, "x_min": 0.0, "x_max": 40.0, "y_min": -20.0, "y_max": 20.0}
        assert document["frame"] == "base_link"
        assert document["camera_ground_point"] == {"x": 1.7, "y": 0.1}
        things = {int(i) for i in np.unique(instances) if i >= 1000 and LABEL_BY_ID[i // 1000].name in THINGS}
        assert [o["instance_id"] for o in document["objects"]] == sorted(things)
        for obj in document["objects"]:
            assert LABEL_BY_NAME[obj["label"]].id == obj["instance_id"] // 1000
            assert obj["train_id"] == LABEL_BY_NAME[obj["label"]].train_id
            dx, dy = obj["x"] - 1.7, obj["y"] - 0.1
            assert obj["range"] == pytest.approx(math.hypot(dx, dy), abs=2e-4)
            assert obj["bearing"] == pytest.approx(math.atan2(dy, dx), abs=1e-5)
            footprint = np.array(obj["footprint"])
            assert footprint.shape[1] == 2 and len(footprint) >= 3
            # (x, y) is a ground-contact point, inside the object's footprint (edges included)
            inside = cv2.pointPolygonTest(footprint.astype(np.float32), (obj["x"], obj["y"]), measureDist=True)
            assert inside >= -1e-3, (obj, inside)


def test_cells_on_rendered_road_are_free_and_on_sidewalks_occupied(dataset):
    root, frames = dataset
    kernel = np.ones((7, 7), np.uint8)  # only pixels 3 px away from any other label
    counts = {}
    for _, _, stem in frames:
        grid, _, labels, _, camera = _frame(root, stem)
        x, y, col, row, _, inside = _cell_pixels(camera)
        inside &= np.hypot(x - 1.7, y - 0.1) <= 40
        for name, names in (("road", ("road",)), ("off road", ("sidewalk", "terrain"))):
            core = cv2.erode(np.isin(labels, [LABEL_BY_NAME[n].id for n in names]).astype(np.uint8), kernel)
            cells = grid[inside & (core[row, col] == 1)]
            counts.setdefault(name, []).append(cells)
    road, off_road = np.concatenate(counts["road"]), np.concatenate(counts["off road"])
    assert len(road) > 5000 and len(off_road) > 1000
    assert np.mean(road == FREE) >= 0.95
    assert np.mean(off_road == OCCUPIED) >= 0.95


def test_cells_under_a_car_are_occupied_or_hidden(dataset):
    root, frames = dataset
    occupied = hidden = 0
    for sequence, index, stem in frames:
        grid, _, _, _, camera = _frame(root, stem)
        scene = SyntheticScene(HEIGHT, WIDTH, SEED, "val", sequence)
        p = scene.camera_position(index)
        origin_x, origin_z = p[0] + camera["extrinsic"]["y"], p[2] - camera["extrinsic"]["x"]
        x, y = GridSpec().cell_centres()
        for car in (u for u in scene.road_users.users if isinstance(u, Vehicle) and u.kind == "car"):
            centre = car.position(index / FRAME_RATE_HZ)
            cx, cy = centre[2] - origin_z, -(centre[0] - origin_x)
            if not (3 < cx < 38 and abs(cy) < 18):
                continue
            # the car's own length x width, shrunk 0.1 m; heading 0 or pi: axes along the street
            along = (x - cx) * math.cos(car.heading) - (y - cy) * math.sin(car.heading)
            across = (x - cx) * math.sin(car.heading) + (y - cy) * math.cos(car.heading)
            under = (np.abs(along) < car.length / 2 - 0.1) & (np.abs(across) < car.width / 2 - 0.1)
            assert not (grid[under] == FREE).any(), f"{stem}: a free cell under a car"
            occupied += np.count_nonzero(grid[under] == OCCUPIED)
            hidden += np.count_nonzero(grid[under] == UNKNOWN)
    assert occupied >= 10 and hidden > occupied  # its near edge is seen, the ground under its body hidden


def test_cells_out_of_view_are_unknown(dataset):
    root, frames = dataset
    for _, _, stem in frames:
        grid, _, labels, _, camera = _frame(root, stem)
        x, y, col, row, _, inside = _cell_pixels(camera)
        assert (grid[~inside] == UNKNOWN).all()  # behind the camera or outside the image
        assert (grid[np.hypot(x - 1.7, y - 0.1) > 40] == UNKNOWN).all()
        assert (grid[inside & ~np.isin(labels[row, col], GROUND_IDS)] == UNKNOWN).all()  # hood, cars, walls
        assert (grid[:, :5] == UNKNOWN).all()  # x < 1 m: under the hood or behind the camera
        assert (grid[inside] != UNKNOWN).any()


def _silhouettes(root, stem) -> dict[int, np.ndarray]:
    """Instance id -> (H, W) bool unoccluded silhouette: the gtFine polygon of label L's k-th instance is the k-th
    polygon labelled L (the Cityscapes instance-id rule), drawn clipped to the image."""
    silhouettes, counts = {}, {}
    for obj in json.loads(gt_path(root, "val", stem, "polygons").read_text())["objects"]:
        if obj["label"] in THINGS:
            k = counts[obj["label"]] = counts.get(obj["label"], -1) + 1
            canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
            cv2.fillPoly(canvas, [np.array(obj["polygon"], np.int32)], 1)
            silhouettes[LABEL_BY_NAME[obj["label"]].id * 1000 + k] = canvas > 0
    return silhouettes


def test_object_positions_project_to_the_bottom_of_their_masks(dataset):
    root, frames = dataset
    checked = 0
    for sequence, index, stem in frames:
        _, document, _, instances, camera = _frame(root, stem)
        scene = SyntheticScene(HEIGHT, WIDTH, SEED, "val", sequence)
        frame = scene.render(index)
        users = {u.track: u for u in scene.road_users.users}
        users.update({u.rider.track: u.rider for u in scene.road_users.users if getattr(u, "rider", None)})
        projection = GroundProjection(CameraModel.from_cityscapes(camera))
        silhouettes = _silhouettes(root, stem)
        for obj in document["objects"]:
            mask = instances == obj["instance_id"]
            rows, cols = np.nonzero(mask)
            bottom = rows.max()
            silhouette = silhouettes[obj["instance_id"]]
            cut = silhouette[:, :3].any() or silhouette[:, -3:].any() or silhouette[-3:].any()
            if not 15 <= obj["range"] <= 40 or cut or mask.sum() < 0.9 * silhouette.sum():
                continue  # near: the bumper overhangs the wheels by pixels; cut by the border; partly hidden
            u, v, depth = projection.ground_to_pixel(obj["x"], obj["y"])
            # flat ground: an object standing on the curb (or a rider's feet on the pedals, ~0.3 m up) shows
            # f * height / depth px above where its ground point at road level projects
            user = users[frame.instance_tracks[obj["instance_id"]]]
            lift = user.ground + (0.3 if obj["label"] == "rider" else 0.0)
            assert cols.min() - 2 <= u <= cols.max() + 2, (stem, obj)
            assert -2 <= v - bottom <= 3 + camera["intrinsic"]["fy"] * lift / depth, (stem, obj, v, bottom)
            checked += 1
    assert checked >= 15


def _copy_truth_as_prediction(root, frames, pred):
    pred.mkdir()
    for _, _, stem in frames:
        shutil.copy(gt_path(root, "val", stem, "drivableGrid"), pred / f"{stem}_drivableGrid.png")
        shutil.copy(gt_path(root, "val", stem, "objects"), pred / f"{stem}_objects.json")


def test_truth_against_itself_scores_perfectly(dataset, tmp_path, capsys):
    root, frames = dataset
    _copy_truth_as_prediction(root, frames, tmp_path / "pred")
    assert main(["--gt", str(root), "--split", "val", "--pred-dir", str(tmp_path / "pred"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == len(frames)
    assert result["free_space_iou"] == {"0-10": 1.0, "10-20": 1.0, "20-40": 1.0, "0-20": 1.0}
    bands = result["objects"]["bands"]
    assert sum(b["count"] for b in bands.values()) >= 10
    for band in bands.values():
        assert band["matched"] == band["count"]
        if band["count"]:
            assert band["median_error_m"] == band["p90_error_m"] == band["median_error_pct"] == 0.0
    assert result["objects"]["unmatched_predictions"] == 0  # objects beyond 40 m match too, in no band
    assert main(["--gt", str(root), "--pred-dir", str(tmp_path / "pred")]) == 0
    assert "free-space IoU" in capsys.readouterr().out


def _hand_made(tmp_path):
    """A one-row truth grid of 1 m cells whose distance from the camera ground point is the column index."""
    folder = tmp_path / "gt" / "gtFine" / "val" / "handcity"
    folder.mkdir(parents=True)
    truth = np.full((1, 40), FREE, np.uint8)
    truth[0, 30:35], truth[0, 35:] = OCCUPIED, UNKNOWN
    cv2.imwrite(str(folder / "handcity_000000_000000_gtFine_drivableGrid.png"), truth)
    objects = [("car", 5.5, 5), ("person", 15.5, 15), ("car", 25.5, 25), ("car", 35.5, 35), ("car", 36.5, 36)]
    document = {
        "grid": {"resolution": 1.0, "x_min": 0.0, "x_max": 40.0, "y_min": 0.0, "y_max": 1.0},
        "frame": "base_link",
        "camera_ground_point": {"x": 0.5, "y": 0.5},
        "objects": [{"label": label, "x": x, "y": 0.5, "range": r} for label, x, r in objects],
    }
    (folder / "handcity_000000_000000_gtFine_objects.json").write_text(json.dumps(document))
    pred = tmp_path / "pred"
    pred.mkdir()
    grid = np.full((1, 40), FREE, np.uint8)
    grid[0, 5:10], grid[0, 18:20] = UNKNOWN, OCCUPIED
    cv2.imwrite(str(pred / "handcity_000000_000000_drivableGrid.png"), grid)
    predictions = [
        ("car", 6.5, 0.5),  # 1.0 m from the 5 m car
        ("person", 15.5, 2.5),  # 2.0 m from the person (gate 3 m)
        ("car", 15.5, 0.6),  # a car where a person is: no match
        ("car", 31.5, 0.5),  # 6 m from the 25 m car: outside its 5 m gate
        ("car", 36.3, 0.5),  # 0.2 m from the 36 m car, 0.8 m from the 35 m one
        ("car", 34.5, 0.5),  # 1.0 m from the 35 m car
    ]
    objects_json = {"objects": [{"label": label, "x": x, "y": y} for label, x, y in predictions]}
    (pred / "handcity_000000_000000_objects.json").write_text(json.dumps(objects_json))
    return tmp_path / "gt", pred


def test_hand_made_prediction(tmp_path):
    gt, pred = _hand_made(tmp_path)
    result = evaluate_bev(gt, "val", pred)
    # 0-10: truth free 0..9, predicted free 0..4; 10-20: predicted 18, 19 occupied;
    # 20-40: truth free 20..29, occupied 30..34 (predicted free), unknown 35..39 (not counted)
    assert result["free_space_iou"] == pytest.approx(
        {"0-10": 5 / 10, "10-20": 8 / 10, "20-40": 10 / 15, "0-20": 13 / 20}
    )
    objects = result["objects"]
    assert (objects["frames"], objects["predictions"], objects["unmatched_predictions"]) == (1, 6, 2)
    bands = objects["bands"]
    assert bands["0-10"] == pytest.approx(
        {
            "count": 1,
            "matched": 1,
            "median_error_m": 1.0,
            "p90_error_m": 1.0,
            "median_error_pct": 20.0,
            "p90_error_pct": 20.0,
        }
    )
    assert bands["10-20"]["median_error_m"] == pytest.approx(2.0)
    assert bands["10-20"]["median_error_pct"] == pytest.approx(200 / 15)
    assert bands["20-30"] == {
        "count": 1,
        "matched": 0,
        "median_error_m": None,
        "p90_error_m": None,
        "median_error_pct": None,
        "p90_error_pct": None,
    }
    # greedy by distance: the 36 m car takes the 0.2 m prediction first, the 35 m car then the 1.0 m one
    # (nearest in list order would pair 35 m -> 0.8 m and 36 m -> 2.0 m)
    percent = sorted([100 * 1.0 / 35, 100 * 0.2 / 36])
    expected = {"count": 2, "matched": 2, "median_error_m": 0.6, "p90_error_m": 0.2 + 0.9 * 0.8}
    expected |= {"median_error_pct": sum(percent) / 2, "p90_error_pct": percent[0] + 0.9 * (percent[1] - percent[0])}
    assert bands["30-40"] == pytest.approx(expected)


def test_clear_errors(tmp_path, capsys):
    gt, pred = _hand_made(tmp_path)
    cases = [
        (["--gt", str(tmp_path / "missing"), "--pred-dir", str(pred)], "no such ground-truth folder"),
        (["--gt", str(gt), "--pred-dir", str(tmp_path / "missing")], "no such prediction folder"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    corruptions = (
        (lambda grid, _: cv2.imwrite(str(grid), np.full((1, 40), 7, np.uint8)), "must be 0, 100 or 255"),
        (lambda grid, _: cv2.imwrite(str(grid), np.zeros((2, 40), np.uint8)), "expected a 1x40 uint8 grid"),
        (lambda grid, _: grid.write_bytes(b"\x89PNG broken"), "not a readable PNG"),
        (lambda grid, _: grid.unlink(), "no such file"),
        (lambda _, objects: objects.write_text('{"objects": [{"label": "car"}]}'), "numbers 'x', 'y'"),
        (lambda _, objects: objects.write_text("{"), "not readable JSON"),
    )
    for k, (corrupt, message) in enumerate(corruptions):
        gt, pred = _hand_made(tmp_path / str(k))
        corrupt(pred / "handcity_000000_000000_drivableGrid.png", pred / "handcity_000000_000000_objects.json")
        with pytest.raises(SystemExit) as exit_info:
            main(["--gt", str(gt), "--pred-dir", str(pred)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
