"""When segmentation_node takes camera input and publishes, end to end with node processes (config/semantic.yaml):
the managed form (``segmentation_lifecycle_node``) driven through its lifecycle services by a real rclpy client in
this process, and ``subscribe_on_demand`` on the plain node (test/conftest.py: loopback only)."""

from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from seg_perception.ros.harness import NodeClient, NodeProcess, image_msg, node_executable

CONFIG = Path(__file__).resolve().parents[1] / "config" / "semantic.yaml"
MASK = "semantic/mask"
FRAME = np.full((64, 128, 3), 90, np.uint8)
QUIET_S = 2.5
"""How long a node must stay silent (or unsubscribed) to count as such: over two of its 1 s demand checks."""


@pytest.fixture
def lifecycle_node():
    """A function (-p overrides) -> a started ``segmentation_lifecycle_node`` process named /lc/seg_lc; every
    process still running at the end is stopped with SIGINT."""
    processes = []

    def start(params: dict[str, str] | None = None) -> NodeProcess:
        command = node_executable("segmentation_lifecycle_node")
        processes.append(NodeProcess(CONFIG, params, "seg_lc", "/lc", command=command))
        return processes[-1]

    yield start
    for process in processes:
        process.stop()


class Lifecycle:
    """The lifecycle services of one managed node, called from a NodeClient's rclpy node."""

    def __init__(self, client: NodeClient, node: str) -> None:
        self.client = client
        self.change = client.node.create_client(ChangeState, f"{node}/change_state")
        self.get = client.node.create_client(GetState, f"{node}/get_state")
        assert client.spin_until(lambda: self.change.service_is_ready() and self.get.service_is_ready(), 60)

    def _call(self, service, request, timeout: float = 120.0):
        future = service.call_async(request)
        assert self.client.spin_until(future.done, timeout), f"no answer from {service.srv_name}"
        return future.result()

    def transition(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label


def _answered(client: NodeClient) -> None:
    """Frames get masks back (re-sent until one is answered: the first can be lost while discovery settles)."""
    client.prime({"": image_msg(FRAME, 0)}, timeout=60)


def _subscribed_by(client: NodeClient, topic: str) -> list[str]:
    """Names of the nodes subscribing ``topic``."""
    return [info.node_name for info in client.node.get_subscriptions_info_by_topic(topic)]


def test_the_managed_node_answers_only_while_active(lifecycle_node):
    lifecycle_process = lifecycle_node()
    with NodeClient("lc_client", "lc", outputs=(MASK,)) as client:
        lifecycle = Lifecycle(client, "/lc/seg_lc")
        assert lifecycle.state() == "unconfigured"
        assert client.node.count_publishers("/lc/semantic/mask") == 0

        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE), lifecycle_process.output[-2000:]
        assert lifecycle.state() == "inactive"
        assert client.spin_until(lambda: client.node.count_publishers("/lc/semantic/mask") == 1, 10)
        assert "seg_lc" not in _subscribed_by(client, "/lc/image")

        assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        assert client.wait_connected(), lifecycle_process.output[-2000:]
        _answered(client)

        assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)
        assert lifecycle.state() == "inactive"
        assert client.spin_until(lambda: "seg_lc" not in _subscribed_by(client, "/lc/image"), 10)
        sent = [client.publish("", FRAME) for _ in range(5)]
        assert not client.spin_until(lambda: any(client.has("", MASK, stamp) for stamp in sent), QUIET_S)
        status = client.diagnostics_where(lambda s: True, "seg_lc")
        assert status["message"].startswith("inactive") and status["input_subscribed"] == "false", status

        assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        assert client.wait_connected()
        _answered(client)

        assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)
        assert lifecycle.transition(Transition.TRANSITION_CLEANUP)
        assert lifecycle.state() == "unconfigured"
        assert client.spin_until(lambda: client.node.count_publishers("/lc/semantic/mask") == 0, 10)

        assert lifecycle.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert lifecycle_process.wait_exit(30) == 0, lifecycle_process.output[-2000:]
    assert "Traceback" not in lifecycle_process.output


def test_a_failed_configure_leaves_the_node_alive_and_unconfigured(lifecycle_node):
    lifecycle_process = lifecycle_node({"model_path": "/no/such.onnx"})
    with NodeClient("lc_bad_client", "lc", outputs=()) as client:
        lifecycle = Lifecycle(client, "/lc/seg_lc")
        for _ in range(2):  # configure can be tried again, and fails again
            assert not lifecycle.transition(Transition.TRANSITION_CONFIGURE)
            assert lifecycle.state() == "unconfigured"
        assert lifecycle_process.process.poll() is None
    failures = [line for line in lifecycle_process.lines if "configure failed" in line]
    assert len(failures) == 2 and "model_path: /no/such.onnx does not exist" in failures[0], failures
    assert "Traceback" not in lifecycle_process.output
    assert lifecycle_process.stop() == 0


def test_subscribe_on_demand_takes_input_only_while_an_output_is_subscribed():
    with (
        NodeProcess(CONFIG, {"subscribe_on_demand": "true"}, "seg_od", "/od") as process,
        NodeClient("od_client", "od", outputs=()) as client,
    ):
        process.wait_ready()
        assert client.spin_until(lambda: client.node.count_publishers("/od/semantic/mask") == 1, 30)
        assert not client.spin_until(lambda: "seg_od" in _subscribed_by(client, "/od/image"), QUIET_S)
        assert client.diagnostics_where(lambda s: True, "seg_od")["input_subscribed"] == "false"

        client.subscribe("", MASK)
        assert client.spin_until(lambda: "seg_od" in _subscribed_by(client, "/od/image"), 10), process.output[-2000:]
        assert client.wait_connected()
        _answered(client)
        assert client.diagnostics_where(lambda s: s["input_subscribed"] == "true", "seg_od")["level"] == 0

        client.node.destroy_subscription(client.subscriptions.pop())
        assert client.spin_until(lambda: client.node.count_subscribers("/od/image") == 0, 10), process.output[-2000:]
        assert client.diagnostics_where(lambda s: s["input_subscribed"] == "false", "seg_od")["level"] == 0
        assert process.stop() == 0
    logged = [line for line in process.lines if "camera input" in line]
    assert len(logged) == 2 and "unsubscribed" not in logged[0] and "unsubscribed" in logged[1], logged
