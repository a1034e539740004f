"""The per-camera output topics of segmentation_node for each model task, and the message builders of a frame.

Every model: ``semantic/mask``, ``semantic/color_mask`` (rgb8 class colours), ``drivable_area``, ``overlay``,
``camera_info`` (the camera's latest camera_info at the outputs' resolution) and ``drivable_grid``
(nav_msgs/OccupancyGrid: the drivable area on the ground in ``grid_frame``, needs the camera's camera_info).
Instance and panoptic models add ``instances`` (seg_perception_msgs/ObjectInstanceArray), ``panoptic``
(seg_perception_msgs/PanopticSegmentation) and, where vision_msgs exists and ``publish_detections`` is set,
``detections`` (vision_msgs/Detection2DArray) with ``detections_3d`` (vision_msgs/Detection3DArray of the located
instances in ``grid_frame``); their overlay outlines the instances, and each instance carries its ground position in
``grid_frame`` once the camera sent a camera_info (``pipeline.object_location``).
``semantic/mask`` is always published; every other output is built only while someone subscribes (``camera_info``
and ``drivable_grid`` also only once the camera sent a camera_info). Each builder makes one message with a copy of
the frame's header, so one failing output leaves the others intact.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from seg_perception.ground_projection import DrivableGrid
from seg_perception.pipeline.base import FramePipeline
from seg_perception.pipeline.object_location import locate_instances
from seg_perception.pipeline.postprocess import colour_mask
from seg_perception.ros import result_messages
from seg_perception.ros.camera_info import output_camera_info
from seg_perception.ros.conversions import mono8_msg, rgb8_msg
from seg_perception_msgs.msg import ObjectInstanceArray, PanopticSegmentation

MASK = "semantic/mask"
"""The one output published for every frame, subscribed or not."""
COLOR_MASK = "semantic/color_mask"
CAMERA_INFO = "semantic/camera_info"
"""Beside the masks (their geometry), not ``camera_info``: that is the camera's own input topic."""
DRIVABLE_GRID = "drivable_grid"
DETECTIONS_3D = "detections_3d"
NEEDS_CAMERA_INFO = (CAMERA_INFO, DRIVABLE_GRID, DETECTIONS_3D)
"""Outputs built only once the camera sent a camera_info."""


def output_types(detection: bool, with_detections: bool) -> dict[str, type]:
    """{topic: message type} of a camera's outputs, for a detection (instance / panoptic) model or a semantic one;
    ``with_detections``: the vision_msgs output too (only where vision_msgs is installed)."""
    types = {
        MASK: Image,
        COLOR_MASK: Image,
        "drivable_area": Image,
        "overlay": Image,
        CAMERA_INFO: CameraInfo,
        DRIVABLE_GRID: OccupancyGrid,
    }
    if detection:
        types.update(instances=ObjectInstanceArray, panoptic=PanopticSegmentation)
        if with_detections and result_messages.VISION_MSGS:
            types["detections"] = result_messages.Detection2DArray
            types[DETECTIONS_3D] = result_messages.Detection3DArray
    return types


def frame_builders(
    pipeline: FramePipeline,
    result,
    image,
    header: Header,
    wanted: Collection[str],
    camera_info: CameraInfo | None = None,
    grid: DrivableGrid | None = None,
    grid_frame: str = "base_link",
) -> dict[str, Callable[[], object]]:
    """{output: builder of its message} for the ``wanted`` outputs of one frame: its pipeline ``result``
    (SemanticResult or PanopticResult), the decoded (H, W, 3) ``image``, its input ``header`` and the camera's
    latest ``camera_info`` and its ``grid`` maker in ``grid_frame`` (needed for camera_info and drivable_grid)."""

    # What several outputs of the frame share is computed once, by the first builder that needs it.
    @functools.cache
    def scaled_camera_info() -> CameraInfo:
        return output_camera_info(camera_info, header, image.shape[:2], result.labels.shape)

    @functools.cache
    def drivable() -> np.ndarray:
        return pipeline.drivable(result.labels)

    @functools.cache
    def positions() -> dict:
        """{instance id: GroundPosition or None}; empty without a camera_info."""
        if camera_info is None or grid is None:
            return {}
        k = scaled_camera_info().k
        return locate_instances(result.instance_ids, result.instances, grid.projection(k[0], k[4], k[2], k[5]))

    def drivable_grid() -> OccupancyGrid:
        k = scaled_camera_info().k
        cells = grid.cells(drivable(), (k[0], k[4], k[2], k[5]))
        return result_messages.occupancy_grid_msg(cells, grid.grid, header, grid_frame)

    builders = {
        MASK: lambda: mono8_msg(result.labels, header),
        COLOR_MASK: lambda: rgb8_msg(colour_mask(result.labels), header),
        CAMERA_INFO: scaled_camera_info,
        "drivable_area": lambda: mono8_msg(drivable(), header),
        DRIVABLE_GRID: drivable_grid,
        "overlay": lambda: rgb8_msg(pipeline.overlay(image, result), header),
        "instances": lambda: result_messages.instances_msg(result, header, positions(), grid_frame),
        DETECTIONS_3D: lambda: result_messages.detections_3d_msg(result, positions(), header, grid_frame),
        "panoptic": lambda: result_messages.panoptic_msg(result, header),
        "detections": lambda: result_messages.detections_msg(result, header),
    }
    return {name: builders[name] for name in wanted}
