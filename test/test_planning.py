"""The planning check: ``free_distance`` on hand-made grids (values worked out by hand), and the ``planning_check``
node as a process answering OccupancyGrids published here, also after malformed ones, with and without objects."""

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from nav_msgs.msg import OccupancyGrid
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from std_msgs.msg import Float32, Header

from seg_perception.ground_projection import FREE, OCCUPIED, UNKNOWN, GridSpec
from seg_perception.pipeline.planning import free_distance
from seg_perception.ros.conversions import set_stamp
from seg_perception.ros.harness import NodeProcess, node_executable
from seg_perception.ros.result_messages import occupancy_grid_msg
from seg_perception_msgs.msg import ObjectInstance, ObjectInstanceArray

CONFIG = Path(__file__).resolve().parents[1] / "config" / "planning_check.yaml"
GRID = GridSpec(resolution=1.0, x_min=0.0, x_max=10.0, y_min=-3.0, y_max=3.0)
"""10 columns (centres x = 0.5 .. 9.5) x 6 rows (centres y = -2.5 .. 2.5): with the default lane (|y| <= 1.75) rows
1..4 are the lane, and from start_x = 1.7 columns 2..9 (near edges 2 .. 9)."""
LANE, START = 1.75, 1.7
NAMESPACES = itertools.count()
"""One namespace per node process of this module."""


def _cells(*marked: tuple[int, int, int]) -> np.ndarray:
    """A FREE grid with (row, col, value) cells set."""
    cells = np.full((GRID.height, GRID.width), FREE, np.int8)
    for row, col, value in marked:
        cells[row, col] = value
    return cells


# -- free_distance -------------------------------------------------------------------------------------------


def test_a_free_lane_is_free_to_the_grid_end():
    assert free_distance(_cells(), GRID, LANE, START) == pytest.approx(10.0 - 1.7)


def test_the_first_occupied_lane_cell_stops_at_its_near_edge():
    cells = _cells((3, 6, OCCUPIED), (3, 8, OCCUPIED))  # y = 0.5; x in [6, 7) and [8, 9)
    assert free_distance(cells, GRID, LANE, START) == pytest.approx(6.0 - 1.7)


def test_cells_outside_the_lane_or_behind_start_x_do_not_count():
    cells = _cells((0, 3, OCCUPIED), (5, 3, UNKNOWN), (2, 1, OCCUPIED))  # y = -2.5, y = 2.5, x centre 1.5 < 1.7
    assert free_distance(cells, GRID, LANE, START) == pytest.approx(8.3)


def test_unknown_cells_are_not_free():
    assert free_distance(_cells((1, 8, UNKNOWN)), GRID, LANE, START) == pytest.approx(8.0 - 1.7)
    assert free_distance(_cells((1, 8, UNKNOWN), (4, 4, OCCUPIED)), GRID, LANE, START) == pytest.approx(4.0 - 1.7)


def test_a_blocked_cell_around_start_x_gives_zero():
    # start_x 2.3: column 2 (centre 2.5 >= 2.3) is the first lane column, its near edge 2.0 lies behind start_x
    assert free_distance(_cells((2, 2, OCCUPIED)), GRID, LANE, 2.3) == 0.0


def test_objects_in_the_lane_ahead_stop_it():
    cells = _cells((3, 6, OCCUPIED))  # 4.3 m
    assert free_distance(cells, GRID, LANE, START, [(5.0, -1.0)]) == pytest.approx(5.0 - 1.7)
    assert free_distance(cells, GRID, LANE, START, [(3.0, 2.0), (1.0, 0.0), (9.0, 0.0)]) == pytest.approx(4.3)
    assert free_distance(cells, GRID, LANE, START, [(4.0, 1.75)]) == pytest.approx(4.0 - 1.7)  # on the edge: in
    assert free_distance(_cells(), GRID, LANE, START, [(1.7, 0.0)]) == 0.0  # right at start_x


def test_lane_width_edges():
    cells = _cells((4, 5, OCCUPIED))  # row 4: y centre 1.5
    assert free_distance(cells, GRID, 1.5, START) == pytest.approx(5.0 - 1.7)  # |y| <= 1.5 includes it
    assert free_distance(cells, GRID, 1.49, START) == pytest.approx(8.3)
    assert free_distance(_cells(), GRID, 0.4, START) == 0.0  # no cell centre in the lane: nothing known free
    assert free_distance(_cells(), GRID, 100.0, START) == pytest.approx(8.3)  # wider than the grid: all rows


def test_start_x_outside_the_grid_gives_zero():
    assert free_distance(_cells(), GRID, LANE, -0.5) == 0.0  # the metres before the grid are unknown
    assert free_distance(_cells(), GRID, LANE, 10.0) == 0.0
    assert free_distance(_cells(), GRID, LANE, 0.0) == pytest.approx(10.0)


def test_cells_must_match_the_grid():
    with pytest.raises(ValueError, match="do not match"):
        free_distance(np.zeros((5, 10), np.int8), GRID, LANE, START)


# -- the planning_check node ---------------------------------------------------------------------------------


def _grid_msg(cells: np.ndarray, stamp: int, grid: GridSpec = GRID) -> OccupancyGrid:
    header = Header()
    set_stamp(header, stamp)
    return occupancy_grid_msg(cells, grid, header, "base_link")


def _instances_msg(stamp: int, points, located: bool = True, frame: str = "base_link") -> ObjectInstanceArray:
    msg = ObjectInstanceArray(position_frame_id=frame)
    set_stamp(msg.header, stamp)
    msg.instances = [ObjectInstance(id=i + 1, located=located, x=x, y=y) for i, (x, y) in enumerate(points)]
    return msg


class PlanningClient:
    """Publishes drivable_grid and instances in ``namespace`` and collects free_distance."""

    def __init__(self, namespace: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("planning_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=10)
        self.grids = self.node.create_publisher(OccupancyGrid, f"{namespace}/drivable_grid", qos)
        self.instances = self.node.create_publisher(ObjectInstanceArray, f"{namespace}/instances", qos)
        self.answers: list[float] = []
        self.node.create_subscription(
            Float32, f"{namespace}/free_distance", lambda msg: self.answers.append(msg.data), qos
        )
        self.topic = f"{namespace}/free_distance"

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def wait_connected(self, with_instances: bool) -> bool:
        publishers = [self.grids, self.instances] if with_instances else [self.grids]
        return self.spin_until(
            lambda: all(p.get_subscription_count() > 0 for p in publishers) and self.node.count_publishers(self.topic),
            30.0,
        )

    def answer(self, grid: OccupancyGrid, timeout: float = 10.0) -> float | None:
        """Publish ``grid``; the next free_distance, None if none came within ``timeout`` s."""
        seen = len(self.answers)
        self.grids.publish(grid)
        return self.answers[seen] if self.spin_until(lambda: len(self.answers) > seen, timeout) else None

    def first_answer(self, cells: np.ndarray) -> float:
        """Publish ``cells`` again each second (the first messages after discovery can be lost) until answered."""
        for _ in range(20):
            answer = self.answer(_grid_msg(cells, self.node.get_clock().now().nanoseconds), 3.0)
            if answer is not None:
                return answer
        raise AssertionError("planning_check answered no grid")

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def planning_node(request):
    """(process, client) of planning_check in its own namespace, ``request.param``: its -p overrides."""
    namespace = f"/plan_{next(NAMESPACES)}"
    params = {"start_x": str(START), **request.param}  # the hand-worked values measure from START
    process = NodeProcess(CONFIG, params, namespace=namespace, command=node_executable("planning_check"))
    process.wait_ready(60.0)
    client = PlanningClient(namespace)
    try:
        assert client.wait_connected(request.param.get("use_objects") != "false"), process.output
        yield process, client
    finally:
        client.close()
        assert process.stop() == 0, process.output


@pytest.mark.parametrize("planning_node", [{"use_objects": "false"}], indirect=True)
def test_node_answers_every_grid_and_drops_malformed_ones(planning_node):
    process, client = planning_node
    assert client.first_answer(_cells()) == pytest.approx(8.3)
    stamp = client.node.get_clock().now().nanoseconds
    short = _grid_msg(_cells(), stamp)
    short.data = short.data[:-1]
    flat = _grid_msg(_cells(), stamp)
    flat.info.resolution = 0.0
    for malformed in (short, flat):
        assert client.answer(malformed, 1.0) is None, "a malformed grid was answered"
    assert client.answer(_grid_msg(_cells((3, 6, OCCUPIED)), stamp + 1)) == pytest.approx(4.3)
    assert process.process.poll() is None
    assert client.spin_until(lambda: "malformed drivable_grid dropped (1 so far)" in process.output, 10.0)
    assert "10 x 6 cells but 59 values" in process.output
    assert "resolution 0.0" not in process.output  # the second malformed grid's line: rate-limited


@pytest.mark.parametrize("planning_node", [{"instances_wait": "1.0"}], indirect=True)
def test_node_uses_the_instances_of_the_grids_stamp(planning_node):
    process, client = planning_node
    client.first_answer(_cells())  # connected both ways
    cells, now = _cells((3, 6, OCCUPIED)), client.node.get_clock().now().nanoseconds  # the grid alone: 4.3 m
    # as segmentation_node publishes: the grid, then its instances (the grid waits for them)
    client.grids.publish(_grid_msg(cells, now))
    client.instances.publish(_instances_msg(now, [(5.0, 0.0), (2.0, 3.0)]))
    assert client.spin_until(lambda: client.answers[-1] == pytest.approx(5.0 - 1.7), 10.0), client.answers
    # the instances first, then the grid
    client.instances.publish(_instances_msg(now + 1, [(3.0, -1.0)]))
    client.spin_until(lambda: False, 0.3)
    assert client.answer(_grid_msg(cells, now + 1)) == pytest.approx(3.0 - 1.7)
    # instances of another stamp (the grid waits instances_wait), not located, or in another frame: the grid alone
    for instances, grid_stamp in (
        (_instances_msg(now + 2, [(3.0, 0.0)]), now + 3),
        (_instances_msg(now + 4, [(3.0, 0.0)], located=False), now + 4),
        (_instances_msg(now + 5, [(3.0, 0.0)], frame="odom"), now + 5),
    ):
        client.instances.publish(instances)
        client.spin_until(lambda: False, 0.3)
        assert client.answer(_grid_msg(cells, grid_stamp)) == pytest.approx(4.3)
    logged = "instances located in 'odom', grid in 'base_link'"  # the node's output is read on another thread
    assert client.spin_until(lambda: logged in process.output, 5.0), process.output
