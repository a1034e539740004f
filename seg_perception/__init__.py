"""seg_perception: ROS 2 semantic and panoptic segmentation for driving cameras."""

__version__ = "0.1.0"
