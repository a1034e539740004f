"""Test-session settings shared by every test module.

ROS traffic stays on this machine: loopback discovery, a loopback-only Fast DDS profile and a
random ROS_DOMAIN_ID per session (so parallel or leftover runs never cross-talk). Set here at
import time so that node processes started by tests inherit them.
"""

import copy
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))


@pytest.fixture
def official_instance_averages(tmp_path, monkeypatch):
    """A function (gt instanceIds files, prediction folder) -> the official cityscapesscripts instance evaluator's
    "averages" dict (allAp, allAp50%, classes), run in-process, with the two shims today's numpy needs."""
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as official

    def write_json(data: dict, file_name: str) -> None:
        with open(file_name, "w") as f:
            json.dump(data, f, default=lambda o: o.item() if isinstance(o, np.generic) else o.__dict__)

    # numpy 2.4 removed np.in1d, which the official assignGt2Preds still calls
    monkeypatch.setattr(np, "in1d", lambda a, b: np.isin(a, b).ravel(), raising=False)
    # and np.count_nonzero now returns np.int64, which its JSON writer cannot serialise
    monkeypatch.setattr(official, "writeDict2JSON", write_json)
    monkeypatch.chdir(tmp_path)  # evaluateImgLists always writes matches.json into the cwd

    def averages(gt_files, pred_root) -> dict:
        args = copy.copy(official.args)
        args.gtInstancesFile = str(tmp_path / "gtInstances.json")  # cache: must be fresh per case
        args.predictionPath = str(pred_root)
        args.predictionWalk = None
        args.distanceAvailable = False  # distance AP needs camera/disparity data: off, as in the release
        args.JSONOutput = False
        args.quiet = True
        gt_list = [str(g) for g in gt_files]
        pred_list = [official.getPrediction(g, args) for g in gt_list]
        return official.evaluateImgLists(pred_list, gt_list, args)["averages"]

    return averages


@pytest.fixture(scope="session")
def export_random_bisenetv2(tmp_path_factory):
    """A function (dynamic: bool) -> Path: a randomly initialised BiSeNetV2 (seed 0) exported by seg-export at
    64x128 (dynamic N/H/W or a fixed size), with its sidecar."""

    def export_model(dynamic: bool) -> Path:
        import torch

        from seg_perception.models import build_model
        from seg_perception.tools import export

        out = tmp_path_factory.mktemp("random_bisenetv2")
        torch.manual_seed(0)
        checkpoint = out / "model.pt"
        state = build_model("bisenetv2").state_dict()
        torch.save({"model": state, "config": {"model": {"name": "bisenetv2"}}}, checkpoint)
        onnx_path = out / "model.onnx"
        args = ["--checkpoint", str(checkpoint), "--out", str(onnx_path), "--height", "64", "--width", "128"]
        assert export.main(args + (["--dynamic"] if dynamic else [])) == 0
        return onnx_path

    return export_model


@pytest.fixture(scope="session")
def random_panoptic_onnx(tmp_path_factory):
    """A randomly initialised light panoptic_fpn (ResNet-18, narrow heads; seed 0) exported by seg-export at
    128x256, with its sidecar: the detection graph contract without a trained model (scores all near 1/9)."""
    import torch

    from seg_perception.models import build_model
    from seg_perception.tools import export

    folder = tmp_path_factory.mktemp("random_panoptic_fpn")
    options = {"backbone": "resnet18", "fpn_channels": 32, "mask_head_channels": 32, "roi_batch_size_per_image": 32}
    torch.manual_seed(0)
    checkpoint = folder / "model.pt"
    config = {"model": {"name": "panoptic_fpn", "options": options}, "data": {"crop_size": [128, 256]}}
    torch.save({"model": build_model("panoptic_fpn", **options).state_dict(), "config": config}, checkpoint)
    out = folder / "model.onnx"
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(out), "--height", "128", "--width", "256"]) == 0
    return out
