"""``seg-bench-node --compare-plain``, its plain single-callback node and its null node, as real processes on loopback
ROS (test/conftest.py sets the loopback-only Fast DDS profile and a random domain id, which the children inherit)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.data.synthetic import SyntheticScene
from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.pipeline.postprocess import drivable_mask
from seg_perception.ros.conversions import stamp_ns
from seg_perception.tools.bench_compare import METRICS, NULL_KEYS, OUTPUTS, running_null_node, running_plain_node

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "bisenetv2_synth.onnx"
VENV_BIN = Path(sys.executable).parent
ENV = {**os.environ, "AMENT_PREFIX_PATH": sys.prefix}


def expected_labels(image: np.ndarray) -> np.ndarray:
    """The plain node's recipe computed here from the sidecar: resize, normalise, ONNX Runtime, argmax, resize back."""
    sidecar = json.loads(MODEL.with_name(MODEL.name + ".json").read_text())
    height, width = sidecar["input_size"]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    x = ((resized - np.float32(sidecar["mean"])) / np.float32(sidecar["std"])).transpose(2, 0, 1)[None]
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    logits = session.run(None, {sidecar["input_name"]: np.ascontiguousarray(x, np.float32)})[0]
    labels = logits[0].argmax(axis=0).astype(np.uint8)
    return cv2.resize(labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


def mono8(msg: Image) -> np.ndarray:
    assert msg.encoding == "mono8" and msg.step == msg.width
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width)


def frame_msg(image: np.ndarray, encoding: str, stamp: int) -> Image:
    header = Header(frame_id="front")
    header.stamp.sec, header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    height, width, _ = image.shape
    return Image(header=header, height=height, width=width, encoding=encoding, step=3 * width, data=image.tobytes())


def test_plain_node_publishes_the_models_mask_and_drivable_area_with_the_input_header():
    image = SyntheticScene(200, 400, 5, "val", 0).render(1).image  # not the model's 256x512: both resizes matter
    labels = expected_labels(image)
    assert len(np.unique(labels)) >= 3 and (labels == 0).any()  # a real scene with road
    frames = {"rgb8": image, "bgr8": cv2.cvtColor(image, cv2.COLOR_RGB2BGR)}
    with running_plain_node(MODEL) as node:
        client = node.client  # reliable input, as the plain node's default QoS
        for encoding, frame in frames.items():
            stamp = client.now_ns()
            client.publish_msg("", frame_msg(frame, encoding, stamp))
            arrived = lambda s=stamp: all(client.has("", o, s) for o in OUTPUTS)  # noqa: E731
            assert client.spin_until(arrived, 30.0), node.process.output
            mask, drivable = (client.received[("", output)][stamp] for output in OUTPUTS)
            for msg in (mask, drivable):
                assert stamp_ns(msg.header) == stamp and msg.header.frame_id == "front"
            assert (mono8(mask) == labels).mean() >= 0.999, encoding
            # drivable_area as segmentation_node encodes it: 255 on its default drivable classes (road), else 0
            expected = drivable_mask(mono8(mask), SegmentationConfig().drivable_train_ids)
            np.testing.assert_array_equal(mono8(drivable), expected)
            assert set(np.unique(expected)) == {0, 255}
    assert node.exit_code == 0, node.process.output


def test_null_node_publishes_all_zero_masks_of_each_frames_size_with_its_header_and_survives_a_bad_frame():
    with running_null_node() as node:
        client = node.client  # best-effort input, as ours'
        client.prime({"": frame_msg(np.zeros((4, 6, 3), np.uint8), "rgb8", 0)}, timeout=30.0)
        truncated = frame_msg(np.zeros((10, 20, 3), np.uint8), "rgb8", client.now_ns())
        truncated.data = truncated.data[:-7]
        for _ in range(20):  # best-effort depth 1: re-sent until the node logs it (dropped; the node goes on)
            client.publish_msg("", truncated)
            if client.spin_until(lambda: "dropped a bad frame" in node.process.output, 0.5):
                break
        for height, width in ((30, 40), (7, 5)):
            stamp = client.now_ns()
            client.publish_msg("", frame_msg(np.full((height, width, 3), 200, np.uint8), "rgb8", stamp))
            arrived = lambda s=stamp: all(client.has("", o, s) for o in OUTPUTS)  # noqa: E731
            assert client.spin_until(arrived, 30.0), node.process.output
            for output in OUTPUTS:
                msg = client.received[("", output)][stamp]
                assert stamp_ns(msg.header) == stamp and msg.header.frame_id == "front"
                np.testing.assert_array_equal(mono8(msg), np.zeros((height, width), np.uint8))
    assert "dropped a bad frame" in node.process.output and node.exit_code == 0, node.process.output


def _bench(*arguments: str) -> subprocess.CompletedProcess:
    command = [str(VENV_BIN / "seg-bench-node"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)


def test_compare_plain_runs_both_nodes_interleaved_and_reports_ratios():
    run = _bench("--compare-plain", "--sizes", "128x256", "--frames", "3", "--settle", "0.05", "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)  # only JSON on stdout
    (entry,) = result["sizes"]
    assert entry["size"] == "128x256"
    assert Path(entry["plain_model"]).name == "bisenetv2_synth.onnx"  # the model ours loaded
    assert entry["ours_node"]["model"].endswith("(bisenetv2_synth.onnx)")
    ours, plain = entry["ours"], entry["plain"]
    for numbers in (ours, plain):
        assert numbers["sequential_frames"] == numbers["sequential_masks"] == 3  # every frame came back
        assert numbers["e2e_ms_p99"] >= numbers["e2e_ms_p50"] > 0
        assert numbers["cpu_ms_per_frame"] > 0 and numbers["rss_mb_max"] > 0
        assert numbers["flood_rate_hz"] == pytest.approx(2 * numbers["capacity_hz"])
        assert numbers["flood_load"] == pytest.approx(numbers["flood_rate_hz"] * numbers["e2e_ms_p50"] / 1000)
        assert numbers["flood_frames"] >= 8 and 0 < numbers["flood_masks"] <= numbers["flood_frames"]
        assert numbers["flood_drop_rate"] == pytest.approx(1 - numbers["flood_masks"] / numbers["flood_frames"])
    for _, key, _ in METRICS:
        if plain[key]:
            assert entry["ratio"][key] == pytest.approx(ours[key] / plain[key]), key
        else:
            assert entry["ratio"][key] is None, key
    null = entry["null"]
    assert set(null) == set(NULL_KEYS) and entry["settle_s"] == 0.05
    assert null["sequential_frames"] == null["sequential_masks"] == 3
    assert null["e2e_ms_p99"] >= null["e2e_ms_p50"] > 0 and null["cpu_ms_per_frame"] >= 0  # /proc counts 10 ms ticks
    backend = entry["ours_backend_ms"]
    assert backend > 0 and entry["ours_stages_ms"]["infer"] == backend
    assert entry["ours_overhead_ms"] == pytest.approx(ours["e2e_ms_p50"] - backend)
    assert entry["ours_overhead_share"] == pytest.approx(entry["ours_overhead_ms"] / ours["e2e_ms_p50"])
    assert entry["floor_share"] == pytest.approx(null["e2e_ms_p50"] / ours["e2e_ms_p50"])
    assert entry["ours_own_overhead_ms"] == pytest.approx(entry["ours_overhead_ms"] - null["e2e_ms_p50"])
    assert entry["ours_own_overhead_share"] == pytest.approx(entry["ours_own_overhead_ms"] / ours["e2e_ms_p50"])
    assert entry["ours_exit_code"] == entry["plain_exit_code"] == entry["null_exit_code"] == 0


def test_compare_plain_rejects_what_it_cannot_compare():
    run = _bench("--plain-model", str(MODEL), "--json")
    assert run.returncode == 2 and "--plain-model and --settle need --compare-plain" in run.stderr and run.stdout == ""
    run = _bench("--settle", "0.2", "--json")
    assert run.returncode == 2 and "need --compare-plain" in run.stderr and run.stdout == ""
    run = _bench("--compare-plain", "--settle", "-1")
    assert run.returncode == 2 and "--settle must be >= 0" in run.stderr
    run = _bench("--compare-plain", "--duration", "5")
    assert run.returncode == 2 and "--compare-plain has its own" in run.stderr
