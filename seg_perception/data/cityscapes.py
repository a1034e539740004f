"""Cityscapes-format reader (numpy + OpenCV; no torch, no ROS).

Reads ``leftImg8bit`` images and ``gtFine`` labelIds / instanceIds / polygons for any split and
city of a Cityscapes-layout root (real Cityscapes or ``seg-synth`` output), and derives the
targets the models and evaluators need: train ids, instance targets (with crowd and void kept
so evaluation can ignore them), panoptic targets (as the official ``createPanopticImgs``) and
camera intrinsics from ``camera/`` JSON. Every error names the file and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_perception.data import layout
from seg_perception.labels import (
    INSTANCE_ID_DIVISOR,
    LABEL_BY_ID,
    LABEL_BY_NAME,
    NUM_LABEL_IDS,
    instance_label_ids,
    label_ids_to_train_ids,
)


@dataclass(frozen=True)
class CameraCalibration:
    """Pinhole intrinsics (pixels) and the extrinsic pose of a Cityscapes ``camera.json``."""

    fx: float
    fy: float
    u0: float
    v0: float
    extrinsic: dict[str, float]

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) float64 camera matrix K."""
        return np.array([[self.fx, 0.0, self.u0], [0.0, self.fy, self.v0], [0.0, 0.0, 1.0]])


@dataclass
class InstanceTargets:
    """Per-instance targets of one frame (N instances, image H x W)."""

    masks: np.ndarray  # (N, H, W) bool
    boxes: np.ndarray  # (N, 4) float32 x0, y0, x1, y1 (x1/y1 exclusive, pixel edges)
    label_ids: np.ndarray  # (N,) int64 Cityscapes label ids
    train_ids: np.ndarray  # (N,) int64
    instance_ids: np.ndarray  # (N,) int64 the instanceIds values (label_id * 1000 + k)
    crowd_mask: np.ndarray  # (H, W) bool: thing-class pixels without an instance id (groups)
    void_mask: np.ndarray  # (H, W) bool: pixels of labels ignored in evaluation


@dataclass
class PanopticTarget:
    """Panoptic ground truth as the official ``createPanopticImgs`` builds it."""

    segment_ids: np.ndarray  # (H, W) int32, 0 = void
    segments: list[dict]  # {"id", "category_id" (label id), "iscrowd", "area", "bbox" [x, y, w, h]}


@dataclass
class CityscapesSample:
    """Paths of one frame; gt paths are None where the split has no ground truth on disk."""

    stem: str
    split: str
    image: Path
    label_ids: Path | None
    instance_ids: Path | None
    polygons: Path | None
    camera: Path | None

    @property
    def city(self) -> str:
        return layout.city_of(self.stem)


@dataclass
class CityscapesFrame:
    """One loaded frame: image (H, W, 3) uint8 RGB and its ground truth (None if absent)."""

    sample: CityscapesSample
    image: np.ndarray
    label_ids: np.ndarray | None  # (H, W) uint8
    instance_ids: np.ndarray | None  # (H, W) int32
    camera: CameraCalibration | None

    @property
    def train_ids(self) -> np.ndarray | None:
        """(H, W) uint8 train ids, 255 = ignore."""
        return None if self.label_ids is None else label_ids_to_train_ids(self.label_ids)


class CityscapesDataset:
    """The frames of one split of a Cityscapes-layout root, sorted by stem.

    ``cities`` limits the frames to those cities; ``require_gt`` makes a frame without its
    labelIds/instanceIds an error (the default for train/val).
    """

    def __init__(self, root: Path | str, split: str, cities: list[str] | None = None, require_gt: bool = True):
        self.root = Path(root)
        self.split = split
        if split not in layout.SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {layout.SPLITS}")
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            raise FileNotFoundError(f"{image_dir}: no such folder (is {self.root} a Cityscapes-layout root?)")
        available = sorted(p.name for p in image_dir.iterdir() if p.is_dir())
        unknown = sorted(set(cities or []) - set(available))
        if unknown:
            raise ValueError(f"unknown cities {unknown} in {image_dir}; available: {available}")
        self.cities = list(cities) if cities else available
        self.samples = [
            self._sample(path, require_gt)
            for city in self.cities
            for path in sorted((image_dir / city).glob("*_leftImg8bit.png"))
        ]
        if not self.samples:
            raise FileNotFoundError(f"{image_dir}: no *_leftImg8bit.png images for cities {self.cities}")

    def _sample(self, image: Path, require_gt: bool) -> CityscapesSample:
        stem = layout.stem_of(image)
        gt = {
            kind: layout.gt_path(self.root, self.split, stem, kind) for kind in ("labelIds", "instanceIds", "polygons")
        }
        camera = layout.camera_path(self.root, self.split, stem)
        if require_gt:
            for kind in ("labelIds", "instanceIds"):
                if not gt[kind].is_file():
                    raise FileNotFoundError(f"{gt[kind]}: missing ground truth for {image}")
        return CityscapesSample(
            stem=stem,
            split=self.split,
            image=image,
            label_ids=gt["labelIds"] if gt["labelIds"].is_file() else None,
            instance_ids=gt["instanceIds"] if gt["instanceIds"].is_file() else None,
            polygons=gt["polygons"] if gt["polygons"].is_file() else None,
            camera=camera if camera.is_file() else None,
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> CityscapesFrame:
        sample = self.samples[index]
        image = read_image(sample.image)
        label_ids = None if sample.label_ids is None else read_label_ids(sample.label_ids)
        instance_ids = None if sample.instance_ids is None else read_instance_ids(sample.instance_ids)
        for path, gt in ((sample.label_ids, label_ids), (sample.instance_ids, instance_ids)):
            if gt is not None and gt.shape != image.shape[:2]:
                raise ValueError(
                    f"{path}: size {gt.shape[::-1]} differs from image {sample.image} {image.shape[1::-1]}"
                )
        camera = None if sample.camera is None else read_camera(sample.camera)
        return CityscapesFrame(sample, image, label_ids, instance_ids, camera)


def _read_png(path: Path, flags: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise ValueError(f"{path}: not a readable image (corrupt or not a PNG)")
    return image


def read_image(path: Path | str) -> np.ndarray:
    """leftImg8bit PNG -> (H, W, 3) uint8 RGB."""
    image = _read_png(Path(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label_ids(path: Path | str) -> np.ndarray:
    """gtFine labelIds PNG -> (H, W) uint8; raises on ids outside the label table."""
    label_ids = _read_png(Path(path), cv2.IMREAD_UNCHANGED)
    if label_ids.ndim != 2 or label_ids.dtype != np.uint8:
        raise ValueError(
            f"{path}: labelIds must be a single-channel 8-bit PNG, got {label_ids.dtype} {label_ids.shape}"
        )
    if label_ids.max(initial=0) >= NUM_LABEL_IDS:
        raise ValueError(f"{path}: label id {int(label_ids.max())} is outside the Cityscapes table (0..33)")
    return label_ids


def read_instance_ids(path: Path | str) -> np.ndarray:
    """gtFine instanceIds PNG (16-bit) -> (H, W) int32; raises on values outside the label table."""
    instance_ids = _read_png(Path(path), cv2.IMREAD_UNCHANGED)
    if instance_ids.ndim != 2 or instance_ids.dtype not in (np.uint16, np.uint8):
        raise ValueError(f"{path}: instanceIds must be a single-channel 16-bit PNG, got {instance_ids.dtype}")
    instance_ids = instance_ids.astype(np.int32)
    label_ids = instance_label_ids(instance_ids)
    bad = np.unique(label_ids[label_ids >= NUM_LABEL_IDS])
    if bad.size:
        raise ValueError(f"{path}: label ids {bad.tolist()} are outside the Cityscapes table (0..33)")
    instanced = np.unique(label_ids[instance_ids >= INSTANCE_ID_DIVISOR])
    not_things = [int(i) for i in instanced if not LABEL_BY_ID[int(i)].has_instances]
    if not_things:
        raise ValueError(f"{path}: instance ids given to labels without instances: {not_things}")
    return instance_ids


def read_polygons(path: Path | str) -> tuple[tuple[int, int], list[tuple[str, np.ndarray]]]:
    """gtFine polygons JSON -> ((height, width), [(label name, (K, 2) float64 x/y), ...]) in drawing order.

    Deleted objects are skipped; group labels such as ``cargroup`` keep their name.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        size = (int(data["imgHeight"]), int(data["imgWidth"]))
        objects = []
        for index, obj in enumerate(data["objects"]):
            if obj.get("deleted", 0):
                continue
            name = str(obj["label"])
            base = name[: -len("group")] if name.endswith("group") and name not in LABEL_BY_NAME else name
            if base not in LABEL_BY_NAME:
                raise ValueError(f"object {index} has unknown label {name!r}")
            polygon = np.asarray(obj["polygon"], dtype=np.float64).reshape(-1, 2)
            objects.append((name, polygon))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: malformed Cityscapes polygons JSON: {exc}") from None
    return size, objects


def read_camera(path: Path | str) -> CameraCalibration:
    """Cityscapes ``camera.json`` -> CameraCalibration."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        intrinsic = data["intrinsic"]
        calibration = CameraCalibration(
            fx=float(intrinsic["fx"]),
            fy=float(intrinsic["fy"]),
            u0=float(intrinsic["u0"]),
            v0=float(intrinsic["v0"]),
            extrinsic={key: float(value) for key, value in data.get("extrinsic", {}).items()},
        )
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: malformed Cityscapes camera JSON: {exc}") from None
    if calibration.fx <= 0 or calibration.fy <= 0:
        raise ValueError(f"{path}: focal lengths must be positive, got fx={calibration.fx} fy={calibration.fy}")
    return calibration


def _void_lut() -> np.ndarray:
    table = np.zeros(NUM_LABEL_IDS, bool)
    table[[lb.id for lb in LABEL_BY_ID.values() if lb.id >= 0 and lb.ignore_in_eval]] = True
    return table


_IS_VOID = _void_lut()
_HAS_INSTANCES = np.array([LABEL_BY_ID[i].has_instances for i in range(NUM_LABEL_IDS)])


def instance_targets(instance_ids: np.ndarray) -> InstanceTargets:
    """(H, W) instanceIds -> InstanceTargets of the evaluated thing classes.

    Instances of thing labels ignored in evaluation (caravan, trailer) count as void, as do
    all ignored stuff labels; thing pixels without an instance id form the crowd mask.
    """
    label_ids = instance_label_ids(instance_ids)
    void_mask = _IS_VOID[label_ids]
    crowd_mask = (instance_ids < INSTANCE_ID_DIVISOR) & _HAS_INSTANCES[label_ids] & ~void_mask
    ids = np.unique(instance_ids[(instance_ids >= INSTANCE_ID_DIVISOR) & ~void_mask])
    masks = instance_ids[None] == ids[:, None, None] if ids.size else np.zeros((0, *instance_ids.shape), bool)
    boxes = np.zeros((len(ids), 4), np.float32)
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    object_label_ids = (ids // INSTANCE_ID_DIVISOR).astype(np.int64)
    return InstanceTargets(
        masks=masks,
        boxes=boxes,
        label_ids=object_label_ids,
        train_ids=np.array([LABEL_BY_ID[int(i)].train_id for i in object_label_ids], np.int64),
        instance_ids=ids.astype(np.int64),
        crowd_mask=crowd_mask,
        void_mask=void_mask,
    )


def panoptic_target(instance_ids: np.ndarray) -> PanopticTarget:
    """(H, W) instanceIds -> panoptic ground truth with the rules of ``createPanopticImgs``.

    Segment ids are the instanceIds values (label id for stuff and crowd regions); labels
    ignored in evaluation become void (0); thing pixels without instance id are crowd.
    """
    segment_ids = np.zeros(instance_ids.shape, np.int32)
    segments = []
    values, inverse, areas = np.unique(instance_ids, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(instance_ids.shape)
    label_ids = instance_label_ids(values).tolist()
    for index, (value, label_id, area) in enumerate(zip(values.tolist(), label_ids, areas.tolist(), strict=True)):
        label = LABEL_BY_ID[label_id]
        if label.ignore_in_eval:
            continue
        mask = inverse == index
        segment_ids[mask] = value
        ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        segments.append(
            {
                "id": int(value),
                "category_id": int(label_id),
                "iscrowd": int(label.has_instances and value < INSTANCE_ID_DIVISOR),
                "area": int(area),
                "bbox": [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)],
            }
        )
    return PanopticTarget(segment_ids, segments)
