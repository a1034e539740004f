"""Tests for seg_perception.ros.conversions (sensor_msgs/Image <-> numpy), no ROS graph needed."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header

from seg_perception.data.image_encodings import compressed_codec
from seg_perception.ros.camera_info import output_camera_info
from seg_perception.ros.conversions import (
    DEFAULT_MAX_PIXELS,
    BadImageError,
    compressed_to_rgb,
    image_to_rgb,
    mono8_array,
    mono8_msg,
    rgb8_msg,
)

H, W = 3, 4
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def _header() -> Header:
    return Header(stamp=Time(sec=1_700_000_123, nanosec=456_789_012), frame_id="cam_front/optical")


def _make_msg(encoding: str, pixels: np.ndarray, step: int | None = None, extra: int = 0) -> Image:
    """Build an Image from an (H, W, C) or (H, W) uint8 array laid out as `encoding`, by hand."""
    h, w = pixels.shape[:2]
    row = pixels.reshape(h, -1)
    step = row.shape[1] if step is None else step
    raw = bytearray()
    for y in range(h):
        raw += row[y].tobytes() + b"\xee" * (step - row.shape[1])  # 0xEE padding must never leak into output
    raw += b"\xee" * extra
    msg = Image()
    msg.header = _header()
    msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = h, w, encoding, 0, step
    msg.data = array.array("B", bytes(raw))
    return msg


def _rgb_ref() -> np.ndarray:
    """Distinct R, G, B values per pixel: R = 10*y + x, G = 100 + R, B = 200 - R."""
    r = np.arange(H)[:, None] * 10 + np.arange(W)[None, :]
    return np.stack([r, 100 + r, 200 - r], axis=-1).astype(np.uint8)


def _encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Lay RGB out as `encoding` by plain indexing (independent of OpenCV)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    alpha = np.full_like(r, 77)
    return {
        "rgb8": np.stack([r, g, b], -1),
        "bgr8": np.stack([b, g, r], -1),
        "rgba8": np.stack([r, g, b, alpha], -1),
        "bgra8": np.stack([b, g, r, alpha], -1),
    }[encoding]


# ----------------------------------------------------------------------------- image_to_rgb


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("pad", [0, 5])
def test_color_encodings_decode_to_rgb(encoding: str, pad: int) -> None:
    ref = _rgb_ref()
    c = CHANNELS[encoding]
    msg = _make_msg(encoding, _encode(ref, encoding), step=W * c + pad, extra=3)
    out = image_to_rgb(msg)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)


def test_known_pixel_values() -> None:
    # One pixel written byte-by-byte: bgr8 bytes (B=1, G=2, R=3) must read as RGB (3, 2, 1).
    msg = _make_msg("bgr8", np.array([[[1, 2, 3]]], np.uint8))
    assert image_to_rgb(msg)[0, 0].tolist() == [3, 2, 1]
    msg = _make_msg("bgra8", np.array([[[1, 2, 3, 4]]], np.uint8))
    assert image_to_rgb(msg)[0, 0].tolist() == [3, 2, 1]
    msg = _make_msg("rgba8", np.array([[[1, 2, 3, 4]]], np.uint8))
    assert image_to_rgb(msg)[0, 0].tolist() == [1, 2, 3]
    msg = _make_msg("mono8", np.array([[9]], np.uint8))
    assert image_to_rgb(msg)[0, 0].tolist() == [9, 9, 9]


@pytest.mark.parametrize("pad", [0, 3])
def test_mono8_decodes_to_gray_rgb(pad: int) -> None:
    gray = (np.arange(H * W).reshape(H, W) * 17).astype(np.uint8)
    out = image_to_rgb(_make_msg("mono8", gray, step=W + pad))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], gray)


def test_rgb8_is_zero_copy_view_when_unpadded() -> None:
    ref = _rgb_ref()
    msg = _make_msg("rgb8", ref)
    out = image_to_rgb(msg)
    buf = np.frombuffer(msg.data, np.uint8)
    assert np.shares_memory(out, buf)
    assert not out.flags.writeable  # a view of the message: callers must copy before writing
    # Same buffer: a change to the message bytes shows through the view.
    msg.data[0] = 250
    assert out[0, 0, 0] == 250


def test_rgb8_padded_step_is_contiguous_copy() -> None:
    ref = _rgb_ref()
    msg = _make_msg("rgb8", ref, step=3 * W + 4)
    out = image_to_rgb(msg)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref)


def test_converted_encodings_do_not_alias_message() -> None:
    msg = _make_msg("bgr8", _encode(_rgb_ref(), "bgr8"))
    out = image_to_rgb(msg)
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


# ----------------------------------------------------------------------------- bad inputs


def _bad(msg: Image, reason: str, convert=image_to_rgb, **kw) -> BadImageError:
    with pytest.raises(BadImageError) as info:
        convert(msg, **kw)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.reason == reason
    text = str(err)
    assert repr(msg.encoding) in text and f"{msg.width}x{msg.height}" in text and f"step={msg.step}" in text
    return err


@pytest.mark.parametrize("encoding", ["16UC1", "yuv422", "RGB8", "bayer_rggb8", "", "32FC1", "mono16"])
def test_unsupported_encoding(encoding: str) -> None:
    msg = _make_msg("rgb8", _rgb_ref())
    msg.encoding = encoding
    err = _bad(msg, "encoding")
    assert "rgb8" in str(err)  # lists what is supported


@pytest.mark.parametrize(("h", "w"), [(0, 0), (0, 4), (3, 0)])
def test_empty(h: int, w: int) -> None:
    msg = Image(height=h, width=w, encoding="rgb8", step=3 * w)
    _bad(msg, "empty")


def test_step_too_small() -> None:
    msg = _make_msg("rgb8", _rgb_ref())
    msg.step = 3 * W - 1
    _bad(msg, "step")


def test_step_too_small_for_four_channels() -> None:
    msg = _make_msg("bgra8", _encode(_rgb_ref(), "bgra8"))
    msg.step = 3 * W  # enough for rgb8, not for bgra8
    _bad(msg, "step")


@pytest.mark.parametrize("encoding", ["rgb8", "mono8"])
def test_truncated(encoding: str) -> None:
    pixels = _rgb_ref() if encoding == "rgb8" else _rgb_ref()[..., 0]
    msg = _make_msg(encoding, pixels)
    msg.data = array.array("B", bytes(msg.data)[:-1])
    _bad(msg, "truncated")


def test_truncated_by_padded_step() -> None:
    msg = _make_msg("rgb8", _rgb_ref())
    msg.step = 3 * W + 2  # claims padding the data does not have
    _bad(msg, "truncated")


def test_too_large_is_checked_before_data() -> None:
    # 8192 x 8192 with no data: rejected for size without touching the (missing) buffer.
    msg = Image(height=8192, width=8192, encoding="mono8", step=8192)
    assert 8192 * 8192 > DEFAULT_MAX_PIXELS
    _bad(msg, "too_large")


def test_max_pixels_parameter() -> None:
    msg = _make_msg("rgb8", _rgb_ref())
    _bad(msg, "too_large", max_pixels=H * W - 1)
    assert image_to_rgb(msg, max_pixels=H * W).shape == (H, W, 3)


def test_reasons_are_declared() -> None:
    assert set(BadImageError.REASONS) >= {"encoding", "size", "step", "truncated", "empty", "too_large", "corrupt"}


# ----------------------------------------------------------------------------- compressed input


def _compressed(data: bytes, format_name: str) -> CompressedImage:
    msg = CompressedImage(header=_header(), format=format_name)
    msg.data = array.array("B", data)
    return msg


def _encoded(image: np.ndarray, codec: str) -> bytes:
    ok, encoded = cv2.imencode(f".{codec}", image[..., ::-1])  # image_transport compresses bgr8
    assert ok
    return encoded.tobytes()


@pytest.mark.parametrize(
    ("format_name", "codec"),
    [
        ("jpeg", "jpeg"),
        ("png", "png"),
        ("PNG", "png"),
        ("rgb8; jpeg compressed bgr8", "jpeg"),
        ("bgr8; png compressed bgr8", "png"),
        ("mono8; jpeg compressed mono8", "jpeg"),
        ("16UC1; compressedDepth png", None),
        ("16UC1; compressedDepth", None),
        ("theora", None),
        ("", None),
    ],
)
def test_compressed_codec_reads_plain_and_image_transport_formats(format_name, codec):
    assert compressed_codec(format_name) == codec


def test_png_decodes_to_the_exact_rgb_pixels():
    rgb = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        compressed_to_rgb(_compressed(_encoded(rgb, "png"), "rgb8; png compressed bgr8")), rgb
    )


def test_jpeg_decodes_to_nearly_the_rgb_pixels():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 40  # a flat colour survives JPEG almost exactly, channel order included
    out = compressed_to_rgb(_compressed(_encoded(rgb, "jpeg"), "jpeg"))
    assert out.shape == (16, 16, 3) and np.abs(out.astype(int) - rgb).max() <= 3


def test_grey_png_decodes_to_grey_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    _, encoded = cv2.imencode(".png", grey)
    out = compressed_to_rgb(_compressed(encoded.tobytes(), "mono8; png compressed mono8"))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))


def _bad_compressed(msg: CompressedImage, reason: str, **kw) -> None:
    with pytest.raises(BadImageError) as info:
        compressed_to_rgb(msg, **kw)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("data", "format_name", "reason"),
    [
        (np.random.default_rng(0).bytes(2000), "jpeg", "corrupt"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "png", "corrupt"),
        (b"", "jpeg", "empty"),
        (bytes(10), "16UC1; compressedDepth", "encoding"),
    ],
)
def test_bad_compressed_images_raise_bad_image_error(data, format_name, reason):
    _bad_compressed(_compressed(data, format_name), reason)


def test_compressed_max_pixels():
    msg = _compressed(_encoded(np.zeros((H, W, 3), np.uint8), "png"), "png")
    _bad_compressed(msg, "too_large", max_pixels=H * W - 1)
    assert compressed_to_rgb(msg, max_pixels=H * W).shape == (H, W, 3)


# ----------------------------------------------------------------------------- camera_info


def _camera_info() -> CameraInfo:
    info = CameraInfo(header=Header(frame_id="from_the_camera"), height=600, width=800, distortion_model="plumb_bob")
    info.d = [-0.1, 0.01, 0.0, 0.0, 0.002]
    info.k = [700.0, 0.5, 401.5, 0.0, 710.0, 299.25, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [690.0, 0.0, 400.0, -69.0, 0.0, 705.0, 300.0, 3.5, 0.0, 0.0, 1.0, 0.0]
    info.binning_x, info.binning_y = 1, 1
    info.roi = RegionOfInterest(x_offset=80, y_offset=60, height=300, width=410, do_rectify=True)
    return info


def test_camera_info_at_the_input_resolution_changes_only_the_header():
    info = _camera_info()
    out = output_camera_info(info, _header(), (600, 800), (600, 800))
    _assert_header_equal(out.header, _header())
    out.header = info.header
    assert out == info


def test_camera_info_of_a_letterboxed_model_resolution_scales_x_and_y_apart():
    info = _camera_info()
    sx, sy = 341 / 800, 256 / 600  # an 800x600 frame letterboxed into 256x512: its region is 256 x 341
    out = output_camera_info(info, _header(), (600, 800), (256, 341))
    assert (out.height, out.width) == (256, 341)
    k = [700.0 * sx, 0.5 * sx, 401.5 * sx, 0.0, 710.0 * sy, 299.25 * sy, 0.0, 0.0, 1.0]
    p = [690.0 * sx, 0.0, 400.0 * sx, -69.0 * sx, 0.0, 705.0 * sy, 300.0 * sy, 3.5 * sy, 0.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(out.k, k, rtol=1e-12)
    np.testing.assert_allclose(out.p, p, rtol=1e-12)
    roi = out.roi
    assert (roi.x_offset, roi.y_offset, roi.height, roi.width, roi.do_rectify) == (34, 26, 128, 175, True)
    assert list(out.d) == list(info.d) and list(out.r) == list(info.r) and (out.binning_x, out.binning_y) == (1, 1)
    assert info.k[0] == 700.0 and info.height == 600  # the input message is left as it was


# ----------------------------------------------------------------------------- outputs


def _assert_header_equal(out: Header, ref: Header) -> None:
    assert out.stamp.sec == ref.stamp.sec and out.stamp.nanosec == ref.stamp.nanosec
    assert out.frame_id == ref.frame_id
    assert out == ref


def test_mono8_msg_fields_and_round_trip() -> None:
    hdr = _header()
    mask = (np.arange(5 * 7).reshape(5, 7) % 19).astype(np.uint8)
    mask[0, 0] = 255
    msg = mono8_msg(mask, hdr)
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian) == (5, 7, "mono8", 7, 0)
    _assert_header_equal(msg.header, hdr)
    assert msg.header is not hdr  # a copy: later edits to the input header do not leak in
    assert bytes(msg.data) == mask.tobytes()
    np.testing.assert_array_equal(image_to_rgb(msg)[..., 1], mask)


def test_rgb8_msg_fields_and_round_trip() -> None:
    hdr = _header()
    ref = _rgb_ref()
    msg = rgb8_msg(ref, hdr)
    assert (msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian) == (H, W, "rgb8", 3 * W, 0)
    _assert_header_equal(msg.header, hdr)
    assert len(msg.data) == H * W * 3
    assert bytes(msg.data[:3]) == bytes(ref[0, 0])
    np.testing.assert_array_equal(image_to_rgb(msg), ref)


def test_output_copies_data_and_accepts_non_contiguous() -> None:
    ref = _rgb_ref()
    flipped = ref[:, ::-1]  # non-contiguous view
    msg = rgb8_msg(flipped, _header())
    np.testing.assert_array_equal(image_to_rgb(msg), flipped)
    mask = np.zeros((4, 6), np.uint8)
    msg = mono8_msg(mask[:, ::2], _header())
    assert msg.step == 3 and len(msg.data) == 12
    mask[:] = 9  # later edits to the source array do not affect the message
    assert bytes(msg.data) == bytes(12)


@pytest.mark.parametrize(
    ("fn", "arr"),
    [
        (mono8_msg, np.zeros((2, 2, 1), np.uint8)),
        (mono8_msg, np.zeros((2, 2), np.uint16)),
        (rgb8_msg, np.zeros((2, 2), np.uint8)),
        (rgb8_msg, np.zeros((2, 2, 4), np.uint8)),
        (rgb8_msg, np.zeros((2, 2, 3), np.float32)),
    ],
)
def test_output_rejects_wrong_shape_or_dtype(fn, arr) -> None:
    with pytest.raises(BadImageError) as info:
        fn(arr, _header())
    assert info.value.reason == "size"


def test_output_rejects_empty() -> None:
    with pytest.raises(BadImageError) as info:
        mono8_msg(np.zeros((0, 5), np.uint8), _header())
    assert info.value.reason == "empty"


def test_full_resolution_mask_completes() -> None:
    # 1024x2048 Cityscapes-size mask through the fast path (no timing assertion; see DESIGN budgets).
    mask = np.random.default_rng(0).integers(0, 19, size=(1024, 2048), dtype=np.uint8)
    msg = mono8_msg(mask, _header())
    assert (msg.height, msg.width, msg.step) == (1024, 2048, 2048)
    assert isinstance(msg.data, array.array) and len(msg.data) == 1024 * 2048
    back = np.frombuffer(msg.data, np.uint8).reshape(1024, 2048)
    np.testing.assert_array_equal(back, mask)


# ----------------------------------------------------------------------------- mono8_array (mono8_msg inverse)


def test_mono8_array_inverts_mono8_msg_as_a_read_only_view() -> None:
    mask = (np.arange(5 * 7).reshape(5, 7) % 19).astype(np.uint8)
    mask[0, 0] = 255
    msg = mono8_msg(mask, _header())
    out = mono8_array(msg)
    assert out.shape == (5, 7) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, mask)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8)) and not out.flags.writeable


def test_mono8_array_honours_step() -> None:
    # rows 0..2 = [0 1 2 3], [10 11 12 13], [20 21 22 23], each followed by 5 padding bytes 0xEE, 2 trailing bytes
    mask = (np.arange(H)[:, None] * 10 + np.arange(W)[None, :]).astype(np.uint8)
    msg = _make_msg("mono8", mask, step=W + 5, extra=2)
    out = mono8_array(msg)
    assert out.shape == (H, W) and out.flags.c_contiguous
    assert out.tolist() == [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "16UC1", "MONO8", ""])
def test_mono8_array_rejects_other_encodings(encoding: str) -> None:
    msg = _make_msg("mono8", np.zeros((H, W), np.uint8))
    msg.encoding = encoding
    assert "mono8" in str(_bad(msg, "encoding", mono8_array))


def test_mono8_array_rejects_bad_geometry_and_data() -> None:
    _bad(Image(height=0, width=W, encoding="mono8", step=W), "empty", mono8_array)
    _bad(Image(height=8192, width=8192, encoding="mono8", step=8192), "too_large", mono8_array)
    msg = _make_msg("mono8", np.zeros((H, W), np.uint8))
    msg.step = W - 1
    _bad(msg, "step", mono8_array)
    msg = _make_msg("mono8", np.zeros((H, W), np.uint8))
    msg.data = array.array("B", bytes(H * W - 1))
    _bad(msg, "truncated", mono8_array)
    msg = _make_msg("mono8", np.zeros((H, W), np.uint8))
    msg.step = W + 1  # claims padding the data does not have
    _bad(msg, "truncated", mono8_array)


def test_mono16_round_trip_little_endian():
    from seg_perception.ros.conversions import mono16_array, mono16_msg

    ids = np.array([[0, 1, 258], [65535, 7, 0]], np.uint16)
    msg = mono16_msg(ids, Header(frame_id="cam"))
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ("mono16", 2, 3, 6, 0)
    assert bytes(msg.data)[:6] == bytes([0, 0, 1, 0, 2, 1])  # 258 = 0x0102, low byte first
    assert mono16_array(msg).tolist() == ids.tolist() and msg.header.frame_id == "cam"
    with pytest.raises(BadImageError, match="uint16"):
        mono16_msg(ids.astype(np.int32), Header())
    msg.is_bigendian = 1
    with pytest.raises(BadImageError, match="little-endian mono16"):
        mono16_array(msg)
