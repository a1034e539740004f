"""Model zoo: output contract, gradients, an optimisation step, ONNX Runtime parity, registry errors, checkpoints.

Every model runs at 72x136 (not divisible by 32; 72 = 8 * 9, 136 = 8 * 17), batch 2, on at most two threads.
"""

from __future__ import annotations

import argparse
import math
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from seg_perception.labels import IGNORE_TRAIN_ID, NUM_CLASSES
from seg_perception.models import CheckpointError, build_model, list_models, load_checkpoint
from seg_perception.models.segnet import MaxUnpool2x2

torch.set_num_threads(2)

BATCH = 2
ODD_SIZE = (72, 136)
EXPORT_SIZE = (64, 128)
AUX_WEIGHT = 0.4
EXPECTED_AUX_HEADS = {"bisenetv1": 2, "bisenetv2": 4, "deeplabv3plus": 0, "fcn": 1, "segnet": 0, "unet": 0}
MODELS = list_models()


def _build(name: str, seed: int = 0, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, **options)


def _images(size: tuple[int, int], seed: int, batch: int = BATCH) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def _targets(size: tuple[int, int], seed: int) -> torch.Tensor:
    """Random train ids with about 10% ignored pixels: (BATCH, H, W) int64."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, NUM_CLASSES, (BATCH, *size), generator=generator)
    targets[torch.rand(targets.shape, generator=generator) < 0.1] = IGNORE_TRAIN_ID
    return targets


def _loss(outputs: dict, targets: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(outputs["out"], targets, ignore_index=IGNORE_TRAIN_ID)
    for aux in outputs["aux"]:
        loss = loss + AUX_WEIGHT * F.cross_entropy(aux, targets, ignore_index=IGNORE_TRAIN_ID)
    return loss


def _calibrate_batchnorm(model: torch.nn.Module) -> None:
    """Give BatchNorm non-trivial running statistics (two train-mode passes), then switch to eval mode."""
    model.train()
    with torch.no_grad():
        for seed in (1, 2):
            model(_images(ODD_SIZE, seed))
    model.eval()


def test_every_registered_model_has_an_expected_aux_count():
    assert set(EXPECTED_AUX_HEADS) == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_eval_forward_gives_logits_at_input_resolution(name):
    model = _build(name).eval()
    with torch.no_grad():
        logits = model(_images(ODD_SIZE, seed=0))
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (BATCH, NUM_CLASSES, *ODD_SIZE)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_train_forward_contract_and_finite_gradients(name):
    model = _build(name).train()
    outputs = model(_images(ODD_SIZE, seed=0))
    assert set(outputs) == {"out", "aux"}
    assert outputs["out"].shape == (BATCH, NUM_CLASSES, *ODD_SIZE)
    assert isinstance(outputs["aux"], list)
    assert len(outputs["aux"]) == EXPECTED_AUX_HEADS[name]
    for aux in outputs["aux"]:
        assert aux.shape == (BATCH, NUM_CLASSES, *ODD_SIZE)

    _loss(outputs, _targets(ODD_SIZE, seed=0)).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    without_grad = [n for n, p in trainable if p.grad is None]
    assert not without_grad, f"parameters that take no part in the training loss: {without_grad}"
    not_finite = [n for n, p in trainable if not torch.isfinite(p.grad).all()]
    assert not not_finite, f"non-finite gradients: {not_finite}"
    assert sum(p.grad.abs().sum().item() for _, p in trainable) > 0


@pytest.mark.parametrize("name", MODELS)
def test_sgd_step_lowers_the_loss_on_a_fixed_batch(name):
    model = _build(name).train()
    images, targets = _images(EXPORT_SIZE, seed=3), _targets(EXPORT_SIZE, seed=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def loss_on_batch() -> torch.Tensor:
        torch.manual_seed(4)  # same dropout masks in every evaluation: the loss is a fixed function of the weights
        return _loss(model(images), targets)

    losses = []
    for _ in range(2):
        optimizer.zero_grad()
        loss = loss_on_batch()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(loss_on_batch().item())
    assert losses[-1] < losses[0], f"loss did not go down: {losses}"


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")
@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_with_dynamic_size_matches_pytorch(name, tmp_path):
    """The legacy exporter (opset 17) is the one the product uses; its deprecation warnings are expected."""
    model = _build(name)
    _calibrate_batchnorm(model)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        (_images(EXPORT_SIZE, seed=5),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}},
    )
    onnx.checker.check_model(str(path))

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    # Other sizes than at export (the graph must hold no trace-time sizes), one with odd H and W, another batch size.
    for batch, size in [(BATCH, ODD_SIZE), (1, (97, 161))]:
        images = _images(size, seed=6, batch=batch)
        with torch.no_grad():
            expected = model(images).numpy()
        (actual,) = session.run(None, {"images": images.numpy()})

        assert actual.shape == expected.shape == (batch, NUM_CLASSES, *size)
        scale = float(np.abs(expected).max())
        assert scale > 0
        max_difference = float(np.abs(actual - expected).max())
        assert max_difference <= 1e-3 * scale, f"{size}: max |ORT - PyTorch| = {max_difference}, logit scale {scale}"
        agreement = float((actual.argmax(1) == expected.argmax(1)).mean())
        assert agreement >= 0.999, f"{size}: argmax agreement {agreement:.5f}"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("fcn", {"backbone": "resnet101", "aux": False}),
        ("unet", {"base_width": 16, "bilinear": True}),
        ("segnet", {"base_width": 16}),
        ("deeplabv3plus", {"backbone": "resnet50", "output_stride": 8}),
        ("bisenetv1", {"aux": False}),
        ("bisenetv2", {"aux": False}),
    ],
)
def test_model_options_keep_the_contract(name, options):
    model = _build(name, **options).train()
    outputs = model(_images(ODD_SIZE, seed=0))
    assert outputs["out"].shape == (BATCH, NUM_CLASSES, *ODD_SIZE)
    assert outputs["aux"] == []
    with torch.no_grad():
        assert model.eval()(_images(ODD_SIZE, seed=1)).shape == (BATCH, NUM_CLASSES, *ODD_SIZE)


@pytest.mark.parametrize(
    ("backbone", "output_stride", "low_channels", "high_channels"),
    [("mobilenet_v3_large", 16, 24, 960), ("mobilenet_v3_large", 8, 24, 960), ("resnet50", 16, 256, 2048)],
)
def test_deeplabv3plus_output_stride_and_atrous_rates(backbone, output_stride, low_channels, high_channels):
    model = _build("deeplabv3plus", backbone=backbone, output_stride=output_stride).eval()
    height, width = ODD_SIZE
    with torch.no_grad():
        features = model.backbone(_images(ODD_SIZE, seed=0, batch=1))
    assert features["low"].shape == (1, low_channels, math.ceil(height / 4), math.ceil(width / 4))
    expected_high = (math.ceil(height / output_stride), math.ceil(width / output_stride))
    assert features["high"].shape == (1, high_channels, *expected_high)
    rates = [branch[0].dilation[0] for branch in list(model.aspp.convs)[1:-1]]
    assert rates == ([6, 12, 18] if output_stride == 16 else [12, 24, 36])


def test_deeplabv3plus_custom_atrous_rates():
    model = _build("deeplabv3plus", atrous_rates=(3, 5))
    assert [branch[0].dilation[0] for branch in list(model.aspp.convs)[1:-1]] == [3, 5]


def test_num_classes_sets_the_output_channels():
    with torch.no_grad():
        assert _build("bisenetv2", num_classes=5).eval()(_images(ODD_SIZE, seed=0)).shape[1] == 5


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'pspnet'") as error:
        build_model("pspnet")
    assert all(name in str(error.value) for name in MODELS)


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match=r"'depth'.*'unet'"):
        build_model("unet", depth=5)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("fcn", {"backbone": "resnet18"}, "resnet18"),
        ("deeplabv3plus", {"backbone": "vgg16"}, "vgg16"),
        ("deeplabv3plus", {"output_stride": 32}, "output_stride"),
        ("bisenetv2", {"semantic_channels": (16, 32, 64, 96)}, "last semantic width"),
        ("unet", {"base_width": 0}, "base_width"),
    ],
)
def test_bad_option_values_raise_value_error(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, **options)


@pytest.mark.parametrize("wrap", [False, True], ids=["raw_state_dict", "model_key"])
def test_load_checkpoint_round_trip(tmp_path, wrap):
    trained = _build("bisenetv2", seed=0)
    _calibrate_batchnorm(trained)  # running statistics must travel too
    path = tmp_path / "bisenetv2.pt"
    state_dict = trained.state_dict()
    torch.save({"model": state_dict, "epoch": 3} if wrap else state_dict, path)

    fresh = _build("bisenetv2", seed=1).eval()
    images = _images(ODD_SIZE, seed=7)
    with torch.no_grad():
        assert not torch.equal(fresh(images), trained(images))
        assert load_checkpoint(fresh, path) is fresh
        assert torch.equal(fresh(images), trained(images))


def test_load_checkpoint_missing_file(tmp_path):
    path = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_checkpoint(_build("bisenetv2"), path)


@pytest.mark.parametrize("content", ["garbage", "truncated", "not_weights_only", "no_state_dict"])
def test_load_checkpoint_unreadable_file_names_it(tmp_path, content):
    model = _build("bisenetv2")
    path = tmp_path / f"{content}.pt"
    if content == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    elif content == "truncated":
        torch.save(model.state_dict(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content == "not_weights_only":
        torch.save({"model": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    else:
        torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_checkpoint(model, path)


def test_load_checkpoint_of_another_model_names_the_file(tmp_path):
    path = tmp_path / "unet.pt"
    torch.save(_build("unet", base_width=8).state_dict(), path)
    with pytest.raises(CheckpointError, match=re.escape(f"{path} does not fit BiSeNetV2")):
        load_checkpoint(_build("bisenetv2"), path)


def test_segnet_unpool_export_form_equals_max_unpool(monkeypatch):
    unpool = MaxUnpool2x2()
    before_pool = torch.randn(2, 3, 9, 7)  # odd sizes: the last row and column are never a maximum
    pooled, indices = F.max_pool2d(before_pool, kernel_size=2, stride=2, return_indices=True)
    eager = unpool(pooled, indices, before_pool)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert torch.equal(unpool(pooled, indices, before_pool), eager)
    assert torch.equal(eager, F.max_unpool2d(pooled, indices, kernel_size=2, stride=2, output_size=(9, 7)))
