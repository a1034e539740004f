"""Semantic segmentation of one camera: ``segmentation_node`` with config/semantic.yaml.

    ros2 launch seg_perception semantic.launch.py image_topic:=/front/image_raw backend:=tensorrt

Outputs under ``<namespace>/``: semantic/mask, semantic/label_info, drivable_area, overlay; plus /diagnostics.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import LaunchConfigurationNotEquals
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("image_topic", default_value="/camera/image_raw", description="camera image topic"),
            DeclareLaunchArgument("namespace", default_value="segmentation", description="namespace of the outputs"),
            DeclareLaunchArgument(
                "config",
                default_value=PathJoinSubstitution([FindPackageShare("seg_perception"), "config", "semantic.yaml"]),
                description="node parameters file",
            ),
            DeclareLaunchArgument(
                "backend",
                default_value="auto",
                choices=["auto", "tensorrt", "onnxruntime", "torch"],
                description="inference backend (overrides the parameters file)",
            ),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS profile for large images, e.g. <share>/config/fastdds_large_images.xml",
            ),
            SetEnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE",
                LaunchConfiguration("fastdds_profile"),
                condition=LaunchConfigurationNotEquals("fastdds_profile", ""),
            ),
            Node(
                package="seg_perception",
                executable="segmentation_node",
                name="segmentation_node",
                namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("config"), {"backend": LaunchConfiguration("backend")}],
                remappings=[("image", LaunchConfiguration("image_topic"))],
                output="screen",
                emulate_tty=True,
            ),
        ]
    )
