"""Cityscapes-format reader: loading, derived targets (checked against the official
createPanopticImgs), and clear errors on bad input."""

import json

import cv2
import numpy as np
import pytest
from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

from seg_perception.data import cityscapes, layout
from seg_perception.labels import LABEL_BY_NAME

ROAD, SKY, CAR, PERSON, CARAVAN, EGO = (
    LABEL_BY_NAME[n].id for n in ("road", "sky", "car", "person", "caravan", "ego vehicle")
)
H, W = 24, 40


def _instance_ids(shift: int) -> np.ndarray:
    """A frame: sky on top, road below, two cars, a person, a car crowd, a caravan, ego hood."""
    ids = np.full((H, W), SKY, np.int32)
    ids[10:] = ROAD
    ids[12:18, 2 + shift : 10 + shift] = CAR * 1000
    ids[13:17, 12:20] = CAR * 1000 + 1
    ids[8:20, 22:25] = PERSON * 1000
    ids[14:18, 26:32] = CAR  # a group of cars without instance ids: crowd
    ids[11:15, 33:38] = CARAVAN * 1000  # instance of a class ignored in evaluation: void
    ids[21:] = EGO
    return ids


def _write_frame(root, split, stem, instance_ids, image=None):
    label_ids = np.where(instance_ids >= 1000, instance_ids // 1000, instance_ids).astype(np.uint8)
    for path in (layout.image_path(root, split, stem), layout.gt_path(root, split, stem, "labelIds")):
        path.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8)
    cv2.imwrite(str(layout.image_path(root, split, stem)), image[..., ::-1])
    cv2.imwrite(str(layout.gt_path(root, split, stem, "labelIds")), label_ids)
    cv2.imwrite(str(layout.gt_path(root, split, stem, "instanceIds")), instance_ids.astype(np.uint16))
    return image, label_ids


@pytest.fixture
def root(tmp_path):
    for frame, shift in ((19, 0), (20, 3)):
        _write_frame(tmp_path, "val", layout.frame_stem("aachen", 1, frame), _instance_ids(shift))
    _write_frame(tmp_path, "val", layout.frame_stem("bonn", 0, 5), _instance_ids(1))
    camera = layout.camera_path(tmp_path, "val", "aachen_000001_000019")
    camera.parent.mkdir(parents=True)
    camera.write_text(
        json.dumps(
            {
                "extrinsic": {"pitch": 0.04, "z": 1.2},
                "intrinsic": {"fx": 2262.5, "fy": 2265.3, "u0": 1096.9, "v0": 513.1},
            }
        )
    )
    return tmp_path


def test_dataset_lists_and_loads_frames(root):
    dataset = cityscapes.CityscapesDataset(root, "val")
    assert [s.stem for s in dataset.samples] == ["aachen_000001_000019", "aachen_000001_000020", "bonn_000000_000005"]
    assert len(cityscapes.CityscapesDataset(root, "val", cities=["bonn"])) == 1
    frame = dataset[1]
    expected_ids = _instance_ids(3)
    assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
    np.testing.assert_array_equal(frame.instance_ids, expected_ids)
    np.testing.assert_array_equal(frame.label_ids, np.where(expected_ids >= 1000, expected_ids // 1000, expected_ids))
    assert frame.train_ids[0, 0] == 10 and frame.train_ids[23, 0] == 255  # sky, ego vehicle
    assert frame.camera is None
    image, _ = _write_frame(root, "val", "aachen_000001_000019", _instance_ids(0))
    first = dataset[0]
    np.testing.assert_array_equal(first.image, image)  # RGB, not BGR
    assert first.camera.fx == 2262.5 and first.camera.extrinsic["z"] == 1.2
    np.testing.assert_allclose(first.camera.matrix[:2, 2], [1096.9, 513.1])


def test_instance_targets_keep_crowd_and_void_apart():
    ids = _instance_ids(0)
    targets = cityscapes.instance_targets(ids)
    assert targets.instance_ids.tolist() == [PERSON * 1000, CAR * 1000, CAR * 1000 + 1]
    assert targets.train_ids.tolist() == [11, 13, 13]
    assert targets.boxes.tolist() == [[22, 8, 25, 20], [2, 12, 10, 18], [12, 13, 20, 17]]
    assert targets.masks.shape == (3, H, W) and targets.masks[1].sum() == 6 * 8
    assert targets.crowd_mask.sum() == 4 * 6
    assert targets.void_mask.sum() == 4 * 5 + 3 * W  # caravan + ego vehicle


def test_panoptic_target_equals_official_create_panoptic_imgs(root, tmp_path):
    (tmp_path / "pan").mkdir()
    convert2panoptic(str(root / "gtFine"), str(tmp_path / "pan"), setNames=["val"])
    official = json.loads((tmp_path / "pan" / "cityscapes_panoptic_val.json").read_text())
    dataset = cityscapes.CityscapesDataset(root, "val")
    for annotation in official["annotations"]:
        png = cv2.imread(str(tmp_path / "pan" / "cityscapes_panoptic_val" / annotation["file_name"]))[..., ::-1].astype(
            np.int32
        )
        official_ids = png[..., 0] + 256 * png[..., 1] + 256 * 256 * png[..., 2]
        frame = dataset[[s.stem for s in dataset.samples].index(annotation["image_id"])]
        target = cityscapes.panoptic_target(frame.instance_ids)
        np.testing.assert_array_equal(target.segment_ids, official_ids)
        key = lambda s: s["id"]  # noqa: E731
        assert sorted(target.segments, key=key) == sorted(annotation["segments_info"], key=key)


def test_polygons_are_read_in_drawing_order(tmp_path):
    path = tmp_path / "x_gtFine_polygons.json"
    objects = [
        {"label": "road", "polygon": [[0, 0], [5, 0], [5, 5]]},
        {"label": "cargroup", "polygon": [[1, 1], [2, 1], [2, 2]]},
        {"label": "car", "polygon": [[0, 0], [1, 1], [0, 1]], "deleted": 1},
    ]
    path.write_text(json.dumps({"imgHeight": 10, "imgWidth": 20, "objects": objects}))
    size, polygons = cityscapes.read_polygons(path)
    assert size == (10, 20)
    assert [name for name, _ in polygons] == ["road", "cargroup"]
    assert polygons[0][1].shape == (3, 2)


@pytest.mark.parametrize(
    ("corrupt", "error", "message"),
    [
        (lambda r, s: layout.gt_path(r, "val", s, "labelIds").unlink(), FileNotFoundError, "missing ground truth"),
        (
            lambda r, s: layout.gt_path(r, "val", s, "labelIds").write_bytes(b"\x89PNG broken"),
            ValueError,
            "not a readable",
        ),
        (
            lambda r, s: cv2.imwrite(str(layout.gt_path(r, "val", s, "labelIds")), np.full((H, W), 40, np.uint8)),
            ValueError,
            "outside the Cityscapes table",
        ),
        (
            lambda r, s: cv2.imwrite(str(layout.gt_path(r, "val", s, "instanceIds")), np.full((H, W), 7007, np.uint16)),
            ValueError,
            "labels without instances",
        ),
        (
            lambda r, s: cv2.imwrite(str(layout.gt_path(r, "val", s, "labelIds")), np.zeros((H + 1, W), np.uint8)),
            ValueError,
            "differs from",
        ),
        (
            lambda r, s: layout.camera_path(r, "val", s).write_text("{not json"),
            ValueError,
            "malformed Cityscapes camera",
        ),
    ],
)
def test_bad_files_raise_errors_naming_the_file(root, corrupt, error, message):
    stem = "aachen_000001_000019"
    corrupt(root, stem)
    with pytest.raises(error, match=message) as info:
        cityscapes.CityscapesDataset(root, "val")[0]
    assert stem in str(info.value)


def test_bad_split_city_or_root_are_clear_errors(root, tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        cityscapes.CityscapesDataset(root, "valid")
    with pytest.raises(ValueError, match=r"unknown cities \['paris'\]"):
        cityscapes.CityscapesDataset(root, "val", cities=["paris"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        cityscapes.CityscapesDataset(tmp_path / "nowhere", "val")


def test_torch_dataset_gives_detection_and_semantic_tensors(root):
    import torch

    from seg_perception.data.torch_dataset import CityscapesTorchDataset

    dataset = CityscapesTorchDataset(root, "val", cities=["aachen"], with_instances=True)
    sample = dataset[0]
    assert len(dataset) == 2 and sample["stem"] == "aachen_000001_000019"
    assert sample["image"].shape == (3, H, W) and sample["image"].dtype == torch.uint8
    assert sample["semantic"].dtype == torch.int64 and int(sample["semantic"][0, 0]) == 10
    instances = sample["instances"]
    assert instances["labels"].tolist() == [11, 13, 13]
    assert instances["boxes"].tolist()[1] == [2.0, 12.0, 10.0, 18.0]
    assert instances["masks"].shape == (3, H, W) and int(instances["masks"][1].sum()) == 48


def test_torch_dataset_sets_crowd_pixels_to_ignore_when_asked(root):
    from seg_perception.data.torch_dataset import CityscapesTorchDataset

    kept = CityscapesTorchDataset(root, "val", cities=["aachen"], with_instances=True)[0]["semantic"]
    ignored = CityscapesTorchDataset(root, "val", cities=["aachen"], with_instances=True, crowd_ignored=True)[0]
    assert kept[14:18, 26:32].unique().tolist() == [13]  # the car group: car pixels in the plain target
    assert ignored["semantic"][14:18, 26:32].unique().tolist() == [255]
    changed = kept != ignored["semantic"]
    assert int(changed.sum()) == 4 * 6  # only the crowd pixels
