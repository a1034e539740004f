"""Test-session settings shared by every test module.

ROS traffic stays on this machine: loopback discovery, a loopback-only Fast DDS profile and a
random ROS_DOMAIN_ID per session (so parallel or leftover runs never cross-talk). Set here at
import time so that node processes started by tests inherit them.
"""

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))


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
