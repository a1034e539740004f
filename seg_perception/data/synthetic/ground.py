"""The ground of a sequence as drawn: road, parking strips, verges, sidewalks, kerbs, cross streets and the
terrain behind, then the road paint (lane markings, crossings, asphalt patches, paving joints)."""

from __future__ import annotations

import math

import numpy as np

from seg_perception.data.synthetic.canvas import Canvas
from seg_perception.data.synthetic.look import Look
from seg_perception.data.synthetic.palette import scaled
from seg_perception.data.synthetic.shapes import quad_ground, quad_x, quad_z
from seg_perception.data.synthetic.street import Street

_MARKING_DISTANCE = 120.0  # road paint farther away than this is below a pixel


class Ground:
    """Ground surfaces of ``street`` and its road paint, drawn from ``rng`` at construction.

    patches: (M, 4, 3) world quads of asphalt repairs; dashed lane lines repeat every ``dash_period``
    metres from ``dash_offset``; the centre line is solid or dashed; sidewalk paving joints every
    ``joint_spacing`` metres.
    """

    def __init__(self, rng: np.random.Generator, street: Street, look: Look):
        self.street, self.look = street, look
        count = int((street.z_max - street.z_min) * rng.uniform(0.05, 0.4))  # asphalt repairs
        x0 = rng.uniform(street.left.curb, street.right.curb - 1, count)
        z0 = rng.uniform(street.z_min, street.z_max, count)
        x1, z1, y = x0 + rng.uniform(0.5, 2.5, count), z0 + rng.uniform(0.4, 3.0, count), np.full(count, 0.005)
        corners = ((x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1))
        self.patches = np.stack([np.stack(c, axis=1) for c in corners], axis=1)  # (count, 4, 3)
        self.dash_period = float(rng.uniform(8.0, 12.0))
        self.dash_offset = float(rng.uniform(0.0, self.dash_period))
        self.solid_centre = bool(rng.random() < 0.5)
        self.joint_spacing = float(rng.uniform(1.0, 2.0))

    def draw(self, canvas: Canvas, far: float) -> None:
        """Ground surfaces from just behind the camera to ``far`` (world z), back to front."""
        look, near, curb_y = self.look, canvas.position[2] - 5.0, self.street.curb_height
        z_from = max(self.street.z_min, near)
        # Under everything, void 'ground': rounding can leave one-pixel cracks between adjacent polygons.
        base = quad_ground(self.street.left.back_row, self.street.right.back_row, z_from, far, 0.0)
        canvas.region("ground", canvas.polygon(base), look.road)
        for roadside in (self.street.left, self.street.right):
            color = look.terrain if roadside.back_label == "terrain" else look.sidewalk
            canvas.region(
                roadside.back_label,
                canvas.polygon(quad_ground(roadside.sidewalk_outer, roadside.back_row, z_from, far, curb_y)),
                color,
            )
        canvas.region(
            "road",
            canvas.polygon(quad_ground(self.street.left.curb, self.street.right.curb, z_from, far, 0.0)),
            look.road,
        )
        for roadside in (self.street.left, self.street.right):
            for z0, z1 in self.street.segments(roadside.side):
                z0, z1 = max(z0, z_from), min(z1, far)
                if z1 <= z0:
                    continue
                if roadside.parking and self.street.parking_label == "parking":
                    strip = quad_ground(roadside.curb, roadside.inward(roadside.curb, roadside.parking), z0, z1, 0.002)
                    canvas.region("parking", canvas.polygon(strip), look.parking)
                if roadside.verge:
                    canvas.region(
                        "terrain",
                        canvas.polygon(quad_ground(roadside.curb, roadside.sidewalk_inner, z0, z1, curb_y)),
                        look.terrain,
                    )
                canvas.region(
                    "sidewalk",
                    canvas.polygon(quad_ground(roadside.sidewalk_inner, roadside.sidewalk_outer, z0, z1, curb_y)),
                    look.sidewalk,
                )
                canvas.region("sidewalk", canvas.polygon(quad_x(roadside.curb, z0, z1, 0.0, curb_y)), look.curb)
        for z, sidewalk, road, sides in self.street.intersections:
            if z > far or z + 2 * sidewalk + road < near:
                continue
            for roadside in (self.street.left, self.street.right):
                if roadside.side not in sides:
                    continue
                x0, x1 = roadside.curb, roadside.back_row
                canvas.region(
                    "road", canvas.polygon(quad_ground(x0, x1, z + sidewalk, z + sidewalk + road, 0.0)), look.road
                )
                for s0 in (z, z + sidewalk + road):
                    canvas.region(
                        "sidewalk",
                        canvas.polygon(quad_ground(x0, x1, s0, min(s0 + sidewalk, far), curb_y)),
                        look.sidewalk,
                    )
                canvas.region(
                    "sidewalk",
                    canvas.polygon(quad_z(z + sidewalk + road, min(x0, x1), max(x0, x1), 0.0, curb_y)),
                    look.curb,
                )

    def draw_markings(self, canvas: Canvas, far: float) -> None:
        """Lane markings, crossings, asphalt patches and paving joints: world-fixed, image only."""
        z_near = canvas.position[2] + 1.0
        z_far = min(far, canvas.position[2] + _MARKING_DISTANCE)
        patches = self.patches[(self.patches[:, 0, 2] < z_far) & (self.patches[:, 2, 2] > z_near)]
        canvas.paint_world(patches, self.look.road_patch)
        width = 0.13
        dashed = [k * self.street.lane_width for k in range(1, self.street.forward_lanes)] + [
            -k * self.street.lane_width for k in range(1, self.street.oncoming_lanes)
        ]
        if self.street.oncoming_lanes and not self.solid_centre:
            dashed.append(0.0)
        first = math.floor((z_near - self.dash_offset) / self.dash_period)
        starts = self.dash_offset + self.dash_period * np.arange(first, first + (z_far - z_near) / self.dash_period + 2)
        quads = [
            quad_ground(x - width / 2, x + width / 2, s, s + 3.0, 0.006)
            for x in dashed
            for s in starts
            if not self.street.in_intersection(s, s + 3.0, 0.0)
        ]
        solid = [self.street.forward_lanes * self.street.lane_width] + (
            [0.0] if self.street.oncoming_lanes and self.solid_centre else []
        )
        for z0, z1 in self.street.road_segments(z_near, z_far):
            quads += [quad_ground(x - width / 2, x + width / 2, z0, z1, 0.006) for x in solid]
        for z, _, _, _ in self.street.intersections:
            if z_near < z - 1.0 and z - 6.0 < z_far:
                quads += [
                    quad_ground(x, x + 0.5, z - 5.0, z - 1.0, 0.006)
                    for x in np.arange(self.street.left.curb + 0.5, self.street.right.curb - 0.5, 1.0)
                ]
        canvas.paint_world(quads, self.look.marking)
        joints = []
        for roadside in (self.street.left, self.street.right):
            first = math.ceil(z_near / self.joint_spacing)
            for z in self.joint_spacing * np.arange(first, first + 60 / self.joint_spacing):
                joints.append(
                    quad_ground(
                        roadside.sidewalk_inner, roadside.sidewalk_outer, z, z + 0.04, self.street.curb_height + 0.002
                    )
                )
        canvas.paint_world(joints, scaled(self.look.sidewalk, 0.8))
