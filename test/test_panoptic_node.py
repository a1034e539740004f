"""segmentation_node with a panoptic model: the node runs as its own process from its console script with
config/panoptic.yaml (what ``ros2 launch seg_perception panoptic.launch.py`` does), this process talks to it
through real rclpy on loopback. The model is a random-weight Panoptic FPN export (scores near 1/9), so the tests
lower instance_score_threshold to get instances; the trained model's accuracy through ROS is
test_shipped_panoptic.py's."""

import array
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from seg_perception.backends import create_backend
from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.ground_projection import CameraModel, GroundProjection
from seg_perception.labels import CLASS_NAMES
from seg_perception.model_info import read_model_info
from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.pipeline.object_location import locate_instances
from seg_perception.pipeline.panoptic import PanopticPipeline
from seg_perception.ros.conversions import mono8_array, mono16_array, stamp_ns
from seg_perception.ros.harness import NodeClient, NodeProcess, image_msg, settled
from seg_perception.ros.outputs import MASK

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "panoptic.yaml"
OUTPUTS = (MASK, "drivable_area", "instances", "panoptic", "overlay")
THRESHOLDS = {"instance_score_threshold": "0.05", "min_stuff_area": "16"}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("panoptic_node_frames")
    generate_split(root, "val", 1, 4, 96, 192, seed=3)
    return [CityscapesDataset(root, "val")[i].image for i in range(4)]


@pytest.fixture(scope="module")
def node(random_panoptic_onnx):
    params = {"model_path": str(random_panoptic_onnx), **THRESHOLDS}
    with NodeProcess(CONFIG, params, name="seg_panoptic", namespace="/pan") as process:
        process.wait_ready()
        yield process
        assert process.stop() == 0, process.output[-3000:]


@pytest.fixture(scope="module")
def client(node):
    with NodeClient(
        name="panoptic_client", namespace="/pan", outputs=OUTPUTS, inputs=("image", "camera_info")
    ) as feeder:
        assert feeder.wait_connected(), node.output[-2000:]
        feeder.prime({"": image_msg(np.zeros((64, 128, 3), np.uint8), 0)})
        yield feeder


def _offline(onnx, image):
    """The ROS-free pipeline's result for one frame, run here directly on the same model and settings."""
    config = SegmentationConfig(backend="onnxruntime", device="cpu", instance_score_threshold=0.05, min_stuff_area=16)
    with create_backend("onnxruntime", onnx, device="cpu") as backend:
        pipeline = PanopticPipeline(backend, read_model_info(onnx), config)
        return pipeline.finish(pipeline.infer([image]), 0)


def test_outputs_share_the_header_agree_with_each_other_and_with_the_pipeline(client, frames, random_panoptic_onnx):
    stamps = []
    for index, image in enumerate(frames):
        stamp = client.publish("", image, frame_id=f"cam_{index}")
        assert client.spin_until(lambda s=stamp: all(client.has("", o, s) for o in OUTPUTS), 60)
        stamps.append(stamp)
    for index, (stamp, image) in enumerate(zip(stamps, frames, strict=True)):
        messages = {output: client.received[("", output)][stamp] for output in OUTPUTS}
        for output, msg in messages.items():
            assert (stamp_ns(msg.header), msg.header.frame_id) == (stamp, f"cam_{index}"), output
        instances, panoptic = messages["instances"], messages["panoptic"]
        for image_msg_ in (instances.mask, panoptic.id_map):
            assert (stamp_ns(image_msg_.header), image_msg_.header.frame_id) == (stamp, f"cam_{index}")
            assert (image_msg_.encoding, image_msg_.height, image_msg_.width) == ("mono16", *image.shape[:2])
        instance_ids, segment_ids = mono16_array(instances.mask), mono16_array(panoptic.id_map)
        labels = mono8_array(messages[MASK])
        # the instance mask, the instances and the panoptic segments tell one story
        assert [i.id for i in instances.instances] == list(range(1, len(instances.instances) + 1))
        things = {s.instance_id: s for s in panoptic.segments if s.is_thing}
        assert set(things) == {i.id for i in instances.instances}
        for instance in instances.instances:
            pixels = instance_ids == instance.id
            segment = things[instance.id]
            assert instance.area == segment.area == int(pixels.sum()) and instance.class_id == segment.class_id
            assert instance.label == CLASS_NAMES[instance.class_id] and np.all(segment_ids[pixels] == segment.id)
            assert np.all(labels[pixels] == instance.class_id)
            roi = instance.roi
            assert roi.x_offset + roi.width <= image.shape[1] and roi.y_offset + roi.height <= image.shape[0]
        for segment in panoptic.segments:
            assert int((segment_ids == segment.id).sum()) == segment.area
        # and the same as the ROS-free pipeline on this frame
        offline = _offline(random_panoptic_onnx, image)
        assert np.mean(instance_ids == offline.instance_ids) >= 0.999
        assert np.mean(segment_ids == offline.segment_ids) >= 0.999
        assert np.mean(labels == offline.labels) >= 0.999
        assert [(i.class_id, i.area) for i in instances.instances] == [(i.class_id, i.area) for i in offline.instances]
    assert sum(len(client.received[("", "instances")][s].instances) for s in stamps) > 0
    order = [s for s in client.order[("", "panoptic")] if s in set(stamps)]
    assert order == stamps  # in input order


def _camera_info(height: int, width: int) -> CameraInfo:
    info = CameraInfo(height=height, width=width)
    info.k = [0.9 * width, 0.0, width / 2, 0.0, 0.9 * width, height / 2 - 10, 0.0, 0.0, 1.0]
    return info


def test_instances_are_located_on_the_ground_once_the_camera_info_is_known(client, frames):
    """Without a camera_info no instance is located; with one, each is where its lowest mask pixels meet the
    ground (pipeline.object_location, unit-tested on its own) seen by that camera at the default camera_pose."""
    before = client.publish("", frames[1])
    assert client.spin_until(lambda: client.has("", "instances", before), 60)
    assert not any(i.located for i in client.received[("", "instances")][before].instances)
    height, width = frames[0].shape[:2]
    info = _camera_info(height, width)
    client.publish_msg("", info, "camera_info")
    pose = dict(zip(("x", "y", "height", "roll", "pitch", "yaw"), SegmentationConfig().camera_pose, strict=True))
    projection = GroundProjection(CameraModel(info.k[0], info.k[4], info.k[2], info.k[5], **pose))
    located, seen_info = 0, False
    for image in frames * 3:
        stamp = client.publish("", image)
        assert client.spin_until(lambda s=stamp: client.has("", "instances", s), 60)
        message = client.received[("", "instances")][stamp]
        seen_info = seen_info or any(i.located for i in message.instances)  # the node has the camera_info by now
        if not seen_info:
            continue
        assert message.position_frame_id == "base_link"
        boxes = [SimpleNamespace(id=i.id, box=_box(i.roi)) for i in message.instances]
        expected = locate_instances(mono16_array(message.mask), boxes, projection)
        for instance in message.instances:
            where = expected[instance.id]
            assert instance.located == (where is not None)
            if where is not None:
                got = (instance.x, instance.y, instance.range, instance.bearing, instance.position_sigma)
                want = (where.x, where.y, where.range, where.bearing, where.sigma)
                np.testing.assert_allclose(got, want, rtol=1e-5)
                located += 1
    assert located > 0


def _box(roi) -> tuple[float, float, float, float]:
    return (roi.x_offset, roi.y_offset, roi.x_offset + roi.width, roi.y_offset + roi.height)


def test_diagnostics_report_the_panoptic_stages(client, frames):
    client.publish("", frames[0])
    status = client.diagnostics_where(lambda s: s.get("fusion_ms_p50") not in (None, "n/a"), "seg_panoptic", 30)
    assert status["task"] == "panoptic" and "panoptic segmentation" in status["name"]
    for key in ("paste_ms_p50", "semantic_ms_p50", "maps_ms_p50", "infer_ms_p50", "latency_ms_p50"):
        assert key in status, key


def test_bad_input_is_counted_and_the_node_goes_on(client, node, frames):
    before = client.diagnostics_where(settled, "seg_panoptic", 30)
    bad = Image(height=8, width=8, encoding="32FC1", step=32)
    bad.data = array.array("B", bytes(256))
    client.publish_msg("", bad)
    after = client.diagnostics_where(
        lambda s: int(s.get("bad_encoding", 0)) > int(before.get("bad_encoding", 0)), "seg_panoptic", 30
    )
    assert after["level"] == 1
    stamp = client.publish("", frames[1])
    assert client.spin_until(lambda: client.has("", "panoptic", stamp), 60) and node.process.poll() is None


def test_overload_keeps_queues_bounded_and_every_frame_accounted(client, frames):
    before = client.diagnostics_where(settled, "seg_panoptic", 30)
    stamps = [client.publish("", frames[index % len(frames)]) for index in range(12)]  # a burst: far above capacity
    after = client.diagnostics_where(
        lambda s: int(s["frames_in"]) > int(before["frames_in"]) and settled(s), "seg_panoptic", 120
    )
    assert int(after["queue_max"]) <= int(after["queue_bound"]) and int(after["pending_max"]) <= 1
    received = [s for s in client.order[("", "panoptic")] if s in set(stamps)]
    assert received == sorted(received) and 0 < len(received) < len(stamps)
    skipped = int(after["input_skipped"]) - int(before["input_skipped"])
    frames_in = int(after["frames_in"]) - int(before["frames_in"])
    assert frames_in + skipped <= len(stamps)  # the last frames may still be uncounted skips (no later frame)


def test_a_frame_without_objects_publishes_empty_valid_messages(random_panoptic_onnx, frames):
    params = {"model_path": str(random_panoptic_onnx), "instance_score_threshold": "1.0"}
    with (
        NodeProcess(CONFIG, params, name="seg_empty", namespace="/empty") as process,
        NodeClient(name="empty_client", namespace="/empty", outputs=(MASK, "instances", "panoptic")) as client,
    ):
        process.wait_ready()
        assert client.wait_connected(), process.output[-2000:]
        stamp = client.prime({"": image_msg(frames[2], 0)})  # re-sent until its mask arrives
        assert client.spin_until(lambda: client.has("", "panoptic", stamp) and client.has("", "instances", stamp), 60)
        instances = client.received[("", "instances")][stamp]
        panoptic = client.received[("", "panoptic")][stamp]
        assert list(instances.instances) == [] and not mono16_array(instances.mask).any()
        assert mono16_array(instances.mask).shape == frames[2].shape[:2]
        assert all(not s.is_thing for s in panoptic.segments)
        assert process.stop() == 0
