"""What a sequence's camera sees that stays fixed in the image: the sky gradient, a distant skyline that
closes the view at ``VIEW_DISTANCE``, the ego vehicle's hood and the rectification border."""

from __future__ import annotations

import numpy as np

from seg_perception.data.synthetic.camera import CameraView, PinholeCamera
from seg_perception.data.synthetic.canvas import Canvas
from seg_perception.data.synthetic.constants import VIEW_DISTANCE
from seg_perception.data.synthetic.look import Look
from seg_perception.data.synthetic.palette import FACADES, Color, pick, vary


class Backdrop:
    """Image-fixed parts of one sequence, drawn from ``rng`` at construction.

    sky: (H, W, 3) uint8 RGB background; skyline: (label, (N, 2) int32 image polygon, colour), projected
    once (the skyline moves with the camera); hood: (N, 2) int32 image polygon; border: two (4, 2) int32
    image polygons at the left and right edges.
    """

    def __init__(self, rng: np.random.Generator, camera: PinholeCamera, look: Look, camera_x: float):
        height, width = camera.height, camera.width
        view = CameraView(camera, np.array([camera_x, camera.mount_height, 0.0]))
        haze = np.array(look.sky_horizon, np.float64)
        self.skyline: list[tuple[str, np.ndarray, Color]] = []
        half_span = VIEW_DISTANCE * (width / camera.focal) * 0.8
        x = camera_x - half_span
        while x < camera_x + half_span:
            span = rng.uniform(15.0, 60.0)
            if rng.random() < 0.3:
                steps = np.linspace(x, x + span, 8)
                top, label, color = rng.uniform(8, 20) + rng.uniform(-2, 2, 8), "vegetation", look.vegetation
            else:
                steps, label, color = np.array([x, x + span]), "building", pick(rng, FACADES)
                top = np.full(2, rng.uniform(8.0, 30.0))
            outline = np.concatenate([[[steps[0], 0.0]], np.column_stack([steps, top]), [[steps[-1], 0.0]]])
            points = np.column_stack([outline[:, 0], outline[:, 1], np.full(len(outline), VIEW_DISTANCE)])
            polygon = view.polygon(points)
            if polygon is not None:
                self.skyline.append((label, polygon, tuple(int(c) for c in 0.55 * np.array(color) + 0.45 * haze)))
            x += span
        hood_top = height * (1 - rng.uniform(0.06, 0.13))
        xs = np.linspace(0, width - 1, 17)
        ys = hood_top + (height - hood_top) * 0.45 * ((xs - width / 2) / (width / 2)) ** 2
        self.hood = np.rint(
            np.concatenate(
                [[[0, height - 1]], np.column_stack([xs, np.minimum(ys, height - 1)]), [[width - 1, height - 1]]]
            )
        ).astype(np.int32)
        self.hood_color = vary(rng, pick(rng, [(30, 30, 35), (200, 200, 205), (20, 30, 60)]), 8)
        border = max(1, round(width / 700))
        self.border = [
            np.array([[0, 0], [border, 0], [border + 1, height - 1], [0, height - 1]], np.int32),
            np.array(
                [[width - 1 - border, 0], [width - 1, 0], [width - 1, height - 1], [width - 2 - border, height - 1]],
                np.int32,
            ),
        ]
        rows = np.clip(np.arange(height)[:, None] / max(camera.horizon_row, 1.0), 0, 1) ** 1.5
        sky = np.array(look.sky_top) * (1 - rows) + np.array(look.sky_horizon) * rows
        self.sky = np.ascontiguousarray(np.broadcast_to(sky[:, None, :], (height, width, 3)).astype(np.uint8))

    def draw_far(self, canvas: Canvas) -> None:
        """The sky over the whole image, then the skyline: the first regions of a frame."""
        height, width = canvas.camera.height, canvas.camera.width
        canvas.region(
            "sky", np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.int32), None
        )
        for label, polygon, color in self.skyline:
            canvas.region(label, polygon, color)

    def draw_near(self, canvas: Canvas) -> None:
        """The hood and the rectification border: the last regions of a frame, over everything."""
        canvas.region("ego vehicle", self.hood, self.hood_color)
        for strip in self.border:
            canvas.region("rectification border", strip, (8, 8, 8))
