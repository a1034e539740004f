"""One synthetic driving sequence (``SyntheticScene``): its world built once from (seed, split, sequence),
any frame rendered on demand.

Building draws from one random generator in a fixed order: camera, look, textures, ego speed, street,
scenery, road users, backdrop, ground paint. Rendering frame k places the camera at
``camera_position(k)`` (it drives along +z at ``ego_speed``), moves every road user to t = k /
``FRAME_RATE_HZ`` and paints back to front: sky and skyline, ground, road paint, building shadows,
buildings and barriers, then the standing objects (poles, trees, road users) sorted far to near by
``z_range(t)``, then hood and border. Frame k's sensor noise has its own generator, so frames can be
rendered in any order with the same result.
"""

from __future__ import annotations

import zlib

import numpy as np

from seg_perception.data.synthetic.backdrop import Backdrop
from seg_perception.data.synthetic.camera import NEAR, PinholeCamera
from seg_perception.data.synthetic.canvas import LIT, Canvas
from seg_perception.data.synthetic.constants import FRAME_RATE_HZ, MAX_FRAMES_PER_SEQUENCE, VIEW_DISTANCE
from seg_perception.data.synthetic.ground import Ground
from seg_perception.data.synthetic.look import Look, Textures
from seg_perception.data.synthetic.results import SynthFrame
from seg_perception.data.synthetic.scenery import Scenery
from seg_perception.data.synthetic.street import Street
from seg_perception.data.synthetic.traffic import RoadUsers


def _split_key(split: str) -> int:
    return zlib.crc32(split.encode())


def _sequence_rng(seed: int, split: str, sequence: int, *frame: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_split_key(split), sequence, *frame)))


class SyntheticScene:
    """One synthetic driving sequence; ``render(k)`` draws frame k (any order, same result).

    The street, its objects and the look are drawn from (seed, split, sequence); the split takes part
    so train/val/test never share scenes for the same seed.

    camera: the sequence's ``PinholeCamera``; street: its ``Street`` geometry; ego_speed: the camera's
    speed along +z (m/s, 0 for a standing car); standing: poles, trees and road users, each with
    ``anchor(t)`` (ground point x, z), ``z_range(t)`` and ``draw(canvas, t, shade)``.
    """

    def __init__(self, height: int, width: int, seed: int, split: str = "train", sequence: int = 0):
        if height < 16 or width < 16:
            raise ValueError(f"image size {height}x{width} too small (at least 16x16)")
        self.seed, self.split, self.sequence = seed, split, sequence
        rng = _sequence_rng(seed, split, sequence)
        self.camera = PinholeCamera.random(rng, height, width)
        self.look = Look.random(rng)
        self.textures = Textures(rng, self.look, height, width)
        self.ego_speed = 0.0 if rng.random() < 0.12 else float(rng.uniform(4.0, 13.0))
        self.street = Street.random(rng, self.ego_speed)
        self.scenery = Scenery(rng, self.street, self.look)
        self.road_users = RoadUsers(rng, self.street, self.ego_speed)
        self.standing: list = [*self.scenery.furniture, *self.road_users.users]
        self.backdrop = Backdrop(rng, self.camera, self.look, self.street.camera_x)
        self.ground = Ground(rng, self.street, self.look)

    def camera_position(self, frame: int) -> np.ndarray:
        """(3,) world position of the camera at frame ``frame``."""
        return np.array([self.street.camera_x, self.camera.mount_height, self.ego_speed * frame / FRAME_RATE_HZ])

    def render(self, frame: int) -> SynthFrame:
        """Draw frame ``frame`` (0 <= frame < MAX_FRAMES_PER_SEQUENCE)."""
        if not 0 <= frame < MAX_FRAMES_PER_SEQUENCE:
            raise ValueError(f"frame {frame} outside 0..{MAX_FRAMES_PER_SEQUENCE - 1}")
        t = frame / FRAME_RATE_HZ
        position = self.camera_position(frame)
        canvas = Canvas(self.camera, position, self.backdrop.sky)
        far = position[2] + VIEW_DISTANCE
        self.backdrop.draw_far(canvas)
        self.ground.draw(canvas, far)
        self.ground.draw_markings(canvas, far)
        canvas.shadow([s for s in self.scenery.shadows if s[0, 2] < far and s[2, 2] > position[2]], 0)
        for roadside in (self.street.left, self.street.right):
            self.scenery.draw_side(canvas, roadside.side, far)
        self._draw_standing(canvas, t, far)
        self.backdrop.draw_near(canvas)
        image = self.textures.finish(canvas, _sequence_rng(self.seed, self.split, self.sequence, frame))
        return SynthFrame(image, canvas.labels, canvas.instances, canvas.objects, canvas.tracks, self.camera.to_json())

    def _draw_standing(self, canvas: Canvas, t: float, far: float) -> None:
        camera_z = canvas.position[2]
        visible = []
        for thing in self.standing:
            z0, z1 = thing.z_range(t)
            if z1 > camera_z + NEAR and z0 < far:
                visible.append((z0, thing))
        visible.sort(key=lambda item: -item[0])
        for _, thing in visible:
            thing.draw(canvas, t, 0 if self.look.sunny and self.scenery.in_shadow(*thing.anchor(t)) else LIT)


def render_frame(
    height: int, width: int, seed: int, split: str = "train", sequence: int = 0, frame: int = 0
) -> SynthFrame:
    """Render one frame in memory (builds the sequence's scene first)."""
    return SyntheticScene(height, width, seed, split, sequence).render(frame)
