"""Panoptic segmentation plus an example consumer: ``segmentation_node`` with config/panoptic.yaml and
``planning_check`` (config/planning_check.yaml) beside it, on the node's drivable_grid and instances.

    ros2 launch seg_perception planning_check.launch.py image_topic:=/front/image_raw
    ros2 launch seg_perception planning_check.launch.py cameras:=front,rear \
        image_topics:=/front/image_raw,/rear/image_raw planning_camera:=front

Outputs: those of panoptic.launch.py, plus <namespace>/free_distance (std_msgs/Float32, metres free ahead along the
ego lane, one per grid). The node needs the camera's camera_info for its grid. Every argument:
seg_perception/ros/launch_description.py.
"""

from seg_perception.ros.launch_description import planning_check_launch_description


def generate_launch_description():
    return planning_check_launch_description(default_config="panoptic.yaml")
