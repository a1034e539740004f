"""Street furniture and buildings, fixed in the world: poles (lamps, signs, traffic lights), trees,
building blocks and barriers (walls, fences, hedges), each drawing itself into a ``Canvas``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seg_perception.data.synthetic.camera import NEAR
from seg_perception.data.synthetic.canvas import LIT, Canvas
from seg_perception.data.synthetic.palette import Color, scaled
from seg_perception.data.synthetic.shapes import billboard, ellipse, quad_x, quad_z, rectangle

_MIN_POLE_PIXELS = 1.2  # thin structures are widened to at least this many pixels

SIGN_COLORS = {  # sign shape -> (rim, face)
    "prohibition": ((200, 30, 35), (235, 235, 235)), "mandatory": ((40, 80, 170), (45, 90, 185)),
    "warning": ((200, 30, 35), (235, 235, 230)), "priority": ((235, 235, 235), (235, 190, 30)),
    "stop": ((190, 25, 30), (205, 35, 40)), "info": ((235, 235, 235), (40, 85, 165)),
}  # fmt: skip


@dataclass
class Pole:
    """Street lamp, sign post or traffic-light post with an optional arm over the street."""

    x: float
    z: float
    ground: float
    height: float
    width: float
    color: Color
    arm: float = 0.0  # signed lateral arm length at the top (towards the street)
    lamp: bool = False
    signs: list[tuple[str, float, float, float]] = field(default_factory=list)  # (shape, x offset, y, size)
    lights: list[tuple[float, float]] = field(default_factory=list)  # housing (x offset, y of the centre)
    light_state: int = 0  # 0 red, 1 amber, 2 green
    housing: Color = (35, 35, 35)

    def anchor(self, t: float) -> tuple[float, float]:
        return self.x, self.z

    def z_range(self, t: float) -> tuple[float, float]:
        return self.z - 0.1, self.z + 0.1

    def draw(self, canvas: Canvas, t: float, shade: int) -> None:
        base = np.array([self.x, self.ground, self.z])
        scale = canvas.pixels_per_metre(base)
        if scale == 0.0:
            return
        width = max(self.width, _MIN_POLE_PIXELS / scale)
        top = self.ground + self.height
        canvas.region(
            "pole",
            canvas.polygon(quad_z(self.z, self.x - width / 2, self.x + width / 2, self.ground, top)),
            self.color,
            shade,
        )
        if self.arm:
            thickness = max(0.12, _MIN_POLE_PIXELS / scale)
            x0, x1 = sorted((self.x, self.x + self.arm))
            canvas.region("pole", canvas.polygon(quad_z(self.z, x0, x1, top - thickness, top)), self.color, shade)
            if self.lamp:
                end = self.x + self.arm
                lamp = quad_z(self.z - 0.05, end - 0.35, end + 0.35, top - 0.28, top - 0.02)
                canvas.region("pole", canvas.polygon(lamp), scaled(self.color, 0.8), shade)
        for shape, dx, y, size in self.signs:
            self._draw_sign(canvas, shape, self.x + dx, self.ground + y, size, shade)
        for dx, y in self.lights:
            self._draw_light(canvas, self.x + dx, self.ground + y, scale, shade)

    def _draw_sign(self, canvas: Canvas, shape: str, x: float, y: float, size: float, shade: int) -> None:
        r = size / 2
        outline = {
            "prohibition": ellipse(r, r, 16),
            "mandatory": ellipse(r, r, 16),
            "stop": ellipse(r, r, 8),
            "warning": np.array([(-r * 1.15, -r * 0.8), (r * 1.15, -r * 0.8), (0.0, r * 1.2)]),
            "priority": np.array([(0.0, -r * 1.1), (r * 1.1, 0.0), (0.0, r * 1.1), (-r * 1.1, 0.0)]),
            "info": rectangle(r, r * 0.75),
        }[shape]
        rim, face = SIGN_COLORS[shape]
        z = self.z - 0.06
        canvas.region("traffic sign", canvas.polygon(billboard(outline, x, y, z)), rim, shade)
        inner, symbol = canvas.polygons(
            [
                billboard(outline * 0.72, x, y, z - 0.01),
                billboard(rectangle(r * 0.45, r * 0.12), x, y, z - 0.02),  # a bar as the symbol
            ]
        )
        canvas.paint([inner], face)
        canvas.paint([symbol], (30, 30, 30) if shape in ("prohibition", "warning") else (235, 235, 235))

    def _draw_light(self, canvas: Canvas, x: float, y: float, scale: float, shade: int) -> None:
        z = self.z - 0.1
        canvas.region(
            "traffic light", canvas.polygon(quad_z(z, x - 0.17, x + 0.17, y - 0.47, y + 0.47)), self.housing, shade
        )
        if scale * 0.9 < 6:
            return
        lamps = [billboard(ellipse(0.1, 0.1, 10), x, y + dy, z - 0.01) for dy in (0.29, 0.0, -0.29)]
        lit = [(255, 60, 50), (255, 190, 40), (80, 255, 140)]
        for index, polygon in enumerate(canvas.polygons(lamps)):
            canvas.paint([polygon], lit[index] if index == self.light_state else (50, 50, 45))


@dataclass
class Tree:
    """A street tree: trunk and a round crown facing the camera (both labelled vegetation)."""

    x: float
    z: float
    ground: float
    trunk_width: float
    crown_base: float
    crown: np.ndarray  # (N, 2) outline around the crown centre
    clumps: list[tuple[np.ndarray, Color]]
    color: Color
    bark: Color

    def anchor(self, t: float) -> tuple[float, float]:
        return self.x, self.z

    def z_range(self, t: float) -> tuple[float, float]:
        return self.z - 0.2, self.z + 0.2

    def draw(self, canvas: Canvas, t: float, shade: int) -> None:
        scale = canvas.pixels_per_metre(np.array([self.x, self.ground, self.z]))
        if scale == 0.0:
            return
        width = max(self.trunk_width, _MIN_POLE_PIXELS / scale)
        centre_y = self.ground + self.crown_base + self.crown[:, 1].max()
        trunk = quad_z(self.z, self.x - width / 2, self.x + width / 2, self.ground, centre_y)
        canvas.region("vegetation", canvas.polygon(trunk), self.bark, shade)
        canvas.region(
            "vegetation", canvas.polygon(billboard(self.crown, self.x, centre_y, self.z - 0.05)), self.color, shade
        )
        if scale * np.ptp(self.crown[:, 0]) > 12:
            clumps = canvas.polygons([billboard(outline, self.x, centre_y, self.z - 0.1) for outline, _ in self.clumps])
            for polygon, (_, color) in zip(clumps, self.clumps, strict=True):
                canvas.paint([polygon], color)


@dataclass
class Block:
    """A building: facade along the street (plane x = front), an end face towards the camera, windows."""

    side: int
    front: float
    depth: float
    z0: float
    z1: float
    ground: float
    height: float
    color: Color
    windows: np.ndarray  # (M, 4, 3) world quads on the facade and end face: frames first, then glass
    window_colors: np.ndarray  # (M,) index into palette
    palette: list[Color]
    roof: Color | None

    def draw(self, canvas: Canvas, far: float, shaded: bool, end_shade: int) -> None:
        z1 = min(self.z1, far)
        back = self.front + self.side * self.depth
        facade_shade = 140 if shaded else LIT
        top = self.ground + self.height
        if self.z0 > canvas.position[2]:
            end = quad_z(self.z0, min(self.front, back), max(self.front, back), self.ground, top)
            canvas.region("building", canvas.polygon(end), scaled(self.color, 0.9), end_shade)
        facade = quad_x(self.front, self.z0, z1, self.ground, top)
        canvas.region("building", canvas.polygon(facade), self.color, facade_shade)
        if self.roof is not None:
            ridge = self.front + self.side * 4.0
            roof = np.array(
                [[self.front, top, self.z0], [self.front, top, z1], [ridge, top + 3, z1], [ridge, top + 3, self.z0]]
            )
            canvas.region("building", canvas.polygon(roof), self.roof, facade_shade)
        shown = (self.windows[:, 0, 2] < far) & (self.windows[:, 2, 2] > canvas.position[2] + NEAR)
        polygons = canvas.polygons(self.windows[shown])
        colors = self.window_colors[shown]
        for index, color in enumerate(self.palette):
            canvas.paint([p for p, c in zip(polygons, colors, strict=True) if c == index], color)


@dataclass
class Barrier:
    """Wall, fence or hedge along the back of a sidewalk (plane x = const)."""

    label: str
    x: float
    z0: float
    z1: float
    ground: float
    top: np.ndarray  # (N, 2) (z, height) along the top edge
    color: Color | None  # None: see-through mesh fence
    posts: Color

    def draw(self, canvas: Canvas, far: float) -> None:
        top = self.top.copy()
        top[:, 0] = np.minimum(top[:, 0], far)
        z1 = top[-1, 0]
        outline = np.concatenate([[[top[0, 0], 0.0]], top, [[z1, 0.0]]])
        points = np.column_stack([np.full(len(outline), self.x), self.ground + outline[:, 1], outline[:, 0]])
        canvas.region(self.label, canvas.polygon(points), self.color, LIT if self.color else None)
        height = float(self.top[0, 1])
        if self.label == "fence":  # posts every 2.5 m, a bottom and a top rail
            posts = [quad_x(self.x, z, z + 0.1, self.ground, self.ground + height) for z in np.arange(self.z0, z1, 2.5)]
            rails = [quad_x(self.x, self.z0, z1, self.ground + y, self.ground + y + 0.06) for y in (0.1, height - 0.08)]
            canvas.paint_world(posts + rails, self.posts)
        elif self.label == "wall":  # coping stones
            canvas.paint_world(
                [quad_x(self.x, self.z0, z1, self.ground + height - 0.08, self.ground + height)], self.posts
            )
