"""The street of one sequence: lanes, curbs, sidewalks, building lines and cross streets (geometry only).

World frame (metres): x to the right of the street axis, y up, z along the street; the camera drives
along +z. The street is straight and flat, and in x it reads, for each side (``Roadside``, side -1 left,
+1 right; all x signed):

    centre line x = 0 | lanes | [bike lane, right only] | [parking strip] | curb | [verge] | sidewalk |
    [front yard] | building line ... back row (a second row of buildings or trees far behind)

- Road surface, y = 0: x from ``left.curb`` to ``right.curb``. Forward lanes k = 0 .. forward_lanes - 1
  span x = k * lane_width .. (k + 1) * lane_width, oncoming lanes k = -1, -2, ... the mirror image
  (``lane_x``); a bike lane (1.5 m) lies right of the forward lanes; a parking strip of
  ``Roadside.parking`` metres lies inside the curb (labelled ``parking_label``: "parking" or "road").
- Kerbs are ``curb_height`` high: verges, sidewalks and everything behind them stand at y = curb_height.
- Cross streets (``intersections``): at (z, sidewalk, road, sides) the listed sides are open from the
  curb to the back row: sidewalk over z .. z + sidewalk, road (y = 0) over z + sidewalk .. z + sidewalk +
  road, sidewalk again up to z + 2 * sidewalk + road.
- The street is built over z = z_min .. z_max, long enough for ``MAX_FRAMES_PER_SEQUENCE`` frames of
  driving plus ``VIEW_DISTANCE`` ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.data.synthetic.constants import BEHIND, FRAME_RATE_HZ, MAX_FRAMES_PER_SEQUENCE, VIEW_DISTANCE
from seg_perception.data.synthetic.palette import pick

Intersection = tuple[float, float, float, tuple[int, ...]]
"""(z, sidewalk width, road width, open sides) of one cross street."""


@dataclass
class Roadside:
    """Cross-section of one side of the street, as signed x positions (side = -1 left, +1 right)."""

    side: int
    curb: float  # road edge
    sidewalk_inner: float
    sidewalk_outer: float
    building_line: float
    back_row: float
    back_label: str
    verge: bool  # grass strip between curb and sidewalk
    parking: float  # width of the parking strip inside the road edge (0: none)

    def inward(self, x: float, distance: float) -> float:
        """``x`` moved ``distance`` metres towards the street axis."""
        return x - self.side * distance

    def outward(self, x: float, distance: float) -> float:
        """``x`` moved ``distance`` metres away from the street axis."""
        return x + self.side * distance


@dataclass
class Street:
    """Lane layout, both roadsides and the cross streets of one sequence (see the module docstring)."""

    lane_width: float
    forward_lanes: int
    oncoming_lanes: int
    bike_lane: bool
    curb_height: float
    ego_lane: int  # the forward lane the camera drives in
    camera_x: float  # the camera's x (constant: it keeps its lane)
    z_min: float
    z_max: float
    right: Roadside
    left: Roadside
    parking_label: str
    intersections: list[Intersection]

    @classmethod
    def random(cls, rng: np.random.Generator, ego_speed: float) -> Street:
        """A random street long enough for a camera driving at ``ego_speed`` m/s."""
        lane_width = float(rng.uniform(3.0, 3.6))
        forward_lanes = int(rng.choice([1, 2, 2, 3]))
        oncoming_lanes = int(rng.choice([0, 1, 1, 2]))
        bike_lane = bool(rng.random() < 0.5)
        curb_height = float(rng.uniform(0.1, 0.16))
        ego_lane = int(rng.integers(forward_lanes))
        camera_x = (ego_lane + 0.5) * lane_width + float(rng.uniform(-0.3, 0.3))
        z_min = -BEHIND - 20.0
        travel = ego_speed * (MAX_FRAMES_PER_SEQUENCE - 1) / FRAME_RATE_HZ
        z_max = travel + VIEW_DISTANCE + 20.0
        right_lanes = forward_lanes * lane_width + (1.5 if bike_lane else 0.0)
        sides = []
        for side, lanes_edge in ((1, right_lanes), (-1, -oncoming_lanes * lane_width)):
            parking = 2.2 if rng.random() < (0.5 if side == -1 and oncoming_lanes == 0 else 0.35) else 0.0
            curb = lanes_edge + side * parking
            verge = bool(rng.random() < 0.3)
            sidewalk_inner = curb + side * (rng.uniform(1.0, 2.5) if verge else 0.0)
            sidewalk_outer = sidewalk_inner + side * rng.uniform(2.5, 6.0)
            building_line = sidewalk_outer + side * (rng.uniform(1.5, 6.0) if rng.random() < 0.5 else 0.0)
            back_label = pick(rng, ["terrain", "sidewalk", "terrain"])
            back_row = building_line + side * rng.uniform(15.0, 35.0)
            sides.append(
                Roadside(
                    side, curb, sidewalk_inner, sidewalk_outer, building_line, back_row, back_label, verge, parking
                )
            )
        right, left = sides
        parking_label = "parking" if rng.random() < 0.35 else "road"
        intersections: list[Intersection] = []
        z = rng.uniform(15.0, 90.0)
        while z < z_max:
            sidewalk, road = rng.uniform(2.0, 4.0), rng.uniform(7.0, 14.0)
            sides_open = pick(rng, [(-1, 1), (1,), (-1,)], [3, 1, 1])
            intersections.append((float(z), float(sidewalk), float(road), sides_open))
            z += 2 * sidewalk + road + rng.uniform(60.0, 170.0)
        return cls(
            lane_width,
            forward_lanes,
            oncoming_lanes,
            bike_lane,
            curb_height,
            ego_lane,
            camera_x,
            z_min,
            z_max,
            right,
            left,
            parking_label,
            intersections,
        )

    def segments(self, side: int) -> list[tuple[float, float]]:
        """z ranges where the side of the street is continuous (between cross streets)."""
        segments, start = [], self.z_min
        for z, sidewalk, road, sides in self.intersections:
            if side in sides:
                segments.append((start, z))
                start = z + 2 * sidewalk + road
        segments.append((start, self.z_max))
        return segments

    def road_segments(self, z_near: float, z_far: float) -> list[tuple[float, float]]:
        """z ranges within z_near .. z_far that cross no cross street (on either side)."""
        segments, start = [], z_near
        for z, sidewalk, road, _ in self.intersections:
            if z_near < z + 2 * sidewalk + road and z < z_far:
                if z > start:
                    segments.append((start, z))
                start = z + 2 * sidewalk + road
        if start < z_far:
            segments.append((start, z_far))
        return segments

    def lane_x(self, lane: int) -> float:
        """Centre x of a lane: 0, 1, ... forward lanes rightwards of the centre line, -1, -2, ... oncoming."""
        return (lane + 0.5) * self.lane_width

    def in_intersection(self, z0: float, z1: float, margin: float) -> bool:
        """Whether z0 .. z1 overlaps a cross street (its sidewalks included) widened by ``margin``."""
        return any(z0 < z + 2 * s + r + margin and z1 > z - margin for z, s, r, _ in self.intersections)
