"""Road users of one sequence and where they start: traffic in every lane (the ego lane kept free ahead of
the camera), parked vehicles, cyclists, parked bicycles and pedestrians on the sidewalks.

Positions are given at t = 0 (frame 0); each road user then moves at its own constant velocity
(``actors``). Traffic is placed from ``BEHIND`` metres behind the camera to ``VIEW_DISTANCE`` ahead of
where the camera will be at the last frame, so the street stays populated over the whole sequence.
"""

from __future__ import annotations

import math

import numpy as np

from seg_perception.data.synthetic.actors import Vehicle, make_person, make_vehicle, seat_rider
from seg_perception.data.synthetic.constants import BEHIND, FRAME_RATE_HZ, MAX_FRAMES_PER_SEQUENCE, VIEW_DISTANCE
from seg_perception.data.synthetic.palette import pick
from seg_perception.data.synthetic.street import Roadside, Street


class RoadUsers:
    """Vehicles (with their riders) and pedestrians of one sequence, drawn from ``rng`` at construction.

    users: in creation order (moving traffic, parked vehicles, cyclists, parked bicycles, pedestrians);
    track ids 0, 1, ... in that order (a rider right after its vehicle).
    """

    def __init__(self, rng: np.random.Generator, street: Street, ego_speed: float):
        self.street, self.ego_speed = street, ego_speed
        self.users: list = []
        self._tracks = 0
        self._build_traffic(rng)
        self._build_people(rng)

    def _next_track(self) -> int:
        self._tracks += 1
        return self._tracks - 1

    def _build_traffic(self, rng: np.random.Generator) -> None:
        duration = (MAX_FRAMES_PER_SEQUENCE - 1) / FRAME_RATE_HZ
        required = ["truck", "bus", "motorcycle"]  # every sequence shows each of these somewhere ahead
        rng.shuffle(required)
        lanes = list(range(-self.street.oncoming_lanes, self.street.forward_lanes))
        rng.shuffle(lanes)
        free_ahead = rng.uniform(10.0, 30.0)  # metres of empty lane in front of the camera
        for lane in lanes:
            oncoming = lane < 0
            if self.ego_speed == 0.0 and not oncoming:
                speed = 0.0
            elif lane == self.street.ego_lane:
                speed = self.ego_speed * rng.uniform(1.0, 1.15)
            else:
                speed = rng.uniform(5.0, 14.0)
            velocity = -speed if oncoming else speed
            relative = (self.ego_speed - velocity) * duration
            z = min(0.0, relative) - BEHIND - rng.uniform(0, 20)
            z_end = max(0.0, relative) + VIEW_DISTANCE + 20.0
            x = self.street.lane_x(lane)
            while z < z_end:
                kind = pick(rng, ["car", "truck", "bus", "motorcycle"], [86, 5, 3, 6])
                if required and 25.0 < z < 100.0 and (lane != self.street.ego_lane or len(lanes) == 1):
                    kind = required.pop()
                vehicle = make_vehicle(
                    rng, kind, x + rng.uniform(-0.3, 0.3), z, 0.0, speed, math.pi if oncoming else 0.0
                )
                vehicle.z += vehicle.length / 2
                z += vehicle.length + rng.uniform(3.0, 8.0) + speed * rng.uniform(0.8, 3.0)
                if lane == self.street.ego_lane and vehicle.z - vehicle.length / 2 < free_ahead:
                    continue
                self._add_vehicle(rng, vehicle)
        self._park(rng, self.street.right)
        self._park(rng, self.street.left)
        self._build_cyclists(rng, duration)

    def _add_vehicle(self, rng, vehicle: Vehicle, parked: bool = False) -> None:
        """Give the vehicle a track id (and a rider on a two-wheeler in traffic) and add it to the scene."""
        vehicle.track = self._next_track()
        if vehicle.kind in ("motorcycle", "bicycle") and not parked:
            vehicle.rider = seat_rider(
                rng, make_person(rng, "rider", 0.0, 0.0, 0.0, 0.0, 0.0, self._next_track()), vehicle
            )
        self.users.append(vehicle)

    def _park(self, rng, roadside: Roadside) -> None:
        if roadside.parking == 0.0:
            return
        x = roadside.inward(roadside.curb, roadside.parking / 2)
        heading = 0.0 if roadside.side == 1 or self.street.oncoming_lanes == 0 else math.pi
        z = self.street.z_min + rng.uniform(0, 10)
        occupancy = rng.uniform(0.4, 0.95)
        while z < self.street.z_max:
            kind = pick(rng, ["car", "truck", "motorcycle"], [92, 4, 4])
            vehicle = make_vehicle(rng, kind, x + rng.uniform(-0.25, 0.25), z, 0.0, 0.0, heading)
            vehicle.z += vehicle.length / 2
            if rng.random() < occupancy and not self.street.in_intersection(z, z + vehicle.length, 4.0):
                self._add_vehicle(rng, vehicle, parked=True)
            z += vehicle.length + rng.uniform(0.6, 3.0) + (rng.uniform(5.0, 20.0) if rng.random() < 0.1 else 0.0)

    def _build_cyclists(self, rng, duration: float) -> None:
        speed = rng.uniform(3.5, 6.5)
        if self.street.bike_lane:
            x = self.street.forward_lanes * self.street.lane_width + 0.75
            ground = 0.0
        else:
            x = (self.street.right.sidewalk_inner + self.street.right.sidewalk_outer) / 2
            ground = self.street.curb_height
        relative = (self.ego_speed - speed) * duration
        z_start, z_end = min(0.0, relative) - BEHIND, max(0.0, relative) + VIEW_DISTANCE
        starts = [rng.uniform(12.0, 45.0)]  # one cyclist ahead at the start, more along the street
        while starts[-1] < z_end:
            starts.append(starts[-1] + rng.uniform(40.0, 120.0))
        starts += list(np.arange(starts[0] - rng.uniform(40.0, 120.0), z_start, -rng.uniform(40.0, 120.0)))
        for z in starts:
            self._add_vehicle(
                rng, make_vehicle(rng, "bicycle", x + rng.uniform(-0.2, 0.2), float(z), ground, speed, 0.0)
            )
        for roadside in (self.street.left, self.street.right):  # parked bicycles, some across the sidewalk
            for z in rng.uniform(8.0, 60.0, int(rng.integers(1, 4))):
                across = rng.random() < 0.6
                x = (
                    roadside.inward(roadside.sidewalk_outer, 0.9)
                    if across
                    else roadside.outward(roadside.sidewalk_inner, 0.5)
                )
                heading = math.pi / 2 if across else 0.0
                self._add_vehicle(
                    rng, make_vehicle(rng, "bicycle", x, float(z), self.street.curb_height, 0.0, heading), parked=True
                )

    def _build_people(self, rng: np.random.Generator) -> None:
        duration = (MAX_FRAMES_PER_SEQUENCE - 1) / FRAME_RATE_HZ
        density = rng.uniform(0.03, 0.12)  # pedestrians per metre of sidewalk
        for roadside in (self.street.left, self.street.right):
            lo, hi = sorted((roadside.sidewalk_inner, roadside.sidewalk_outer))
            span = self.street.z_max - self.street.z_min + 2 * 1.6 * duration
            count = int(rng.poisson(density * span))
            for _ in range(count):
                z = rng.uniform(self.street.z_min - 1.6 * duration, self.street.z_max + 1.6 * duration)
                speed = 0.0 if rng.random() < 0.3 else rng.choice([-1, 1]) * rng.uniform(0.8, 1.7)
                x = rng.uniform(lo + 0.4, hi - 0.4) if hi - lo > 0.8 else (lo + hi) / 2
                self.users.append(
                    make_person(rng, "person", x, z, self.street.curb_height, 0.0, speed, self._next_track())
                )
            for z in rng.uniform(10.0, 50.0, 2):  # someone always near the camera at the start
                x = rng.uniform(lo + 0.4, hi - 0.4) if hi - lo > 0.8 else (lo + hi) / 2
                self.users.append(
                    make_person(
                        rng, "person", x, z, self.street.curb_height, 0.0, rng.uniform(-1.4, 1.4), self._next_track()
                    )
                )
