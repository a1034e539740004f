"""The trainer with the instance and panoptic models: instance targets from instanceIds through the joint
augmentations, the models' loss dicts, validation by PQ / mask AP / mIoU (log columns, best checkpoint by PQ or
AP), exact resume, and seg-train with the shipped synthetic config."""

import csv
from pathlib import Path

import pytest
import torch
import yaml

from seg_perception.data.synthetic import generate_split
from seg_perception.tools import train as train_cli
from seg_perception.training.config import config_from_dict, load_config
from seg_perception.training.engine import Trainer, train

REPO = Path(__file__).resolve().parents[1]
LEAN = {"backbone": "resnet18", "fpn_channels": 32, "mask_head_channels": 32, "roi_batch_size_per_image": 32}
DETECTION_COLUMNS = ["val_PQ", "val_PQ_th", "val_PQ_st", "val_AP", "val_AP50", "val_mIoU"]

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    """seg-synth drives at 64x128: 4 training frames, 2 val frames, with cars and people."""
    root = tmp_path_factory.mktemp("synth_detection")
    generate_split(root, "train", 2, 2, 64, 128, seed=1)
    generate_split(root, "val", 1, 2, 64, 128, seed=2)
    return root


def _config(root: Path, out: Path, model: str, *overrides: str):
    raw = {
        "data": {"root": str(root), "crop_size": [64, 128], "scale_range": [0.9, 1.1], "workers": 0},
        "model": {"name": model, "options": LEAN},
        "optim": {"type": "sgd", "lr": 0.01, "warmup_iterations": 2},
        "train": {
            "iterations": 3,
            "batch_size": 2,
            "log_interval": 1,
            "val_interval": 3,
            "checkpoint_interval": 1,
            "device": "cpu",
            "progress": False,
        },
        "output_dir": str(out),
    }
    return config_from_dict(raw, list(overrides))


def _log(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(("model", "score"), [("panoptic_fpn", "PQ"), ("mask_rcnn", "AP")])
def test_detection_training_logs_pq_ap_miou_and_keeps_the_best_by_its_score(synth_root, tmp_path, model, score):
    torch.manual_seed(0)
    result = train(_config(synth_root, tmp_path, model))
    rows = _log(tmp_path / "log.csv")
    assert list(rows[0]) == ["iteration", "lr", "loss", *DETECTION_COLUMNS, "seconds"]
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]
    assert all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)
    last = rows[-1]
    for column in DETECTION_COLUMNS:
        assert 0.0 <= float(last[column]) <= 1.0, column
    assert result["score_name"] == score
    val = result["val"]
    assert set(val) >= {"PQ", "PQ_th", "PQ_st", "AP", "AP50", "mIoU", "panoptic", "instance", "semantic"}
    assert float(last[f"val_{score}"]) == pytest.approx(val[score] or 0.0, abs=1e-6)
    best = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    assert best["score_name"] == score and best["best_score"] == pytest.approx(val[score] or 0.0, abs=1e-6)


def test_detection_training_resumes_exactly(synth_root, tmp_path):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    torch.manual_seed(0)
    train(_config(synth_root, full, "panoptic_fpn"))
    torch.manual_seed(1)  # a different init: everything must come from the checkpoint
    Trainer(_config(synth_root, resumed, "panoptic_fpn"), resume=full / "iter_000001.pt").run()
    a = torch.load(full / "iter_000003.pt", map_location="cpu", weights_only=True)
    b = torch.load(resumed / "iter_000003.pt", map_location="cpu", weights_only=True)
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    full_rows = {r["iteration"]: r for r in _log(full / "log.csv")}
    for row in _log(resumed / "log.csv"):
        assert row["loss"] == full_rows[row["iteration"]]["loss"], row["iteration"]


def test_the_synthetic_panoptic_config_trains_with_seg_train(synth_root, tmp_path):
    config = REPO / "config" / "train" / "panoptic_fpn_synth.yaml"
    shipped = load_config(config)
    assert shipped.model.name == "panoptic_fpn" and shipped.model.options["backbone"] == "resnet18"
    overrides = [
        f"data.root={synth_root}",
        "data.crop_size=[64, 128]",
        "data.workers=0",
        "train.iterations=1",
        "train.batch_size=2",
        "train.progress=false",
        f"output_dir={tmp_path}",
    ]
    assert train_cli.main(["--config", str(config), *overrides]) == 0
    assert (tmp_path / "best.pt").is_file()
    written = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert written["model"] == {**yaml.safe_load(config.read_text())["model"], "init_weights": None}
