"""Colours: the ``Color`` type, random colour helpers and the fixed palettes the scene objects draw from."""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]
"""(r, g, b) 0..255."""


def vary(rng: np.random.Generator, rgb, spread: float) -> Color:
    """A colour near ``rgb``: one random brightness step plus a little per-channel noise."""
    scale = rng.uniform(1 - spread / 200, 1 + spread / 200)
    noise = rng.normal(0, spread / 4, 3)
    return tuple(int(min(255.0, max(0.0, c * scale + n))) for c, n in zip(rgb, noise, strict=True))  # type: ignore[return-value]


def scaled(rgb: Color, factor: float) -> Color:
    """``rgb`` times ``factor``, each channel cut at 255."""
    return tuple(int(min(255, c * factor)) for c in rgb)  # type: ignore[return-value]


def pick(rng: np.random.Generator, options, weights=None):
    """One of ``options``, uniformly or by the relative ``weights``."""
    if weights is None:
        return options[rng.integers(len(options))]
    return options[int(np.searchsorted(np.cumsum(weights), rng.uniform(0, sum(weights)), side="right"))]


FACADES = [(205, 190, 165), (220, 215, 205), (160, 158, 152), (150, 85, 65), (212, 192, 135), (200, 150, 128),
           (95, 90, 85), (175, 175, 168), (185, 170, 150), (130, 120, 110), (225, 225, 225)]  # fmt: skip
CAR_PAINTS = [(20, 20, 22), (225, 225, 228), (160, 162, 166), (95, 97, 100), (25, 40, 90), (150, 20, 20),
              (40, 80, 160), (30, 70, 45), (190, 175, 140), (120, 20, 30), (210, 140, 30), (60, 60, 70)]  # fmt: skip
CAR_WEIGHTS = [14, 14, 16, 14, 7, 7, 5, 3, 3, 3, 2, 8]
CLOTHES = [(25, 25, 30), (40, 45, 80), (90, 90, 95), (170, 160, 140), (140, 30, 35), (200, 200, 200),
           (60, 90, 140), (40, 80, 50), (190, 150, 60), (110, 70, 40), (150, 120, 160), (230, 110, 60)]  # fmt: skip
SKIN = [(232, 190, 160), (205, 160, 125), (160, 110, 80), (110, 75, 55), (245, 210, 185)]
HAIR = [(25, 20, 18), (70, 45, 30), (150, 110, 60), (200, 180, 130), (140, 140, 140)]
GLASS = (45, 55, 68)
DARK = (28, 28, 30)
TYRE = (18, 18, 20)
