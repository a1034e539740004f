"""``seg-predict-bev``: a Cityscapes-layout split through ``segmentation_node``, its ``drivable_grid`` and located
``instances`` written as the files ``seg-eval-bev`` scores.

Per sequence (frames ``<city>_<seq>_<frame>``, one camera rig each) a fresh node runs from its console script with
``--params-file`` (default: the package's panoptic.yaml; a semantic model gives grids and no objects) and that
sequence's camera.json as ``camera_pose`` (extrinsic x, y, z, roll, pitch, yaw) and, published here on
``camera_info`` with every frame, its intrinsics; the grid parameters are the node's (``-p grid_resolution:=...``).
Frames go one at a time (each waits for its outputs). Per frame, into ``--out``: ``<stem>_drivableGrid.png``
(uint8: 0 free, 100 occupied, 255 unknown; row 0 = the grid's y_min, column 0 = its x_min) and, with an instance
or panoptic model, ``<stem>_objects.json`` ({"frame": grid frame, "objects": [{"x", "y", "range", "bearing",
"sigma", "label", "score"}]} of the located instances). Then ``seg-eval-bev --gt ROOT --split SPLIT --pred-dir OUT``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo

from seg_perception.data.cityscapes import CityscapesDataset
from seg_perception.ros.harness import NodeClient, NodeProcess, default_params_file, model_task_of
from seg_perception.tools.bench_node import node_params

GRID, INSTANCES = "drivable_grid", "instances"
OUTPUT_TIMEOUT_S = 60.0
UNKNOWN_PNG = 255


def camera_info_msg(camera, height: int, width: int) -> CameraInfo:
    """sensor_msgs/CameraInfo of a Cityscapes camera.json's intrinsics (CameraCalibration), no distortion."""
    info = CameraInfo(height=height, width=width, distortion_model="plumb_bob")
    info.k = [camera.fx, 0.0, camera.u0, 0.0, camera.fy, camera.v0, 0.0, 0.0, 1.0]
    info.p = [camera.fx, 0.0, camera.u0, 0.0, 0.0, camera.fy, camera.v0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def pose_param(camera) -> str:
    """``camera_pose`` of a camera.json extrinsic, as a ROS parameter value."""
    e = camera.extrinsic
    return "[" + ", ".join(str(float(e.get(k, 0.0))) for k in ("x", "y", "z", "roll", "pitch", "yaw")) + "]"


def grid_png(grid) -> np.ndarray:
    """nav_msgs/OccupancyGrid -> (height, width) uint8: 0 free, 100 occupied, 255 unknown."""
    cells = np.asarray(grid.data, np.int8).reshape(grid.info.height, grid.info.width)
    return np.where(cells < 0, UNKNOWN_PNG, cells).astype(np.uint8)


def objects_json(instances) -> dict:
    """The located instances of an ObjectInstanceArray, as seg-eval-bev reads them."""
    objects = [
        {"x": i.x, "y": i.y, "range": i.range, "bearing": i.bearing, "sigma": i.position_sigma, "label": i.label,
         "score": i.score}
        for i in instances.instances
        if i.located
    ]  # fmt: skip
    return {"frame": instances.position_frame_id, "objects": objects}


def predict_sequence(frames: list, params_file: Path, params: dict[str, str], out: Path, detection: bool) -> None:
    """Run one sequence's frames (CityscapesFrames of one camera) through a fresh node; write its files."""
    camera = frames[0].camera
    if camera is None:
        raise ValueError(f"{frames[0].sample.stem}: no camera.json (the grid needs the camera)")
    outputs = (GRID, INSTANCES) if detection else (GRID,)
    node_params = {**params, "camera_pose": pose_param(camera)}
    with NodeProcess(params_file, node_params, name="seg_bev", namespace="/bev") as process:
        process.wait_ready()
        with NodeClient("bev_client", "bev", outputs=outputs, inputs=("image", "camera_info")) as client:
            if not client.wait_connected():
                raise RuntimeError(f"segmentation_node did not connect:\n{process.output[-3000:]}")
            height, width = frames[0].image.shape[:2]
            info = camera_info_msg(camera, height, width)
            for frame in frames:
                stamp = None
                for _ in range(3):  # a camera_info with every frame, as camera drivers do; retried until it arrived
                    client.publish_msg("", info, "camera_info")
                    stamp = client.publish("", frame.image, frame_id="camera")
                    if client.spin_until(lambda s=stamp: all(client.has("", o, s) for o in outputs), 10.0):
                        break
                else:
                    raise RuntimeError(f"{frame.sample.stem}: no {'/'.join(outputs)} from the node")
                stem = frame.sample.stem
                cv2.imwrite(str(out / f"{stem}_drivableGrid.png"), grid_png(client.received[("", GRID)][stamp]))
                if detection:
                    objects = objects_json(client.received[("", INSTANCES)][stamp])
                    (out / f"{stem}_objects.json").write_text(json.dumps(objects, indent=1) + "\n")
        if process.stop() != 0:
            raise RuntimeError(f"segmentation_node exited with an error:\n{process.output[-3000:]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg-predict-bev", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", type=Path, required=True, help="Cityscapes-layout root (seg-synth output)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, required=True, help="folder for the prediction files")
    parser.add_argument("--params-file", type=Path, help="node parameters (default: the package's panoptic.yaml)")
    parser.add_argument("--model", help="node parameter override: model_path")
    parser.add_argument("--frames", type=int, help="at most this many frames (in order)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="other overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        params = node_params(argparse.Namespace(backend=None, device="cpu", precision=None, model=args.model,
                                                param=args.param))  # fmt: skip
        params_file = args.params_file or default_params_file("panoptic")
        dataset = CityscapesDataset(args.gt, args.split)
        detection = model_task_of(params_file, params) != "semantic"
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"seg-predict-bev: error: {error}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    count = len(dataset) if args.frames is None else min(args.frames, len(dataset))
    frames = (dataset[index] for index in range(count))
    for sequence, group in itertools.groupby(frames, key=lambda frame: frame.sample.stem.rsplit("_", 1)[0]):
        print(f"seg-predict-bev: {sequence} ...", file=sys.stderr, flush=True)
        try:
            predict_sequence(list(group), params_file, params, args.out, detection)
        except (RuntimeError, ValueError) as error:
            print(f"seg-predict-bev: error: {error}", file=sys.stderr)
            return 1
    print(f"seg-predict-bev: {count} frames -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
