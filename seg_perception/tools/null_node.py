"""A node that takes camera frames exactly as ``segmentation_node`` does and segments nothing: the transport floor
that ``seg-bench-node --compare-plain`` measures both segmentation nodes against.

``python -m seg_perception.tools.null_node [--ros-args ...]``

Its image subscription is segmentation_node's (``image``, sensor_msgs/Image, raw bytes read by the same zero-copy
deserializer and converted by the same ``image_to_rgb``, default input QoS: best-effort, depth 1); in the callback it
publishes ``semantic/mask`` and ``drivable_area`` (mono8, all zeros, the frame's size, built as segmentation_node
builds them) with the input's header. No model, no threads, no queues: its stamp -> mask time is what any Python
node on rclpy pays for a frame of that size in and two masks out, before doing any work. Logs one "ready:" line when
subscribed; SIGINT exits 0.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image

from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.ros.camera_input import deserialize_input
from seg_perception.ros.camera_topics import qos
from seg_perception.ros.conversions import BadImageError, image_to_rgb, mono8_msg


@functools.lru_cache(maxsize=4)
def _zeros(height: int, width: int) -> np.ndarray:
    """(height, width) uint8 zeros, made once per frame size."""
    return np.zeros((height, width), np.uint8)


class NullNode(Node):
    def __init__(self) -> None:
        super().__init__("null_segmentation_node")
        config = SegmentationConfig()
        output_qos = qos(config.output_reliability, config.output_depth)
        self.outputs = [self.create_publisher(Image, name, output_qos) for name in ("semantic/mask", "drivable_area")]
        input_qos = qos(config.input_reliability, config.input_depth)
        self.subscription = self.create_subscription(Image, "image", self.on_image, input_qos, raw=True)
        self.get_logger().info("ready: no model, all-zero masks of each frame's size")

    def on_image(self, raw: bytes) -> None:
        try:
            msg = deserialize_input(raw, Image)
            height, width = image_to_rgb(msg).shape[:2]
        except BadImageError as error:
            self.get_logger().warning(f"dropped a bad frame: {error}", throttle_duration_sec=5.0)
            return
        for publisher in self.outputs:
            publisher.publish(mono8_msg(_zeros(height, width), msg.header))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    try:
        rclpy.init(args=argv)
        rclpy.spin(NullNode())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
