"""segmentation_node end to end: the node runs as its own process from its console script with
config/semantic.yaml (what ``ros2 launch`` does), this process talks to it through real rclpy on
loopback (test/conftest.py sets the loopback-only Fast DDS profile and a random domain id)."""

import array
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import yaml
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.evaluation.semantic import SemanticEvaluator
from seg_perception.labels import CLASS_NAMES
from seg_perception.ros.conversions import mono8_array, mono8_msg, set_stamp, stamp_ns
from seg_perception.ros.harness import NodeClient, NodeProcess, image_msg, settled

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "semantic.yaml"
MODEL = REPO / "models" / "bisenetv2_synth.onnx"
OUTPUTS = ("semantic/mask", "drivable_area", "overlay")


@pytest.fixture(scope="module")
def val_frames(tmp_path_factory):
    """12 synthetic val frames at 256x512 (the model card's val distribution, seed 2)."""
    root = tmp_path_factory.mktemp("node_val")
    generate_split(root, "val", 3, 4, 256, 512, seed=2)
    return [CityscapesDataset(root, "val")[i] for i in range(12)]


@pytest.fixture(scope="module")
def node():
    process = NodeProcess(CONFIG)
    try:
        process.wait_ready()
        yield process
    finally:
        code = process.stop()
    assert code == 0, process.output[-3000:]


@pytest.fixture(scope="module")
def client(node):
    with NodeClient(outputs=OUTPUTS) as feeder:
        assert feeder.wait_connected(), node.output[-2000:]
        feeder.prime({"": image_msg(np.zeros((64, 128, 3), np.uint8), 0)})
        yield feeder


def _send(client, image, camera="", frame_id="camera", outputs=("semantic/mask",), timeout=30.0):
    """Publish ``image`` and wait until every output of it arrived; returns its stamp."""
    stamp = client.publish(camera, image, frame_id=frame_id)
    assert client.spin_until(lambda: all(client.has(camera, o, stamp) for o in outputs), timeout), outputs
    return stamp


def _reference_labels(image: np.ndarray) -> np.ndarray:
    """The shipped model's labels for one frame, computed here directly with ONNX Runtime + OpenCV."""
    sidecar = json.loads(MODEL.with_name(MODEL.name + ".json").read_text())
    height, width = sidecar["input_size"]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    model_input = ((resized - sidecar["mean"]) / sidecar["std"]).transpose(2, 0, 1)[None].astype(np.float32)
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    labels = session.run(None, {"image": model_input})[0][0].argmax(0).astype(np.uint8)
    return cv2.resize(labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


def test_outputs_carry_the_input_header_and_score_on_synthetic_val(client, val_frames):
    evaluator = SemanticEvaluator()
    road_hits = road_union = 0
    for index, frame in enumerate(val_frames):
        frame_id = f"front_camera_{index}"
        stamp = _send(client, frame.image, frame_id=frame_id, outputs=OUTPUTS)
        for output in OUTPUTS:
            msg = client.received[("", output)][stamp]
            assert (stamp_ns(msg.header), msg.header.frame_id) == (stamp, frame_id), output
            assert (msg.height, msg.width) == frame.image.shape[:2], output
            assert msg.encoding == ("rgb8" if output == "overlay" else "mono8"), output
            assert msg.step == msg.width * (3 if output == "overlay" else 1), output
        labels = mono8_array(client.received[("", "semantic/mask")][stamp])
        drivable = mono8_array(client.received[("", "drivable_area")][stamp])
        assert set(np.unique(labels)) <= set(range(19))
        np.testing.assert_array_equal(drivable, np.where(labels == CLASS_NAMES.index("road"), 255, 0))
        evaluator.process(labels, frame.train_ids)
        labelled = frame.train_ids != 255  # void (ego vehicle, out of roi) is ignored, as by the evaluator
        road_gt, road_out = frame.train_ids == 0, drivable == 255
        road_hits += np.count_nonzero(road_out & road_gt & labelled)
        road_union += np.count_nonzero((road_out | road_gt) & labelled)
    metrics = evaluator.evaluate()
    assert metrics["mIoU"] >= 0.7, metrics["per_class_iou"]
    assert road_hits / road_union >= 0.9


def test_masks_equal_the_model_run_directly(client, val_frames):
    frame = val_frames[0]
    stamp = _send(client, frame.image)
    labels = mono8_array(client.received[("", "semantic/mask")][stamp])
    assert np.mean(labels == _reference_labels(frame.image)) >= 0.999


def test_bgr8_input_gives_the_same_mask_as_rgb8(client, val_frames):
    image = val_frames[1].image
    rgb_stamp = _send(client, image)
    header = Header(frame_id="camera")
    bgr_stamp = client.now_ns()
    set_stamp(header, bgr_stamp)
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(image[..., ::-1]).tobytes())
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding="bgr8", step=image.shape[1] * 3)
    msg.data = data
    client.publish_msg("", msg)
    assert client.spin_until(lambda: client.has("", "semantic/mask", bgr_stamp), 30)
    masks = client.received[("", "semantic/mask")]
    np.testing.assert_array_equal(mono8_array(masks[bgr_stamp]), mono8_array(masks[rgb_stamp]))


def test_typed_label_info_reaches_a_late_subscriber(client):
    assert client.spin_until(lambda: "" in client.label_info, 10)
    info = client.label_info[""]
    assert [c.name for c in info.classes] == list(CLASS_NAMES) and [c.id for c in info.classes] == list(range(19))
    assert info.unlabeled == 255
    assert [c.name for c in info.classes if c.drivable] == ["road"]
    assert [c.name for c in info.classes if c.is_thing] == list(CLASS_NAMES[11:])
    road = info.classes[0]
    assert (road.red, road.green, road.blue) == (128, 64, 128)  # the Cityscapes colour


def test_running_node_parameters_equal_the_params_file(client, node):
    expected = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    service = client.node.create_client(GetParameters, "/segmentation_node/get_parameters")
    assert service.wait_for_service(timeout_sec=10)
    future = service.call_async(GetParameters.Request(names=list(expected)))
    assert client.spin_until(future.done, 10)
    actual = {name: parameter_value_to_python(v) for name, v in zip(expected, future.result().values, strict=True)}
    assert actual == expected


def test_diagnostics_report_the_pipeline(client, val_frames):
    _send(client, val_frames[2].image)
    status = client.diagnostics_where(lambda s: int(s["frames_out"]) > 0)
    assert (status["backend"], status["device"], status["precision"]) == ("onnxruntime", "cpu", "fp32")
    assert status["model"] == "bisenetv2 (bisenetv2_synth.onnx)" and status["model_input"] == "256x512"
    for key in ("fps_in", "fps_out", "latency_ms_p50", "latency_ms_p99", "dropped", "bad_frames", "infer_ms_p50"):
        assert key in status, key


def _bad_messages() -> dict[str, Image]:
    def image(encoding, height, width, step, size):
        msg = Image(height=height, width=width, encoding=encoding, step=step)
        msg.header.frame_id = "camera"
        data = array.array("B")
        data.frombytes(bytes(size))
        msg.data = data
        return msg

    return {
        "encoding": image("16UC1", 32, 64, 128, 128 * 32),
        "step": image("rgb8", 32, 64, 100, 100 * 32),
        "truncated": image("rgb8", 32, 64, 192, 192 * 31),
        "empty": image("rgb8", 0, 0, 0, 0),
        # > max_image_pixels (2048 x 2048 by default); the size check comes before the data length check, so a
        # small buffer will do
        "too_large": image("mono8", 4100, 4100, 4100, 4100 * 8),
    }


def test_bad_input_is_dropped_counted_and_the_next_frame_is_processed(client, node, val_frames):
    before = client.diagnostics_where(lambda s: True)
    for reason, msg in _bad_messages().items():
        client.publish_msg("", msg)
        # wait until the node counted it (one sample in flight at a time: the input history depth is 1)
        counted = client.diagnostics_where(
            lambda s, r=reason: int(s.get(f"bad_{r}", 0)) > int(before.get(f"bad_{r}", 0))
        )
        assert counted["level"] == 1 and "bad input" in counted["message"], counted  # WARN
        _send(client, val_frames[3].image)  # the next good frame comes through
    after = client.diagnostics_where(lambda s: True)
    assert int(after["bad_frames"]) - int(before["bad_frames"]) == 5
    assert node.process.poll() is None
    warnings = [line for line in node.lines if "dropped a bad frame" in line]
    assert warnings and "unsupported image encoding" in warnings[0]
    assert len(warnings) < 5  # rate-limited: repeats within log_throttle are suppressed


def test_flood_at_twice_the_capacity_keeps_queues_bounded_and_counts_drops(client, val_frames):
    status = client.diagnostics_where(lambda s: s["infer_ms_p50"] != "n/a" or int(s["frames_out"]) > 0)
    _send(client, val_frames[4].image)
    status = client.diagnostics_where(lambda s: s["latency_ms_p50"] != "n/a")
    period = float(status["latency_ms_p50"]) / 1e3 / 2  # 2x the rate the node sustains
    before = client.diagnostics_where(lambda s: True)
    stamps = []
    start = time.monotonic()
    for index in range(40):
        while time.monotonic() < start + index * period:
            client.executor.spin_once(timeout_sec=0)
        stamps.append(client.publish("", val_frames[index % len(val_frames)].image))

    after = client.diagnostics_where(
        lambda s: int(s["frames_in"]) > int(before["frames_in"]) and settled(s), timeout=60
    )
    assert int(after["queue_max"]) <= int(after["queue_bound"])
    assert int(after["pending"]) <= int(after["pending_bound"])
    assert int(after["dropped"]) > int(before["dropped"])
    received = [s for s in client.order[("", "semantic/mask")] if s in set(stamps)]
    assert received == sorted(received) and 0 < len(received) < len(stamps)
    assert int(after["frames_out"]) - int(before["frames_out"]) == len(received)


def test_two_cameras_with_matching_stamps_share_one_model_call(val_frames):
    params = {"cameras": "['front', 'rear']", "sync_timeout": "2.0"}
    with (
        NodeProcess(CONFIG, params, name="seg_two_cameras") as process,
        NodeClient(name="two_cameras_client", cameras=("front", "rear"), outputs=("semantic/mask",)) as client,
    ):
        process.wait_ready()
        assert client.wait_connected(), process.output[-2000:]
        images = {"front": val_frames[5].image, "rear": val_frames[6].image}
        client.prime({camera: image_msg(image, 0, camera) for camera, image in images.items()})
        before = client.diagnostics_where(settled, node="seg_two_cameras")
        stamp = client.now_ns()
        for camera, image in images.items():
            client.publish(camera, image, stamp=stamp, frame_id=camera)
        assert client.spin_until(lambda: all(client.has(c, "semantic/mask", stamp) for c in images), 30)
        after = client.diagnostics_where(
            lambda s: settled(s) and int(s["frames_out"]) == int(before["frames_out"]) + 2, "seg_two_cameras"
        )
        assert int(after["batches"]) - int(before["batches"]) == 1
        assert int(after["batches_of_2"]) - int(before.get("batches_of_2", 0)) == 1
        for camera, image in images.items():
            msg = client.received[(camera, "semantic/mask")][stamp]
            assert msg.header.frame_id == camera
            assert np.mean(mono8_array(msg) == _reference_labels(image)) >= 0.999, camera
        assert process.stop() == 0


def test_client_keeps_a_bounded_number_of_messages_and_tells_listeners_of_each():
    heard = []
    with NodeClient(name="keep_client", outputs=("semantic/mask",), keep=3) as client:
        client.listeners.append(lambda camera, output, stamp, arrival: heard.append((camera, output, stamp)))
        on_mask = client._keeper("", "semantic/mask")  # the subscription callback, called directly
        for stamp in range(1, 6):
            header = Header(frame_id="camera")
            header.stamp.nanosec = stamp
            on_mask(mono8_msg(np.full((2, 3), stamp, np.uint8), header))
        key = ("", "semantic/mask")
        assert list(client.received[key]) == [3, 4, 5] and list(client.arrival[key]) == [3, 4, 5]
        assert list(client.order[key]) == [3, 4, 5]
        assert mono8_array(client.received[key][5]).tolist() == [[5, 5, 5], [5, 5, 5]]
        assert heard == [("", "semantic/mask", stamp) for stamp in range(1, 6)]
    with pytest.raises(ValueError, match="keep"):
        NodeClient(name="keep_zero", keep=0)


def test_the_core_imports_neither_rclpy_nor_torch_and_the_node_no_torch():
    code = (
        "import sys\n"
        "import seg_perception.pipeline.loading, seg_perception.pipeline.frame_sync, seg_perception.pipeline.stats\n"
        "loaded = sorted({'torch', 'rclpy', 'onnxruntime', 'tensorrt'} & set(sys.modules))\n"
        "assert not loaded, f'the ROS-free core imported {loaded}'\n"
        "import seg_perception.ros.segmentation_node\n"
        "assert 'torch' not in sys.modules, 'the node module imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
