"""A plain single-callback segmentation node, written the way a ROS 2 tutorial would: the baseline that
``seg-bench-node --compare-plain`` measures ``segmentation_node`` against.

``python -m seg_perception.tools.plain_node --model FILE.onnx [--threads N] [--ros-args ...]``

One subscription on ``image`` (sensor_msgs/Image rgb8 or bgr8, default QoS: reliable, depth 10); its callback
resizes the frame (bilinear) to the model input of the sidecar ``FILE.onnx.json``, normalises it, runs ONNX Runtime
(default session options, CPUExecutionProvider), takes the argmax over classes, resizes the labels back (nearest)
and publishes ``semantic/mask`` (mono8 train ids) and ``drivable_area`` (mono8, 255 on road, else 0) with the
input's header. No threads, no queues. Logs one "ready:" line when subscribed; SIGINT exits 0.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np
import onnxruntime as ort
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image

from seg_perception.model_info import read_model_info

ROAD = 0
"""Train id of road, the drivable class (segmentation_node's default ``drivable_classes``)."""


def mono8(array: np.ndarray, header) -> Image:
    """(H, W) uint8 array -> mono8 Image with ``header``."""
    height, width = array.shape
    return Image(header=header, height=height, width=width, encoding="mono8", step=width, data=array.tobytes())


class PlainSegmentationNode(Node):
    def __init__(self, model: str, threads: int) -> None:
        super().__init__("plain_segmentation_node")
        info = read_model_info(model)
        if info.task != "semantic":
            raise ValueError(f"{model}: a {info.task} model; the plain node runs semantic models only")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name, self.output_name = info.input_name, info.output_name
        self.input_height, self.input_width = info.input_size
        self.mean = np.array(info.mean, np.float32)
        self.std = np.array(info.std, np.float32)
        self.mask_publisher = self.create_publisher(Image, "semantic/mask", 10)
        self.drivable_publisher = self.create_publisher(Image, "drivable_area", 10)
        self.subscription = self.create_subscription(Image, "image", self.on_image, 10)
        self.get_logger().info(f"ready: {model}, model input {self.input_height}x{self.input_width}")

    def on_image(self, msg: Image) -> None:
        if msg.encoding not in ("rgb8", "bgr8"):
            self.get_logger().warning(f"unsupported encoding {msg.encoding}", throttle_duration_sec=5.0)
            return
        frame = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
        if msg.encoding == "bgr8":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        resized = cv2.resize(frame, (self.input_width, self.input_height), interpolation=cv2.INTER_LINEAR)
        normalized = (resized.astype(np.float32) / 255.0 - self.mean) / self.std
        batch = np.ascontiguousarray(normalized.transpose(2, 0, 1)[np.newaxis])
        logits = self.session.run([self.output_name], {self.input_name: batch})[0]
        labels = logits[0].argmax(axis=0).astype(np.uint8)
        labels = cv2.resize(labels, (msg.width, msg.height), interpolation=cv2.INTER_NEAREST)
        self.mask_publisher.publish(mono8(labels, msg.header))
        self.drivable_publisher.publish(mono8(np.where(labels == ROAD, 255, 0).astype(np.uint8), msg.header))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog="plain_node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="semantic ONNX model with its FILE.onnx.json sidecar")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    args = parser.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])
    try:
        rclpy.init(args=argv)
        node = PlainSegmentationNode(args.model, args.threads)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
