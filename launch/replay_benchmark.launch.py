"""Replay a recorded drive into the node on a real ROS 2 install: ``segmentation_node`` with config/panoptic.yaml
and ``ros2 bag play`` of a bag (e.g. one written by ``seg-bag from-cityscapes``); the launch ends with the bag.

    ros2 launch seg_perception replay_benchmark.launch.py bag:=build/demo/drive_bag
    ros2 launch seg_perception replay_benchmark.launch.py bag:=drive rate:=0.5 record:=drive_outputs \
        config:=$(ros2 pkg prefix seg_perception)/share/seg_perception/config/semantic.yaml

The measured benchmark (latency percentiles, loss, CPU, accuracy, a report) is ``seg-replay-bench``, which starts
the same node with the same parameters file. Every argument: seg_perception/ros/launch_description.py.
"""

from seg_perception.ros.launch_description import replay_launch_description


def generate_launch_description():
    return replay_launch_description(default_config="panoptic.yaml")
