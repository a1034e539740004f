"""Panoptic quality (PQ, SQ, RQ) that agrees with the official Cityscapes / COCO panoptic evaluator.

The rules are those of ``cityscapesscripts/evaluation/evalPanopticSemanticLabeling.py``:

* segment id 0 is VOID; in the Cityscapes gt it covers unlabelled pixels and every ignored class;
* a gt segment and a predicted segment of the same category match when IoU > 0.5, where the union
  leaves out the prediction's pixels on gt VOID; crowd gt segments (``iscrowd`` 1) never match;
* unmatched non-crowd gt segments are false negatives; an unmatched prediction is a false positive
  unless more than half of it lies on gt VOID plus the crowd segment of its own category (the last
  crowd segment of that category in the gt list, as in the official code);
* per category PQ = sum(IoU) / (TP + FP/2 + FN/2), SQ = sum(IoU) / TP (0 when TP == 0),
  RQ = TP / (TP + FP/2 + FN/2); overall / things / stuff values average the categories with
  TP + FP + FN > 0.

Segment areas come from the images; the official script takes gt areas from the json ``area``
field, which ``createPanopticImgs.py`` fills with the same pixel counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from seg_perception.labels import LABELS

VOID = 0
MAX_SEGMENT_ID = 256**3 - 1
"""Largest id the 3-byte COCO panoptic PNG encoding can hold."""


def cityscapes_categories() -> list[dict]:
    """Evaluated Cityscapes categories as ``createPanopticImgs.py`` writes them: [{id (label id), name, isthing}]."""
    return [{"id": lb.id, "name": lb.name, "isthing": int(lb.has_instances)} for lb in LABELS if not lb.ignore_in_eval]


def rgb_to_id(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB panoptic PNG -> (H, W) int32 segment ids (R + 256 G + 256² B)."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
    rgb = img.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) integer segment ids in 0..256³-1 -> (H, W, 3) uint8 RGB (inverse of ``rgb_to_id``)."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"segment ids must be integers, got {ids.dtype} {ids.shape}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) > MAX_SEGMENT_ID):
        raise ValueError(f"segment ids must lie in 0..{MAX_SEGMENT_ID}, got {int(ids.min())}..{int(ids.max())}")
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // (256 * 256)], axis=-1).astype(np.uint8)


def _segment_table(
    segments: Iterable[Mapping], category_index: Mapping[int, int], where: str, gt: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment dicts -> (ids, category indices, crowd flags), each (S + 1,) with VOID prepended at index 0.

    VOID gets category index -1 for gt and -2 for predictions, so VOID never pairs with anything.
    """
    ids, cats, crowd = [VOID], [-1 if gt else -2], [False]
    for seg in segments:
        try:
            sid, cid = seg["id"], seg["category_id"]
            iscrowd = seg["iscrowd"] if gt else 0
        except (KeyError, TypeError) as err:
            raise ValueError(f"{where}: segment {seg!r} lacks field {err}") from None
        if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)) or not 0 < sid <= MAX_SEGMENT_ID:
            raise ValueError(f"{where}: segment id {sid!r} is not an integer in 1..{MAX_SEGMENT_ID} (0 is VOID)")
        if cid not in category_index:
            raise ValueError(f"{where}: segment {sid} has unknown category_id {cid!r}")
        if iscrowd not in (0, 1):
            raise ValueError(f"{where}: segment {sid} has iscrowd {iscrowd!r}, expected 0 or 1")
        ids.append(int(sid))
        cats.append(category_index[cid])
        crowd.append(bool(iscrowd))
    ids_arr = np.array(ids, np.int64)
    unique, counts = np.unique(ids_arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{where}: duplicate segment ids {unique[counts > 1].tolist()}")
    return ids_arr, np.array(cats, np.int64), np.array(crowd, bool)


def _pixel_index(pan: np.ndarray, ids: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) segment ids, (S + 1,) listed ids (ids[0] = VOID) -> ((H, W) index into ids, (S + 1,) areas).

    Raises ValueError for ids in the image that are not listed and for listed segments with no pixels.
    """
    order = np.argsort(ids)
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, pan)
    np.minimum(pos, len(ids) - 1, out=pos)
    found = sorted_ids[pos] == pan
    if not found.all():
        unknown = np.unique(pan[~found])
        raise ValueError(f"{where}: segment ids {unknown[:10].tolist()} are in the image but not in the segment list")
    index = order[pos]
    areas = np.bincount(index.ravel(), minlength=len(ids))
    if not areas[1:].all():
        raise ValueError(f"{where}: listed segments {ids[1:][areas[1:] == 0].tolist()} have no pixels in the image")
    return index, areas


class PanopticEvaluator:
    """Accumulates per-category TP / FP / FN / IoU sums over images and reports PQ, SQ, RQ.

    ``categories``: [{id, name, isthing}] as in the COCO panoptic json (default: the 19 evaluated
    Cityscapes classes keyed by label id, see ``cityscapes_categories``).
    """

    def __init__(self, categories: Sequence[Mapping] | None = None) -> None:
        cats = list(cityscapes_categories() if categories is None else categories)
        try:
            self._ids = [c["id"] for c in cats]
            self._names = [str(c["name"]) for c in cats]
            self._isthing = np.array([bool(c["isthing"]) for c in cats], bool)
        except (KeyError, TypeError) as err:
            raise ValueError(f"each category needs id, name and isthing; missing {err}") from None
        if not cats or len(set(self._ids)) != len(cats) or len(set(self._names)) != len(cats):
            raise ValueError(f"categories must be non-empty with unique ids and names, got {self._ids}")
        self._index = {cid: k for k, cid in enumerate(self._ids)}
        self.reset()

    def reset(self) -> None:
        """Forget everything processed so far."""
        k = len(self._ids)
        self._tp = np.zeros(k, np.int64)
        self._fp = np.zeros(k, np.int64)
        self._fn = np.zeros(k, np.int64)
        self._iou = np.zeros(k, np.float64)
        self._images = 0

    def process(
        self,
        gt_pan: np.ndarray,
        gt_segments: Iterable[Mapping],
        pred_pan: np.ndarray,
        pred_segments: Iterable[Mapping],
    ) -> None:
        """Add one image: (H, W) integer segment-id images and their segment lists.

        Segments are dicts with id and category_id (plus iscrowd for gt); every non-zero id in an
        image must be listed and every listed segment must have pixels.
        """
        gt_pan, pred_pan = np.asarray(gt_pan), np.asarray(pred_pan)
        if gt_pan.ndim != 2 or gt_pan.shape != pred_pan.shape:
            raise ValueError(f"gt_pan and pred_pan must be (H, W) of equal shape, got {gt_pan.shape}, {pred_pan.shape}")
        if not (np.issubdtype(gt_pan.dtype, np.integer) and np.issubdtype(pred_pan.dtype, np.integer)):
            raise ValueError(f"segment-id images must be integer, got {gt_pan.dtype}, {pred_pan.dtype}")
        n = self._images
        g_ids, g_cat, g_crowd = _segment_table(gt_segments, self._index, f"gt image {n}", gt=True)
        p_ids, p_cat, _ = _segment_table(pred_segments, self._index, f"prediction image {n}", gt=False)
        g_index, g_area = _pixel_index(gt_pan, g_ids, f"gt image {n}")
        p_index, p_area = _pixel_index(pred_pan, p_ids, f"prediction image {n}")

        # inter[g, p]: pixels of gt segment g (0 = VOID) under predicted segment p (0 = VOID).
        n_pred = len(p_ids)
        inter = np.bincount((g_index * n_pred + p_index).ravel(), minlength=len(g_ids) * n_pred)
        inter = inter.reshape(len(g_ids), n_pred)
        void_p = inter[0]
        union = g_area[:, None] + (p_area - void_p)[None, :] - inter
        candidate = (g_cat[:, None] == p_cat[None, :]) & ~g_crowd[:, None]
        match = candidate & (2 * inter > union)  # IoU > 0.5, exact in integers
        mg, mp = np.nonzero(match)
        k = len(self._ids)
        self._tp += np.bincount(g_cat[mg], minlength=k)
        self._iou += np.bincount(g_cat[mg], weights=inter[mg, mp] / union[mg, mp], minlength=k)

        g_matched = match.any(axis=1)
        fn = ~g_matched & ~g_crowd
        fn[0] = False
        self._fn += np.bincount(g_cat[fn], minlength=k)

        crowd_of_cat = np.zeros(k, np.int64)  # 0 (VOID row) = no crowd segment for this category
        for g in np.flatnonzero(g_crowd):
            crowd_of_cat[g_cat[g]] = g
        crowd_row = crowd_of_cat[np.maximum(p_cat, 0)]
        crowd_overlap = np.where(crowd_row > 0, inter[crowd_row, np.arange(n_pred)], 0)
        ignored = 2 * (void_p + crowd_overlap) > p_area  # > half of the segment on VOID + crowd
        fp = ~match.any(axis=0) & ~ignored
        fp[0] = False
        self._fp += np.bincount(p_cat[fp], minlength=k)
        self._images += 1

    def evaluate(self) -> dict:
        """PQ / SQ / RQ as Python floats in 0..1 (None where no category counts).

        Keys: PQ, SQ, RQ, n (categories with TP + FP + FN > 0), the same with suffix _th (things) and
        _st (stuff), and per_class {name: {PQ, SQ, RQ, tp, fp, fn}} (PQ/SQ/RQ None if not counted).
        """
        tp, fp, fn, iou = self._tp, self._fp, self._fn, self._iou
        counted = (tp + fp + fn) > 0
        denom = np.where(counted, tp + 0.5 * fp + 0.5 * fn, 1.0)
        pq = iou / denom
        sq = np.where(tp > 0, iou / np.maximum(tp, 1), 0.0)
        rq = tp / denom
        out: dict = {}
        for suffix, group in (("", counted), ("_th", counted & self._isthing), ("_st", counted & ~self._isthing)):
            n = int(group.sum())
            for key, values in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
                out[key + suffix] = float(values[group].mean()) if n else None
            out["n" + suffix] = n
        out["per_class"] = {
            name: {
                "PQ": float(pq[k]) if counted[k] else None,
                "SQ": float(sq[k]) if counted[k] else None,
                "RQ": float(rq[k]) if counted[k] else None,
                "tp": int(tp[k]),
                "fp": int(fp[k]),
                "fn": int(fn[k]),
            }
            for k, name in enumerate(self._names)
        }
        return out


class PanopticFiles(Mapping):
    """image_id -> ((H, W) int32 segment ids, segment list) of a COCO panoptic json + PNG folder.

    The json and the presence of every PNG are checked up front; each PNG is decoded (and checked
    against its segment list) when its item is read, so a whole split never sits in memory.
    """

    def __init__(self, json_path: str | os.PathLike, png_dir: str | os.PathLike, categories: Sequence[Mapping]):
        self.json_path = os.fspath(json_path)
        self.png_dir = os.fspath(png_dir)
        try:
            with open(self.json_path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(f"{self.json_path}: cannot read panoptic json: {err}") from None
        annotations = data.get("annotations") if isinstance(data, dict) else None
        if not isinstance(annotations, list):
            raise ValueError(f"{self.json_path}: no 'annotations' list")
        category_index = {c["id"]: k for k, c in enumerate(categories)}
        self._entries: dict[str, tuple[str, list]] = {}
        for ann in annotations:
            try:
                image_id, file_name, segments = ann["image_id"], ann["file_name"], ann["segments_info"]
            except (KeyError, TypeError) as err:
                raise ValueError(f"{self.json_path}: annotation lacks field {err}") from None
            where = f"{self.json_path} image {image_id!r}"
            if image_id in self._entries:
                raise ValueError(f"{where}: duplicate image_id")
            _segment_table(segments, category_index, where, gt=False)
            png_path = os.path.join(self.png_dir, file_name)
            if not os.path.isfile(png_path):
                raise ValueError(f"{where}: missing PNG file {png_path}")
            self._entries[image_id] = (png_path, segments)

    def __getitem__(self, image_id: str) -> tuple[np.ndarray, list]:
        png_path, segments = self._entries[image_id]
        bgr = cv2.imread(png_path, cv2.IMREAD_UNCHANGED)
        if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            found = "unreadable" if bgr is None else f"{bgr.dtype} {bgr.shape}"
            raise ValueError(f"{png_path}: expected an 8-bit RGB panoptic PNG, found {found}")
        pan = rgb_to_id(bgr[..., ::-1])
        ids = np.array([VOID] + [int(s["id"]) for s in segments], np.int64)
        _pixel_index(pan, ids, f"{png_path} (segments of image {image_id!r} in {self.json_path})")
        return pan, segments

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def load_panoptic_prediction(
    json_path: str | os.PathLike, png_dir: str | os.PathLike, categories: Sequence[Mapping] | None = None
) -> PanopticFiles:
    """Read a COCO panoptic json + PNG folder (predictions or gt) as image_id -> (pan, segments).

    Raises ValueError naming the file for a missing json or PNG, duplicate image or segment ids,
    unknown category ids, and (when the item is read) PNG segments missing from the json or json
    segments missing from the PNG.
    """
    return PanopticFiles(json_path, png_dir, cityscapes_categories() if categories is None else categories)
