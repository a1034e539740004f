"""segmentation_node's drivable_grid (nav_msgs/OccupancyGrid) end to end: a synthetic frame whose camera is known
(its camera.json as camera_info and camera_pose), the grid checked cell by cell against the node's own drivable_area
projected by hand, and the message's layout and header."""

import math
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from seg_perception.data.synthetic import SyntheticScene
from seg_perception.ros.conversions import mono8_array, stamp_ns
from seg_perception.ros.harness import NodeClient, NodeProcess

CONFIG = Path(__file__).resolve().parents[1] / "config" / "semantic.yaml"
GRID, DRIVABLE, MASK = "drivable_grid", "drivable_area", "semantic/mask"
HEIGHT, WIDTH = 256, 512


@pytest.fixture(scope="module")
def scene_frame():
    """(frame (H, W, 3) uint8, camera.json dict) of a synthetic val frame."""
    scene = SyntheticScene(HEIGHT, WIDTH, 2, "val", 1)
    return scene.render(3).image, scene.camera.to_json()


def _camera_info(camera: dict) -> CameraInfo:
    intrinsic = camera["intrinsic"]
    fx, fy, u0, v0 = (intrinsic[k] for k in ("fx", "fy", "u0", "v0"))
    info = CameraInfo(height=HEIGHT, width=WIDTH, distortion_model="plumb_bob")
    info.k = [fx, 0.0, u0, 0.0, fy, v0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, u0, 0.0, 0.0, fy, v0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _pixel(camera: dict, x: float, y: float) -> tuple[float, float]:
    """Ground point (x forward, y left) -> pixel, by hand for a camera with roll 0: undo the mounting offset, the
    yaw about z and the pitch about y, then the optical axes (right = -left, down = -up, forward)."""
    e, i = camera["extrinsic"], camera["intrinsic"]
    dx, dy, dz = x - e["x"], y - e["y"], -e["z"]
    cy, sy = math.cos(e["yaw"]), math.sin(e["yaw"])
    dx, dy = cy * dx + sy * dy, -sy * dx + cy * dy
    cp, sp = math.cos(e["pitch"]), math.sin(e["pitch"])
    forward, up = cp * dx - sp * dz, sp * dx + cp * dz
    return i["fx"] * -dy / forward + i["u0"], i["fy"] * -up / forward + i["v0"]


def test_the_grid_is_the_drivable_area_on_the_ground_in_base_link(scene_frame):
    image, camera = scene_frame
    e = camera["extrinsic"]
    pose = f"[{e['x']}, {e['y']}, {e['z']}, 0.0, {e['pitch']}, {e['yaw']}]"
    params = {"device": "cpu", "camera_pose": pose, "grid_resolution": "0.5", "grid_y_range": "[-10.0, 10.0]"}
    process = NodeProcess(CONFIG, params, name="seg_grid", namespace="/grid")
    process.wait_ready()
    try:
        with NodeClient("grid_client", "grid", outputs=(MASK, DRIVABLE, GRID), inputs=("image", "camera_info")) as c:
            assert c.wait_connected(), process.output[-2000:]
            c.publish_msg("", _camera_info(camera), "camera_info")
            stamp = None
            for _ in range(20):  # until the node has the camera_info: the grid needs it
                stamp = c.publish("", image, frame_id="front")
                if c.spin_until(lambda s=stamp: c.has("", GRID, s) and c.has("", DRIVABLE, s), 10.0):
                    break
            grid, drivable = c.received[("", GRID)][stamp], mono8_array(c.received[("", DRIVABLE)][stamp])
    finally:
        assert process.stop() == 0, process.output[-3000:]

    assert (stamp_ns(grid.header), grid.header.frame_id) == (stamp, "base_link")
    info = grid.info
    assert (info.resolution, info.width, info.height) == (0.5, 80, 40) and len(grid.data) == 80 * 40
    assert (info.origin.position.x, info.origin.position.y, info.origin.orientation.w) == (0.0, -10.0, 1.0)
    cells = np.asarray(grid.data, np.int8).reshape(40, 80)
    checked = {0: 0, 100: 0, -1: 0}
    for row in range(40):
        for col in range(80):
            x, y = 0.25 + 0.5 * col, -10.0 + 0.25 + 0.5 * row
            u, v = _pixel(camera, x, y)
            if not (0 <= u <= WIDTH - 1 and 0 <= v <= HEIGHT - 1) or math.hypot(x - e["x"], y - e["y"]) > 40.0:
                expected = -1
            elif abs(u - round(u)) > 0.45 or abs(v - round(v)) > 0.45:
                continue  # a cell centre near a pixel border: rounding may pick either pixel
            else:
                expected = 0 if drivable[round(v), round(u)] == 255 else 100
            assert cells[row, col] == expected, (row, col, x, y, u, v)
            checked[expected] += 1
    assert min(checked.values()) > 20, checked  # free, occupied and unknown cells all checked
    ahead = cells[20, 16:40]  # y = 0.25 m, x = 8..20 m: the ego lane ahead of the camera
    assert (ahead == 0).mean() > 0.8
