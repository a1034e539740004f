"""Pre- and post-processing of the ROS-free pipeline (model_input.py, pipeline/postprocess.py). Expected
values are worked out by hand on tiny arrays or by an independent computation in the test (OpenCV / numpy
directly), never by the code under test.
"""

import cv2
import numpy as np
import pytest

from seg_perception.model_input import InputMapping, fit_image, normalize_batch, normalize_image
from seg_perception.pipeline.postprocess import (
    argmax_channels,
    colour_mask,
    colour_overlay,
    drivable_mask,
    labels_to_input,
    outline_instances,
)

PAD = (124, 116, 104)  # round(255 * ImageNet mean), the shipped model's letterbox padding


# -- pre-processing ------------------------------------------------------------------------------------------


def _random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_fit_image_resize_is_a_plain_bilinear_resize_over_the_full_input():
    image = _random_image(37, 53)
    fitted, mapping = fit_image(image, (64, 96), "resize", PAD)
    np.testing.assert_array_equal(fitted, cv2.resize(image, (96, 64), interpolation=cv2.INTER_LINEAR))
    assert mapping == InputMapping(input_size=(37, 53), model_size=(64, 96), region=(0, 0, 64, 96))


@pytest.mark.parametrize(
    ("source", "interpolation"),
    [((128, 256), cv2.INTER_AREA), ((131, 301), cv2.INTER_AREA), ((127, 200), cv2.INTER_LINEAR)],
)
def test_fit_image_averages_pixel_areas_for_downscales_of_two_and_more(source, interpolation):
    image = _random_image(*source, seed=3)
    fitted, _ = fit_image(image, (64, 128), "resize", PAD)
    np.testing.assert_array_equal(fitted, cv2.resize(image, (128, 64), interpolation=interpolation))


def test_fit_image_halves_large_even_frames_first_within_one_grey_level_of_block_averages():
    image = _random_image(256, 512, seed=4)
    fitted, _ = fit_image(image, (64, 128), "resize", PAD)
    blocks = image.reshape(64, 4, 128, 4, 3).mean(axis=(1, 3))  # the exact 4 x 4 pixel averages
    assert np.abs(fitted.astype(float) - blocks).max() <= 1.0
    half = cv2.resize(image, (256, 128), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(fitted, cv2.resize(half, (128, 64), interpolation=cv2.INTER_AREA))


def test_fit_image_letterbox_of_a_wide_frame_pads_top_and_bottom():
    image = _random_image(100, 400, seed=1)
    fitted, mapping = fit_image(image, (256, 512), "letterbox", PAD)
    # scale = min(256 / 100, 512 / 400) = 1.28 -> 128 x 512, centred: top (256 - 128) / 2 = 64
    assert fitted.shape == (256, 512, 3) and fitted.dtype == np.uint8
    assert mapping == InputMapping(input_size=(100, 400), model_size=(256, 512), region=(64, 0, 128, 512))
    np.testing.assert_array_equal(fitted[64:192], cv2.resize(image, (512, 128), interpolation=cv2.INTER_LINEAR))
    assert (fitted[:64] == PAD).all() and (fitted[192:] == PAD).all()


def test_fit_image_letterbox_of_a_tall_frame_pads_left_and_right():
    image = _random_image(300, 100, seed=2)
    fitted, mapping = fit_image(image, (256, 512), "letterbox", PAD)
    # scale = min(256 / 300, 512 / 100) = 0.8533 -> 256 x round(85.33) = 85, left (512 - 85) // 2 = 213
    assert mapping == InputMapping(input_size=(300, 100), model_size=(256, 512), region=(0, 213, 256, 85))
    np.testing.assert_array_equal(fitted[:, 213:298], cv2.resize(image, (85, 256), interpolation=cv2.INTER_LINEAR))
    assert (fitted[:, :213] == PAD).all() and (fitted[:, 298:] == PAD).all()


@pytest.mark.parametrize("mode", ["resize", "letterbox"])
def test_fit_image_of_a_frame_already_at_size_is_unchanged(mode):
    image = _random_image(32, 48, seed=3)
    fitted, mapping = fit_image(image, (32, 48), mode, PAD)
    np.testing.assert_array_equal(fitted, image)
    assert mapping == InputMapping(input_size=(32, 48), model_size=(32, 48), region=(0, 0, 32, 48))


def test_fit_image_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="stretch"):
        fit_image(_random_image(4, 4), (8, 8), "stretch", PAD)


def test_normalize_batch_hand_computed():
    image = np.array([[[0, 0, 0], [255, 255, 255]], [[51, 102, 153], [255, 0, 51]]], np.uint8)
    out = normalize_batch([image], mean=(0.5, 0.4, 0.2), std=(0.5, 0.2, 0.4))
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    # (x / 255 - mean) / std per channel, pixels (0,0) (0,1) / (1,0) (1,1)
    expected = [
        [[-1.0, 1.0], [-0.6, 1.0]],  # R: mean 0.5, std 0.5
        [[-2.0, 3.0], [0.0, -2.0]],  # G: mean 0.4, std 0.2
        [[-0.5, 2.0], [1.0, 0.0]],  # B: mean 0.2, std 0.4
    ]
    np.testing.assert_allclose(out[0], expected, atol=1e-5)


def test_normalize_batch_stacks_frames_in_order():
    first, second = _random_image(3, 5, seed=4), _random_image(3, 5, seed=5)
    out = normalize_batch([first, second], mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert out.shape == (2, 3, 3, 5) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[1], second.transpose(2, 0, 1) / 255.0, atol=1e-6)
    np.testing.assert_allclose(out[0], first.transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_normalize_image_is_a_normalised_bilinear_resize():
    image = _random_image(30, 50, seed=6)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    out = normalize_image(image, (16, 40), mean, std)
    assert out.shape == (1, 3, 16, 40) and out.dtype == np.float32
    resized = cv2.resize(image, (40, 16), interpolation=cv2.INTER_LINEAR).astype(np.float64) / 255.0
    expected = ((resized - mean) / std).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(out, expected, atol=1e-5)


# -- post-processing -----------------------------------------------------------------------------------------

LABELS_4X4 = np.arange(16, dtype=np.uint8).reshape(4, 4)
"""[[0 1 2 3] [4 5 6 7] [8 9 10 11] [12 13 14 15]]"""


def test_letterbox_mapping_of_a_tiny_frame():
    # a 4x8 frame letterboxed into 4x4: scale 0.5 -> 2x4 at top 1
    _, mapping = fit_image(np.zeros((4, 8, 3), np.uint8), (4, 4), "letterbox", PAD)
    assert mapping == InputMapping(input_size=(4, 8), model_size=(4, 4), region=(1, 0, 2, 4))


def test_labels_to_input_crops_the_region_then_resizes_nearest():
    mapping = InputMapping(input_size=(4, 8), model_size=(4, 4), region=(1, 0, 2, 4))
    full = labels_to_input(LABELS_4X4, mapping)
    assert full.dtype == np.uint8
    assert full.tolist() == [
        [4, 4, 5, 5, 6, 6, 7, 7],
        [4, 4, 5, 5, 6, 6, 7, 7],
        [8, 8, 9, 9, 10, 10, 11, 11],
        [8, 8, 9, 9, 10, 10, 11, 11],
    ]
    assert labels_to_input(LABELS_4X4, mapping, full_size=False).tolist() == [[4, 5, 6, 7], [8, 9, 10, 11]]


def test_labels_to_input_of_a_pillarbox_region_at_its_size():
    mapping = InputMapping(input_size=(4, 2), model_size=(4, 4), region=(0, 1, 4, 2))
    out = labels_to_input(LABELS_4X4, mapping)
    assert out.tolist() == [[1, 2], [5, 6], [9, 10], [13, 14]] and out.flags.c_contiguous


def test_labels_to_input_of_a_full_region():
    mapping = InputMapping(input_size=(2, 2), model_size=(4, 4), region=(0, 0, 4, 4))
    assert labels_to_input(LABELS_4X4, mapping, full_size=False).tolist() == LABELS_4X4.tolist()
    # 4 -> 2 nearest: OpenCV takes source index floor(2 * i): rows/cols 0 and 2
    assert labels_to_input(LABELS_4X4, mapping).tolist() == [[0, 2], [8, 10]]


def test_drivable_mask_is_255_exactly_on_the_listed_ids():
    labels = np.array([[0, 1, 2], [255, 0, 13], [9, 18, 254]], np.uint8)
    road = drivable_mask(labels, (0,))
    assert road.dtype == np.uint8 and road.shape == (3, 3)
    assert road.tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 0]]
    assert drivable_mask(labels, (0, 13, 9)).tolist() == [[255, 0, 0], [0, 255, 255], [255, 0, 0]]


LABELS_2X3 = np.array([[0, 1, 255], [13, 255, 18]], np.uint8)
COLOURS = {0: (128, 64, 128), 1: (244, 35, 232), 13: (0, 0, 142), 18: (119, 11, 32)}  # Cityscapes table


def test_colour_overlay_alpha_0_returns_the_image():
    image = _random_image(2, 3, seed=7)
    np.testing.assert_array_equal(colour_overlay(image, LABELS_2X3, 0.0), image)


def test_colour_overlay_alpha_1_gives_class_colours_and_keeps_unlabeled_pixels():
    image = _random_image(2, 3, seed=8)
    out = colour_overlay(image, LABELS_2X3, 1.0)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    for y, x in np.ndindex(2, 3):
        label = int(LABELS_2X3[y, x])
        expected = image[y, x].tolist() if label == 255 else list(COLOURS[label])
        assert out[y, x].tolist() == expected, (y, x, label)


def test_colour_mask_is_the_class_colour_of_every_pixel_and_black_where_unlabeled():
    out = colour_mask(LABELS_2X3)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    for y, x in np.ndindex(2, 3):
        label = int(LABELS_2X3[y, x])
        assert out[y, x].tolist() == list(COLOURS.get(label, (0, 0, 0))), (y, x, label)


def test_colour_overlay_half_blends():
    image = _random_image(2, 3, seed=9)
    out = colour_overlay(image, LABELS_2X3, 0.5).astype(int)
    for y, x in np.ndindex(2, 3):
        label = int(LABELS_2X3[y, x])
        expected = image[y, x].astype(int) if label == 255 else (image[y, x].astype(int) + COLOURS[label]) / 2
        assert np.abs(out[y, x] - expected).max() <= 1, (y, x)


def test_outline_instances_paints_the_boundary_pixels_of_each_instance():
    ids = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 2, 2],
            [0, 1, 1, 1, 2, 2],
        ],
        np.uint16,
    )
    overlay = np.zeros((4, 6, 3), np.uint8)
    outlined = outline_instances(overlay, ids)[..., 0] == 255
    # a pixel is outlined when a 4-neighbour holds another id; beyond the image edge counts as the pixel itself, so
    # (2, 2) and (3, 2) of instance 1 and (3, 5) of instance 2 are inside
    assert outlined.astype(int).tolist() == [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 0, 1, 1, 1],
        [0, 1, 0, 1, 1, 0],
    ]
    assert not overlay.any()  # a new array


def test_colour_overlay_resizes_a_smaller_image_to_the_labels():
    image = _random_image(2, 3, seed=10)
    labels = np.repeat(np.repeat(LABELS_2X3, 2, axis=0), 2, axis=1)  # 4 x 6
    resized = cv2.resize(image, (6, 4), interpolation=cv2.INTER_LINEAR)
    out = colour_overlay(image, labels, 0.0)
    assert out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out, resized)
    out = colour_overlay(image, labels, 1.0)
    unlabeled = labels == 255
    np.testing.assert_array_equal(out[unlabeled], resized[unlabeled])
    np.testing.assert_array_equal(out[labels == 13], np.tile((0, 0, 142), ((labels == 13).sum(), 1)))


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 2), (2, 1), (1, 5), (3, 4)])
def test_argmax_channels_equals_numpy_on_tiny_maps(height, width):
    # OpenCV's Python binding reads a 1x1 array as a scalar: the 1x1 case gave wrong labels before
    logits = np.random.default_rng(height * 10 + width).normal(size=(19, height, width)).astype(np.float32)
    assert argmax_channels(logits).tolist() == logits.argmax(0).tolist()
    logits[3] = logits[7] = logits.max(0) + 1  # a tie: the first channel wins, as in numpy
    assert argmax_channels(logits).tolist() == [[3] * width] * height


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 2), (2, 1)])
@pytest.mark.parametrize("label", [13, 255])
def test_colour_overlay_of_tiny_frames(height, width, label):
    # a 1x1 frame failed in cv2.compare (size mismatch) when the overlay was subscribed
    image = _random_image(height, width, seed=11)
    labels = np.full((height, width), label, np.uint8)
    out = colour_overlay(image, labels, 1.0)
    expected = image if label == 255 else np.tile(COLOURS[13], (height, width, 1))
    assert out.shape == (height, width, 3) and out.tolist() == expected.tolist()
