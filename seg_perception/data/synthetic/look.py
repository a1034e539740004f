"""The look of one sequence: its colours and lighting (``Look``) and the textures, colour grading, blur and
sensor noise that turn the flat-shaded canvas into the camera image (``Textures``)."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from seg_perception.data.synthetic.canvas import Canvas
from seg_perception.data.synthetic.palette import Color, pick, scaled, vary
from seg_perception.labels import LABEL_BY_NAME


@dataclass
class Look:
    """Colours and lighting of one sequence."""

    road: Color
    road_patch: Color
    marking: Color
    sidewalk: Color
    curb: Color
    terrain: Color
    vegetation: Color
    parking: Color
    pole: Color
    sky_top: Color
    sky_horizon: Color
    sunny: bool
    sun_side: int
    shadow_reach: float  # lateral shadow length per metre of height
    shadow_shift: float  # shadow shift along z per metre of height

    @classmethod
    def random(cls, rng: np.random.Generator) -> Look:
        """A random look: asphalt, paving and vegetation tones; sunny (with shadows) or overcast."""
        asphalt = rng.uniform(70, 125)
        road = vary(rng, (asphalt, asphalt, asphalt * rng.uniform(0.96, 1.06)), 8)
        sidewalk = pick(rng, [(160, 158, 152), (150, 118, 105), (178, 165, 140), (135, 135, 138)], [4, 2, 2, 2])
        sunny = rng.random() < 0.6
        overcast_grey = rng.uniform(190, 235)
        return cls(
            road=road,
            road_patch=scaled(road, rng.uniform(0.8, 0.95)),
            marking=vary(rng, (228, 228, 220), 10),
            sidewalk=vary(rng, sidewalk, 12),
            curb=vary(rng, (175, 175, 170), 12),
            terrain=vary(rng, pick(rng, [(105, 128, 65), (135, 130, 85), (118, 100, 78), (90, 120, 60)]), 14),
            vegetation=vary(rng, pick(rng, [(62, 92, 40), (75, 100, 45), (95, 105, 45), (50, 75, 40)]), 12),
            parking=vary(rng, pick(rng, [(125, 120, 118), (140, 110, 100), (105, 105, 110)]), 10),
            pole=vary(rng, pick(rng, [(130, 132, 135), (60, 75, 65), (45, 45, 48), (160, 160, 155)]), 10),
            sky_top=vary(rng, (95, 145, 215), 20) if sunny else vary(rng, (overcast_grey,) * 3, 8),
            sky_horizon=vary(rng, (200, 218, 238), 12) if sunny else vary(rng, (overcast_grey + 15,) * 3, 6),
            sunny=sunny,
            sun_side=int(rng.choice([-1, 1])),
            shadow_reach=rng.uniform(0.35, 1.3),
            shadow_shift=rng.uniform(-0.6, 0.6),
        )


_TEXTURE_LABELS = {  # label -> (fine, medium, coarse) relative contrast of the noise textures
    "road": (0.06, 0.03, 0.04), "sidewalk": (0.05, 0.04, 0.05), "parking": (0.09, 0.06, 0.06),
    "terrain": (0.14, 0.12, 0.12), "vegetation": (0.22, 0.2, 0.1), "building": (0.04, 0.05, 0.1),
    "wall": (0.05, 0.06, 0.1), "fence": (0.05, 0.04, 0.05), "sky": (0.0, 0.02, 0.07),
    "pole": (0.03, 0.02, 0.03), "traffic sign": (0.02, 0.02, 0.03), "traffic light": (0.02, 0.02, 0.03),
    "ego vehicle": (0.02, 0.02, 0.04), "rectification border": (0.0, 0.0, 0.0),
}  # fmt: skip
_THING_TEXTURE = (0.03, 0.03, 0.04)


class Textures:
    """Per-sequence noise fields and colour grading, applied to the flat-shaded canvas."""

    def __init__(self, rng: np.random.Generator, look: Look, height: int, width: int):
        self.fields = [self._noise(rng, height, width, cells) for cells in (1, 4, 24)]
        contrast = rng.uniform(0.5, 1.3)
        self.amplitude = np.zeros((3, 256), np.float32)
        for label in LABEL_BY_NAME.values():
            if label.id >= 0:
                gains = _TEXTURE_LABELS.get(label.name, _THING_TEXTURE)
                self.amplitude[:, label.id] = np.asarray(gains) * contrast
        yy = (np.arange(height, dtype=np.float32)[:, None] - height / 2) / (width / 2)
        xx = (np.arange(width, dtype=np.float32)[None, :] - width / 2) / (width / 2)
        radius = xx * xx + yy * yy
        self.vignette = (1 - rng.uniform(0.0, 0.3) * radius).astype(np.float32)  # (H, W)
        sun = np.array([1.0, rng.uniform(0.97, 1.0), rng.uniform(0.9, 0.98)]) if look.sunny else np.ones(3)
        shadow = (np.array([0.5, 0.55, 0.68]) * rng.uniform(0.75, 1.15)) if look.sunny else np.full(3, 0.72)
        lit = np.linspace(0.0, 1.0, 256)[:, None]
        self.shade_table = (shadow * (1 - lit) + sun * lit).astype(np.float32)[None]  # (1, 256, 3)
        self.grading = self._grading(rng)
        self.blur_sigma = float(rng.uniform(0.3, 1.0))
        # Sensor noise: a bank of Gaussian noise (random bytes through the normal quantile function), split into
        # its positive and negative parts for saturating uint8 arithmetic; frames use shifted crops of it.
        sigma = rng.uniform(1.0, 4.0)
        quantiles = np.array([NormalDist(0.0, sigma).inv_cdf((i + 0.5) / 256) for i in range(256)])
        raw = rng.integers(0, 256, (height + 16, width + 16, 3), np.uint8)
        self.noise_up = cv2.LUT(raw, np.clip(np.rint(quantiles), 0, 255).astype(np.uint8))
        self.noise_down = cv2.LUT(raw, np.clip(np.rint(-quantiles), 0, 255).astype(np.uint8))

    @staticmethod
    def _noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
        """(H, W) float32 zero-mean unit-variance noise with features about ``cell`` pixels wide."""
        small = rng.standard_normal((height // cell + 3, width // cell + 3), dtype=np.float32)
        if cell > 1:
            small = cv2.resize(
                small, ((width // cell + 3) * cell, (height // cell + 3) * cell), interpolation=cv2.INTER_CUBIC
            )
        else:
            small = cv2.GaussianBlur(small, (0, 0), 0.7)
        small = small[cell : cell + height, cell : cell + width]
        return ((small - small.mean()) / (small.std() + 1e-6)).astype(np.float32)

    @staticmethod
    def _grading(rng: np.random.Generator) -> np.ndarray:
        """(1, 256, 3) uint8 lookup table: exposure, contrast, gamma and white balance."""
        x = np.linspace(0.0, 1.0, 256)[:, None]
        gamma = rng.uniform(0.8, 1.25)
        contrast = rng.uniform(0.8, 1.2)
        exposure = rng.uniform(0.75, 1.2)
        balance = rng.uniform(0.93, 1.07, 3)
        y = ((x**gamma - 0.5) * contrast + 0.5) * exposure * balance
        return np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)[None]

    def finish(self, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
        """Flat canvas colours -> textured, shaded, graded, blurred and noisy (H, W, 3) uint8 image."""
        labels = canvas.labels
        modulation = self.vignette.copy()
        for noise, amplitude in zip(self.fields, self.amplitude, strict=True):
            modulation += cv2.multiply(noise, cv2.LUT(labels, amplitude))
        light = cv2.LUT(cv2.merge([canvas.shade] * 3), self.shade_table)
        light = cv2.multiply(light, cv2.merge([modulation] * 3))
        image = cv2.LUT(cv2.multiply(canvas.image, light, dtype=cv2.CV_8U), self.grading)
        image = cv2.GaussianBlur(image, (0, 0), self.blur_sigma)
        height, width = labels.shape
        y0, x0, y1, x1 = rng.integers(0, 16, 4)
        image = cv2.add(image, self.noise_up[y0 : y0 + height, x0 : x0 + width])
        return cv2.subtract(image, self.noise_down[y1 : y1 + height, x1 : x1 + width])
