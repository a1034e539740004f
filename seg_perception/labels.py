"""Cityscapes label table: the one place that maps label ids, train ids, names and colours.

Values are those of the official Cityscapes table (``cityscapesscripts.helpers.labels``);
``test/test_labels.py`` compares them entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_TRAIN_ID = 255
"""Train id of every label that is not evaluated (void, rare classes)."""


@dataclass(frozen=True)
class Label:
    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #      name                    id  trainId category        catId instances ignore   color
    Label("unlabeled",             0,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("ego vehicle",           1,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("rectification border",  2,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("out of roi",            3,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("static",                4,  255, "void",          0, False, True,  (0, 0, 0)),
    Label("dynamic",               5,  255, "void",          0, False, True,  (111, 74, 0)),
    Label("ground",                6,  255, "void",          0, False, True,  (81, 0, 81)),
    Label("road",                  7,    0, "flat",          1, False, False, (128, 64, 128)),
    Label("sidewalk",              8,    1, "flat",          1, False, False, (244, 35, 232)),
    Label("parking",               9,  255, "flat",          1, False, True,  (250, 170, 160)),
    Label("rail track",           10,  255, "flat",          1, False, True,  (230, 150, 140)),
    Label("building",             11,    2, "construction",  2, False, False, (70, 70, 70)),
    Label("wall",                 12,    3, "construction",  2, False, False, (102, 102, 156)),
    Label("fence",                13,    4, "construction",  2, False, False, (190, 153, 153)),
    Label("guard rail",           14,  255, "construction",  2, False, True,  (180, 165, 180)),
    Label("bridge",               15,  255, "construction",  2, False, True,  (150, 100, 100)),
    Label("tunnel",               16,  255, "construction",  2, False, True,  (150, 120, 90)),
    Label("pole",                 17,    5, "object",        3, False, False, (153, 153, 153)),
    Label("polegroup",            18,  255, "object",        3, False, True,  (153, 153, 153)),
    Label("traffic light",        19,    6, "object",        3, False, False, (250, 170, 30)),
    Label("traffic sign",         20,    7, "object",        3, False, False, (220, 220, 0)),
    Label("vegetation",           21,    8, "nature",        4, False, False, (107, 142, 35)),
    Label("terrain",              22,    9, "nature",        4, False, False, (152, 251, 152)),
    Label("sky",                  23,   10, "sky",           5, False, False, (70, 130, 180)),
    Label("person",               24,   11, "human",         6, True,  False, (220, 20, 60)),
    Label("rider",                25,   12, "human",         6, True,  False, (255, 0, 0)),
    Label("car",                  26,   13, "vehicle",       7, True,  False, (0, 0, 142)),
    Label("truck",                27,   14, "vehicle",       7, True,  False, (0, 0, 70)),
    Label("bus",                  28,   15, "vehicle",       7, True,  False, (0, 60, 100)),
    Label("caravan",              29,  255, "vehicle",       7, True,  True,  (0, 0, 90)),
    Label("trailer",              30,  255, "vehicle",       7, True,  True,  (0, 0, 110)),
    Label("train",                31,   16, "vehicle",       7, True,  False, (0, 80, 100)),
    Label("motorcycle",           32,   17, "vehicle",       7, True,  False, (0, 0, 230)),
    Label("bicycle",              33,   18, "vehicle",       7, True,  False, (119, 11, 32)),
    Label("license plate",        -1,   -1, "vehicle",       7, False, True,  (0, 0, 142)),
)
# fmt: on

NUM_LABEL_IDS = 34
"""Label ids 0..33 appear in label images; ``license plate`` (-1) never does."""

LABEL_BY_ID: dict[int, Label] = {label.id: label for label in LABELS}
LABEL_BY_NAME: dict[str, Label] = {label.name: label for label in LABELS}

TRAIN_LABELS: tuple[Label, ...] = tuple(
    sorted((lb for lb in LABELS if lb.train_id not in (IGNORE_TRAIN_ID, -1)), key=lambda lb: lb.train_id)
)
"""The 19 evaluated classes, indexed by train id."""
NUM_CLASSES = len(TRAIN_LABELS)
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in TRAIN_LABELS)
THING_TRAIN_IDS: tuple[int, ...] = tuple(lb.train_id for lb in TRAIN_LABELS if lb.has_instances)
THING_LABEL_IDS: tuple[int, ...] = tuple(lb.id for lb in TRAIN_LABELS if lb.has_instances)


def _lut(size: int, pairs, fill: int, dtype=np.uint8) -> np.ndarray:
    table = np.full(size, fill, dtype=dtype)
    for key, value in pairs:
        table[key] = value
    return table


ID_TO_TRAIN_ID = _lut(256, ((lb.id, lb.train_id) for lb in LABELS if lb.id >= 0), IGNORE_TRAIN_ID)
"""(256,) uint8 lookup: label id -> train id (unknown ids -> 255)."""
TRAIN_ID_TO_ID = _lut(256, ((lb.train_id, lb.id) for lb in TRAIN_LABELS), 0)
"""(256,) uint8 lookup: train id -> label id (255 and unknown -> 0 'unlabeled')."""
TRAIN_ID_COLORS = np.zeros((256, 3), np.uint8)
"""(256, 3) uint8 RGB colour per train id (255 -> black)."""
TRAIN_ID_COLORS[:NUM_CLASSES] = [lb.color for lb in TRAIN_LABELS]
ID_COLORS = np.zeros((256, 3), np.uint8)
"""(256, 3) uint8 RGB colour per label id."""
ID_COLORS[[lb.id for lb in LABELS if lb.id >= 0]] = [lb.color for lb in LABELS if lb.id >= 0]


INSTANCE_ID_DIVISOR = 1000
"""gtFine instanceIds encode a thing instance as ``label_id * 1000 + k``; every other pixel holds its label id."""


def instance_label_ids(instance_ids: np.ndarray) -> np.ndarray:
    """instanceIds values (any shape) -> their label ids, same shape."""
    return np.where(instance_ids >= INSTANCE_ID_DIVISOR, instance_ids // INSTANCE_ID_DIVISOR, instance_ids)


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """(H, W) label ids -> (H, W) uint8 train ids; raises on ids outside the table."""
    if label_ids.size and int(label_ids.max()) >= NUM_LABEL_IDS:
        raise ValueError(f"label ids outside the Cityscapes table: max {int(label_ids.max())} >= {NUM_LABEL_IDS}")
    return ID_TO_TRAIN_ID[label_ids]
