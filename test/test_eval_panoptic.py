"""PanopticEvaluator against the official cityscapesscripts panoptic evaluator.

Ground truth comes from the official ``createPanopticImgs.convert2panoptic`` run on synthetic
``*_gtFine_instanceIds.png`` files; predictions are perturbed gt segments in COCO panoptic format.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from seg_perception.evaluation.panoptic import (
    MAX_SEGMENT_ID,
    PanopticEvaluator,
    cityscapes_categories,
    id_to_rgb,
    load_panoptic_prediction,
    rgb_to_id,
)
from seg_perception.labels import LABEL_BY_NAME

H, W = 128, 256
LID = {lb: LABEL_BY_NAME[lb].id for lb in LABEL_BY_NAME}
VOID_BOX = (slice(0, 24), slice(0, 48))  # 'out of roi' in every gt image
CROWD_BOX = (slice(88, 112), slice(150, 214))  # plain 'car' id (car group) in every gt image


def _box(rng, max_h=40, max_w=80):
    y, x = int(rng.integers(0, H - 8)), int(rng.integers(0, W - 8))
    return slice(y, y + int(rng.integers(6, max_h))), slice(x, x + int(rng.integers(6, max_w)))


def _ellipse(rng) -> np.ndarray:
    yy, xx = np.ogrid[:H, :W]
    cy, cx, ry, rx = rng.integers(0, H), rng.integers(0, W), rng.integers(4, 20), rng.integers(4, 30)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _instance_ids(rng) -> np.ndarray:
    """(H, W) Cityscapes instanceIds: stuff / void / crowd as plain label ids, things as label * 1000 + k."""
    img = np.zeros((H, W), np.uint16)
    img[: H // 3], img[H // 3 : 2 * H // 3], img[2 * H // 3 :] = LID["sky"], LID["building"], LID["road"]
    for name in ("sidewalk", "vegetation", "pole", "terrain", "parking", "guard rail", "unlabeled", "ego vehicle"):
        img[_box(rng)] = LID[name]
    img[CROWD_BOX] = LID["car"]
    img[_box(rng)] = LID["person"]  # person group (crowd)
    img[_box(rng)] = LID["caravan"] * 1000  # instance of an ignored thing class: VOID in the gt
    for name in ("person", "car", "bicycle", "rider", "truck"):
        for k in range(int(rng.integers(1, 5))):
            img[_ellipse(rng) if rng.random() < 0.5 else _box(rng)] = LID[name] * 1000 + k
    img[CROWD_BOX[0], CROWD_BOX[1].start : CROWD_BOX[1].start + 20] = LID["car"] * 1000 + 10  # car on the crowd edge
    img[VOID_BOX] = LID["out of roi"]
    return img


def _write_gt(root: Path, rng, n: int) -> tuple[Path, Path]:
    """gtFine/val/<city>/..._gtFine_instanceIds.png -> official panoptic json + PNG folder."""
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    for k in range(n):
        city = ("aachen", "bochum")[k % 2]
        path = root / "gtFine" / "val" / city / f"{city}_000000_{k:06d}_gtFine_instanceIds.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), _instance_ids(rng))
    convert2panoptic(str(root / "gtFine"), str(root), setNames=["val"])
    return root / "cityscapes_panoptic_val.json", root / "cityscapes_panoptic_val"


def _perturb(rng, gt_pan: np.ndarray, gt_segments: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """A prediction from gt segments: dropped, shifted, eroded, dilated, split, merged, relabelled and extra ones."""
    cat_ids = [c["id"] for c in cityscapes_categories()]
    pred = gt_pan.astype(np.int64)
    category = {s["id"]: s["category_id"] for s in gt_segments}
    next_id = max(category) + 1
    kernel = np.ones((5, 5), np.uint8)
    for seg in rng.permutation(np.array(gt_segments, dtype=object)):
        sid, mask = seg["id"], gt_pan == seg["id"]
        r = rng.random()
        if r < 0.1:
            pred[mask] = 0
        elif r < 0.2:
            pred[mask & (pred == sid)] = 0
            pred[np.roll(mask, (int(rng.integers(-6, 7)), int(rng.integers(-12, 13))), axis=(0, 1))] = sid
        elif r < 0.3:
            pred[mask & (cv2.erode(mask.astype(np.uint8), kernel, iterations=2) == 0)] = 0
        elif r < 0.4:
            pred[cv2.dilate(mask.astype(np.uint8), kernel, iterations=2) > 0] = sid
        elif r < 0.5:
            cols = np.flatnonzero(mask.any(axis=0))
            pred[mask & (np.arange(W) > cols[len(cols) // 2])[None, :]] = next_id
            category[next_id], next_id = seg["category_id"], next_id + 1
        elif r < 0.6:
            category[sid] = int(rng.choice(cat_ids))
        elif r < 0.7:
            same = [s["id"] for s in gt_segments if s["category_id"] == seg["category_id"] and s["id"] != sid]
            if same:
                pred[mask] = int(rng.choice(same))
    extras = [_box(rng) for _ in range(3)]
    extras += [  # mostly / partly on VOID, on the car crowd region, half on crowd half on VOID
        (slice(0, 20), slice(0, 60)),
        (slice(10, 40), slice(30, 50)),
        (slice(90, 110), slice(175, 200)),
        (slice(95, 105), slice(195, 214)),
    ]
    for box in extras:
        pred[box] = next_id
        category[next_id], next_id = int(rng.choice([LID["car"], LID["person"], *cat_ids])), next_id + 1
    # Renumber to arbitrary unique 24-bit ids, listed in random order.
    present = np.unique(pred)
    present = present[present != 0]
    new_ids = rng.choice(np.arange(1, MAX_SEGMENT_ID + 1), size=len(present), replace=False)
    lut = np.zeros(int(present.max()) + 1, np.int64)
    lut[present] = new_ids
    segments = [{"id": int(n), "category_id": category[int(o)]} for o, n in zip(present, new_ids, strict=True)]
    return lut[pred], [segments[i] for i in rng.permutation(len(segments))]


def _write_prediction(root: Path, frames: list[tuple[str, np.ndarray, list[dict]]]) -> tuple[Path, Path]:
    png_dir = root / "pred"
    png_dir.mkdir(parents=True, exist_ok=True)
    annotations = []
    for image_id, pan, segments in frames:
        Image.fromarray(id_to_rgb(pan)).save(png_dir / f"{image_id}_pred.png")
        annotations.append({"image_id": image_id, "file_name": f"{image_id}_pred.png", "segments_info": segments})
    json_path = root / "pred.json"
    json_path.write_text(json.dumps({"annotations": annotations, "categories": cityscapes_categories()}))
    return json_path, png_dir


def _evaluate(gt_json, gt_dir, pred_json, pred_dir) -> dict:
    gt, pred = load_panoptic_prediction(gt_json, gt_dir), load_panoptic_prediction(pred_json, pred_dir)
    ev = PanopticEvaluator()
    for image_id in gt:
        ev.process(*gt[image_id], *pred[image_id])
    return ev.evaluate()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_official_evaluator(tmp_path, seed):
    from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic

    rng = np.random.default_rng(seed)
    gt_json, gt_dir = _write_gt(tmp_path, rng, n=6)
    gt = load_panoptic_prediction(gt_json, gt_dir)
    frames = [(image_id, *_perturb(rng, *gt[image_id])) for image_id in gt]
    pred_json, pred_dir = _write_prediction(tmp_path, frames)

    ref = evaluatePanoptic(str(gt_json), str(gt_dir), str(pred_json), str(pred_dir), str(tmp_path / "result.json"))
    res = _evaluate(gt_json, gt_dir, pred_json, pred_dir)

    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        assert res["n" + suffix] == ref[group]["n"], group
        for key in ("PQ", "SQ", "RQ"):
            assert abs(res[key + suffix] - ref[group][key.lower()]) <= 1e-4, (group, key)
    categories = json.loads(gt_json.read_text())["categories"]
    assert [(c["id"], c["name"], c["isthing"]) for c in categories] == [
        (c["id"], c["name"], c["isthing"]) for c in cityscapes_categories()
    ]
    for cat in categories:
        mine, official = res["per_class"][cat["name"]], ref["per_class"][cat["id"]]
        if mine["tp"] + mine["fp"] + mine["fn"] == 0:
            assert mine["PQ"] is None and official == {"pq": 0.0, "sq": 0.0, "rq": 0.0}, cat["name"]
            continue
        for key in ("PQ", "SQ", "RQ"):
            assert abs(mine[key] - official[key.lower()]) <= 1e-4, (cat["name"], key)
    assert sum(c["tp"] for c in res["per_class"].values()) > 0
    assert sum(c["fp"] for c in res["per_class"].values()) > 0
    assert sum(c["fn"] for c in res["per_class"].values()) > 0


def test_perfect_prediction(tmp_path):
    rng = np.random.default_rng(5)
    gt_json, gt_dir = _write_gt(tmp_path, rng, n=2)
    gt = load_panoptic_prediction(gt_json, gt_dir)
    ev = PanopticEvaluator()
    for image_id in gt:
        pan, segments = gt[image_id]
        # Crowd segments predicted as such are unmatched but lie fully on their crowd region: ignored.
        pred_segments = [{"id": s["id"], "category_id": s["category_id"]} for s in segments]
        ev.process(pan, segments, pan, pred_segments)
    res = ev.evaluate()
    for key in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"):
        assert res[key] == pytest.approx(1.0), key
    assert all(c["fp"] == 0 and c["fn"] == 0 for c in res["per_class"].values())


def test_hand_worked_crowd_and_void():
    car, person = LID["car"], LID["person"]
    gt_pan = np.array([[1, 1, 26, 26], [1, 1, 26, 26], [1, 1, 0, 0], [1, 1, 0, 0]])
    gt_segments = [{"id": 1, "category_id": car, "iscrowd": 0}, {"id": 26, "category_id": car, "iscrowd": 1}]
    pred_pan = np.array([[7, 5, 6, 6], [5, 5, 8, 8], [5, 5, 7, 7], [5, 5, 7, 7]])
    pred_segments = [
        {"id": 5, "category_id": car},  # 7 of gt 1's 8 pixels: IoU 7/8, a TP
        {"id": 6, "category_id": car},  # on the car crowd region: ignored
        {"id": 8, "category_id": person},  # on the car crowd region, not a person crowd: FP
        {"id": 7, "category_id": person},  # 4 of 5 pixels on VOID: ignored
    ]
    ev = PanopticEvaluator()
    ev.process(gt_pan, gt_segments, pred_pan, pred_segments)
    res = ev.evaluate()
    assert res["per_class"]["car"] == {"PQ": 0.875, "SQ": 0.875, "RQ": 1.0, "tp": 1, "fp": 0, "fn": 0}
    assert res["per_class"]["person"] == {"PQ": 0.0, "SQ": 0.0, "RQ": 0.0, "tp": 0, "fp": 1, "fn": 0}
    assert res["per_class"]["road"]["PQ"] is None
    assert (res["PQ"], res["SQ"], res["RQ"], res["n"]) == (0.4375, 0.4375, 0.5, 2)
    assert (res["n_th"], res["n_st"], res["PQ_st"]) == (2, 0, None)


def test_half_thresholds_are_strict():
    car, person = LID["car"], LID["person"]
    gt_pan = np.array([[1, 1, 1, 1], [0, 0, 0, 0]])
    pred_pan = np.array([[5, 5, 6, 0], [6, 0, 0, 0]])
    pred_segments = [{"id": 5, "category_id": car}, {"id": 6, "category_id": person}]
    ev = PanopticEvaluator()
    ev.process(gt_pan, [{"id": 1, "category_id": car, "iscrowd": 0}], pred_pan, pred_segments)
    res = ev.evaluate()["per_class"]
    # IoU exactly 0.5 is no match; a prediction exactly half on VOID is still a false positive.
    assert (res["car"]["tp"], res["car"]["fp"], res["car"]["fn"]) == (0, 1, 1)
    assert (res["person"]["tp"], res["person"]["fp"], res["person"]["fn"]) == (0, 1, 0)


def test_rgb_id_round_trip():
    from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import rgb2id

    rng = np.random.default_rng(0)
    ids = rng.integers(0, MAX_SEGMENT_ID + 1, (16, 32))
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 32, 3)
    np.testing.assert_array_equal(rgb_to_id(rgb), ids)
    np.testing.assert_array_equal(rgb_to_id(rgb), rgb2id(rgb))
    with pytest.raises(ValueError, match=r"0\.\.16777215"):
        id_to_rgb(np.array([[MAX_SEGMENT_ID + 1]]))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        rgb_to_id(np.zeros((4, 4), np.uint8))


def _small_prediction(tmp_path: Path, segments=None, pan=None, file_name="a_pred.png") -> Path:
    pan = np.array([[0, 5, 5], [9, 9, 0]]) if pan is None else pan
    segments = (
        [{"id": 5, "category_id": LID["car"]}, {"id": 9, "category_id": LID["road"]}] if segments is None else segments
    )
    Image.fromarray(id_to_rgb(pan)).save(tmp_path / "a_pred.png")
    ann = {"image_id": "a", "file_name": file_name, "segments_info": segments}
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": [ann]}))
    return tmp_path / "pred.json"


def test_loader_reads_valid_prediction(tmp_path):
    loaded = load_panoptic_prediction(_small_prediction(tmp_path), tmp_path)
    assert list(loaded) == ["a"] and len(loaded) == 1 and "a" in loaded
    pan, segments = loaded["a"]
    np.testing.assert_array_equal(pan, [[0, 5, 5], [9, 9, 0]])
    assert pan.dtype == np.int32 and [s["id"] for s in segments] == [5, 9]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pan": np.array([[0, 5, 5], [9, 7, 0]])}, r"a_pred\.png.*\[7\] are in the image but not in the segment list"),
        ({"pan": np.array([[0, 5, 5], [5, 5, 0]])}, r"a_pred\.png.*\[9\] have no pixels"),
    ],
)
def test_loader_rejects_png_json_mismatch(tmp_path, kwargs, message):
    loaded = load_panoptic_prediction(_small_prediction(tmp_path, **kwargs), tmp_path)
    with pytest.raises(ValueError, match=message):
        loaded["a"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"segments": [{"id": 5, "category_id": LID["car"]}, {"id": 9, "category_id": 3}]}, "unknown category_id 3"),
        ({"segments": [{"id": 5, "category_id": LID["car"]}, {"id": 5, "category_id": LID["road"]}]}, "duplicate"),
        ({"segments": [{"id": 0, "category_id": LID["car"]}]}, "0 is VOID"),
        ({"segments": [{"id": 5}]}, "lacks field 'category_id'"),
        ({"file_name": "missing.png"}, "missing PNG file .*missing.png"),
    ],
)
def test_loader_rejects_bad_json(tmp_path, kwargs, message):
    json_path = _small_prediction(tmp_path, **kwargs)
    with pytest.raises(ValueError, match=message) as err:
        load_panoptic_prediction(json_path, tmp_path)
    assert str(json_path) in str(err.value)


def test_loader_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.json: cannot read"):
        load_panoptic_prediction(tmp_path / "nope.json", tmp_path)
    (tmp_path / "bad.json").write_text('{"images": []}')
    with pytest.raises(ValueError, match=r"bad\.json: no 'annotations' list"):
        load_panoptic_prediction(tmp_path / "bad.json", tmp_path)
    json_path = _small_prediction(tmp_path)
    data = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({"annotations": data["annotations"] * 2}))
    with pytest.raises(ValueError, match="duplicate image_id"):
        load_panoptic_prediction(json_path, tmp_path)
    json_path = _small_prediction(tmp_path)
    cv2.imwrite(str(tmp_path / "a_pred.png"), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match=r"a_pred\.png: expected an 8-bit RGB"):
        load_panoptic_prediction(json_path, tmp_path)["a"]


@pytest.mark.parametrize(
    ("gt_segments", "pred_pan", "message"),
    [
        ([{"id": 1, "category_id": LID["car"]}], np.ones((2, 2), np.int32), "lacks field 'iscrowd'"),
        ([{"id": 1, "category_id": LID["car"], "iscrowd": 0}], np.ones((2, 3), np.int32), r"\(2, 2\), \(2, 3\)"),
        ([{"id": 1, "category_id": LID["car"], "iscrowd": 0}], np.ones((2, 2)), "integer"),
        ([{"id": 1, "category_id": 9, "iscrowd": 0}], np.ones((2, 2), np.int32), "gt image 0.*unknown category_id 9"),
        ([{"id": 1, "category_id": LID["car"], "iscrowd": 0}], np.full((2, 2), 2), "prediction image 0.*\\[2\\]"),
    ],
)
def test_process_rejects_bad_input(gt_segments, pred_pan, message):
    ev = PanopticEvaluator()
    with pytest.raises(ValueError, match=message):
        ev.process(np.ones((2, 2), np.int32), gt_segments, pred_pan, [{"id": 1, "category_id": LID["car"]}])
    assert all(c["tp"] + c["fp"] + c["fn"] == 0 for c in ev.evaluate()["per_class"].values())


def test_empty_evaluator_and_bad_categories():
    res = PanopticEvaluator().evaluate()
    assert res["PQ"] is None and res["n"] == 0
    with pytest.raises(ValueError, match="unique ids"):
        PanopticEvaluator([{"id": 1, "name": "a", "isthing": 1}, {"id": 1, "name": "b", "isthing": 0}])
    with pytest.raises(ValueError, match="isthing"):
        PanopticEvaluator([{"id": 1, "name": "a"}])
