"""``segmentation_lifecycle_node``: the managed (lifecycle) form of segmentation_node, the same runtime
(``ros/runtime.py``) driven by the lifecycle transitions (rclpy.lifecycle, since Humble):

- configure: read the parameters, load the model (TensorRT: build or load the engine), create the publishers and
  latched label tables; a bad parameter or model fails the transition with one logged line and the node stays
  unconfigured (configure can be tried again);
- activate: start the worker threads and subscribe the cameras (with ``subscribe_on_demand``: once an output has
  a subscriber);
- deactivate: unsubscribe the cameras and stop the workers: no outputs while inactive (/diagnostics says
  "inactive");
- cleanup: release the model and every publisher (back to unconfigured);
- shutdown (from any state): release everything; the process then exits with 0.
"""

from __future__ import annotations

import sys

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.task import Future

from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.ros.parameters import declare_config
from seg_perception.ros.runtime import SegmentationRuntime
from seg_perception.ros.segmentation_node import usage
from seg_perception.ros.startup import one_line, run_node

EXECUTABLE = "segmentation_lifecycle_node"
NODE_NAME = "segmentation_node"
"""The same default name as the unmanaged node: params files keyed by node name apply to both."""


class SegmentationLifecycleNode(LifecycleNode):
    """segmentation_node as a managed node; starts unconfigured. ``finished`` is done after the shutdown
    transition (``run_node`` then ends the process)."""

    def __init__(self, node_name: str = NODE_NAME) -> None:
        super().__init__(node_name)
        self.runtime: SegmentationRuntime | None = None
        self.finished = Future()
        services = f"{self.get_fully_qualified_name()}/change_state"
        self.get_logger().info(f"unconfigured: waiting for the configure transition ({services})")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.runtime = SegmentationRuntime(self, declare_config(self, SegmentationConfig))
        except Exception as error:  # a bad parameter or model: stay unconfigured, never exit
            self.get_logger().error(f"configure failed: {one_line(error)}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {self.runtime.describe()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.runtime.start()
        self.get_logger().info("active")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.runtime.stop()
        self.get_logger().info("inactive")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.finished.set_result(True)
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release everything and go back to unconfigured."""
        self.get_logger().error(f"transition from {state.label} failed: releasing the model")
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Release the runtime (camera input, workers, publishers, model), if configured."""
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None


def main(args: list[str] | None = None) -> int:
    """Console script ``segmentation_lifecycle_node``: exits 2 with one line on stderr for ROS arguments or params
    files rcl cannot parse; a bad parameter or model fails the configure transition instead. Exits 0 after the
    shutdown transition or SIGINT/SIGTERM."""
    summary = __doc__.split("\n\n")[0].replace("``", "")
    return run_node(EXECUTABLE, SegmentationLifecycleNode, args, usage(EXECUTABLE, summary))


if __name__ == "__main__":
    sys.exit(main())
