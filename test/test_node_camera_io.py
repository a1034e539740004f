"""segmentation_node's camera_info pass-through, compressed input and colour mask, end to end: two node processes
(config/semantic.yaml, masks at the model resolution), one taking raw images in namespace /raw, one taking
CompressedImage (``input_transport: compressed``) in /comp with its image topic remapped, as image_transport users
do; this process talks to both through real rclpy (test/conftest.py: loopback only)."""

import array
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, RegionOfInterest
from std_msgs.msg import Header

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.data.synthetic import generate_split
from seg_perception.labels import TRAIN_ID_COLORS
from seg_perception.ros.conversions import mono8_array, set_stamp, stamp_ns
from seg_perception.ros.harness import NodeClient, NodeProcess, image_msg, node_executable

CONFIG = Path(__file__).resolve().parents[1] / "config" / "semantic.yaml"
MASK, COLOR_MASK, CAMERA_INFO = "semantic/mask", "semantic/color_mask", "semantic/camera_info"
CAMERA_INFO_IN = "camera_info"  # the camera's own topic, beside its image
MODEL_RESOLUTION = {"output_resolution": "model"}
REMAPPED = "/comp/front/image_raw"
"""The compressed node's base image topic (``-r image:=...``): it subscribes REMAPPED + "/compressed"."""


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """4 synthetic val frames (H, W, 3) uint8 RGB at the model size, 256x512."""
    root = tmp_path_factory.mktemp("camera_io_val")
    generate_split(root, "val", 1, 4, 256, 512, seed=2)
    return [CityscapesDataset(root, "val")[i].image for i in range(4)]


def _node(params: dict[str, str], name: str, namespace: str, command=None):
    process = NodeProcess(CONFIG, params, name=name, namespace=namespace, command=command)
    process.wait_ready()
    return process


@pytest.fixture(scope="module")
def raw(frames):
    """(node process, client) of the raw-input node in /raw; the client feeds image and camera_info and collects
    the mask and camera_info (not the colour mask: a test subscribes it itself)."""
    process = _node(MODEL_RESOLUTION, "seg_raw", "/raw")
    try:
        with NodeClient("raw_client", "raw", outputs=(MASK, CAMERA_INFO), inputs=("image", CAMERA_INFO_IN)) as client:
            assert client.wait_connected(), process.output[-2000:]
            client.prime({"": image_msg(frames[0], 0)})
            yield process, client
    finally:
        assert process.stop() == 0, process.output[-3000:]


@pytest.fixture(scope="module")
def compressed(frames):
    """(node process, client) of the compressed-input node in /comp, image remapped to REMAPPED."""
    remap = [*node_executable(), "--ros-args", "-r", f"image:={REMAPPED}"]
    process = _node({**MODEL_RESOLUTION, "input_transport": "compressed"}, "seg_comp", "/comp", remap)
    try:
        with NodeClient("comp_client", "comp", outputs=(MASK,), inputs=()) as client:
            client.inputs[("", "image/compressed")] = client.node.create_publisher(
                CompressedImage, f"{REMAPPED}/compressed", QoSProfile(depth=10)
            )
            assert client.wait_connected(), process.output[-2000:]
            client.prime({"": _compressed(frames[0], "png", 0)}, topic="image/compressed")
            yield process, client
    finally:
        assert process.stop() == 0, process.output[-3000:]


def _compressed(image: np.ndarray, codec: str, stamp: int, format_name: str | None = None) -> CompressedImage:
    """(H, W, 3) RGB -> CompressedImage as image_transport makes it (bgr8 data; jpeg quality 95)."""
    ok, encoded = cv2.imencode(f".{codec}", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95] if codec == "jpeg" else [])
    assert ok
    return _compressed_bytes(encoded.tobytes(), format_name or codec, stamp)


def _compressed_bytes(data: bytes, format_name: str, stamp: int) -> CompressedImage:
    header = Header(frame_id="camera")
    set_stamp(header, stamp)
    msg = CompressedImage(header=header, format=format_name)
    msg.data = array.array("B", data)
    return msg


def _mask_of(client, msg, topic: str = "image") -> np.ndarray:
    """Publish ``msg`` (stamped now) on input ``topic`` and wait for its mask."""
    stamp = client.now_ns()
    set_stamp(msg.header, stamp)
    client.publish_msg("", msg, topic)
    assert client.spin_until(lambda: client.has("", MASK, stamp), 30)
    return mono8_array(client.received[("", MASK)][stamp])


def _camera_info(height: int, width: int, tag: float) -> CameraInfo:
    """A calibration of a (height, width) camera, with an roi and a stereo baseline (P's Tx); ``tag`` is its last
    distortion coefficient (tells it apart from earlier ones)."""
    info = CameraInfo(height=height, width=width, distortion_model="plumb_bob", binning_x=0, binning_y=0)
    info.header.frame_id = "camera_info_frame"
    info.d = [-0.2, 0.05, 0.001, -0.002, tag]
    fx, fy, cx, cy = 0.9 * width, 0.92 * width, width / 2 - 3.5, height / 2 + 2.25
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, -0.3 * fx, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.roi = RegionOfInterest(x_offset=width // 8, y_offset=height // 4, height=height // 2, width=width // 2)
    return info


def test_frames_without_camera_info_are_answered_without_one(raw, frames):
    """Runs before the camera_info tests (file order): the node has received no camera_info yet."""
    _, client = raw
    stamp = client.publish("", frames[1])
    assert client.spin_until(lambda: client.has("", MASK, stamp), 30)
    assert not client.spin_until(lambda: client.has("", CAMERA_INFO, stamp), 1.0)
    assert "sent_semantic_camera_info" not in _diagnostics(client, "seg_raw", lambda s: int(s["frames_out"]) > 1)


@pytest.mark.parametrize("scale", [1.5, 1.0])
def test_camera_info_comes_out_with_the_mask_header_scaled_to_the_mask(raw, frames, scale):
    _, client = raw
    image = cv2.resize(frames[1], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)  # 384x768 or 256x512
    height, width = image.shape[:2]
    info = _camera_info(height, width, scale)
    client.publish_msg("", info, CAMERA_INFO_IN)
    # the node uses the latest camera_info it received: publish frames until one comes back with this one
    stamp = None
    for _ in range(20):
        stamp = client.publish("", image, frame_id="front")
        assert client.spin_until(lambda s=stamp: client.has("", MASK, s), 30)
        if client.spin_until(lambda s=stamp: client.has("", CAMERA_INFO, s), 1.0):
            if list(client.received[("", CAMERA_INFO)][stamp].d) == list(info.d):
                break
    out, mask = client.received[("", CAMERA_INFO)][stamp], client.received[("", MASK)][stamp]
    assert (
        (stamp_ns(out.header), out.header.frame_id) == (stamp_ns(mask.header), mask.header.frame_id) == (stamp, "front")
    )
    assert (out.height, out.width) == (mask.height, mask.width) == (256, 512)
    sx, sy = mask.width / width, mask.height / height
    k, p = np.array(info.k).reshape(3, 3), np.array(info.p).reshape(3, 4)
    expected_k = np.array([[k[0, 0] * sx, 0, k[0, 2] * sx], [0, k[1, 1] * sy, k[1, 2] * sy], [0, 0, 1]])
    expected_p = np.array(
        [[p[0, 0] * sx, 0, p[0, 2] * sx, p[0, 3] * sx], [0, p[1, 1] * sy, p[1, 2] * sy, 0], [0, 0, 1, 0]]
    )
    np.testing.assert_allclose(np.array(out.k).reshape(3, 3), expected_k, rtol=1e-12)
    np.testing.assert_allclose(np.array(out.p).reshape(3, 4), expected_p, rtol=1e-12)
    assert (out.roi.x_offset, out.roi.y_offset, out.roi.width, out.roi.height) == tuple(
        round(v) for v in (width / 8 * sx, height / 4 * sy, width / 2 * sx, height / 2 * sy)
    )
    assert list(out.d) == list(info.d) and list(out.r) == list(info.r) and out.distortion_model == "plumb_bob"


def _diagnostics(client, node: str, predicate=lambda s: True) -> dict[str, str]:
    return client.diagnostics_where(predicate, node=node)


def test_colour_mask_is_the_palette_of_the_mask_and_only_built_while_subscribed(raw, frames):
    _, client = raw
    client.publish("", frames[2])
    status = _diagnostics(client, "seg_raw", lambda s: int(s["frames_out"]) > 0)
    assert "sent_semantic_color_mask" not in status and int(status["sent_semantic_mask"]) > 0
    client.subscribe("", COLOR_MASK)
    assert client.wait_connected(), "no publisher of semantic/color_mask"
    for image in frames:
        stamp = None
        for _ in range(10):  # the node's publisher may see the new subscription a moment after this side matched
            stamp = client.publish("", image)
            if client.spin_until(lambda s=stamp: client.has("", COLOR_MASK, s) and client.has("", MASK, s), 5):
                break
        colours, mask = client.received[("", COLOR_MASK)][stamp], client.received[("", MASK)][stamp]
        assert colours.encoding == "rgb8" and colours.step == 3 * colours.width
        assert stamp_ns(colours.header) == stamp and colours.header.frame_id == mask.header.frame_id
        rgb = np.frombuffer(colours.data, np.uint8).reshape(colours.height, colours.width, 3)
        np.testing.assert_array_equal(rgb, TRAIN_ID_COLORS[mono8_array(mask)])
    status = _diagnostics(client, "seg_raw", lambda s: int(s.get("sent_semantic_color_mask", 0)) >= len(frames))
    assert int(status["sent_semantic_color_mask"]) < int(status["sent_semantic_mask"])


@pytest.mark.parametrize("codec, format_name", [("png", "png"), ("jpeg", "rgb8; jpeg compressed bgr8")])
def test_compressed_frames_give_the_masks_of_raw_frames(raw, compressed, frames, codec, format_name):
    for image in frames:
        expected = _mask_of(raw[1], image_msg(image, 0))
        mask = _mask_of(compressed[1], _compressed(image, codec, 0, format_name), "image/compressed")
        if codec == "png":  # lossless
            np.testing.assert_array_equal(mask, expected)
        else:
            assert np.mean(mask != expected) <= 0.01


def test_undecodable_compressed_data_is_counted_as_bad_input_and_the_node_goes_on(compressed, frames):
    process, client = compressed
    before = _diagnostics(client, "seg_comp")
    bad = {
        "corrupt": _compressed_bytes(np.random.default_rng(0).bytes(5000), "jpeg", 0),
        "encoding": _compressed_bytes(b"\x00" * 64, "16UC1; compressedDepth", 0),
        "empty": _compressed_bytes(b"", "png", 0),
    }
    for reason, msg in bad.items():
        set_stamp(msg.header, client.now_ns())
        client.publish_msg("", msg, "image/compressed")
        counted = _diagnostics(
            client, "seg_comp", lambda s, r=reason: int(s.get(f"bad_{r}", 0)) > int(before.get(f"bad_{r}", 0))
        )
        assert counted["level"] == 1 and "bad input" in counted["message"], counted  # WARN
        _mask_of(client, _compressed(frames[3], "png", 0), "image/compressed")  # the next good frame comes through
    after = _diagnostics(client, "seg_comp")
    assert int(after["bad_frames"]) - int(before["bad_frames"]) == len(bad)
    assert process.process.poll() is None
    assert any("cannot decode the 'jpeg' compressed image" in line for line in process.lines)
