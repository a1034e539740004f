"""Semantic segmentation: ``segmentation_node`` with config/semantic.yaml (shipped BiSeNetV2 by default).

    ros2 launch seg_perception semantic.launch.py image_topic:=/front/image_raw backend:=tensorrt
    ros2 launch seg_perception semantic.launch.py cameras:=front,rear image_topics:=/front/image_raw,/rear/image_raw

Outputs under ``<namespace>/`` (per camera ``<namespace>/<camera>/``): semantic/mask, semantic/label_info,
drivable_area, overlay; plus /diagnostics. Every argument: seg_perception/ros/launch_description.py.
"""

from seg_perception.ros.launch_description import segmentation_launch_description


def generate_launch_description():
    return segmentation_launch_description(default_config="semantic.yaml")
