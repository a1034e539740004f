"""seg-replay-bench end to end: a synthetic drive -> seg-bag -> the node (its console script with a params file,
real rclpy on loopback) -> report.json / report.md / plots, whose frame counts add up, whose latencies are
non-negative and whose accuracy equals seg-eval on the predictions it wrote; bags from elsewhere (another writer,
extra topics, bgr8, compressed, no ground truth) replay; unreadable bags end in one error line and exit 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from seg_perception.data.synthetic import generate_split
from seg_perception.evaluation.cityscapes_eval import evaluate_cityscapes
from seg_perception.tools import bag as bag_cli
from seg_perception.tools import replay_bench

REPO = Path(__file__).resolve().parents[1]
SEMANTIC = REPO / "config" / "semantic.yaml"
PANOPTIC = REPO / "config" / "panoptic.yaml"
ERROR = "seg-replay-bench: error: "


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    """A 10-frame synthetic val drive at 256x512 (2 sequences x 5) and its bag at 5 Hz."""
    folder = tmp_path_factory.mktemp("replay")
    generate_split(folder / "synth", "val", 2, 5, 256, 512, seed=2)
    assert (
        bag_cli.main(
            ["from-cityscapes", str(folder / "synth"), "--split", "val", "--out", str(folder / "bag"), "--fps", "5"]
        )
        == 0
    )
    return folder


def _check_report(out: Path, frames: int, outputs: set[str]) -> dict:
    report = json.loads((out / "report.json").read_text(), parse_constant=pytest.fail)
    assert (out / "report.md").read_text().startswith("# Replay benchmark")
    assert report["frames"] == frames and report["bag_rate_hz"] == pytest.approx(5.0)
    assert report["node"]["backend"] == "onnxruntime" and report["node"]["model_input"], report["node"]
    (run,) = report["runs"].values()
    assert run["published"] == frames and set(run["outputs"]) == outputs
    node = run["node"]
    for output, entry in run["outputs"].items():
        assert entry["received"] + entry["lost"] == frames, output
        latency = entry["latency_ms"]
        if entry["received"]:
            assert 0 <= latency["p50"] <= latency["p99"] <= latency["max"], output
    # every published frame reached the node or is counted as lost before it; the node accounts for what it got
    assert node["frames_in"] + node["input_skipped"] <= frames
    assert node["frames_in"] == node["frames_out"] + node["dropped"] + node["bad_frames"] + node["failed"]
    assert run["outputs"]["semantic/mask"]["received"] == node["frames_out"]
    assert node["cpu_percent"] is not None and node["cpu_percent"] > 0 and node["rss_mb_max"] > 0
    for path in report["files"]:
        assert Path(path).is_file() or Path(path).is_dir(), path
    assert {"latency.png", "latency_hist.png", "fps.png"} <= {Path(p).name for p in report["files"]}
    return report


def test_a_semantic_replay_reports_timing_and_the_accuracy_seg_eval_gives(drive, tmp_path):
    out = tmp_path / "report"
    assert replay_bench.main(["--bag", str(drive / "bag"), "--config", str(SEMANTIC), "--out", str(out)]) == 0
    report = _check_report(out, 10, {"semantic/mask", "drivable_area", "overlay"})
    accuracy = report["accuracy"]
    assert accuracy["frames_scored"] == report["runs"]["replay"]["outputs"]["semantic/mask"]["received"] > 0
    reference = evaluate_cityscapes(
        out / "eval" / "ground_truth", "val", semantic_dir=out / "eval" / "predictions" / "semantic"
    )
    assert reference["images"] == accuracy["frames_scored"]
    assert accuracy["semantic"]["mIoU"] == pytest.approx(reference["mIoU"], abs=1e-9)
    assert accuracy["semantic"]["mIoU"] > 0.5  # the shipped model on its own kind of scenes


def test_a_panoptic_replay_scores_pq_and_ap_as_seg_eval_does(drive, tmp_path, random_panoptic_onnx):
    out = tmp_path / "report"
    arguments = [
        "--bag",
        str(drive / "bag"),
        "--config",
        str(PANOPTIC),
        "--out",
        str(out),
        "--record",
        str(tmp_path / "outputs"),
    ]
    overrides = ["-p", f"model_path:={random_panoptic_onnx}", "-p", "instance_score_threshold:=0.05"]
    assert replay_bench.main([*arguments, *overrides]) == 0
    report = _check_report(out, 10, {"semantic/mask", "drivable_area", "overlay", "instances", "panoptic"})
    accuracy = report["accuracy"]
    assert accuracy["frames_scored"] > 0 and set(accuracy["panoptic"]) >= {"PQ", "PQ_th", "PQ_st", "AP", "AP50"}
    predictions = out / "eval" / "predictions"
    reference = evaluate_cityscapes(
        out / "eval" / "ground_truth",
        "val",
        semantic_dir=predictions / "semantic",
        instance_dir=predictions / "instance",
        panoptic_json=predictions / "panoptic.json",
        panoptic_dir=predictions / "panoptic",
    )
    for key in ("PQ", "PQ_th", "PQ_st", "AP50"):
        assert (accuracy["panoptic"][key] or 0.0) == pytest.approx(reference[key] or 0.0, abs=1e-9), key
    assert accuracy["semantic"]["mIoU"] == pytest.approx(reference["mIoU"], abs=1e-9)
    recorded = bag_cli.main(["info", str(tmp_path / "outputs")])
    assert recorded == 0  # the recorded outputs (custom message types included) are a readable bag


def _foreign_bag(path: Path, frames: int = 6) -> None:
    """A bag from another writer: bgr8 images on /front/image, an unrelated String topic, no ground truth."""
    store = get_typestore(Stores.ROS2_KILTED)
    image_type, string_type = store.types["sensor_msgs/msg/Image"], store.types["std_msgs/msg/String"]
    header_type, time_type = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(0)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        images = writer.add_connection("/front/image", image_type.__msgtype__, typestore=store)
        chatter = writer.add_connection("/chatter", string_type.__msgtype__, typestore=store)
        for index in range(frames):
            stamp = 1_000_000_000 + index * 200_000_000  # 5 Hz
            header = header_type(stamp=time_type(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="front")
            pixels = rng.integers(0, 256, (96, 160, 3), np.uint8)
            msg = image_type(
                header=header, height=96, width=160, encoding="bgr8", is_bigendian=0, step=480, data=pixels.ravel()
            )
            writer.write(images, stamp, store.serialize_cdr(msg, image_type.__msgtype__))
            writer.write(chatter, stamp, store.serialize_cdr(string_type(data="hello"), string_type.__msgtype__))


def test_bags_from_elsewhere_replay_and_say_when_they_have_no_ground_truth(drive, tmp_path):
    _foreign_bag(tmp_path / "foreign")
    out = tmp_path / "foreign_report"
    assert replay_bench.main(["--bag", str(tmp_path / "foreign"), "--config", str(SEMANTIC), "--out", str(out)]) == 0
    report = _check_report(out, 6, {"semantic/mask", "drivable_area", "overlay"})
    assert report["image_topic"] == "/front/image" and report["accuracy"]["frames_scored"] == 0
    assert "no ground truth" in report["accuracy"]["note"] and "no ground truth" in (out / "report.md").read_text()
    compressed = tmp_path / "compressed"
    arguments = ["from-cityscapes", str(drive / "synth"), "--split", "val", "--out", str(compressed), "--fps", "5"]
    assert bag_cli.main([*arguments, "--compressed"]) == 0
    out = tmp_path / "compressed_report"
    assert (
        replay_bench.main(["--bag", str(compressed), "--config", str(SEMANTIC), "--out", str(out), "--frames", "4"])
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["image_topic"].endswith("/compressed") and report["accuracy"]["frames_scored"] > 0


def _run(*arguments) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("seg-replay-bench")), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_unreadable_bags_end_in_one_error_line_and_exit_2(drive, tmp_path):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    source = next((drive / "bag").glob("*.mcap"))
    (truncated / source.name).write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    (truncated / "metadata.yaml").write_bytes((drive / "bag" / "metadata.yaml").read_bytes())
    imageless = tmp_path / "imageless"
    store = get_typestore(Stores.ROS2_KILTED)
    string_type = store.types["std_msgs/msg/String"]
    with Writer(imageless, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/chatter", string_type.__msgtype__, typestore=store)
        writer.write(connection, 1, store.serialize_cdr(string_type(data="x"), string_type.__msgtype__))
    for bag in (tmp_path / "missing", tmp_path, truncated, imageless):
        run = _run("--bag", bag, "--config", SEMANTIC, "--out", tmp_path / "out")
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith(ERROR), (bag, run.stderr)
        assert "Traceback" not in run.stderr
