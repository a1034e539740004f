"""Bird's-eye truth of a rendered frame from the scene's own geometry: the drivable grid and the located objects.

Written beside the gtFine files of every frame (``writer.write_frame``):

- ``<stem>_gtFine_drivableGrid.png``: (H_grid, W_grid) uint8 on the default ``GridSpec`` (0.2 m cells, x 0..40 m
  forward, y -20..20 m; row 0 = y_min, column 0 = x_min; the OccupancyGrid layout). 0 FREE: the cell centre lies on
  the road surface (curb to curb less parking strips labelled "parking", and the cross streets) and in no road
  user's footprint;
  100 OCCUPIED: off the road or in a footprint; 255 UNKNOWN (-1 as int8): the cell centre is behind the camera,
  outside the image, farther than ``MAX_RANGE`` m from the camera's ground point, or not visible: its pixel
  (flat-ground projection, rounded) is not flat ground in the labelIds (``VISIBLE_GROUND``; the hood, a car or a
  wall in front of it). Unknown wins: the ground under a car's body is hidden by the car.
- ``<stem>_gtFine_objects.json``: ``{"grid": GridSpec fields, "frame": "base_link", "camera_ground_point": {"x",
  "y"}, "max_range", "objects": [...]}``, one object per thing instance in the instanceIds (ascending id):
  ``instance_id`` (label_id * 1000 + k), ``label``, ``train_id``, ``x``, ``y`` (the point of its ground contact
  nearest to the camera's ground point: a vehicle's wheel base, a person's feet; see ``contact_polygon``),
  ``range`` (its distance from that point), ``bearing`` (atan2(y - cam_y, x - cam_x), rad, left > 0) and
  ``footprint`` ([[x, y], ...] polygon, overhangs included). Metres, vehicle frame (x forward, y left).

Footprints (world ground plane): a vehicle's is the convex hull of its hull points seen from above; a person's
or rider's the width of its silhouette x ``PERSON_DEPTH`` around its feet (people are flat billboards here).
Vehicle frame at camera world position p and camera.json extrinsic (x_c, y_c): origin (p_x + y_c, 0, p_z - x_c),
x = Z - origin_z, y = origin_x - X.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from seg_perception.data.synthetic.actors import Person, Vehicle
from seg_perception.data.synthetic.constants import FRAME_RATE_HZ
from seg_perception.data.synthetic.results import SynthFrame
from seg_perception.data.synthetic.scene import SyntheticScene
from seg_perception.ground_projection import CameraModel, GridSpec, GroundProjection
from seg_perception.labels import INSTANCE_ID_DIVISOR, LABEL_BY_ID, LABEL_BY_NAME

FREE, OCCUPIED, UNKNOWN = 0, 100, 255
"""drivableGrid PNG values (UNKNOWN is the OccupancyGrid's -1 as uint8)."""
MAX_RANGE = 40.0
"""Cells farther than this from the camera's ground point are UNKNOWN (metres)."""
VISIBLE_GROUND = ("road", "sidewalk", "parking", "rail track", "terrain", "ground")
"""Labels at a cell's pixel that show the cell's ground."""
THING_LABELS = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
PERSON_DEPTH = 0.3
"""Footprint depth of a person or rider along the street (metres)."""
CONTACT_HEIGHT = 0.05
"""Body points at most this far (m) above a vehicle's lowest are where it touches the ground."""

_VISIBLE_LUT = np.zeros(256, bool)
_VISIBLE_LUT[[LABEL_BY_NAME[name].id for name in VISIBLE_GROUND]] = True


@dataclass
class FrameTruth:
    """grid: (H_grid, W_grid) uint8 drivableGrid; objects: the objects JSON document."""

    grid: np.ndarray
    objects: dict


class VehicleFrame:
    """World (X right, Y up, Z along the street) <-> base_link at one camera position (see the module docstring)."""

    def __init__(self, position: np.ndarray, camera_json: dict):
        extrinsic = camera_json["extrinsic"]
        self.camera_ground = np.array([float(extrinsic["x"]), float(extrinsic["y"])])
        self.origin_x = float(position[0]) + self.camera_ground[1]
        self.origin_z = float(position[2]) - self.camera_ground[0]

    def from_world(self, xz: np.ndarray) -> np.ndarray:
        """(..., 2) world ground points (X, Z) -> (..., 2) vehicle (x, y)."""
        xz = np.asarray(xz, np.float64)
        return np.stack([xz[..., 1] - self.origin_z, self.origin_x - xz[..., 0]], axis=-1)

    def to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vehicle (x, y) -> world (X, Z)."""
        return self.origin_x - np.asarray(y), self.origin_z + np.asarray(x)


def road_rectangles(scene: SyntheticScene) -> list[tuple[float, float, float, float]]:
    """World (X0, X1, Z0, Z1) rectangles of the drivable road surface: the street curb to curb, less parking strips
    labelled "parking" (a Cityscapes class apart from road; strips labelled "road" are road), then each open cross
    street."""
    street = scene.street

    def edge(roadside) -> float:
        parked = roadside.parking if street.parking_label == "parking" else 0.0
        return roadside.inward(roadside.curb, parked)

    rectangles = [(edge(street.left), edge(street.right), street.z_min, street.z_max)]
    for z, sidewalk, road, sides in street.intersections:
        for roadside in (street.left, street.right):
            if roadside.side in sides:
                x0, x1 = sorted((roadside.curb, roadside.back_row))
                rectangles.append((x0, x1, z + sidewalk, z + sidewalk + road))
    return rectangles


def footprint(user: Vehicle | Person, t: float) -> np.ndarray:
    """(N, 2) world (X, Z) convex ground footprint of a road user at time t."""
    if isinstance(user, Vehicle):
        hull, *_ = user.model
        points = (user.position(t) + hull @ user.basis.T)[:, [0, 2]]
        return cv2.convexHull(points.astype(np.float32))[:, 0, :].astype(np.float64)
    x, z = user.anchor(t)
    half_width, half_depth = float(np.abs(user.outline(t)[:, 0]).max()), PERSON_DEPTH / 2
    return np.array([[x - half_width, z - half_depth], [x + half_width, z - half_depth],
                     [x + half_width, z + half_depth], [x - half_width, z + half_depth]])  # fmt: skip


def inside_convex(polygon: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether the points (x, y) (any shape) lie in the convex (N, 2) polygon (either winding, edges included)."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    cross = edges[:, 0, None] * (np.ravel(y) - polygon[:, 1, None]) - edges[:, 1, None] * (
        np.ravel(x) - polygon[:, 0, None]
    )  # (N, points)
    return ((cross >= 0).all(axis=0) | (cross <= 0).all(axis=0)).reshape(np.shape(x))


def contact_polygon(user: Vehicle | Person, t: float) -> np.ndarray:
    """(N, 2) world (X, Z) convex polygon where a road user touches the ground at time t: a vehicle's body points
    on the ground (its wheel base: the overhangs front and back are off the ground), a person's footprint."""
    if not isinstance(user, Vehicle):
        return footprint(user, t)
    hull, *_ = user.model
    low = hull[hull[:, 1] <= hull[:, 1].min() + CONTACT_HEIGHT]
    points = (user.position(t) + low @ user.basis.T)[:, [0, 2]]
    return cv2.convexHull(points.astype(np.float32))[:, 0, :].astype(np.float64)


def nearest_point(polygon: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(2,) point of the convex (N, 2) polygon (boundary or inside) nearest to the (2,) point."""
    if inside_convex(polygon, point[0], point[1]):
        return point.copy()
    start, edge = polygon, np.roll(polygon, -1, axis=0) - polygon
    length2 = np.maximum((edge**2).sum(axis=1), 1e-18)
    step = np.clip(((point - start) * edge).sum(axis=1) / length2, 0.0, 1.0)
    candidates = start + step[:, None] * edge
    return candidates[np.argmin(((candidates - point) ** 2).sum(axis=1))]


def _users_by_track(scene: SyntheticScene) -> dict[int, Vehicle | Person]:
    users = {}
    for user in scene.road_users.users:
        users[user.track] = user
        if isinstance(user, Vehicle) and user.rider is not None:
            users[user.rider.track] = user.rider
    return users


def frame_truth(scene: SyntheticScene, index: int, frame: SynthFrame, spec: GridSpec | None = None) -> FrameTruth:
    """The bird's-eye truth of frame ``index`` of ``scene`` (``frame``: its rendering) on ``spec`` (default grid)."""
    spec = spec or GridSpec()
    t = index / FRAME_RATE_HZ
    vehicle = VehicleFrame(scene.camera_position(index), frame.camera)
    users = _users_by_track(scene)
    footprints = {track: vehicle.from_world(footprint(user, t)) for track, user in users.items()}
    contacts = {track: vehicle.from_world(contact_polygon(user, t)) for track, user in users.items()}
    return FrameTruth(
        _grid(spec, vehicle, frame, scene, footprints.values()),
        {
            "grid": asdict(spec),
            "frame": "base_link",
            "camera_ground_point": {"x": float(vehicle.camera_ground[0]), "y": float(vehicle.camera_ground[1])},
            "max_range": MAX_RANGE,
            "objects": _objects(frame, vehicle.camera_ground, footprints, contacts),
        },
    )


def _grid(spec: GridSpec, vehicle: VehicleFrame, frame: SynthFrame, scene: SyntheticScene, footprints) -> np.ndarray:
    x, y = spec.cell_centres()
    world_x, world_z = vehicle.to_world(x, y)
    on_road = np.zeros(x.shape, bool)
    for x0, x1, z0, z1 in road_rectangles(scene):
        on_road |= (world_x >= x0) & (world_x <= x1) & (world_z >= z0) & (world_z <= z1)
    in_object = np.zeros(x.shape, bool)
    for polygon in footprints:
        (x0, y0), (x1, y1) = polygon.min(axis=0), polygon.max(axis=0)
        if x1 < spec.x_min or x0 > spec.x_max or y1 < spec.y_min or y0 > spec.y_max:
            continue
        near = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        in_object[near] |= inside_convex(polygon, x[near], y[near])
    grid = np.where(on_road & ~in_object, FREE, OCCUPIED).astype(np.uint8)
    grid[~_visible(spec, x, y, frame, vehicle.camera_ground)] = UNKNOWN
    return grid


def _visible(spec: GridSpec, x: np.ndarray, y: np.ndarray, frame: SynthFrame, camera_ground: np.ndarray) -> np.ndarray:
    """(H_grid, W_grid) bool: in range, in front of the camera, inside the image and showing flat ground there."""
    height, width = frame.label_ids.shape
    u, v, depth = GroundProjection(CameraModel.from_cityscapes(frame.camera)).ground_to_pixel(x, y)
    with np.errstate(invalid="ignore"):
        col, row = np.rint(np.nan_to_num(u, nan=-1.0)), np.rint(np.nan_to_num(v, nan=-1.0))
        visible = (depth > 0) & (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)
    visible &= np.hypot(x - camera_ground[0], y - camera_ground[1]) <= MAX_RANGE
    labels = frame.label_ids[np.where(visible, row, 0).astype(np.int64), np.where(visible, col, 0).astype(np.int64)]
    return visible & _VISIBLE_LUT[labels]


def _objects(frame: SynthFrame, camera_ground: np.ndarray, footprints: dict, contacts: dict) -> list[dict]:
    objects = []
    for instance_id in np.unique(frame.instance_ids).tolist():
        label = LABEL_BY_ID.get(instance_id // INSTANCE_ID_DIVISOR)
        if instance_id < INSTANCE_ID_DIVISOR or label is None or label.name not in THING_LABELS:
            continue
        track = frame.instance_tracks[instance_id]
        polygon = footprints[track]
        x, y = nearest_point(contacts[track], camera_ground)
        dx, dy = x - camera_ground[0], y - camera_ground[1]
        objects.append(
            {
                "instance_id": instance_id,
                "label": label.name,
                "train_id": label.train_id,
                "x": round(float(x), 4),
                "y": round(float(y), 4),
                "range": round(math.hypot(dx, dy), 4),
                "bearing": round(math.atan2(dy, dx), 6),
                "footprint": np.round(polygon, 4).tolist(),
            }
        )
    return objects
