"""The camera_info segmentation_node publishes beside a camera's outputs: the latest sensor_msgs/CameraInfo received
for that camera, with the outputs' header, scaled to the outputs' resolution as image_pipeline's resize node does."""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from std_msgs.msg import Header

from seg_perception.ros.conversions import copy_header


def output_camera_info(
    info: CameraInfo, header: Header, input_size: tuple[int, int], output_size: tuple[int, int]
) -> CameraInfo:
    """A copy of ``info`` with a copy of ``header``, for outputs of ``output_size`` (H, W) made from frames of
    ``input_size`` (H, W).

    Where the sizes differ (``output_resolution: model``) pixel coordinates scale by sx = W_out / W_in and
    sy = H_out / H_in, as in image_pipeline's resize node: K's and P's first row (fx, skew, cx, Tx) by sx, their
    second row (fy, cy, Ty) by sy; width, height and the roi by sx / sy (rounded to whole pixels). D, R, binning and
    the distortion model are copied.
    """
    sy, sx = output_size[0] / input_size[0], output_size[1] / input_size[1]
    k = np.array(info.k, np.float64).reshape(3, 3)
    p = np.array(info.p, np.float64).reshape(3, 4)
    k[0] *= sx
    k[1] *= sy
    p[0] *= sx
    p[1] *= sy
    roi = info.roi
    return CameraInfo(
        header=copy_header(header),
        height=round(info.height * sy),
        width=round(info.width * sx),
        distortion_model=info.distortion_model,
        d=array.array("d", info.d),
        k=k.reshape(-1),
        r=np.array(info.r, np.float64),
        p=p.reshape(-1),
        binning_x=info.binning_x,
        binning_y=info.binning_y,
        roi=RegionOfInterest(
            x_offset=round(roi.x_offset * sx),
            y_offset=round(roi.y_offset * sy),
            height=round(roi.height * sy),
            width=round(roi.width * sx),
            do_rectify=roi.do_rectify,
        ),
    )
