"""One frame's canvases (image, labelIds, instanceIds, shade) and the polygons painted into them.

Objects draw themselves back to front through a ``Canvas``: later (nearer) polygons occlude earlier ones,
and every labelled polygon is also recorded, in drawing order, for ``gtFine_polygons.json``.
"""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.data.synthetic.camera import CameraView, PinholeCamera
from seg_perception.data.synthetic.palette import Color
from seg_perception.labels import INSTANCE_ID_DIVISOR, LABEL_BY_NAME

LIT = 255
"""Shade canvas value of fully lit surfaces; 0 is full shadow."""


class Canvas(CameraView):
    """One frame's label, instance, shade and colour canvases, painted back to front.

    ``region`` fills a labelled polygon (and records it for polygons.json), ``paint`` only colours the
    image (details such as windows or lane markings), ``shadow`` only darkens the shade canvas.
    Projection (``polygon``, ``polygons``, ``hull``, ...) comes from ``CameraView``.

    image: (H, W, 3) uint8 RGB, flat colours (``look.Textures.finish`` makes the final image); labels:
    (H, W) uint8 label ids; instances: (H, W) uint16 instance ids; shade: (H, W) uint8, ``LIT`` lit .. 0
    full shadow; objects: the polygons.json objects in drawing order; tracks: instance id -> track id.
    """

    def __init__(self, camera: PinholeCamera, position: np.ndarray, background: np.ndarray):
        super().__init__(camera, position)
        self.labels = np.zeros((camera.height, camera.width), np.uint8)
        self.instances = np.zeros((camera.height, camera.width), np.uint16)
        self.shade = np.full((camera.height, camera.width), LIT, np.uint8)
        self.image = background.copy()
        self.objects: list[dict] = []
        self.tracks: dict[int, int] = {}
        self._instance_counts: dict[str, int] = {}

    def region(
        self,
        label: str,
        polygon: np.ndarray | None,
        color: Color | None,
        shade: int | None = LIT,
        track: int | None = None,
    ) -> None:
        """Fill a labelled polygon; ``color``/``shade`` None leave the image/shade as they are."""
        if polygon is None:
            return
        entry = LABEL_BY_NAME[label]
        cv2.fillPoly(self.labels, [polygon], entry.id)
        value = entry.id
        if entry.has_instances:
            index = self._instance_counts.get(label, 0)
            self._instance_counts[label] = index + 1
            value = entry.id * INSTANCE_ID_DIVISOR + index
            self.tracks[value] = track
        cv2.fillPoly(self.instances, [polygon], value)
        if color is not None:
            cv2.fillPoly(self.image, [polygon], color)
        if shade is not None:
            cv2.fillPoly(self.shade, [polygon], shade)
        self.objects.append({"label": label, "polygon": polygon.tolist()})

    def paint(self, polygons: list[np.ndarray | None], color: Color) -> None:
        """Colour image polygons (no label change)."""
        visible = [p for p in polygons if p is not None]
        if visible:
            cv2.fillPoly(self.image, visible, color)

    def paint_world(self, polygons: list[np.ndarray], color: Color) -> None:
        """Colour (N_i, 3) world polygons (no label change)."""
        self.paint(self.polygons(polygons), color)

    def shadow(self, polygons: list[np.ndarray], value: int) -> None:
        """Darken the ground under world polygons (shade canvas only)."""
        visible = [p for p in self.polygons(polygons) if p is not None]
        if visible:
            cv2.fillPoly(self.shade, visible, value)
