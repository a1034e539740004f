"""Pipeline results -> the typed output messages of segmentation_node (seg_perception_msgs, and vision_msgs where a
ROS install has it), each with a copy of the input header.

vision_msgs is not on PyPI, so on machines without a ROS install (this project's CI) ``VISION_MSGS`` is False and
``detections_msg`` / ``detections_3d_msg`` / ``vision_label_info_msg`` are never called; that path follows vision_msgs
4.x (Humble and later: Detection2D.bbox.center is a vision_msgs/Pose2D, Detection3D.bbox a BoundingBox3D) and has
not run here.
"""

from __future__ import annotations

import array
import math
from collections.abc import Sequence

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from seg_perception.evaluation.instance import InstancePrediction
from seg_perception.ground_projection import GridSpec
from seg_perception.labels import CLASS_NAMES, IGNORE_TRAIN_ID, TRAIN_ID_TO_ID, TRAIN_LABELS
from seg_perception.pipeline.object_location import GroundPosition
from seg_perception.pipeline.panoptic import PanopticResult
from seg_perception.ros.conversions import copy_header, mono8_array, mono16_array, mono16_msg
from seg_perception_msgs.msg import (
    LabelClass,
    LabelInfo,
    ObjectInstance,
    ObjectInstanceArray,
    PanopticSegment,
    PanopticSegmentation,
)

try:
    from vision_msgs.msg import (
        Detection2D,
        Detection2DArray,
        Detection3D,
        Detection3DArray,
        ObjectHypothesisWithPose,
        VisionClass,
    )
    from vision_msgs.msg import LabelInfo as VisionLabelInfo

    VISION_MSGS = True
except ImportError:  # not on PyPI: only real ROS installs have it
    VISION_MSGS = False


def label_info_msg(drivable_train_ids: Sequence[int], header: Header) -> LabelInfo:
    """The label table: every train class with its colour, thing flag and whether it counts as drivable."""
    classes = [
        LabelClass(
            id=label.train_id,
            name=label.name,
            red=label.color[0],
            green=label.color[1],
            blue=label.color[2],
            is_thing=label.has_instances,
            drivable=label.train_id in drivable_train_ids,
        )
        for label in TRAIN_LABELS
    ]
    return LabelInfo(header=header, classes=classes, unlabeled=IGNORE_TRAIN_ID)


def occupancy_grid_msg(cells: np.ndarray, grid: GridSpec, header: Header, frame_id: str) -> OccupancyGrid:
    """(rows, cols) int8 cells (FREE 0, OCCUPIED 100, UNKNOWN -1; row = y, col = x) -> nav_msgs/OccupancyGrid in
    ``frame_id`` with the input's stamp; origin = the grid's (x_min, y_min) corner, no rotation."""
    msg = OccupancyGrid(header=Header(stamp=copy_header(header).stamp, frame_id=frame_id))
    msg.info.map_load_time = msg.header.stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.height, msg.info.width = cells.shape
    msg.info.origin.position.x, msg.info.origin.position.y = float(grid.x_min), float(grid.y_min)
    msg.info.origin.orientation.w = 1.0
    data = array.array("b")
    data.frombytes(np.ascontiguousarray(cells, np.int8).tobytes())
    msg.data = data
    return msg


def instances_msg(
    result: PanopticResult,
    header: Header,
    positions: dict[int, GroundPosition | None] | None = None,
    position_frame: str = "",
) -> ObjectInstanceArray:
    """The frame's instances and their mono16 instance mask; ``positions`` (by instance id, in ``position_frame``)
    where they could be located."""
    instances = []
    for instance in result.instances:
        where = (positions or {}).get(instance.id)
        x0, y0, x1, y1 = instance.box  # the pixels the box touches
        left, top = math.floor(x0), math.floor(y0)
        roi = RegionOfInterest(x_offset=left, y_offset=top, width=math.ceil(x1) - left, height=math.ceil(y1) - top)
        instances.append(
            ObjectInstance(
                id=instance.id,
                class_id=instance.class_id,
                label=CLASS_NAMES[instance.class_id],
                score=instance.score,
                roi=roi,
                area=instance.area,
                located=where is not None,
                **(
                    {}
                    if where is None
                    else {
                        "x": where.x,
                        "y": where.y,
                        "range": where.range,
                        "bearing": where.bearing,
                        "position_sigma": where.sigma,
                    }
                ),
            )
        )
    return ObjectInstanceArray(
        header=copy_header(header),
        mask=mono16_msg(result.instance_ids, header),
        instances=instances,
        position_frame_id=position_frame,
    )


def panoptic_msg(result: PanopticResult, header: Header) -> PanopticSegmentation:
    """The frame's panoptic segments and their mono16 segment-id map."""
    segments = [
        PanopticSegment(
            id=s.id, class_id=s.class_id, is_thing=s.is_thing, instance_id=s.instance_id, area=s.area, score=s.score
        )
        for s in result.segments
    ]
    id_map = mono16_msg(result.segment_ids.astype("uint16"), header)
    return PanopticSegmentation(header=copy_header(header), id_map=id_map, segments=segments)


def evaluation_inputs_from_messages(mask, instances: ObjectInstanceArray, panoptic: PanopticSegmentation):
    """A frame's semantic/mask, instances and panoptic messages as the evaluators take them (what
    ``evaluation.combined.CombinedEvaluator.process`` wants after the ground truth): (H, W) uint8 train ids, (H, W)
    int32 segment ids, segments {id, category_id (label id)}, and the published instances as InstancePredictions."""
    instance_ids = mono16_array(instances.mask)
    segments = [{"id": s.id, "category_id": int(TRAIN_ID_TO_ID[s.class_id])} for s in panoptic.segments]
    predictions = [
        InstancePrediction(instance_ids == i.id, int(TRAIN_ID_TO_ID[i.class_id]), float(i.score))
        for i in instances.instances
    ]
    return mono8_array(mask), mono16_array(panoptic.id_map).astype(np.int32), segments, predictions


def detections_msg(result: PanopticResult, header: Header):
    """vision_msgs/Detection2DArray: one Detection2D per instance (class name and score in its hypothesis, box
    centre and size in input pixels, id = the instance id). Needs ``VISION_MSGS``."""
    detections = []
    for instance in result.instances:
        x0, y0, x1, y1 = instance.box
        detection = Detection2D(header=copy_header(header), id=str(instance.id))
        detection.bbox.center.position.x = (x0 + x1) / 2
        detection.bbox.center.position.y = (y0 + y1) / 2
        detection.bbox.size_x, detection.bbox.size_y = x1 - x0, y1 - y0
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = CLASS_NAMES[instance.class_id]
        hypothesis.hypothesis.score = instance.score
        detection.results = [hypothesis]
        detections.append(detection)
    return Detection2DArray(header=copy_header(header), detections=detections)


def detections_3d_msg(result: PanopticResult, positions: dict, header: Header, frame_id: str):
    """vision_msgs/Detection3DArray in ``frame_id`` (the image's stamp): one Detection3D per located instance, its
    bbox centre at the ground position (z = 0, size 0: the extent is not estimated), class name and score in its
    hypothesis, the position's uncertainty as the hypothesis pose covariance (x, y). Needs ``VISION_MSGS``."""
    stamped = Header(stamp=copy_header(header).stamp, frame_id=frame_id)
    detections = []
    for instance in result.instances:
        where = positions.get(instance.id)
        if where is None:
            continue
        detection = Detection3D(header=stamped, id=str(instance.id))
        detection.bbox.center.position.x, detection.bbox.center.position.y = where.x, where.y
        detection.bbox.center.orientation.w = 1.0
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = CLASS_NAMES[instance.class_id]
        hypothesis.hypothesis.score = instance.score
        hypothesis.pose.pose.position = detection.bbox.center.position
        covariance = [0.0] * 36
        covariance[0] = covariance[7] = where.sigma**2
        hypothesis.pose.covariance = covariance
        detection.results = [hypothesis]
        detections.append(detection)
    return Detection3DArray(header=stamped, detections=detections)


def vision_label_info_msg(score_threshold: float, header: Header):
    """vision_msgs/LabelInfo of the train classes (class ids = train ids, 255 unlabeled). Needs ``VISION_MSGS``."""
    classes = [VisionClass(class_id=label.train_id, class_name=label.name) for label in TRAIN_LABELS]
    classes.append(VisionClass(class_id=IGNORE_TRAIN_ID, class_name="unlabeled"))
    return VisionLabelInfo(header=header, class_map=classes, threshold=score_threshold)
