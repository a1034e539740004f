"""The label table equals the official Cityscapes table, entry by entry."""

import numpy as np
import pytest
from cityscapesscripts.helpers import labels as official

from seg_perception import labels


def test_every_label_equals_the_official_table():
    ours = [
        (lb.name, lb.id, lb.train_id, lb.category, lb.category_id, lb.has_instances, lb.ignore_in_eval, lb.color)
        for lb in labels.LABELS
    ]
    theirs = [
        (lb.name, lb.id, lb.trainId, lb.category, lb.categoryId, lb.hasInstances, lb.ignoreInEval, tuple(lb.color))
        for lb in official.labels
    ]
    assert ours == theirs


def test_train_classes_are_the_19_evaluated_ones_in_train_id_order():
    evaluated = sorted((lb.trainId, lb.name) for lb in official.labels if not lb.ignoreInEval)
    assert list(enumerate(labels.CLASS_NAMES)) == evaluated
    assert labels.NUM_CLASSES == 19
    assert [labels.LABEL_BY_ID[i].name for i in labels.THING_LABEL_IDS] == [
        "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"
    ]  # fmt: skip


def test_lookup_tables_follow_the_table():
    for lb in official.labels:
        if lb.id < 0:
            continue
        expected = lb.trainId if lb.trainId not in (-1, 255) else 255
        assert labels.ID_TO_TRAIN_ID[lb.id] == expected
        assert tuple(labels.ID_COLORS[lb.id]) == tuple(lb.color)
    for train_id in range(labels.NUM_CLASSES):
        assert labels.TRAIN_ID_TO_ID[train_id] == official.trainId2label[train_id].id
        assert tuple(labels.TRAIN_ID_COLORS[train_id]) == official.trainId2label[train_id].color
    assert labels.TRAIN_ID_TO_ID[255] == 0


def test_label_ids_to_train_ids_maps_and_rejects_unknown_ids():
    ids = np.array([[7, 8, 0], [26, 33, 9]], np.uint8)
    assert labels.label_ids_to_train_ids(ids).tolist() == [[0, 1, 255], [13, 18, 255]]
    with pytest.raises(ValueError, match="outside the Cityscapes table"):
        labels.label_ids_to_train_ids(np.array([[34]], np.uint8))
