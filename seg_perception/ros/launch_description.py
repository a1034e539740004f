"""The launch description the launch files share (launch/semantic.launch.py, launch/panoptic.launch.py,
launch/replay_benchmark.launch.py, launch/planning_check.launch.py): one ``segmentation_node`` with a parameters
file, for one camera or several; for a replay, ``ros2 bag play`` of a bag into it; for the planning check,
``planning_check`` beside it.

Only ``ros2 launch`` imports this module (it needs the ROS ``launch`` and ``launch_ros`` packages, which a ROS 2
install has and PyPI does not); the tests read it as a syntax tree. APIs used exist from Humble on: no deprecated
launch conditions, the node is made by an OpaqueFunction that reads the arguments.

Arguments:
    config           parameters file (default: the launch file's, in <share>/config)
    namespace        namespace of the node and its outputs (default "segmentation")
    image_topic      camera image topic, one camera (default /camera/image_raw)
    cameras          several cameras: comma-separated camera namespaces (e.g. "front,rear"); with image_topics
    image_topics     their image topics, comma-separated in the same order (e.g. "/front/image_raw,/rear/image_raw")
    backend          "" (default: the parameters file's) | auto | tensorrt | onnxruntime | torch
    respawn          "true": restart the node when it dies (after respawn_delay s); "false" (default): the launch
                     shuts down with it
    respawn_delay    seconds (default 2.0)
    fastdds_profile  Fast DDS profile for large images, e.g. <share>/config/fastdds_large_images.xml

Replay arguments (replay_launch_description):
    bag              rosbag2 folder to play (required), e.g. one written by ``seg-bag from-cityscapes``
    rate             x the bag's timing (default 1.0)
    play_delay       seconds between starting the node and playing the bag, for the model to load (default 5.0)
    loop             "true": play the bag over and over; "false" (default): the launch ends when the bag does
    record           folder: ``ros2 bag record`` every output under <namespace>/ into it; "" (default): no recording

Planning check arguments (planning_check_launch_description):
    planning_config  planning_check parameters file (default: <share>/config/planning_check.yaml)
    planning_camera  the camera whose drivable_grid and instances it reads (default "": the first of cameras, or the
                     only camera); it publishes <namespace>/free_distance
"""

from __future__ import annotations

from functools import partial

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    OpaqueFunction,
    SetEnvironmentVariable,
    Shutdown,
    TimerAction,
)
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "seg_perception"


def _argument(context, name: str) -> str:
    """The value of launch argument ``name``, stripped."""
    return LaunchConfiguration(name).perform(context).strip()


def _list_argument(context, name: str) -> list[str]:
    """The comma-separated items of launch argument ``name``."""
    return [item.strip() for item in _argument(context, name).split(",") if item.strip()]


def segmentation_launch_description(
    default_config: str, default_image_topic: str = "/camera/image_raw"
) -> LaunchDescription:
    """The launch description of one segmentation_node whose parameters file defaults to config/``default_config``."""
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "config",
                default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", default_config]),
                description="node parameters file",
            ),
            DeclareLaunchArgument("namespace", default_value="segmentation", description="namespace of the outputs"),
            DeclareLaunchArgument("image_topic", default_value=default_image_topic, description="camera image topic"),
            DeclareLaunchArgument(
                "cameras", default_value="", description="several cameras: comma-separated camera namespaces"
            ),
            DeclareLaunchArgument(
                "image_topics", default_value="", description="the cameras' image topics, comma-separated, same order"
            ),
            DeclareLaunchArgument(
                "backend",
                default_value="",
                choices=["", "auto", "tensorrt", "onnxruntime", "torch"],
                description="inference backend; empty: the parameters file's",
            ),
            DeclareLaunchArgument(
                "respawn",
                default_value="false",
                choices=["true", "false"],
                description="restart the node when it dies (else the launch shuts down with it)",
            ),
            DeclareLaunchArgument("respawn_delay", default_value="2.0", description="seconds before a respawn"),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS profile for large images, e.g. <share>/config/fastdds_large_images.xml",
            ),
            OpaqueFunction(function=_segmentation_node),
        ]
    )


def _segmentation_node(context) -> list:
    """The node (and the Fast DDS profile variable) for the arguments' values."""

    argument = partial(_argument, context)
    cameras, topics = _list_argument(context, "cameras"), _list_argument(context, "image_topics")
    if len(cameras) != len(topics):
        raise RuntimeError(f"cameras {cameras} and image_topics {topics} must name as many cameras as topics")
    if cameras:
        remappings = [(f"{camera}/image", topic) for camera, topic in zip(cameras, topics, strict=True)]
    else:
        remappings = [("image", argument("image_topic"))]
    overrides = {"backend": argument("backend"), "cameras": cameras}
    overrides = {name: value for name, value in overrides.items() if value}
    respawn = argument("respawn") == "true"
    actions = []
    if argument("fastdds_profile"):
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", argument("fastdds_profile")))
    actions.append(
        Node(
            package="seg_perception",
            executable="segmentation_node",
            name="segmentation_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("config"), overrides],
            remappings=remappings,
            respawn=respawn,
            respawn_delay=float(argument("respawn_delay")),
            on_exit=None if respawn else Shutdown(reason="segmentation_node exited"),
            output="screen",
            emulate_tty=True,
        )
    )
    return actions


def planning_check_launch_description(default_config: str) -> LaunchDescription:
    """segmentation_launch_description plus ``planning_check`` beside the node, on its drivable_grid and instances."""
    description = segmentation_launch_description(default_config)
    for action in (
        DeclareLaunchArgument(
            "planning_config",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "planning_check.yaml"]),
            description="planning_check parameters file",
        ),
        DeclareLaunchArgument(
            "planning_camera", default_value="", description="camera planning_check reads; empty: the first"
        ),
        OpaqueFunction(function=_planning_check_node),
    ):
        description.add_action(action)
    return description


def _planning_check_node(context) -> list:
    """planning_check in the node's namespace, drivable_grid and instances remapped to the camera's outputs."""
    camera = _argument(context, "planning_camera") or (_list_argument(context, "cameras") or [""])[0]
    prefix = f"{camera}/" if camera else ""
    node = Node(
        package="seg_perception",
        executable="planning_check",
        name="planning_check",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("planning_config")],
        remappings=[(topic, prefix + topic) for topic in ("drivable_grid", "instances")],
        on_exit=Shutdown(reason="planning_check exited"),
        output="screen",
        emulate_tty=True,
    )
    return [node]


def replay_launch_description(default_config: str) -> LaunchDescription:
    """segmentation_launch_description with the camera of a ``seg-bag`` bag, plus ``ros2 bag play`` of the bag."""
    description = segmentation_launch_description(default_config, default_image_topic="/camera/front/image_raw")
    for action in (
        DeclareLaunchArgument("bag", description="rosbag2 folder to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="x the bag's timing"),
        DeclareLaunchArgument("play_delay", default_value="5.0", description="seconds for the model to load"),
        DeclareLaunchArgument("loop", default_value="false", choices=["true", "false"], description="replay forever"),
        DeclareLaunchArgument("record", default_value="", description="folder to record the outputs into"),
        OpaqueFunction(function=_bag_processes),
    ):
        description.add_action(action)
    return description


def _bag_processes(context) -> list:
    """``ros2 bag play`` after play_delay (its end ends the launch unless it loops); ``ros2 bag record``."""

    argument = partial(_argument, context)
    loop = argument("loop") == "true"
    play = ["ros2", "bag", "play", argument("bag"), "--rate", argument("rate"), *(["--loop"] if loop else [])]
    player = ExecuteProcess(
        cmd=play, name="bag_play", output="screen", on_exit=None if loop else Shutdown(reason="the bag has played")
    )
    actions = [TimerAction(period=float(argument("play_delay")), actions=[player])]
    if argument("record"):
        outputs = "/" + "/".join(part for part in argument("namespace").split("/") if part) + "/.*"
        record = ["ros2", "bag", "record", "--output", argument("record"), "--regex", outputs]
        actions.append(ExecuteProcess(cmd=record, name="bag_record", output="screen"))
    return actions
