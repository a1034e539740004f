"""The topics of one camera namespace of segmentation_node: its output publishers and latched label tables (created
with the node's model), and its input subscriptions (image and camera_info), which come and go with the node's
activity (a managed node's activate / deactivate, ``subscribe_on_demand``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from seg_perception.pipeline.config import SegmentationConfig
from seg_perception.ros import result_messages
from seg_perception.ros.camera_input import TRANSPORTS, input_topic
from seg_perception_msgs.msg import LabelInfo

RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
MESSAGE_INFO_CALLBACKS = hasattr(Subscription, "CallbackType")
"""Subscription callbacks can take the message info (publisher and sequence number): Jazzy and later, not Humble."""


def camera_topic(camera: str, name: str) -> str:
    """Topic ``name`` in camera namespace ``camera`` ('' = the node's own namespace)."""
    return f"{camera}/{name}" if camera else name


def qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last QoS of ``depth`` with ``reliability`` (a parameter value: best_effort | reliable)."""
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=RELIABILITY[reliability])


@dataclass
class CameraTopics:
    """One camera namespace's output publishers ({output topic: publisher}), latched label tables, input
    subscriptions (none while the input is off) and the latest camera_info received (None before the first)."""

    name: str
    image_topic: str
    """The resolved (remapped) topic of the image subscription."""
    publishers: dict[str, object]
    label_info: list[object]
    subscriptions: list[object] = field(default_factory=list)
    camera_info: CameraInfo | None = field(default=None, repr=False)

    def subscribed(self, output: str) -> bool:
        """Whether anyone subscribes ``output``."""
        return self.publishers[output].get_subscription_count() > 0

    def wanted(self) -> bool:
        """Whether any output topic of this camera has a subscriber."""
        return any(self.subscribed(output) for output in self.publishers)

    def subscribe(self, node: Node, config: SegmentationConfig, on_image, event_callbacks) -> None:
        """Subscribe the camera's image (``on_image``) and camera_info topics."""
        input_qos = qos(config.input_reliability, config.input_depth)
        kind, _ = TRANSPORTS[config.input_transport]
        self.subscriptions = [
            node.create_subscription(  # raw: ``on_image`` gets the serialized bytes (see camera_input)
                kind, self.image_topic, on_image, input_qos, event_callbacks=event_callbacks, raw=True
            ),
            node.create_subscription(
                CameraInfo, camera_topic(self.name, "camera_info"), self._on_camera_info, input_qos
            ),
        ]

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def unsubscribe(self, node: Node) -> None:
        for subscription in self.subscriptions:
            node.destroy_subscription(subscription)
        self.subscriptions = []

    def destroy(self, node: Node) -> None:
        """Destroy every subscription and publisher of the camera."""
        self.unsubscribe(node)
        for publisher in [*self.publishers.values(), *self.label_info]:
            node.destroy_publisher(publisher)


def camera_topics(node: Node, camera: str, config: SegmentationConfig, outputs: dict[str, type]) -> CameraTopics:
    """The publishers of ``outputs`` ({topic: message type}) of ``camera`` and its latched label tables (published
    now): seg_perception_msgs/LabelInfo on semantic/label_info and, with a ``detections`` output,
    vision_msgs/LabelInfo on label_info; no subscriptions yet."""
    _, image_topic = input_topic(config.input_transport, node.resolve_topic_name(camera_topic(camera, "image")))
    output_qos = qos(config.output_reliability, config.output_depth)
    publishers = {
        name: node.create_publisher(kind, camera_topic(camera, name), output_qos) for name, kind in outputs.items()
    }
    header = Header(stamp=node.get_clock().now().to_msg())
    table = node.create_publisher(LabelInfo, camera_topic(camera, "semantic/label_info"), LATCHED)
    table.publish(result_messages.label_info_msg(config.drivable_train_ids, header))
    label_info = [table]
    if "detections" in outputs:
        kind = result_messages.VisionLabelInfo
        vision_table = node.create_publisher(kind, camera_topic(camera, "label_info"), LATCHED)
        vision_table.publish(result_messages.vision_label_info_msg(config.instance_score_threshold, header))
        label_info.append(vision_table)
    return CameraTopics(camera, image_topic, publishers, label_info)
