"""Tests of the synthetic Cityscapes-like generator and the seg-synth CLI.

Expected values come from the Cityscapes format itself (official json2labelImg/json2instanceImg, the
label table, camera.json geometry), not from the generator's own code.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.preparation.json2instanceImg import json2instanceImg
from cityscapesscripts.preparation.json2labelImg import json2labelImg
from PIL import Image

from seg_perception.data.layout import camera_path, frame_stem, gt_path, image_path
from seg_perception.data.synthetic import (
    CLASS_COUNT_BINS,
    DEFAULT_CITY,
    THING_CLASSES,
    SyntheticScene,
    generate_split,
    render_frame,
)
from seg_perception.labels import ID_COLORS, LABEL_BY_ID, LABEL_BY_NAME
from seg_perception.tools.synth import main

HEIGHT, WIDTH, SEED = 128, 256, 7
SEQUENCES, FRAMES = 2, 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate_split(root, "val", SEQUENCES, FRAMES, HEIGHT, WIDTH, SEED)
    return root, summary


@pytest.fixture(scope="module")
def content_frames():
    """First frame of six sequences: enough for every thing class to show up."""
    return [SyntheticScene(HEIGHT, WIDTH, SEED, "train", s).render(0) for s in range(6)]


def _read(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


# --- files and formats ------------------------------------------------------------------------------


def test_writes_every_file_of_the_cityscapes_layout(dataset):
    root, summary = dataset
    expected = [frame_stem(DEFAULT_CITY, s, k) for s in range(SEQUENCES) for k in range(FRAMES)]
    assert summary.stems == expected
    assert summary.frames == SEQUENCES * FRAMES
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    paths = set()
    for stem in expected:
        paths.add(image_path(root, "val", stem))
        kinds = ("labelIds", "instanceIds", "color", "polygons", "drivableGrid", "objects")  # + bird's-eye truth
        paths.update(gt_path(root, "val", stem, kind) for kind in kinds)
        paths.add(camera_path(root, "val", stem))
    assert written == {p.relative_to(root).as_posix() for p in paths}
    assert f"leftImg8bit/val/{DEFAULT_CITY}/{DEFAULT_CITY}_000001_000002_leftImg8bit.png" in written
    assert f"gtFine/val/{DEFAULT_CITY}/{DEFAULT_CITY}_000000_000000_gtFine_polygons.json" in written


def test_file_formats(dataset):
    root, summary = dataset
    for stem in summary.stems:
        image = Image.open(image_path(root, "val", stem))
        assert (image.mode, image.size) == ("RGB", (WIDTH, HEIGHT))
        labels = Image.open(gt_path(root, "val", stem, "labelIds"))
        assert (labels.mode, labels.size) == ("L", (WIDTH, HEIGHT))
        instances = cv2.imread(str(gt_path(root, "val", stem, "instanceIds")), cv2.IMREAD_UNCHANGED)
        assert instances.dtype == np.uint16 and instances.shape == (HEIGHT, WIDTH)  # 16-bit single-channel PNG
        color = Image.open(gt_path(root, "val", stem, "color"))
        assert (color.mode, color.size) == ("RGBA", (WIDTH, HEIGHT))

        polygons = json.loads(gt_path(root, "val", stem, "polygons").read_text())
        assert (polygons["imgHeight"], polygons["imgWidth"]) == (HEIGHT, WIDTH)
        assert polygons["objects"], "no objects"
        for obj in polygons["objects"]:
            assert set(obj) == {"label", "polygon"}
            assert obj["label"] in LABEL_BY_NAME
            points = np.array(obj["polygon"])
            assert points.ndim == 2 and points.shape[1] == 2 and len(points) >= 3
            assert points.min() >= 0 and (points[:, 0] < WIDTH).all() and (points[:, 1] < HEIGHT).all()

        camera = json.loads(camera_path(root, "val", stem).read_text())
        assert set(camera) == {"extrinsic", "intrinsic"}
        assert set(camera["extrinsic"]) == {"baseline", "pitch", "roll", "x", "y", "yaw", "z"}
        assert set(camera["intrinsic"]) == {"fx", "fy", "u0", "v0"}
        intrinsic = camera["intrinsic"]
        assert intrinsic["fx"] == intrinsic["fy"] > 0
        assert 0 < intrinsic["u0"] < WIDTH and 0 < intrinsic["v0"] < HEIGHT
        assert 1.0 < camera["extrinsic"]["z"] < 2.0  # a camera behind a car's windscreen


def test_label_instance_and_colour_images_agree(dataset):
    root, summary = dataset
    table_ids = [lb_id for lb_id in LABEL_BY_ID if lb_id >= 0]
    for stem in summary.stems:
        labels = _read(gt_path(root, "val", stem, "labelIds"))
        instances = _read(gt_path(root, "val", stem, "instanceIds")).astype(np.int64)
        color = _read(gt_path(root, "val", stem, "color"))
        assert np.isin(labels, table_ids).all()
        things = instances >= 1000
        assert (instances[things] // 1000 == labels[things]).all()
        assert (instances[~things] == labels[~things]).all()
        thing_ids = [LABEL_BY_NAME[name].id for name in THING_CLASSES]
        assert things[np.isin(labels, thing_ids)].all(), "a thing pixel without an instance id"
        assert (color[..., :3] == ID_COLORS[labels]).all()
        assert (color[..., 3] == 255).all()


def test_official_scripts_rebuild_label_and_instance_images(dataset, tmp_path):
    root, summary = dataset
    for stem in summary.stems:
        polygons = str(gt_path(root, "val", stem, "polygons"))
        json2labelImg(polygons, str(tmp_path / "labels.png"))
        json2instanceImg(polygons, str(tmp_path / "instances.tif"))  # Pillow cannot write mode "I" as PNG
        json2labelImg(polygons, str(tmp_path / "color.png"), "color")
        ours = _read(gt_path(root, "val", stem, "labelIds"))
        official = _read(tmp_path / "labels.png")
        assert (official == ours).mean() >= 0.985
        # Pillow and OpenCV rasterise slanted edges differently; every difference is an edge pixel.
        near = np.zeros_like(ours, dtype=bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= np.roll(ours, (dy, dx), axis=(0, 1)) == official
        assert near.mean() >= 0.999
        ours_instances = _read(gt_path(root, "val", stem, "instanceIds")).astype(np.int64)
        assert (_read(tmp_path / "instances.tif") == ours_instances).mean() >= 0.985
        assert (_read(tmp_path / "color.png") == _read(gt_path(root, "val", stem, "color"))).all(axis=2).mean() >= 0.985


def test_in_memory_frame_equals_written_files(dataset):
    root, _ = dataset
    frame = render_frame(HEIGHT, WIDTH, SEED, "val", sequence=1, frame=2)
    stem = frame_stem(DEFAULT_CITY, 1, 2)
    assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
    assert frame.label_ids.dtype == np.uint8 and frame.instance_ids.dtype == np.uint16
    assert (frame.image == _read(image_path(root, "val", stem))).all()
    assert (frame.label_ids == _read(gt_path(root, "val", stem, "labelIds"))).all()
    assert (frame.instance_ids == _read(gt_path(root, "val", stem, "instanceIds"))).all()
    assert frame.objects == json.loads(gt_path(root, "val", stem, "polygons").read_text())["objects"]


def test_summary_counts_every_pixel(dataset):
    _, summary = dataset
    assert summary.class_pixels.shape == (CLASS_COUNT_BINS,)
    assert summary.class_pixels.sum() == SEQUENCES * FRAMES * HEIGHT * WIDTH
    fractions = summary.class_fractions()
    assert fractions["road"] > 0.1 and fractions["sky"] > 0.0
    assert math.isclose(sum(fractions.values()), 1.0)
    assert summary.frames_per_second > 0


# --- determinism --------------------------------------------------------------------------------------


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_files_for_any_worker_count(tmp_path):
    first = generate_split(tmp_path / "a", "train", 2, 2, 64, 128, seed=3)
    generate_split(tmp_path / "b", "train", 2, 2, 64, 128, seed=3, workers=2)
    files = _file_bytes(tmp_path / "a")
    assert len(files) == 8 * first.frames  # 6 Cityscapes files + the bird's-eye truth (2)
    assert files == _file_bytes(tmp_path / "b")


def test_seed_and_split_change_the_scene():
    base = render_frame(64, 128, seed=3, split="train")
    again = render_frame(64, 128, seed=3, split="train")
    assert (base.image == again.image).all() and (base.instance_ids == again.instance_ids).all()
    assert base.objects == again.objects
    for other in (render_frame(64, 128, seed=4, split="train"), render_frame(64, 128, seed=3, split="val")):
        assert (other.image != base.image).mean() > 0.5
        assert (other.label_ids != base.label_ids).mean() > 0.05


def test_frames_can_be_rendered_in_any_order():
    scene = SyntheticScene(64, 128, seed=5, split="test", sequence=2)
    late = scene.render(4)
    scene.render(0)
    assert (SyntheticScene(64, 128, seed=5, split="test", sequence=2).render(4).image == late.image).all()


# --- scene content ------------------------------------------------------------------------------------


def test_road_below_and_sky_above_the_horizon_of_camera_json(content_frames):
    road, sky = LABEL_BY_NAME["road"].id, LABEL_BY_NAME["sky"].id
    for frame in content_frames:
        extrinsic, intrinsic = frame.camera["extrinsic"], frame.camera["intrinsic"]
        assert extrinsic["roll"] == 0.0
        # Cityscapes: pitch > 0 tilts the camera down, so the horizon lies fy * tan(pitch) above v0.
        horizon = intrinsic["v0"] - intrinsic["fy"] * math.tan(extrinsic["pitch"])
        rows = np.arange(HEIGHT)[:, None].repeat(WIDTH, axis=1)
        assert rows[frame.label_ids == road].min() > horizon - 1
        assert rows[frame.label_ids == sky].max() < horizon + 1
        lower, upper = frame.label_ids[HEIGHT // 2 :], frame.label_ids[: HEIGHT // 8]
        assert (lower == road).mean() > 0.15, "little road in the lower half"
        assert (upper == sky).any(), "no sky at the top"


def test_every_thing_class_and_the_void_parts_appear(content_frames):
    seen = set()
    for frame in content_frames:
        seen.update(LABEL_BY_ID[int(i)].name for i in np.unique(frame.label_ids))
    assert set(THING_CLASSES) <= seen
    assert {"sidewalk", "building", "vegetation", "pole", "traffic sign", "traffic light"} <= seen
    assert {"ego vehicle", "rectification border"} <= seen


def test_image_does_not_encode_the_label(content_frames):
    for frame in content_frames:
        assert (frame.image == ID_COLORS[frame.label_ids]).all(axis=2).mean() < 0.01
        road = frame.label_ids == LABEL_BY_NAME["road"].id
        assert frame.image[road].astype(float).std(axis=0).mean() > 3.0  # textured, noisy, lit


def _track_boxes(frame) -> dict[int, tuple[str, np.ndarray]]:
    """track id -> (label, polygon bounding-box centre) for instances not clipped by the image border."""
    counts: dict[str, int] = {}
    boxes = {}
    for obj in frame.objects:
        label = LABEL_BY_NAME[obj["label"]]
        if not label.has_instances:
            continue
        index = counts.get(obj["label"], 0)
        counts[obj["label"]] = index + 1
        track = frame.instance_tracks[label.id * 1000 + index]  # the official json2instanceImg numbering
        points = np.array(obj["polygon"], float)
        lo, hi = points.min(axis=0), points.max(axis=0)
        if lo.min() > 0 and hi[0] < frame.label_ids.shape[1] - 1 and hi[1] < frame.label_ids.shape[0] - 1:
            boxes[track] = (obj["label"], (lo + hi) / 2)
    return boxes


def test_instances_keep_track_and_class_and_move_smoothly():
    scene = SyntheticScene(256, 512, seed=11, split="val", sequence=1)
    assert scene.ego_speed > 0  # a sequence where the camera drives
    frames = [_track_boxes(scene.render(k)) for k in range(0, 12, 2)]
    common = set.intersection(*(set(f) for f in frames))
    assert len(common) >= 5
    moving = 0
    for track in common:
        labels = {f[track][0] for f in frames}
        assert len(labels) == 1, f"track {track} changed class: {labels}"
        centres = np.array([f[track][1] for f in frames])
        steps = np.diff(centres, axis=0)
        lengths = np.linalg.norm(steps, axis=1)
        # Constant velocities seen in perspective: a step may grow as the object comes closer (at most
        # doubling between frames two apart here, plus a pixel of rounding), never jump or turn back.
        for before, after, length in zip(steps[:-1], steps[1:], lengths[:-1], strict=True):
            assert np.linalg.norm(after - before) <= 2.0 + length, f"track {track}: {centres.tolist()}"
            if length > 2.0 and np.linalg.norm(after) > 2.0:
                assert after @ before > 0, f"track {track} turns back: {centres.tolist()}"
        moving += lengths.max() > 2.0
    assert moving >= 3, "nothing moves"


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_writes_split_preview_and_summary(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["--out", str(out), "--split", "test", "--sequences", "1", "--frames-per-sequence", "2"]
    assert main([*args, "--size", "64x128", "--seed", "1", "--city", "test_town", "--preview"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 frames" in printed and "frames/s" in printed and "road" in printed and "ignored" in printed
    assert image_path(out, "test", "test_town_000000_000001").is_file()
    preview = Image.open(out / "preview_test.png")
    assert preview.size == (2 * 128, 2 * 64)  # two frames, image | colour label


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "512x"], "size"),
        (["--size", "8x8"], "size"),
        (["--sequences", "0"], "--sequences"),
        (["--frames-per-sequence", "-2"], "--frames-per-sequence"),
        (["--frames-per-sequence", "100000"], "--frames-per-sequence"),
        (["--split", "training"], "--split"),
        (["--workers", "0"], "--workers"),
        (["--seed", "-1"], "--seed"),
        (["--city", "Bad-City"], "--city"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), *args])
    assert exit_info.value.code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_rejects_an_output_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("not a directory")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(target), "--size", "32x64"])
    assert exit_info.value.code != 0
    assert "not a directory" in capsys.readouterr().err


def test_cli_module_exits_non_zero_on_bad_size():
    result = subprocess.run(
        [sys.executable, "-m", "seg_perception.tools.synth", "--out", "unused", "--size", "512x"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode != 0
    assert "size" in result.stderr
