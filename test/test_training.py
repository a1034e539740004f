"""Training stack: config validation, joint transforms, the train/val loop, checkpoint/resume, DDP, CLI.

The engine tests train ``TinyNet`` (same output contract as the model zoo) on a tiny hand-written
Cityscapes-layout root; the CLI smoke test trains the real BiSeNetV2 on a seg-synth root.
"""

import csv
import math
import os
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.labels import IGNORE_TRAIN_ID
from seg_perception.training.config import ConfigError, config_from_dict, load_config
from seg_perception.training.engine import Trainer, lr_factor, train
from seg_perception.training.semantic_task import predict_logits
from seg_perception.training.transforms import (
    Compose,
    Normalize,
    PhotometricJitter,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    build_train_transforms,
    masks_to_boxes,
)

REPO = Path(__file__).resolve().parents[1]
MODEL_NAMES = ("bisenetv1", "bisenetv2", "deeplabv3plus", "fcn", "segnet", "unet")

# label id -> RGB of the tiny scenes (sky, building, road, car, unlabeled)
SCENE_COLORS = {23: (70, 130, 180), 11: (70, 70, 70), 7: (128, 64, 128), 26: (0, 0, 142), 0: (0, 0, 0)}


class TinyNet(nn.Module):
    """conv-BN-ReLU-dropout then a 1x1 head; train mode adds one 1x1 aux head (the zoo's contract)."""

    def __init__(self, num_classes: int = 19):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.1))
        self.head = nn.Conv2d(8, num_classes, 1)
        self.aux = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        features = self.body(x)
        out = self.head(features)
        return {"out": out, "aux": [self.aux(features)]} if self.training else out


def make_root(root: Path, frames: dict[str, int], height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """Cityscapes-layout root: sky / building / road bands, a car box, an unlabeled patch, noisy colours."""
    rng = np.random.default_rng(seed)
    for split, count in frames.items():
        for k in range(count):
            stem = f"tinycity_000000_{k:06d}"
            label_ids = np.full((height, width), 7, np.uint8)
            sky, building = rng.integers(height // 6, height // 3), rng.integers(height // 2, 2 * height // 3)
            label_ids[:sky] = 23
            label_ids[sky:building] = 11
            top, left = rng.integers(building, height - 6), rng.integers(0, width - 16)
            label_ids[top : top + 6, left : left + 16] = 26
            label_ids[-3:, :5] = 0
            instance_ids = label_ids.astype(np.uint16)
            instance_ids[label_ids == 26] = 26000
            image = np.zeros((height, width, 3), np.uint8)
            for label_id, color in SCENE_COLORS.items():
                image[label_ids == label_id] = color
            noise = rng.integers(-12, 13, image.shape)
            image = np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)
            for kind, folder, array in (
                ("leftImg8bit", "leftImg8bit", cv2.cvtColor(image, cv2.COLOR_RGB2BGR)),
                ("gtFine_labelIds", "gtFine", label_ids),
                ("gtFine_instanceIds", "gtFine", instance_ids),
            ):
                path = root / folder / split / "tinycity" / f"{stem}_{kind}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(path), array)
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return make_root(tmp_path_factory.mktemp("tiny_cityscapes"), {"train": 4, "val": 2})


def tiny_config(root: Path, out: Path, *overrides: str):
    raw = {
        "data": {"root": str(root), "crop_size": [32, 48], "scale_range": [0.75, 1.25], "workers": 0},
        "model": {"name": "tiny"},
        "loss": {"type": "ce", "aux_weight": 0.4},
        "optim": {"type": "sgd", "lr": 0.05, "warmup_iterations": 2},
        "train": {
            "iterations": 4,
            "batch_size": 2,
            "log_interval": 1,
            "val_interval": 100,
            "checkpoint_interval": 2,
            "keep_checkpoints": 5,
            "device": "cpu",
            "progress": False,
        },
        "output_dir": str(out),
    }
    return config_from_dict(raw, list(overrides))


def read_log(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ config


def test_shipped_configs_load_with_cityscapes_defaults():
    for name in MODEL_NAMES:
        cfg = load_config(REPO / "config" / "train" / f"{name}.yaml")
        assert cfg.model.name == name
        assert cfg.data.crop_size == (512, 1024) and cfg.train.batch_size == 8
        assert cfg.train.iterations == 80_000 and cfg.output_dir == f"runs/{name}"
    bisenet = load_config(REPO / "config" / "train" / "bisenetv2.yaml")
    assert (bisenet.loss.type, bisenet.optim.type, bisenet.optim.lr) == ("ohem", "sgd", 0.05)


def test_shipped_configs_build_with_the_model_zoo():
    models = pytest.importorskip("seg_perception.models")
    assert set(MODEL_NAMES) == set(models.list_models())
    for name in MODEL_NAMES:
        cfg = load_config(REPO / "config" / "train" / f"{name}.yaml")
        models.build_model(cfg.model.name, num_classes=cfg.loss.num_classes, **cfg.model.options)


def test_overrides_types_and_round_trip(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path, "optim.lr=1e-3", "data.crop_size=[16, 24]", "model.options.width=4")
    assert cfg.optim.lr == 0.001 and cfg.data.crop_size == (16, 24) and cfg.model.options == {"width": 4}
    assert config_from_dict(cfg.to_dict()) == cfg
    with pytest.raises(AttributeError):
        cfg.train.iterations = 5  # frozen


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.iteratons=3", "unknown config key 'train.iteratons'; did you mean 'train.iterations'?"),
        ("trian.iterations=3", "unknown config key 'trian'"),
        ("train.batch_size=eight", "train.batch_size: expected an integer, got 'eight'"),
        ("train.amp=1", "train.amp: expected true/false"),
        ("data.scale_range=[2.0, 0.5]", "data.scale_range: must be 0 < min <= max"),
        ("data.jitter.hue=0.9", "data.jitter.hue: must be in [0, 0.5]"),
        ("optim.type=adam", "optim.type: must be one of ['sgd', 'adamw']"),
        ("loss.class_weights=[1, 2]", "loss.class_weights: must be 19 non-negative weights"),
        ("data.crop_size.height=3", "'data.crop_size' is a value, not a section"),
        ("train.iterations", "is not of the form dotted.key=value"),
    ],
)
def test_bad_config_gives_clear_error(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        tiny_config(tmp_path, tmp_path, override)
    assert message in str(info.value)


def test_missing_model_name_and_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key\(s\) \['model.name'\]"):
        config_from_dict({"model": {}})
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ transforms

PATTERN_LUT = {0: (200, 0, 0), 3: (0, 200, 0), 7: (0, 0, 200), IGNORE_TRAIN_ID: (60, 60, 60)}


def pattern_sample(height: int = 32, width: int = 48, block: int = 8, seed: int = 0) -> dict:
    """Labels in 8x8 blocks of {0, 3, 7, 255}; the image is the label's colour (PATTERN_LUT)."""
    rng = np.random.default_rng(seed)
    blocks = rng.choice(list(PATTERN_LUT), size=(height // block, width // block))
    semantic = torch.from_numpy(np.kron(blocks, np.ones((block, block), np.int64)))
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    for value, color in PATTERN_LUT.items():
        image[:, semantic == value] = torch.tensor(color, dtype=torch.uint8)[:, None]
    return {"stem": "x", "image": image, "semantic": semantic}


def stripes(axis: int, seed: int, height: int = 32, width: int = 48) -> dict:
    """Stripes 3..9 px wide across ``axis`` (0: rows, 1: columns): label 7 where the image is 200, 0 where 0."""
    rng = np.random.default_rng(seed)
    n = (height, width)[axis]
    profile = np.repeat(np.arange(n) % 2, rng.integers(3, 10, size=n))[:n]
    on = np.broadcast_to(profile[:, None] if axis == 0 else profile[None, :], (height, width))
    semantic = torch.from_numpy(np.where(on == 1, 7, 0))
    image = torch.from_numpy(np.where(on == 1, 200, 0).astype(np.uint8))[None].repeat(3, 1, 1)
    return {"stem": "x", "image": image, "semantic": semantic}


@pytest.mark.parametrize("axis", [0, 1])
def test_geometric_transforms_keep_image_and_labels_aligned(axis):
    # Across a stripe edge the bilinear image is nearer the new colour exactly where the nearest label
    # has switched (both sample at pixel centres), so even a half-pixel shift of the labels shows.
    fill = (100, 101, 102)
    pipeline = Compose([RandomScale((0.5, 2.0)), RandomCrop((40, 56), fill), RandomHorizontalFlip(0.5)])
    padded = 0
    for seed in range(10):
        out = pipeline(stripes(axis, seed), np.random.default_rng(seed))
        image, semantic = out["image"], out["semantic"]
        assert image.shape == (3, 40, 56) and image.dtype == torch.uint8
        assert semantic.shape == (40, 56) and semantic.dtype == torch.int64
        padding = image[1] != image[0]
        padded += bool(padding.any())
        assert torch.all(semantic[padding] == IGNORE_TRAIN_ID)  # padded: label 255, image the fill colour
        assert torch.all(image[:, padding] == torch.tensor(fill, dtype=torch.uint8)[:, None])
        assert set(semantic[~padding].unique().tolist()) <= {0, 7}  # nearest: no new label values
        value = image[0].int()
        decided = ~padding & (value != 100)  # exact midpoints are ties
        assert torch.equal(semantic[decided], torch.where(value[decided] > 100, 7, 0))
    assert 0 < padded < 10  # both padded (scale < 1.25) and unpadded crops were drawn


def test_scale_and_pad_and_flip_by_hand():
    sample = pattern_sample()
    half = RandomScale((0.5, 0.5))(sample, np.random.default_rng(0))
    assert torch.equal(half["semantic"], sample["semantic"][::2, ::2])  # nearest of 2x2 blocks of 8x8 blocks
    crop = RandomCrop((24, 32), (9, 9, 9))(half, np.random.default_rng(0))  # 16x24 -> padded to 24x32
    assert torch.equal(crop["semantic"][:16, :24], half["semantic"])
    assert torch.all(crop["semantic"][16:] == 255) and torch.all(crop["semantic"][:, 24:] == 255)
    assert torch.all(crop["image"][:, 16:] == 9) and torch.all(crop["image"][:, :, 24:] == 9)
    flip = RandomHorizontalFlip(1.0)(sample, np.random.default_rng(0))
    assert torch.equal(flip["semantic"], sample["semantic"].flip(-1))
    assert torch.equal(flip["image"], sample["image"].flip(-1))
    flips = [
        torch.equal(RandomHorizontalFlip(0.5)(sample, np.random.default_rng(seed))["semantic"], flip["semantic"])
        for seed in range(20)
    ]
    assert 0 < sum(flips) < 20


def test_jitter_touches_image_only_and_normalize_formula():
    sample = pattern_sample()
    out = PhotometricJitter(0.4, 0.4, 0.4, 0.1)(sample, np.random.default_rng(3))
    assert torch.equal(out["semantic"], sample["semantic"])
    assert out["image"].dtype == torch.uint8 and not torch.equal(out["image"], sample["image"])
    norm = Normalize((0.5, 0.25, 0.0), (0.5, 0.25, 1.0))(sample)["image"]
    r, g, b = (int(v) for v in sample["image"][:, 0, 0])
    expected = [(r / 255 - 0.5) / 0.5, (g / 255 - 0.25) / 0.25, b / 255]
    assert norm.dtype == torch.float32
    assert norm[:, 0, 0].tolist() == pytest.approx(expected, rel=1e-6)


def test_train_pipeline_from_config(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    out = build_train_transforms(cfg.data)(pattern_sample(), np.random.default_rng(0))
    assert out["image"].shape == (3, 32, 48) and out["image"].dtype == torch.float32
    assert out["semantic"].shape == (32, 48) and out["semantic"].dtype == torch.int64


def instance_sample(seed: int, height: int = 32, width: int = 48, block: int = 8) -> dict:
    """Random 8x8 blocks of road (0), person (11), car (13) and ignore; every thing block is one instance."""
    rng = np.random.default_rng(seed)
    classes = rng.choice([0, 11, 13, IGNORE_TRAIN_ID], size=(height // block, width // block))
    semantic = torch.from_numpy(np.kron(classes, np.ones((block, block), np.int64)))
    image = torch.from_numpy(np.kron(classes, np.ones((block, block))).astype(np.uint8))[None].repeat(3, 1, 1)
    block_index = torch.from_numpy(np.kron(np.arange(classes.size).reshape(classes.shape), np.ones((block, block))))
    things = [int(i) for i in np.flatnonzero(np.isin(classes, [11, 13]))]
    masks = torch.stack([block_index == i for i in things]).to(torch.uint8)
    labels = torch.tensor([int(classes.flat[i]) for i in things])
    instances = {"masks": masks, "boxes": masks_to_boxes(masks), "labels": labels, "instance_ids": torch.tensor(things)}
    return {"stem": "x", "image": image, "semantic": semantic, "instances": instances}


@pytest.mark.parametrize("seed", range(6))
def test_geometric_transforms_move_instance_masks_with_the_labels(seed):
    sample = instance_sample(seed)
    assert len(sample["instances"]["masks"]) > 0
    pipeline = Compose([RandomScale((0.5, 2.0)), RandomCrop((40, 56), (0, 0, 0)), RandomHorizontalFlip(0.5)])
    out = pipeline(sample, np.random.default_rng(seed))
    instances, semantic = out["instances"], out["semantic"]
    masks = instances["masks"].bool()
    assert masks.shape[1:] == semantic.shape and masks.flatten(1).any(1).all()  # no empty instance is kept
    for mask, label in zip(masks, instances["labels"], strict=True):
        assert torch.all(semantic[mask] == label)  # nearest on both: every mask pixel keeps its class
    union = masks.any(0) if len(masks) else torch.zeros_like(semantic, dtype=torch.bool)
    assert torch.equal(union, torch.isin(semantic, torch.tensor([11, 13])))  # and every thing pixel is covered
    for mask, box in zip(masks, instances["boxes"], strict=True):
        rows, cols = torch.nonzero(mask, as_tuple=True)
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    kept = set(instances["instance_ids"].tolist())
    assert kept <= set(sample["instances"]["instance_ids"].tolist())


def test_masks_to_boxes_by_hand():
    masks = torch.zeros((2, 4, 5), dtype=torch.uint8)
    masks[0, 1:3, 2] = 1
    masks[1, 0, 0] = masks[1, 3, 4] = 1
    assert masks_to_boxes(masks).tolist() == [[2, 1, 3, 3], [0, 0, 5, 4]]
    assert masks_to_boxes(masks[:0]).shape == (0, 4)


# ------------------------------------------------------------------ engine


def test_lr_schedule_warmup_then_poly(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path, "train.iterations=10", "optim.warmup_iterations=2", "optim.poly_power=1.0")
    # start factor 0.1, ramp over 2 iterations, times (1 - i / 10)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(1, cfg) == pytest.approx(0.9 * 0.55)
    assert lr_factor(2, cfg) == pytest.approx(0.8)
    assert lr_factor(5, cfg) == pytest.approx(0.5)


def test_predict_slide_equals_whole_for_a_pointwise_model():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 5, 1).eval()
    image = torch.randn(1, 3, 30, 50)
    whole = predict_logits(model, image)
    for window, stride in (((16, 20), (10, 13)), ((40, 64), (20, 20))):  # the second pads the image
        assert torch.allclose(predict_logits(model, image, "slide", window, stride), whole, atol=1e-6)


def test_training_lowers_the_loss_and_logs_lr(tiny_root, tmp_path):
    cfg = tiny_config(
        tiny_root, tmp_path, "train.iterations=30", "optim.lr=0.1", "data.workers=1", "train.checkpoint_interval=30"
    )
    torch.manual_seed(0)
    result = train(cfg, model=TinyNet())
    assert result["val"]["mIoU"] > 0.4  # sky / building / road / car separate by colour
    rows = read_log(tmp_path / "log.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(1, 31))
    losses = [float(r["loss"]) for r in rows]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    for r in rows:  # lr used at iteration i (1-based) is lr * factor(i - 1)
        assert float(r["lr"]) == pytest.approx(0.1 * lr_factor(int(r["iteration"]) - 1, cfg), rel=1e-6)
    assert [p.name for p in sorted(tmp_path.glob("iter_*.pt"))] == ["iter_000030.pt"]


def test_init_weights_start_training_from_a_checkpoint(tiny_root, tmp_path):
    torch.manual_seed(1)
    start = TinyNet()
    torch.save({"model": start.state_dict()}, tmp_path / "start.pt")
    cfg = tiny_config(tiny_root, tmp_path, f"model.init_weights={tmp_path / 'start.pt'}")
    torch.manual_seed(2)
    trainer = Trainer(cfg, model=TinyNet())
    for name, value in start.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name


def test_validation_writes_miou_to_csv_and_best_checkpoint(tiny_root, tmp_path):
    cfg = tiny_config(
        tiny_root,
        tmp_path,
        "train.iterations=3",
        "train.val_interval=2",
        "train.log_interval=2",
        "train.val_mode=slide",
        "train.val_window=[32, 48]",
        "train.val_stride=[16, 16]",
    )
    result = train(cfg, model=TinyNet())
    rows = read_log(tmp_path / "log.csv")
    assert [r["iteration"] for r in rows] == ["2", "3"]  # iteration 3: the final validation
    for r in rows:
        assert 0.0 <= float(r["val_mIoU"]) <= 1.0 and 0.0 <= float(r["val_mDice"]) <= 1.0
        assert float(r["seconds"]) > 0
    assert float(rows[-1]["val_mIoU"]) == pytest.approx(result["val"]["mIoU"], abs=1e-6)
    best = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    assert best["score_name"] == result["score_name"] == "mIoU"
    assert best["best_score"] == pytest.approx(max(float(r["val_mIoU"]) for r in rows), abs=1e-6)
    assert (tmp_path / "config.yaml").is_file()


def test_binary_drivable_head_with_bce_dice(tiny_root, tmp_path):
    cfg = tiny_config(tiny_root, tmp_path, "loss.type=bce_dice", "train.iterations=2")
    assert cfg.loss.num_classes == 1
    result = train(cfg, model=TinyNet(num_classes=1))
    assert set(result["val"]["per_class_iou"]) == {"other", "drivable"}
    assert 0.0 <= float(read_log(tmp_path / "log.csv")[-1]["val_mIoU"]) <= 1.0


def test_resume_continues_exactly(tiny_root, tmp_path):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    torch.manual_seed(0)
    train(tiny_config(tiny_root, full), model=TinyNet())
    torch.manual_seed(1)  # different init: everything must come from the checkpoint
    Trainer(tiny_config(tiny_root, resumed), model=TinyNet(), resume=full / "iter_000002.pt").run()

    a = torch.load(full / "iter_000004.pt", map_location="cpu", weights_only=True)
    b = torch.load(resumed / "iter_000004.pt", map_location="cpu", weights_only=True)
    assert a["iteration"] == b["iteration"] == 4
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    for index, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][index]["momentum_buffer"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 4
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    full_rows = {r["iteration"]: r for r in read_log(full / "log.csv")}
    resumed_rows = read_log(resumed / "log.csv")
    assert [r["iteration"] for r in resumed_rows] == ["3", "4"]
    for r in resumed_rows:
        assert (r["loss"], r["lr"], r["val_mIoU"]) == (
            full_rows[r["iteration"]]["loss"],
            full_rows[r["iteration"]]["lr"],
            full_rows[r["iteration"]]["val_mIoU"],
        )


def _ddp_worker(rank: int, world_size: int, port: int, root: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size)
    )
    torch.set_num_threads(1)
    torch.manual_seed(rank)  # different init per rank: DDP must broadcast rank 0's weights
    model = TinyNet()
    trainer = Trainer(tiny_config(Path(root), Path(out), "train.iterations=2"), model=model)
    trainer.run()
    torch.save({k: v.detach() for k, v in model.named_parameters()}, Path(out) / f"params_rank{rank}.pt")


def test_ddp_two_processes_gloo_cpu(tiny_root, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tiny_root), str(tmp_path)), nprocs=2, join=True)
    params = [torch.load(tmp_path / f"params_rank{r}.pt", weights_only=True) for r in range(2)]
    for key, tensor in params[0].items():
        assert torch.equal(tensor, params[1][key]), key  # gradients were all-reduced
    rows = read_log(tmp_path / "log.csv")
    assert [r["iteration"] for r in rows] == ["1", "2"] and rows[-1]["val_mIoU"]
    checkpoint = torch.load(tmp_path / "iter_000002.pt", map_location="cpu", weights_only=True)
    for key, tensor in params[0].items():
        assert torch.equal(checkpoint["model"][key], tensor)
    assert sorted(p.name for p in tmp_path.glob("params_rank*.pt")) == ["params_rank0.pt", "params_rank1.pt"]


# ------------------------------------------------------------------ CLI


def test_cli_reports_bad_key_and_missing_root(tmp_path, capsys):
    from seg_perception.tools.train import main

    config = str(REPO / "config" / "train" / "bisenetv2.yaml")
    with pytest.raises(SystemExit) as info:
        main(["--config", config, "train.iteratons=3"])
    assert info.value.code == 2
    assert "unknown config key 'train.iteratons'; did you mean 'train.iterations'?" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["--config", config, f"data.root={tmp_path / 'missing'}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"data.root={tmp_path / 'missing'}: no leftImg8bit/train folder" in err
    with pytest.raises(SystemExit):
        main([])
    assert "--config is required" in capsys.readouterr().err


def cli_args(root: Path, out: Path, *extra: str) -> list[str]:
    """seg-train arguments for a few BiSeNetV2 iterations on 64x128 frames."""
    return [
        "--config",
        str(REPO / "config" / "train" / "bisenetv2.yaml"),
        f"data.root={root}",
        f"output_dir={out}",
        "train.batch_size=2",
        "train.progress=false",
        "data.crop_size=[64,128]",
        "data.workers=0",
        "train.log_interval=1",
        "loss.ohem_min_kept=1000",
        *extra,
    ]


def test_cli_trains_bisenetv2_and_resumes(tmp_path, capsys):
    models = pytest.importorskip("seg_perception.models")
    from seg_perception.tools.train import main

    root, out = make_root(tmp_path / "root", {"train": 2, "val": 1}, height=64, width=128), tmp_path / "run"
    assert main(cli_args(root, out, "train.iterations=2", "train.checkpoint_interval=1", "train.val_interval=2")) == 0
    printed = capsys.readouterr().out
    assert f"{out}/log.csv" in printed and "best val mIoU" in printed
    rows = read_log(out / "log.csv")
    assert [r["iteration"] for r in rows] == ["1", "2"] and 0 <= float(rows[-1]["val_mIoU"]) <= 1
    first = torch.load(out / "iter_000002.pt", map_location="cpu", weights_only=True)
    models.load_checkpoint(models.build_model("bisenetv2"), out / "best.pt")  # the zoo reads our checkpoints

    assert main(["--resume", str(out / "iter_000001.pt")]) == 0  # the checkpoint's own config
    again = torch.load(out / "iter_000002.pt", map_location="cpu", weights_only=True)
    for key, tensor in first["model"].items():
        assert torch.equal(tensor, again["model"][key]), key
    rows_again = read_log(out / "log.csv")
    assert [r["iteration"] for r in rows_again] == ["1", "2"]  # rows after the resumed iteration replaced
    assert rows_again[-1]["loss"] == rows[-1]["loss"]


def test_cli_smoke_on_seg_synth_root(tmp_path):
    pytest.importorskip("seg_perception.models")
    synthetic = pytest.importorskip("seg_perception.data.synthetic")
    from seg_perception.tools.train import main

    root, out = tmp_path / "synth", tmp_path / "run"
    synthetic.generate_split(root, "train", sequences=1, frames_per_sequence=2, height=64, width=128, seed=0)
    synthetic.generate_split(root, "val", sequences=1, frames_per_sequence=1, height=64, width=128, seed=1)
    assert main(cli_args(root, out, "train.iterations=1")) == 0
    row = read_log(out / "log.csv")[-1]
    assert row["iteration"] == "1" and math.isfinite(float(row["loss"])) and 0 <= float(row["val_mIoU"]) <= 1
    assert (out / "iter_000001.pt").is_file() and (out / "best.pt").is_file()


def test_gradient_clipping_bounds_the_step(tiny_root, tmp_path):
    overrides = ("optim.clip_grad_norm=1e-6", "optim.warmup_iterations=0", "optim.weight_decay=0")
    clipped = Trainer(tiny_config(tiny_root, tmp_path / "a", *overrides), model=TinyNet())
    before = {name: p.detach().clone() for name, p in clipped.model.named_parameters()}
    clipped._step(next(iter(clipped._loaders()[0])))
    moved = max((p.detach() - before[name]).abs().max().item() for name, p in clipped.model.named_parameters())
    assert moved <= 0.05 * 1e-6 * 1.001  # lr 0.05 x a gradient of total norm <= 1e-6 (first step: no momentum yet)
    with pytest.raises(ConfigError, match="clip_grad_norm"):
        tiny_config(tiny_root, tmp_path, "optim.clip_grad_norm=0")
