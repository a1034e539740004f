"""Instance mask AP (seg_perception.evaluation.instance) checked against the official Cityscapes
evaluator (cityscapesscripts evalInstanceLevelSemanticLabeling), a hand-worked case and bad input."""

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from seg_perception.data import layout
from seg_perception.evaluation.instance import (
    InstanceEvaluator,
    InstancePrediction,
    find_prediction_file,
    load_instance_predictions,
)
from seg_perception.labels import LABEL_BY_ID, LABEL_BY_NAME, THING_LABEL_IDS

TOL = 1e-4
H, W = 160, 320
BAND = 24  # bottom rows: road only, no instances, no void; room for clean false positives
ROAD, SKY, BUILDING = (LABEL_BY_NAME[n].id for n in ("road", "sky", "building"))
CAR, PERSON, TRUCK, RIDER = (LABEL_BY_NAME[n].id for n in ("car", "person", "truck", "rider"))
STATIC, CARAVAN = LABEL_BY_NAME["static"].id, LABEL_BY_NAME["caravan"].id
VOID_IDS = [LABEL_BY_NAME[n].id for n in ("unlabeled", "ego vehicle", "static", "dynamic", "ground", "polegroup")]
THING_NAMES = [LABEL_BY_ID[i].name for i in THING_LABEL_IDS]


# ----------------------------------------------------------------------------- official reference


def _ours(gt_files, pred_root) -> dict:
    evaluator = InstanceEvaluator()
    for gt_file in gt_files:
        gt = np.array(Image.open(gt_file))
        txt = find_prediction_file(pred_root, layout.stem_of(gt_file))
        evaluator.process(gt, load_instance_predictions(txt, gt.shape))
    return evaluator.evaluate()


def _compare(ours: dict, ref: dict) -> float:
    """Assert agreement within TOL (our None == official NaN) overall and per class; -> largest |Δ|."""
    pairs = [("AP", ours["AP"], ref["allAp"]), ("AP50", ours["AP50"], ref["allAp50%"])]
    for name in THING_NAMES:
        pairs.append((f"{name} AP", ours["per_class"][name]["AP"], ref["classes"][name]["ap"]))
        pairs.append((f"{name} AP50", ours["per_class"][name]["AP50"], ref["classes"][name]["ap50%"]))
    worst = 0.0
    for what, mine, theirs in pairs:
        theirs = float(theirs)
        if math.isnan(theirs):
            assert mine is None, f"{what}: ours {mine}, official NaN"
            continue
        assert abs(mine - theirs) <= TOL, f"{what}: ours {mine}, official {theirs}"
        worst = max(worst, abs(mine - theirs))
    return worst


# ----------------------------------------------------------------------------- writing a dataset


def _write_case(root, frames: dict) -> tuple[list, object]:
    """frames {stem: (gt (H, W) ids, [(mask, label_id, score), ...])} -> official layout on disk."""
    pred_root = root / "results"
    gt_files = []
    for n, (stem, (gt, preds)) in enumerate(frames.items()):
        gt_file = layout.gt_path(root, "val", stem, "instanceIds")
        gt_file.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(gt_file), gt.astype(np.uint16))
        gt_files.append(gt_file)
        txt_dir = pred_root / layout.city_of(stem)
        (txt_dir / "masks").mkdir(parents=True, exist_ok=True)
        lines = []
        for i, (mask, label_id, score) in enumerate(preds):
            rel = f"masks/{stem}_{i}.png"
            on = 255 if (i + n) % 2 else 1  # any non-zero value marks the instance
            cv2.imwrite(str(txt_dir / rel), mask.astype(np.uint8) * on)
            lines.append(f"{rel} {label_id} {score}\n")
        (txt_dir / f"{stem}_pred.txt").write_text("".join(lines))
    return gt_files, pred_root


def _box(y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _random_gt(rng) -> np.ndarray:
    """Sky/building/road scene with void patches, caravans, thing instances (some tiny, two of
    exactly 100 and 99 px) and crowds."""
    gt = np.full((H, W), SKY, np.int32)
    gt[H // 4 :] = BUILDING
    gt[H // 2 :] = ROAD
    top = H - BAND
    for _ in range(3):
        y, x = rng.integers(0, top - 20), rng.integers(0, W - 30)
        gt[y : y + rng.integers(8, 20), x : x + rng.integers(10, 30)] = rng.choice(VOID_IDS)
    y, x = rng.integers(0, top - 12), rng.integers(0, W - 20)
    gt[y : y + 12, x : x + 20] = CARAVAN  # caravan crowd: void
    y, x = rng.integers(0, top - 15), rng.integers(0, W - 25)
    gt[y : y + 15, x : x + 25] = CARAVAN * 1000  # caravan instance: not void for the official script
    classes = rng.choice(THING_LABEL_IDS[:5], size=3, replace=False)  # train, motorcycle, bicycle: no gt
    next_k = dict.fromkeys(THING_LABEL_IDS, 0)
    for _ in range(rng.integers(8, 13)):
        label = int(rng.choice(classes))
        tiny = rng.random() < 0.2
        h, w = (rng.integers(3, 9), rng.integers(3, 9)) if tiny else (rng.integers(12, 45), rng.integers(12, 60))
        y, x = rng.integers(0, top - h), rng.integers(0, W - w)
        value = label * 1000 + next_k[label]
        next_k[label] += 1
        if rng.random() < 0.5:
            gt[y : y + h, x : x + w] = value
        else:
            region = np.zeros((H, W), np.uint8)
            cv2.ellipse(region, (int(x + w // 2), int(y + h // 2)), (int(w // 2), int(h // 2)), 0, 0, 360, 1, -1)
            gt[region.astype(bool)] = value
    for h, w in ((10, 10), (9, 11)):  # just counted, just too small
        y, x = rng.integers(0, top - h), rng.integers(0, W - w)
        label = int(rng.choice(classes))
        gt[y : y + h, x : x + w] = label * 1000 + next_k[label]
        next_k[label] += 1
    for size in (rng.integers(14, 30), 7):  # a crowd, and a crowd below MIN_REGION_SIZE
        y, x = rng.integers(0, top - size), rng.integers(0, W - size)
        gt[y : y + size, x : x + size] = int(rng.choice(classes))
    return gt


def _random_predictions(rng, gt) -> list:
    """Predictions derived from gt: shifted/eroded/dilated, wrong class, duplicates, misses, false
    positives, on void, on crowds, tiny, one empty; scores on a 0.01 grid so that some tie."""
    kernel = np.ones((3, 3), np.uint8)
    preds = []

    def score():
        return round(float(rng.uniform(0.05, 1.0)), 2)

    for value in np.unique(gt):
        label = int(value // 1000) if value >= 1000 else int(value)
        if label not in THING_LABEL_IDS:
            continue
        region = gt == value
        if value < 1000:  # crowd: same class (ignored if it covers the crowd) or another class
            other = int(rng.choice(THING_LABEL_IDS))
            preds.append(
                (np.roll(region, int(rng.integers(-3, 4)), axis=1), label if rng.random() < 0.7 else other, score())
            )
            continue
        u8 = region.astype(np.uint8)
        kind = rng.choice(["miss", "perfect", "shift", "erode", "dilate", "wrong", "duplicate"])
        shifted = np.roll(region, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
        eroded = cv2.erode(u8, kernel, iterations=int(rng.integers(1, 4))).astype(bool)
        dilated = cv2.dilate(u8, kernel, iterations=int(rng.integers(1, 4))).astype(bool)
        masks = {
            "miss": [],
            "perfect": [region],
            "shift": [shifted],
            "erode": [eroded],
            "dilate": [dilated],
            "wrong": [region],
            "duplicate": [shifted, dilated, region],
        }[kind]
        for mask in masks:
            preds.append((mask, int(rng.choice(THING_LABEL_IDS)) if kind == "wrong" else label, score()))
    ys, xs = np.nonzero(np.isin(gt, [*VOID_IDS, CARAVAN, CARAVAN * 1000]))
    for i in range(5):  # on void or a caravan: fully inside or straddling a border
        y, x = int(ys[i * len(ys) // 5]), int(xs[i * len(xs) // 5])
        preds.append((_box(y, y + 6 + 3 * i, x, x + 8 + 5 * i), int(rng.choice(THING_LABEL_IDS)), score()))
    for _ in range(3):  # tiny
        y, x = rng.integers(0, H - 3), rng.integers(0, W - 3)
        preds.append((_box(y, y + 3, x, x + 3), int(rng.choice(THING_LABEL_IDS)), score()))
    for _ in range(2):  # anywhere
        y, x = rng.integers(0, H - BAND - 30), rng.integers(0, W - 40)
        preds.append((_box(y, y + 30, x, x + 40), int(rng.choice(THING_LABEL_IDS)), score()))
    # one clean false positive per predicted class: every class with predictions has a scored one,
    # otherwise the official script crashes (see test_all_predictions_ignored)
    for n, label in enumerate(sorted({p[1] for p in preds})):
        preds.append((_box(H - BAND + 4, H - 4, 4 + 38 * n, 36 + 38 * n), label, score()))
    preds.append((np.zeros((H, W), bool), CAR, 0.5))  # empty: skipped by both
    order = rng.permutation(len(preds))
    return [preds[i] for i in order]


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", range(6))
def test_matches_official_on_perturbed_predictions(tmp_path, official_instance_averages, seed):
    rng = np.random.default_rng(seed)
    frames = {}
    for i, city in enumerate(("aachen", "bochum", "bremen")):
        gt = _random_gt(rng)
        frames[layout.frame_stem(city, seed, i)] = (gt, _random_predictions(rng, gt))
    gt_files, pred_root = _write_case(tmp_path, frames)
    ours = _ours(gt_files, pred_root)
    worst = _compare(ours, official_instance_averages(gt_files, pred_root))
    print(f"seed {seed}: AP {ours['AP']:.4f} AP50 {ours['AP50']:.4f} max |delta| {worst:.2e}")
    # a non-trivial case: AP strictly between 0 and 1, and the classes without gt have no AP (None)
    assert 0.05 < ours["AP"] < 0.95
    assert all(ours["per_class"][n]["AP"] is None for n in ("train", "motorcycle", "bicycle"))


def test_perfect_predictions(tmp_path, official_instance_averages):
    rng = np.random.default_rng(100)
    frames = {}
    for i in range(2):
        gt = _random_gt(rng)
        preds = [(gt == v, int(v // 1000), round(float(rng.random()), 3)) for v in np.unique(gt) if v >= 1000]
        frames[layout.frame_stem("hamburg", 1, i)] = (gt, [p for p in preds if p[1] in THING_LABEL_IDS])
    gt_files, pred_root = _write_case(tmp_path, frames)
    ours = _ours(gt_files, pred_root)
    _compare(ours, official_instance_averages(gt_files, pred_root))
    present = {
        LABEL_BY_ID[int(v // 1000)].name
        for gt, _ in frames.values()
        for v, n in zip(*np.unique(gt, return_counts=True), strict=True)
        if v >= 1000 and n >= 100
    }
    assert present
    for name in THING_NAMES:
        assert ours["per_class"][name]["AP"] == (1.0 if name in present else None)
    assert ours["AP"] == ours["AP50"] == 1.0


def _hand_case():
    """Road scene, 100 x 200, with the predictions worked out in test_hand_worked_example."""
    gt = np.full((100, 200), ROAD, np.int32)
    gt[10:30, 10:30] = CAR * 1000  # A: 400 px
    gt[10:30, 50:60] = PERSON * 1000  # B: 200 px
    gt[40:45, 50:55] = PERSON * 1000 + 1  # C: 25 px < 100, not counted
    gt[40:50, 70:80] = PERSON  # person crowd
    gt[60:80, 100:120] = STATIC  # void
    gt[10:30, 150:170] = TRUCK * 1000  # D: 400 px, never predicted
    box = np.zeros_like(gt, bool)

    def mask(*slices):
        m = box.copy()
        for ys, xs in slices:
            m[ys, xs] = True
        return m

    preds = [
        InstancePrediction(mask((slice(10, 30), slice(15, 35))), CAR, 0.9),  # p1: A shifted, IoU 300/500 = 0.6
        InstancePrediction(gt == CAR * 1000, CAR, 0.8),  # p2: exactly A
        InstancePrediction(mask((slice(60, 75), slice(10, 25))), CAR, 0.7),  # p3: on road
        InstancePrediction(mask((slice(10, 40), slice(50, 60))), PERSON, 0.6),  # p4: B + 100 px, IoU 2/3
        InstancePrediction(gt == PERSON * 1000 + 1, PERSON, 0.95),  # p5: exactly C
        InstancePrediction(mask((slice(60, 70), slice(100, 110))), PERSON, 0.5),  # p6: all void
        InstancePrediction(gt == PERSON, PERSON, 0.99),  # p7: exactly the crowd
        InstancePrediction(mask((slice(85, 95), slice(10, 20))), RIDER, 0.4),  # p8: no rider gt
    ]
    return gt, preds


def test_hand_worked_example(tmp_path, official_instance_averages):
    # Overlaps t = 0.50, 0.55, ..., 0.95 (IoU must exceed t). The area is the trapezoid rule over
    # (recall, precision) points per distinct score, starting from (0, 1).
    # car: t = 0.50, 0.55: p1 (IoU 0.6) and p2 both match A; A takes the higher score 0.9 (TP),
    #   p2 becomes FP at 0.8, p3 is FP at 0.7. Ranked T F F: points (1, 1), (1, 1/2), (1, 1/3)
    #   -> area from (0, 1) to (1, 1) = 1.0.
    # car: t >= 0.60: p1 no longer matches, nothing to ignore -> FP at 0.9; p2 TP at 0.8; p3 FP.
    #   Ranked F T F: (0, 0), (1, 1/2), (1, 1/3) -> (0,1)-(0,0): 0, (0,0)-(1,1/2): 1 * 1/4 = 0.25.
    #   car AP = (2 * 1.0 + 8 * 0.25) / 10 = 0.4, AP50 = 1.0.
    # person: p5 matches the small gt C (IoU 1) and p7 the crowd: both ignored at every t; p6 lies
    #   on void entirely (ignored fraction 1 > t): ignored. Only p4 is scored: IoU with B is 2/3,
    #   a TP for t <= 0.65 (AP 1.0, 4 overlaps) and an FP for t >= 0.70 with B missed (AP 0, 6).
    #   person AP = 4 / 10 = 0.4, AP50 = 1.0.
    # truck: gt D, no prediction -> 0. rider: predictions but no gt -> NaN, like the other 5.
    # mean over classes with gt: AP = (0.4 + 0.4 + 0) / 3, AP50 = (1 + 1 + 0) / 3.
    gt, preds = _hand_case()
    evaluator = InstanceEvaluator()
    evaluator.process(gt, preds)
    result = evaluator.evaluate()
    assert result["per_class"]["car"] == pytest.approx({"AP": 0.4, "AP50": 1.0})
    assert result["per_class"]["person"] == pytest.approx({"AP": 0.4, "AP50": 1.0})
    assert result["per_class"]["truck"] == {"AP": 0.0, "AP50": 0.0}
    for name in set(THING_NAMES) - {"car", "person", "truck"}:
        assert result["per_class"][name] == {"AP": None, "AP50": None}
    assert result["AP"] == pytest.approx(0.8 / 3)
    assert result["AP50"] == pytest.approx(2 / 3)

    stem = layout.frame_stem("ulm", 0, 1)
    gt_files, pred_root = _write_case(tmp_path, {stem: (gt, [(p.mask, p.label_id, p.score) for p in preds])})
    _compare(result, official_instance_averages(gt_files, pred_root))


def test_boundaries(tmp_path, official_instance_averages):
    # car gts: A (400 px), B (exactly 100 px: counted), C (99 px: not counted); a caravan
    # instance (not void: only raw values of void labels are) and a static (void) patch.
    gt = np.full((H, W), ROAD, np.int32)
    gt[10:30, 10:30] = CAR * 1000
    gt[50:60, 10:20] = CAR * 1000 + 1
    gt[50:59, 30:41] = CAR * 1000 + 2
    gt[70:90, 10:30] = CARAVAN * 1000
    gt[70:90, 50:70] = STATIC
    preds = [
        (gt == CARAVAN * 1000, CAR, 0.95),  # q4: on the caravan: FP at every t
        (_box(10, 20, 10, 30), CAR, 0.9),  # q1: half of A, IoU exactly 0.5: not > 0.5, FP at every t
        (_box(70, 80, 45, 55), CAR, 0.85),  # q5: 50 % on void: not > t, FP at every t
        (_box(80, 90, 47, 57), CAR, 0.83),  # q6: 70 % on void: ignored for t <= 0.65, FP for t >= 0.70
        (gt == CAR * 1000 + 1, CAR, 0.8),  # q2: B: TP at every t
        (gt == CAR * 1000 + 2, CAR, 0.7),  # q3: C: ignored
    ]
    # 2 counted gt (A, B). t <= 0.65: F F F T: points (0, 0) x3, (1/2, 1/4) -> 1/2 * 1/4 / 2 = 1/16.
    # t >= 0.70: F F F F T: (0, 0) x4, (1/2, 1/5) -> 1/2 * 1/5 / 2 = 1/20. AP = (4/16 + 6/20) / 10.
    evaluator = InstanceEvaluator()
    evaluator.process(gt, [InstancePrediction(*p) for p in preds])
    result = evaluator.evaluate()
    assert result["per_class"]["car"] == pytest.approx({"AP": 0.055, "AP50": 1 / 16})
    assert (result["AP"], result["AP50"]) == (result["per_class"]["car"]["AP"], 1 / 16)
    gt_files, pred_root = _write_case(tmp_path, {"ulm_000000_000004": (gt, preds)})
    _compare(result, official_instance_averages(gt_files, pred_root))


def test_streaming_reset_and_prediction_order():
    gt, preds = _hand_case()
    evaluator = InstanceEvaluator()
    evaluator.process(gt, [preds[0]])
    evaluator.reset()
    evaluator.process(gt, preds[::-1])
    assert evaluator.evaluate()["AP"] == pytest.approx(0.8 / 3)
    evaluator.process(gt, preds)  # the same image twice: same precision/recall curve
    assert evaluator.evaluate()["AP"] == pytest.approx(0.8 / 3)


def test_all_predictions_ignored(tmp_path, official_instance_averages):
    """A class with gt whose every prediction is ignored: the official script crashes, we give 0."""
    gt = np.full((H, W), ROAD, np.int32)
    gt[10:40, 10:40] = CAR * 1000
    gt[60:90, 60:90] = STATIC
    evaluator = InstanceEvaluator()
    evaluator.process(gt, [InstancePrediction(_box(60, 80, 60, 80), CAR, 0.9)])
    assert evaluator.evaluate()["per_class"]["car"] == {"AP": 0.0, "AP50": 0.0}
    gt_files, pred_root = _write_case(tmp_path, {"ulm_000000_000002": (gt, [(_box(60, 80, 60, 80), CAR, 0.9)])})
    with pytest.raises(IndexError):
        official_instance_averages(gt_files, pred_root)


# ----------------------------------------------------------------------------- bad input


def _prediction_dir(tmp_path, lines: list[str]):
    """A txt with the given lines next to masks/ok.png and masks/first.png (10 x 20 boxes) -> txt path."""
    (tmp_path / "masks").mkdir(exist_ok=True)
    for name in ("ok", "first"):
        cv2.imwrite(str(tmp_path / "masks" / f"{name}.png"), _box(0, 10, 0, 20).astype(np.uint8) * 255)
    txt = tmp_path / "ulm_000000_000003_pred.txt"
    txt.write_text("".join(line + "\n" for line in lines))
    return txt


def test_reader_loads_valid_file(tmp_path):
    txt = _prediction_dir(tmp_path, ["masks/ok.png 26 0.75", "", "masks/one.png 24.0 1e-3\r"])
    cv2.imwrite(str(tmp_path / "masks" / "one.png"), _box(5, 10, 0, 4).astype(np.uint8))  # values 0/1
    car, person = load_instance_predictions(txt, (H, W))
    assert (car.label_id, car.score, car.mask.sum(), car.mask.dtype) == (CAR, 0.75, 200, bool)
    assert (person.label_id, person.score, person.mask.sum()) == (PERSON, 1e-3, 20)
    with pytest.raises(ValueError, match=r"nothing\.txt: cannot read prediction file"):
        load_instance_predictions(tmp_path / "nothing.txt")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("masks/missing.png 26 0.5", "cannot read mask"),
        ("masks/corrupt.png 26 0.5", "cannot read mask"),
        ("masks/truncated.png 26 0.5", "cannot read mask"),
        ("masks/small.png 26 0.5", r"has shape \(10, 20\), the gt has \(160, 320\)"),
        ("masks/ok.png 99 0.5", "unknown label id 99"),
        ("masks/ok.png 7 0.5", r"label id 7 \(road\) is not an evaluated thing class"),
        ("masks/ok.png 29 0.5", r"label id 29 \(caravan\) is not an evaluated thing class"),
        ("masks/ok.png 26.5 0.5", "label id '26.5' is not an integer"),
        ("masks/ok.png car 0.5", "label id 'car' is not a number"),
        ("masks/ok.png 26 high", "confidence 'high' is not a number"),
        ("masks/ok.png 26 nan", "confidence 'nan' is not a finite number"),
        ("masks/ok.png 26", "expected 'relative/mask.png labelId confidence'"),
        ("masks/ok.png 26 0.5 extra", "expected 'relative/mask.png labelId confidence'"),
        ("/abs/mask.png 26 0.5", "must be relative"),
        ("masks/../masks/first.png 24 0.4", "listed twice"),
    ],
)
def test_reader_rejects_bad_input(tmp_path, line, problem):
    txt = _prediction_dir(tmp_path, ["masks/first.png 26 0.9", line])
    (tmp_path / "masks" / "corrupt.png").write_bytes(b"not a png at all")
    good = (tmp_path / "masks" / "ok.png").read_bytes()
    (tmp_path / "masks" / "truncated.png").write_bytes(good[: len(good) // 2])
    cv2.imwrite(str(tmp_path / "masks" / "small.png"), np.full((10, 20), 255, np.uint8))
    with pytest.raises(ValueError, match=rf"ulm_000000_000003_pred\.txt:2: .*{problem}"):
        load_instance_predictions(txt, (H, W))


def test_find_prediction_file(tmp_path):
    stem = "ulm_000000_000003"
    (tmp_path / "ulm" / "deep").mkdir(parents=True)
    (tmp_path / "ulm" / "deep" / f"{stem}_leftImg8bit.txt").write_text("")
    (tmp_path / f"x{stem}.txt").write_text("")  # the stem must start the name
    (tmp_path / f"{stem}.json").write_text("")
    assert find_prediction_file(tmp_path, stem) == tmp_path / "ulm" / "deep" / f"{stem}_leftImg8bit.txt"
    with pytest.raises(ValueError, match="no prediction files ulm_000000_000004"):
        find_prediction_file(tmp_path, "ulm_000000_000004")
    (tmp_path / f"{stem}_pred.txt").write_text("")
    with pytest.raises(ValueError, match=f"2 prediction files {stem}"):
        find_prediction_file(tmp_path, stem)
    with pytest.raises(ValueError, match="does not exist"):
        find_prediction_file(tmp_path / "nowhere", stem)


@pytest.mark.parametrize(
    ("gt", "pred", "problem"),
    [
        (np.full((H, W), ROAD), InstancePrediction(_box(0, 5, 0, 5)[:10], CAR, 0.5), "mask shape"),
        (np.full((H, W), ROAD), InstancePrediction(_box(0, 5, 0, 5), ROAD, 0.5), "not an evaluated thing"),
        (np.full((H, W), ROAD), InstancePrediction(_box(0, 5, 0, 5), CAR, math.nan), "not a finite number"),
        (np.full((H, W), ROAD), InstancePrediction(_box(0, 5, 0, 5), CAR, "high"), "prediction 0: score 'high'"),
        (np.full((H, W), 40), InstancePrediction(_box(0, 5, 0, 5), CAR, 0.5), r"unknown label ids: \[40\]"),
        (np.full((H, W), 35000), InstancePrediction(_box(0, 5, 0, 5), CAR, 0.5), "outside"),
        (np.full((H, W), 7.0), InstancePrediction(_box(0, 5, 0, 5), CAR, 0.5), "integer array"),
    ],
)
def test_process_rejects_bad_input(gt, pred, problem):
    with pytest.raises(ValueError, match=problem):
        InstanceEvaluator().process(gt, [pred])
