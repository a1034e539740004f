"""Detection models of the zoo (mask_rcnn, panoptic_fpn): losses, gradients, an SGD step, eval contract, empty
frames, target checks, the semantic-branch channel mapping and the export form of GroupNorm.

Everything runs at 128x256 (or an odd size), batch 2, on two threads, with made-up targets.
"""

from __future__ import annotations

import pytest
import torch

from seg_perception.labels import IGNORE_TRAIN_ID, THING_TRAIN_IDS
from seg_perception.models import build_model, list_models
from seg_perception.models.detection_backbone import GroupNorm
from seg_perception.models.mask_rcnn import MASK_SIZE, NUM_THING_CLASSES
from seg_perception.models.panoptic_fpn import SEMANTIC_CHANNELS, THING_CHANNEL
from seg_perception.tools.bench_detection import synthetic_targets

torch.set_num_threads(2)

SIZE = (128, 256)
ODD_SIZE = (100, 170)
BATCH = 2
MODELS = ("mask_rcnn", "panoptic_fpn")
BACKBONES = ("resnet18", "resnet50")
MASK_RCNN_LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}


def _build(name: str, seed: int = 0, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, **options)


def _images(size: tuple[int, int] = SIZE, seed: int = 0, batch: int = BATCH) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def _expected_losses(name: str) -> set[str]:
    return MASK_RCNN_LOSSES | ({"loss_semantic"} if name == "panoptic_fpn" else set())


def test_registry_lists_the_detection_models_by_task():
    assert list_models("instance") == ["mask_rcnn"]
    assert list_models("panoptic") == ["panoptic_fpn"]
    assert not set(MODELS) & set(list_models())  # the default, "semantic", keeps the semantic tools' lists
    assert set(MODELS) <= set(list_models(None))
    with pytest.raises(ValueError, match="task"):
        list_models("depth")


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("name", MODELS)
def test_train_forward_gives_finite_losses_and_gradients(name, backbone):
    model = _build(name, backbone=backbone).train()
    losses = model(_images(), synthetic_targets(BATCH, *SIZE, instances=3, seed=0))
    assert set(losses) == _expected_losses(name)
    assert all(loss.ndim == 0 and torch.isfinite(loss) for loss in losses.values())
    sum(losses.values()).backward()
    without_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not without_grad, f"parameters outside the training loss: {without_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(("name", "backbone"), [("mask_rcnn", "resnet18"), ("panoptic_fpn", "resnet18")])
def test_sgd_step_lowers_the_loss_on_a_fixed_batch(name, backbone):
    model = _build(name, backbone=backbone).train()
    images, targets = _images(seed=1), synthetic_targets(BATCH, *SIZE, instances=3, seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def loss_on_batch() -> torch.Tensor:
        torch.manual_seed(2)  # the same RPN / RoI sampling in every evaluation
        return sum(model(images, targets).values())

    before = loss_on_batch()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_on_batch()
    assert after.item() < before.item(), f"loss did not go down: {before.item()} -> {after.item()}"


@pytest.mark.parametrize("name", MODELS)
def test_eval_output_contract_at_an_odd_size(name):
    model = _build(name, backbone="resnet18").eval()
    height, width = ODD_SIZE
    with torch.no_grad():
        outputs = model(_images(ODD_SIZE))
    assert isinstance(outputs, list) and len(outputs) == BATCH
    for detection in outputs:
        count = detection["scores"].shape[0]
        assert count > 0  # random weights score every class about 1/9 > 0.05
        assert detection["boxes"].shape == (count, 4) and detection["boxes"].dtype == torch.float32
        assert detection["scores"].dtype == torch.float32
        assert detection["labels"].shape == (count,) and detection["labels"].dtype == torch.int64
        assert detection["masks"].shape == (count, MASK_SIZE, MASK_SIZE) and detection["masks"].dtype == torch.float32
        assert 1 <= detection["labels"].min() and detection["labels"].max() <= NUM_THING_CLASSES
        assert ((detection["masks"] >= 0) & (detection["masks"] <= 1)).all()
        assert torch.equal(detection["scores"], detection["scores"].sort(descending=True).values)
        boxes = detection["boxes"]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        if name == "panoptic_fpn":
            assert detection["semantic_logits"].shape == (SEMANTIC_CHANNELS, height, width)
            assert torch.isfinite(detection["semantic_logits"]).all()
        else:
            assert "semantic_logits" not in detection


@pytest.mark.parametrize("norm", ["group", "batch"])
@pytest.mark.parametrize("name", MODELS)
def test_training_on_frames_without_instances(name, norm):
    model = _build(name, backbone="resnet18", norm=norm).train()
    empty = synthetic_targets(BATCH, *SIZE, instances=0, seed=3)
    mixed = [*synthetic_targets(1, *SIZE, instances=2, seed=4), empty[0]]
    for targets in (empty, mixed):
        losses = model(_images(seed=3), targets)
        assert all(torch.isfinite(loss) for loss in losses.values())
        sum(losses.values()).backward()
    assert losses["loss_box_reg"] > 0  # the mixed batch's instance counts


@pytest.mark.parametrize("name", MODELS)
def test_eval_frame_without_detections_gives_empty_tensors(name):
    model = _build(name, backbone="resnet18", score_threshold=1.0).eval()  # softmax scores never exceed 1
    with torch.no_grad():
        (detection,) = model(_images(batch=1))
    assert detection["boxes"].shape == (0, 4) and detection["boxes"].dtype == torch.float32
    assert detection["scores"].shape == (0,) and detection["scores"].dtype == torch.float32
    assert detection["labels"].shape == (0,) and detection["labels"].dtype == torch.int64
    assert detection["masks"].shape == (0, MASK_SIZE, MASK_SIZE) and detection["masks"].dtype == torch.float32
    if name == "panoptic_fpn":
        assert detection["semantic_logits"].shape == (SEMANTIC_CHANNELS, *SIZE)


def test_semantic_target_maps_train_ids_to_branch_channels():
    model = _build("panoptic_fpn", backbone="resnet18")
    train_ids = torch.tensor([0, 5, 10, *THING_TRAIN_IDS, IGNORE_TRAIN_ID])
    expected = torch.tensor([0, 5, 10, *[THING_CHANNEL] * len(THING_TRAIN_IDS), IGNORE_TRAIN_ID])
    assert torch.equal(model.semantic_target(train_ids), expected)
    for bad in (torch.tensor([19]), torch.tensor([-1]), torch.tensor([300]), torch.tensor([1], dtype=torch.int32)):
        with pytest.raises(ValueError, match="train ids"):
            model.semantic_target(bad)


def test_semantic_target_of_another_size_raises_value_error():
    model = _build("panoptic_fpn", backbone="resnet18").train()
    targets = synthetic_targets(BATCH, *SIZE, instances=1, seed=8)
    targets[1]["semantic"] = targets[1]["semantic"][:, :-1]
    with pytest.raises(ValueError, match="semantic targets must be"):
        model(_images(), targets)


def test_fully_ignored_semantic_target_gives_zero_semantic_loss():
    model = _build("panoptic_fpn", backbone="resnet18").train()
    targets = synthetic_targets(BATCH, *SIZE, instances=1, seed=5)
    for target in targets:
        target["semantic"].fill_(IGNORE_TRAIN_ID)  # e.g. a frame that is all crowd or void
    assert model(_images(), targets)["loss_semantic"].item() == 0.0


def test_semantic_loss_weight_scales_the_semantic_loss():
    images, targets = _images(), synthetic_targets(BATCH, *SIZE, instances=1, seed=6)
    semantic_losses = []
    for weight in (0.5, 1.0):
        model = _build("panoptic_fpn", backbone="resnet18", semantic_loss_weight=weight).train()
        semantic_losses.append(model(images, targets)["loss_semantic"].item())
    assert semantic_losses[1] == pytest.approx(2 * semantic_losses[0], rel=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.update(labels=torch.zeros_like(t["labels"])), "labels"),
        (lambda t: t.update(labels=t["labels"] + NUM_THING_CLASSES), "labels"),
        (lambda t: t.update(masks=t["masks"][:, :-1]), "masks"),
        (lambda t: t["boxes"].__setitem__((0, 2), t["boxes"][0, 0]), "x2 > x1"),
    ],
)
def test_bad_targets_raise_value_error(change, message):
    model = _build("mask_rcnn", backbone="resnet18").train()
    targets = synthetic_targets(BATCH, *SIZE, instances=2, seed=7)
    change(targets[0])
    with pytest.raises(ValueError, match=message):
        model(_images(), targets)


def test_missing_targets_raise_value_error():
    with pytest.raises(ValueError, match="one target dict per image"):
        _build("mask_rcnn", backbone="resnet18").train()(_images())


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"num_classes": 20}, ValueError, "num_classes"),
        ({"backbone": "vgg16"}, ValueError, "vgg16"),
        ({"norm": "layer"}, ValueError, "norm"),
        ({"anchor_sizes": (32, 64)}, ValueError, "anchor_sizes"),
        ({"semantic_loss_weight": -1.0}, ValueError, "semantic_loss_weight"),
    ],
)
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        build_model("panoptic_fpn", **options)


def test_unknown_option_error_names_the_inherited_options_too():
    with pytest.raises(TypeError, match=r"'depth'.*'panoptic_fpn'") as error:
        build_model("panoptic_fpn", depth=3)
    assert "semantic_loss_weight" in str(error.value) and "backbone" in str(error.value)


@pytest.mark.parametrize("batch", [0, 2])
def test_group_norm_export_form_equals_eager(monkeypatch, batch):
    norm = GroupNorm(32, 64)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = 3 * torch.randn(batch, 64, 7, 9) + 1
    eager = norm(x)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    torch.testing.assert_close(norm(x), eager, rtol=1e-5, atol=1e-5)
