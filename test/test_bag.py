"""``seg-bag`` and ``seg_perception.data.bags`` without ROS: bags written from a synthetic Cityscapes split (mcap and
sqlite3, rgb8, bgr8, png and jpeg compressed) read back equal to the source files, foreign bags written with the
``rosbags`` Writer read fine, ``info`` counts and rates are right, and unreadable bags fail with one clear error."""

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from seg_perception.data.bags import (
    COMPRESSED_IMAGE,
    IMAGE,
    JPEG_QUALITY,
    STAMP_EPOCH_NS,
    TYPESTORE,
    BagError,
    BagOptions,
    BagWriter,
    read_bag,
    summarize_bag,
)
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.tools import bag as seg_bag

SEG_BAG = str(Path(sys.executable).with_name("seg-bag"))
FPS = 10.0
SEQUENCES, FRAMES_PER_SEQUENCE, HEIGHT, WIDTH = 2, 3, 64, 128
FRAMES = SEQUENCES * FRAMES_PER_SEQUENCE


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """(root, the split's frames as CityscapesDataset loads them: images, gtFine, camera JSON)."""
    root = tmp_path_factory.mktemp("cityscapes")
    generate_split(root, "val", SEQUENCES, FRAMES_PER_SEQUENCE, HEIGHT, WIDTH, seed=4)
    dataset = CityscapesDataset(root, "val")
    return root, [dataset[i] for i in range(len(dataset))]


def _seg_bag(*args) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_BAG, *map(str, args)], capture_output=True, text=True, timeout=60)


def _assert_one_error_line(run: subprocess.CompletedProcess, fragment: str) -> None:
    assert run.returncode == 2, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seg-bag: error: "), run.stderr
    assert fragment in lines[0]


@pytest.mark.parametrize(
    ("storage", "encoding", "compression"),
    [
        ("mcap", "rgb8", None),
        ("sqlite3", "rgb8", None),
        ("mcap", "bgr8", None),
        ("sqlite3", "bgr8", None),
        ("mcap", "rgb8", "png"),
        ("sqlite3", "rgb8", "jpeg"),
    ],
)
def test_cityscapes_bag_reads_back_as_the_source_files(split, tmp_path, storage, encoding, compression):
    root, source = split
    out = tmp_path / "bag"
    args = ["from-cityscapes", str(root), "--split", "val", "--out", str(out), "--fps", str(FPS)]
    args += ["--storage", storage, "--encoding", encoding, "--frame-id", "cam"]
    args += ["--compressed", "--compression-format", compression] if compression else []
    assert seg_bag.main(args) == 0

    contents = read_bag(out)
    assert contents.storage == storage and contents.frame_count == FRAMES
    assert contents.image_topic == "/camera/front/image_raw" + ("/compressed" if compression else "")
    frames = list(contents.frames())
    assert len(frames) == FRAMES
    stamps = np.array([frame.stamp_ns for frame in frames])
    assert stamps[0] == STAMP_EPOCH_NS and (np.diff(stamps) == 10**9 / FPS).all()
    for frame, expected in zip(frames, source, strict=True):
        assert frame.frame_id == "cam"
        assert frame.msgtype == (COMPRESSED_IMAGE if compression else IMAGE)
        if compression == "jpeg":  # what OpenCV's own round trip gives, and close to the source
            _, encoded = cv2.imencode(".jpg", expected.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            np.testing.assert_array_equal(frame.image, cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])
            assert np.abs(frame.image.astype(int) - expected.image).mean() < 6.0
        else:
            np.testing.assert_array_equal(frame.image, expected.image)
        np.testing.assert_array_equal(frame.label_ids, expected.label_ids)
        np.testing.assert_array_equal(frame.instance_ids, expected.instance_ids)
        info = frame.camera_info
        assert (info.width, info.height, info.distortion_model) == (WIDTH, HEIGHT, "plumb_bob")
        np.testing.assert_array_equal(info.d, np.zeros(5))
        np.testing.assert_array_equal(info.k, expected.camera.matrix)
        np.testing.assert_array_equal(info.p, np.hstack([expected.camera.matrix, np.zeros((3, 1))]))
        republished = TYPESTORE.deserialize_cdr(frame.raw, frame.msgtype)
        assert republished.header.frame_id == "cam"
        assert republished.header.stamp.sec * 10**9 + republished.header.stamp.nanosec == frame.stamp_ns


def test_info_reports_counts_rates_duration_and_storage(split, tmp_path, capsys):
    root, _ = split
    out = tmp_path / "bag"
    assert seg_bag.main(["from-cityscapes", str(root), "--out", str(out), "--fps", "20", "--storage", "sqlite3"]) == 0
    capsys.readouterr()
    assert seg_bag.main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["storage"] == "sqlite3" and summary["messages"] == 4 * FRAMES
    assert summary["duration_s"] == pytest.approx((FRAMES - 1) / 20, abs=1e-9)
    assert [topic["name"] for topic in summary["topics"]] == [
        "/camera/front/camera_info",
        "/camera/front/ground_truth/instance_ids",
        "/camera/front/ground_truth/label_ids",
        "/camera/front/image_raw",
    ]
    for topic in summary["topics"]:
        assert topic["count"] == FRAMES and topic["rate_hz"] == pytest.approx(20.0, rel=1e-9)
    run = _seg_bag("info", out)
    assert run.returncode == 0, run.stderr
    assert re.search(r"\n  /camera/front/image_raw +sensor_msgs/msg/Image +6 +20\.000\n", run.stdout), run.stdout


def test_stamps_follow_a_fractional_rate_without_drift(tmp_path):
    with BagWriter(tmp_path / "bag", fps=3.0) as bag:
        stamps = [bag.write(np.zeros((16, 16, 3), np.uint8)) for _ in range(10)]
    assert set(np.diff(stamps).tolist()) <= {333_333_333, 333_333_334}
    assert stamps[-1] - stamps[0] == 3 * 10**9
    assert [frame.stamp_ns for frame in read_bag(tmp_path / "bag").frames()] == stamps
    bare_file = read_bag(next((tmp_path / "bag").glob("*.mcap")))  # a storage file alone, without metadata.yaml
    assert bare_file.storage == "mcap" and [frame.stamp_ns for frame in bare_file.frames()] == stamps


def _write_foreign_bag(path: Path, images: dict[str, list], plugin=StoragePlugin.MCAP) -> None:
    """A bag written with the rosbags Writer directly: a std_msgs/String topic and, per topic, raw Images
    given as (encoding, (H, W[, C]) uint8 pixels), rows padded by 4 bytes; stamps 1 ms apart."""
    types = TYPESTORE.types
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=TYPESTORE)
        writer.write(
            chatter, 1, TYPESTORE.serialize_cdr(types["std_msgs/msg/String"](data="hello"), "std_msgs/msg/String")
        )
        for topic, frames in images.items():
            connection = writer.add_connection(topic, IMAGE, typestore=TYPESTORE)
            for index, (encoding, pixels) in enumerate(frames):
                height, width = pixels.shape[:2]
                rows = pixels.reshape(height, -1)
                padded = np.concatenate([rows, np.full((height, 4), 7, np.uint8)], axis=1)
                stamp = 10**9 + index * 10**6
                header = types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="x"
                )
                msg = types[IMAGE](
                    header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
                    step=padded.shape[1], data=padded.reshape(-1),
                )  # fmt: skip
                writer.write(connection, stamp, TYPESTORE.serialize_cdr(msg, IMAGE))


@pytest.mark.parametrize(
    ("encoding", "to_message"),
    [
        ("bgr8", lambda rgb: rgb[..., ::-1]),
        ("rgba8", lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])),
        ("bgra8", lambda rgb: np.dstack([rgb[..., ::-1], np.zeros(rgb.shape[:2], np.uint8)])),
    ],
)
def test_a_foreign_bag_with_an_unrelated_topic_and_padded_rows_reads_fine(tmp_path, encoding, to_message):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 40, 3), np.uint8) for _ in range(3)]
    _write_foreign_bag(tmp_path / "bag", {"/front/image": [(encoding, to_message(rgb)) for rgb in images]})
    contents = read_bag(tmp_path / "bag")
    assert contents.image_topic == "/front/image" and contents.frame_count == 3
    frames = list(contents.frames())
    assert [frame.stamp_ns for frame in frames] == [10**9, 10**9 + 10**6, 10**9 + 2 * 10**6]
    for frame, rgb in zip(frames, images, strict=True):
        np.testing.assert_array_equal(frame.image, rgb)
        assert frame.camera_info is None and frame.label_ids is None and frame.instance_ids is None


def test_mono8_images_read_as_grey_rgb(tmp_path):
    grey = np.arange(24 * 40, dtype=np.uint8).reshape(24, 40)
    _write_foreign_bag(tmp_path / "bag", {"/front/image": [("mono8", grey)]})
    (frame,) = read_bag(tmp_path / "bag").frames()
    np.testing.assert_array_equal(frame.image, np.dstack([grey] * 3))


def test_several_image_topics_need_a_choice(tmp_path):
    frame = [("rgb8", np.zeros((8, 8, 3), np.uint8))]
    _write_foreign_bag(tmp_path / "bag", {"/left/image": frame, "/right/image": frame})
    with pytest.raises(BagError, match=r"several image topics \['/left/image', '/right/image'\]"):
        read_bag(tmp_path / "bag")
    assert read_bag(tmp_path / "bag", image_topic="/right/image").frame_count == 1
    with pytest.raises(BagError, match="/chatter is not an image topic"):
        read_bag(tmp_path / "bag", image_topic="/chatter")


def test_unsupported_encoding_names_the_encoding(tmp_path):
    _write_foreign_bag(tmp_path / "bag", {"/front/image": [("yuv422", np.zeros((8, 8, 2), np.uint8))]})
    (frame,) = read_bag(tmp_path / "bag").frames()
    with pytest.raises(BagError, match="unsupported encoding 'yuv422'"):
        _ = frame.image


@pytest.fixture
def bad_bags(tmp_path):
    """name -> (path, what the error says) for each kind of unreadable bag."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("not a bag")
    with BagWriter(tmp_path / "truncated", FPS) as bag:
        for _ in range(4):
            bag.write(np.zeros((32, 32, 3), np.uint8))
    mcap = next((tmp_path / "truncated").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    return {
        "missing": (tmp_path / "missing", "no such bag"),
        "folder": (tmp_path / "folder", "not a rosbag2 bag"),
        "truncated": (tmp_path / "truncated", "corrupt or truncated bag"),
        "truncated_file": (mcap, "corrupt or truncated bag"),
    }


@pytest.mark.timeout(120)
def test_unreadable_bags_raise_bag_error_and_exit_2_with_one_line(bad_bags, tmp_path):
    for name, (path, fragment) in bad_bags.items():
        for read in (read_bag, summarize_bag):
            with pytest.raises(BagError, match=fragment) as error:
                read(path)
            assert str(path) in str(error.value), name
        _assert_one_error_line(_seg_bag("info", path), fragment)
    _write_foreign_bag(tmp_path / "no_images", {})
    with pytest.raises(BagError, match=r"no image topic in \['/chatter'\]"):
        read_bag(tmp_path / "no_images")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_corrupted_bytes_give_frames_or_bag_error_never_another_exception(tmp_path, storage):
    with BagWriter(tmp_path / "bag", FPS, BagOptions(storage=storage)) as bag:
        for value in range(4):
            bag.write(np.full((16, 24, 3), value, np.uint8), label_ids=np.zeros((16, 24), np.uint8))
    storage_file = next(p for p in (tmp_path / "bag").iterdir() if p.suffix in (".mcap", ".db3"))
    original = storage_file.read_bytes()
    rng = random.Random(storage)
    for _ in range(40):
        corrupted = bytearray(original)
        for _ in range(rng.choice([1, 8, 64])):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        storage_file.write_bytes(bytes(corrupted))
        try:
            for frame in read_bag(tmp_path / "bag").frames():
                assert frame.image.shape[2] == 3
        except BagError:
            pass


def test_writing_errors_exit_2_with_one_line_and_leave_no_partial_bag(split, tmp_path):
    root, _ = split
    _assert_one_error_line(_seg_bag("from-cityscapes", tmp_path / "nope", "--out", tmp_path / "a", "--fps", 5), "nope")
    (tmp_path / "exists").mkdir()
    _assert_one_error_line(_seg_bag("from-cityscapes", root, "--out", tmp_path / "exists", "--fps", 5), "exists")
    (tmp_path / "empty").mkdir()
    _assert_one_error_line(
        _seg_bag("from-images", tmp_path / "empty", "--out", tmp_path / "b", "--fps", 5), "no images"
    )
    bad_topic = _seg_bag("from-cityscapes", root, "--out", tmp_path / "c", "--fps", 5, "--camera-topic", "camera")
    _assert_one_error_line(bad_topic, "not an absolute ROS topic name")
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "000.png"), np.zeros((16, 16, 3), np.uint8))
    (images / "001.png").write_bytes(b"not a png")
    _assert_one_error_line(_seg_bag("from-images", images, "--out", tmp_path / "d", "--fps", 5), "001.png")
    assert not (tmp_path / "d").exists()


def test_from_images_folder_in_name_order(split, tmp_path):
    _, source = split
    folder = tmp_path / "images"
    folder.mkdir()
    for index, frame in reversed(list(enumerate(source))):
        cv2.imwrite(str(folder / f"frame_{index:03d}.png"), frame.image[..., ::-1])
    assert seg_bag.main(["from-images", str(folder), "--out", str(tmp_path / "bag"), "--fps", "5"]) == 0
    frames = list(read_bag(tmp_path / "bag").frames())
    assert len(frames) == FRAMES
    for frame, expected in zip(frames, source, strict=True):
        np.testing.assert_array_equal(frame.image, expected.image)
        assert frame.label_ids is None and frame.camera_info is None


def test_from_images_video(tmp_path):
    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG .avi here")
    for value in range(7):
        writer.write(np.full((HEIGHT, WIDTH, 3), value * 30, np.uint8))
    writer.release()
    run = _seg_bag("from-images", video, "--out", tmp_path / "bag", "--fps", 30, "--compressed")
    assert run.returncode == 0, run.stderr
    contents = read_bag(tmp_path / "bag")
    assert contents.image_topic == "/camera/front/image_raw/compressed" and contents.frame_count == 7
    frames = list(contents.frames())
    assert [frame.image.shape for frame in frames] == [(HEIGHT, WIDTH, 3)] * 7
    assert np.abs(frames[3].image.astype(int) - 90).mean() < 3


def test_bag_modules_do_not_import_ros():
    code = (
        "import sys; import seg_perception.data.bags, seg_perception.tools.bag; "
        "assert not {'rclpy', 'sensor_msgs'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
