"""Everything fixed beside the street of a sequence: building blocks, barriers, the back rows, street
furniture (lamps, signs, traffic lights, trees) and the shadows the buildings cast on the ground."""

from __future__ import annotations

import numpy as np

from seg_perception.data.synthetic.canvas import Canvas
from seg_perception.data.synthetic.look import Look
from seg_perception.data.synthetic.palette import FACADES, GLASS, Color, pick, scaled, vary
from seg_perception.data.synthetic.shapes import blob, quad_ground, rectangles_x, rectangles_z
from seg_perception.data.synthetic.street import Roadside, Street
from seg_perception.data.synthetic.street_objects import SIGN_COLORS, Barrier, Block, Pole, Tree


class Scenery:
    """The static world of one sequence, drawn from ``rng`` (after the street) at construction.

    blocks, barriers, back_rows: per side (-1, +1), blocks sorted far to near, back rows as (label,
    (N, 3) world outline, colour); furniture: poles and trees (drawn with the road users, sorted by
    depth); shadows: (4, 3) world ground quads shaded on sunny days.
    """

    def __init__(self, rng: np.random.Generator, street: Street, look: Look):
        self.street, self.look = street, look
        self.blocks: dict[int, list[Block]] = {}
        self.back_rows: dict[int, list[tuple[str, np.ndarray, Color]]] = {}
        self.barriers: dict[int, list[Barrier]] = {}
        self.furniture: list = []  # poles and trees
        self.shadows: list[np.ndarray] = []
        window_palette = [vary(rng, GLASS, 12), vary(rng, (80, 90, 100), 15), vary(rng, (25, 30, 38), 8)]
        for roadside in (self.street.left, self.street.right):
            side = roadside.side
            blocks, barriers = [], []
            for z0, z1 in self.street.segments(side):
                z = z0
                while z < z1 - 6:
                    length = min(rng.uniform(12.0, 55.0), z1 - z)
                    front = roadside.outward(roadside.building_line, rng.uniform(0.0, 1.5))
                    blocks.append(self._make_block(rng, side, front, z, z + length, window_palette))
                    z += length + (rng.uniform(2.0, 12.0) if rng.random() < 0.35 else 0.0)
                if abs(roadside.building_line - roadside.sidewalk_outer) > 1.2:
                    barriers += self._make_barriers(rng, roadside, z0, z1)
            blocks.sort(key=lambda b: -b.z0)
            self.blocks[side], self.barriers[side] = blocks, barriers
            self.back_rows[side] = self._make_back_row(rng, roadside)
            self._place_roadside_furniture(rng, roadside)
        if look.sunny:
            for block in self.blocks[look.sun_side]:
                reach = block.height * look.shadow_reach
                shift = block.height * look.shadow_shift
                x_far = block.front - look.sun_side * reach
                self.shadows.append(
                    quad_ground(block.front, x_far, block.z0 + shift, block.z1 + shift, self.street.curb_height + 0.01)
                )

    def _make_block(self, rng, side: int, front: float, z0: float, z1: float, palette: list[Color]) -> Block:
        height = float(rng.uniform(7.0, 26.0))
        depth = float(rng.uniform(10.0, 18.0))
        color = vary(rng, pick(rng, FACADES), 14)
        floor = rng.uniform(2.9, 3.6)
        ground_floor = rng.uniform(3.4, 4.4)
        spacing = rng.uniform(2.4, 3.8)
        win_w, win_h = rng.uniform(0.9, 1.5), rng.uniform(1.2, 1.8)
        frame_color = vary(rng, pick(rng, [(230, 230, 225), scaled(color, 0.8), (60, 60, 60)]), 8)
        x, back = front - side * 0.03, front + side * depth
        floors = np.arange(ground_floor + 0.8, height - win_h - 0.3, floor)
        frames, glass, tints = [], [], []
        for on_facade, a0, a1 in ((True, z0 + 1.0, z1 - 1.0), (False, min(front, back) + 1.0, max(front, back) - 1.0)):
            centres, bottoms = (
                g.ravel() for g in np.meshgrid(np.arange(a0 + spacing / 2, a1 - win_w / 2, spacing), floors)
            )
            for pad, out in ((0.08, frames), (0.0, glass)):
                along = (centres - win_w / 2 - pad, centres + win_w / 2 + pad)
                rect = (*along, bottoms - pad, bottoms + win_h + pad)
                out.append(rectangles_x(x, *rect) if on_facade else rectangles_z(z0 - 0.03, *rect))
            tints.append(rng.integers(1, 4, len(centres)))
            if on_facade and rng.random() < 0.6:  # shop windows
                centres = np.arange(a0 + 2.5, a1 - 2.0, rng.uniform(4.0, 7.0))
                glass.append(
                    rectangles_x(
                        x,
                        centres - 1.5,
                        centres + 1.5,
                        np.full(len(centres), 0.5),
                        np.full(len(centres), ground_floor - 0.6),
                    )
                )
                tints.append(np.full(len(centres), 3))
        windows = np.concatenate(frames + glass)
        colors = np.concatenate([np.zeros(len(windows) - sum(map(len, tints)), int), *tints])
        roof = vary(rng, pick(rng, [(120, 60, 45), (80, 80, 85), (100, 75, 60)]), 10) if rng.random() < 0.3 else None
        windows[..., 1] += self.street.curb_height
        palette = [frame_color, *palette]
        return Block(side, front, depth, z0, z1, self.street.curb_height, height, color, windows, colors, palette, roof)

    def _make_barriers(self, rng, roadside: Roadside, z0: float, z1: float) -> list[Barrier]:
        barriers = []
        x = roadside.outward(roadside.sidewalk_outer, 0.3)
        z = z0
        while z < z1 - 4:
            length = min(rng.uniform(8.0, 40.0), z1 - z)
            kind = pick(rng, [None, "hedge", "fence", "wall"], [3, 2.5, 2.5, 2])
            if kind is not None:
                label = "vegetation" if kind == "hedge" else kind
                height = rng.uniform(0.8, 1.8) if kind != "wall" else rng.uniform(0.6, 2.2)
                steps = np.arange(z, z + length + 1e-6, 1.0 if kind == "hedge" else length)
                tops = height + (rng.uniform(-0.12, 0.12, len(steps)) if kind == "hedge" else 0.0)
                top = np.column_stack([steps, np.broadcast_to(tops, steps.shape)])
                if kind == "hedge":
                    color: Color | None = vary(rng, self.look.vegetation, 12)
                elif kind == "wall":
                    color = vary(rng, pick(rng, [(170, 168, 160), (150, 90, 70), (200, 195, 185)]), 12)
                else:
                    color = None if rng.random() < 0.6 else vary(rng, (130, 95, 60), 15)
                posts = vary(rng, (70, 75, 72), 20) if kind == "fence" else scaled(color or (0, 0, 0), 1.12)
                barriers.append(Barrier(label, x, z, z + length, self.street.curb_height, top, color, posts))
            z += length
        return barriers

    def _make_back_row(self, rng, roadside: Roadside) -> list[tuple[str, np.ndarray, Color]]:
        row, z = [], self.street.z_min
        haze = np.array(self.look.sky_horizon, np.float64)
        while z < self.street.z_max:
            length = rng.uniform(15.0, 50.0)
            if rng.random() < 0.3:
                steps = np.arange(z, z + length + 1e-6, 2.0)
                top = rng.uniform(7.0, 14.0) + rng.uniform(-1.5, 1.5, len(steps))
                label, color = "vegetation", self.look.vegetation
            else:
                steps = np.array([z, z + length])
                top = np.full(2, rng.uniform(9.0, 30.0))
                label, color = "building", pick(rng, FACADES)
            outline = np.concatenate([[[steps[0], 0.0]], np.column_stack([steps, top]), [[steps[-1], 0.0]]])
            heights = self.street.curb_height + outline[:, 1]
            points = np.column_stack([np.full(len(outline), roadside.back_row), heights, outline[:, 0]])
            color = tuple(int(c) for c in 0.75 * np.array(color) + 0.25 * haze)
            row.append((label, points, color))
            z += length
        return row

    def _place_roadside_furniture(self, rng, roadside: Roadside) -> None:
        look, side = self.look, roadside.side
        pole_x = (
            roadside.outward(roadside.curb, 0.9)
            if not roadside.verge
            else (roadside.curb + roadside.sidewalk_inner) / 2
        )
        ground = self.street.curb_height
        lamp_spacing = rng.uniform(25.0, 40.0)
        for z0, z1 in self.street.segments(side):
            for z in np.arange(z0 + rng.uniform(2, lamp_spacing), z1 - 2, lamp_spacing):
                arm = -side * rng.uniform(1.0, 2.5)
                self.furniture.append(Pole(pole_x, z, ground, rng.uniform(6.5, 9.0), 0.2, look.pole, arm, lamp=True))
            z = z0 + rng.uniform(5.0, 40.0)
            while z < z1 - 3:
                shape = pick(rng, list(SIGN_COLORS), [4, 3, 3, 2, 1, 2])
                signs = [(shape, 0.0, rng.uniform(2.1, 2.6), rng.uniform(0.55, 0.75))]
                if rng.random() < 0.35:
                    signs.append((pick(rng, ["info", "mandatory", "prohibition"]), 0.0, signs[0][2] - 0.85, 0.55))
                self.furniture.append(
                    Pole(
                        pole_x + side * rng.uniform(-0.2, 0.3),
                        z,
                        ground,
                        signs[0][2] + 0.4,
                        0.08,
                        look.pole,
                        signs=signs,
                    )
                )
                z += rng.uniform(20.0, 90.0)
            if rng.random() < 0.7:  # an avenue of trees
                spacing = rng.uniform(7.0, 15.0)
                tree_x = (
                    (roadside.curb + roadside.sidewalk_inner) / 2
                    if roadside.verge
                    else roadside.outward(roadside.curb, 0.9)
                )
                for z in np.arange(z0 + rng.uniform(0, spacing), z1 - 2, spacing):
                    if rng.random() < 0.85:
                        self.furniture.append(
                            self._make_tree(rng, tree_x + rng.uniform(-0.2, 0.2), z + rng.uniform(-1, 1))
                        )
        for z, sidewalk, road, _ in self.street.intersections:
            state = int(rng.integers(3))
            for corner_z in (z - 0.5, z + 2 * sidewalk + road + 0.5):
                if side == 1 or self.street.oncoming_lanes > 0:
                    x = roadside.outward(roadside.curb, 0.6)
                    self.furniture.append(
                        Pole(x, corner_z, ground, 3.4, 0.14, look.pole, lights=[(-side * 0.25, 2.8)], light_state=state)
                    )
            if side == 1 and rng.random() < 0.5:
                x = roadside.outward(roadside.curb, 0.6)
                reach = -side * rng.uniform(3.0, 6.0)
                self.furniture.append(
                    Pole(x, z - 1.0, ground, 6.0, 0.22, look.pole, arm=reach, lights=[(reach, 5.4)], light_state=state)
                )

    def _make_tree(self, rng, x: float, z: float) -> Tree:
        rx, ry = rng.uniform(1.5, 3.5), rng.uniform(1.8, 3.5)
        crown = blob(rng, rx, ry)
        color = vary(rng, self.look.vegetation, 14)
        clumps = [
            (
                blob(rng, rx * s, ry * s, 10) + rng.uniform(-0.5, 0.5, 2) * [rx, ry],
                scaled(color, rng.uniform(0.7, 1.3)),
            )
            for s in rng.uniform(0.25, 0.5, 5)
        ]
        return Tree(
            x,
            z,
            self.street.curb_height,
            rng.uniform(0.2, 0.45),
            rng.uniform(1.8, 3.5),
            crown,
            clumps,
            color,
            vary(rng, (85, 70, 55), 12),
        )

    def draw_side(self, canvas: Canvas, side: int, far: float) -> None:
        """Draw one side's back row, blocks and barriers between the camera and ``far`` (world z)."""
        camera_z = canvas.position[2]
        for label, points, color in self.back_rows[side]:
            if points[0, 2] < far and points[-1, 2] > camera_z:
                clipped = points.copy()
                clipped[:, 2] = np.clip(clipped[:, 2], None, far)
                canvas.region(label, canvas.polygon(clipped), color)
        look = self.look
        shaded = look.sunny and side == look.sun_side
        end_shade = 200 if look.sunny else 225
        for block in self.blocks[side]:
            if block.z0 < far and block.z1 > camera_z:
                block.draw(canvas, far, shaded, end_shade)
        for barrier in self.barriers[side]:
            if barrier.z0 < far and barrier.z1 > camera_z:
                barrier.draw(canvas, far)

    def in_shadow(self, x: float, z: float) -> bool:
        """Whether the ground point (x, z) lies in a building's shadow."""
        for shadow in self.shadows:
            x0, x1 = sorted((shadow[0, 0], shadow[1, 0]))
            if x0 <= x <= x1 and shadow[0, 2] <= z <= shadow[2, 2]:
                return True
        return False
