"""Losses against values worked out by hand on 1x2x1x2 (and similar) logits.

Two-class pixels used throughout: logits [0, 0] give p = (1/2, 1/2); logits [ln 3, 0] give
p = (3/4, 1/4). Expected values are written as formulas of those probabilities.
"""

import math
from types import SimpleNamespace

import pytest
import torch

from seg_perception.training.losses import (
    BCEDiceLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    OhemCrossEntropyLoss,
    SegmentationLoss,
    build_loss,
)

LN2 = math.log(2.0)


def two_pixels() -> torch.Tensor:
    """(1, 2, 1, 2): pixel 0 logits [0, 0], pixel 1 logits [ln 3, 0]."""
    return torch.tensor([[[[0.0, math.log(3.0)]], [[0.0, 0.0]]]], requires_grad=True)


def target(*values: int) -> torch.Tensor:
    return torch.tensor([[list(values)]])


def approx(value: float):
    return pytest.approx(value, rel=1e-6, abs=1e-7)


# ------------------------------------------------------------------ cross-entropy


def test_cross_entropy_mean_over_valid_pixels():
    # pixel 0: target 0, p = 1/2 -> ln 2; pixel 1: target 1, p = 1/4 -> ln 4
    loss = CrossEntropyLoss()(two_pixels(), target(0, 1))
    assert loss.item() == approx((LN2 + 2 * LN2) / 2)


def test_cross_entropy_ignores_255():
    logits = two_pixels()
    loss = CrossEntropyLoss()(logits, target(0, 255))
    assert loss.item() == approx(LN2)
    loss.backward()
    assert torch.all(logits.grad[..., 1] == 0)  # the ignored pixel gets no gradient


def test_cross_entropy_class_weights_weighted_mean():
    # weights w0 = 1, w1 = 3: (1 * ln 2 + 3 * ln 4) / (1 + 3)
    weights = [1.0, 3.0]
    loss = CrossEntropyLoss(class_weights=weights)(two_pixels(), target(0, 1))
    assert loss.item() == approx((1 * LN2 + 3 * 2 * LN2) / 4)


def test_all_ignored_gives_zero_with_gradient_path():
    for criterion in (CrossEntropyLoss(), OhemCrossEntropyLoss(), FocalLoss()):
        logits = two_pixels()
        loss = criterion(logits, target(255, 255))
        assert loss.item() == 0.0
        loss.backward()
        assert torch.all(logits.grad == 0)


# ------------------------------------------------------------------ OHEM


def ohem_logits(probs: list[float]) -> torch.Tensor:
    """(1, 2, 1, P): class-0 probability of pixel i is probs[i] (logits [ln(p / (1 - p)), 0])."""
    first = [math.log(p / (1 - p)) for p in probs]
    return torch.tensor([[first, [0.0] * len(probs)]]).unsqueeze(2).requires_grad_()


def test_ohem_keeps_pixels_below_threshold_probability():
    # gt-class probabilities 0.9, 0.8, 0.5, 0.2; thresh 0.7 keeps the last two: (ln 2 + ln 5) / 2
    logits = ohem_logits([0.9, 0.8, 0.5, 0.2])
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=1)(logits, target(0, 0, 0, 0))
    assert loss.item() == approx((math.log(2) + math.log(5)) / 2)
    loss.backward()
    grad = logits.grad[0, 0, 0]
    assert grad[0] == 0 and grad[1] == 0  # easy pixels are not trained
    assert grad[2] != 0 and grad[3] != 0


def test_ohem_min_kept_takes_hardest():
    # only 2 pixels pass the threshold, min_kept 3 -> the 3 largest losses: ln 5, ln 2, ln 1.25
    logits = ohem_logits([0.9, 0.8, 0.5, 0.2])
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=3)(logits, target(0, 0, 0, 0))
    assert loss.item() == approx((math.log(5) + math.log(2) + math.log(1.25)) / 3)


def test_ohem_min_kept_above_valid_count_keeps_all_valid_and_ignores_255():
    # pixel 3 ignored; min_kept 10 > 3 valid pixels -> mean of -ln 0.9, -ln 0.8, -ln 0.5
    logits = ohem_logits([0.9, 0.8, 0.5, 0.2])
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=10)(logits, target(0, 0, 0, 255))
    assert loss.item() == approx(-(math.log(0.9) + math.log(0.8) + math.log(0.5)) / 3)
    # with the hard pixel ignored only p = 0.5 passes the threshold
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=1)(logits, target(0, 0, 0, 255))
    assert loss.item() == approx(LN2)


def test_ohem_rejects_bad_threshold():
    with pytest.raises(ValueError, match="thresh"):
        OhemCrossEntropyLoss(thresh=0.0)


# ------------------------------------------------------------------ Dice


def test_dice_two_classes():
    # p(pixel0) = (1/2, 1/2), gt 0; p(pixel1) = (3/4, 1/4), gt 1; smooth 1
    # class 0: I = 1/2, sum p = 5/4, sum g = 1 -> (2 * 1/2 + 1) / (5/4 + 1 + 1) = 8/13
    # class 1: I = 1/4, sum p = 3/4, sum g = 1 -> (2 * 1/4 + 1) / (3/4 + 1 + 1) = 6/11
    loss = DiceLoss(smooth=1.0)(two_pixels(), target(0, 1))
    assert loss.item() == approx(1 - (8 / 13 + 6 / 11) / 2)


def test_dice_without_smoothing():
    # class 0: 2 * 1/2 / (5/4 + 1) = 4/9; class 1: 2 * 1/4 / (3/4 + 1) = 2/7
    loss = DiceLoss(smooth=0.0)(two_pixels(), target(0, 1))
    assert loss.item() == approx(1 - (4 / 9 + 2 / 7) / 2)


def test_dice_ignores_255():
    # only pixel 0 (gt 0, p = (1/2, 1/2)): class 0 (1 + 1) / (1/2 + 1 + 1) = 4/5, class 1 1 / (1/2 + 1) = 2/3
    logits = two_pixels()
    loss = DiceLoss(smooth=1.0)(logits, target(0, 255))
    assert loss.item() == approx(1 - (4 / 5 + 2 / 3) / 2)
    loss.backward()
    assert torch.all(logits.grad[..., 1] == 0)


def test_dice_perfect_prediction_is_near_zero():
    logits = torch.tensor([[[[20.0, -20.0]], [[-20.0, 20.0]]]])
    assert DiceLoss(smooth=0.0)(logits, target(0, 1)).item() == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------ Focal


def test_focal_gamma_two():
    # p_t = 1/2 -> (1/2)^2 ln 2; p_t = 1/4 -> (3/4)^2 ln 4; mean of the two
    loss = FocalLoss(gamma=2.0)(two_pixels(), target(0, 1))
    assert loss.item() == approx((0.25 * LN2 + 0.5625 * 2 * LN2) / 2)


def test_focal_gamma_zero_is_cross_entropy():
    loss = FocalLoss(gamma=0.0)(two_pixels(), target(0, 1))
    assert loss.item() == approx((LN2 + 2 * LN2) / 2)


def test_focal_alpha_per_class_and_scalar():
    # alpha = (0.25, 0.75): 0.25 * (1/2)^2 ln 2 (gt 0) and 0.75 * (3/4)^2 ln 4 (gt 1)
    loss = FocalLoss(gamma=2.0, alpha=[0.25, 0.75])(two_pixels(), target(0, 1))
    assert loss.item() == approx((0.25 * 0.25 * LN2 + 0.75 * 0.5625 * 2 * LN2) / 2)
    loss = FocalLoss(gamma=2.0, alpha=0.5)(two_pixels(), target(0, 1))
    assert loss.item() == approx(0.5 * (0.25 * LN2 + 0.5625 * 2 * LN2) / 2)


def test_focal_ignores_255():
    loss = FocalLoss(gamma=2.0)(two_pixels(), target(255, 1))
    assert loss.item() == approx(0.5625 * 2 * LN2)


# ------------------------------------------------------------------ BCE + Dice


def test_bce_dice_binary_head():
    # sigma = 1/2 (t 1), 3/4 (t 0), 1/4 (ignored)
    # BCE = (ln 2 + ln 4) / 2; Dice = (2 * 1/2 + 1) / (1/2 + 3/4 + 1 + 1) = 8/13
    logits = torch.tensor([[[[0.0, math.log(3.0), -math.log(3.0)]]]], requires_grad=True)
    mask = target(1, 0, 255)
    loss = BCEDiceLoss()(logits, mask)
    assert loss.item() == approx(1.5 * LN2 + 1 - 8 / 13)
    loss = BCEDiceLoss(bce_weight=0.5, dice_weight=2.0)(logits, mask)
    assert loss.item() == approx(0.5 * 1.5 * LN2 + 2.0 * (1 - 8 / 13))
    loss.backward()
    assert logits.grad[0, 0, 0, 2] == 0


def test_bce_dice_rejects_multichannel_logits():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        BCEDiceLoss()(two_pixels(), target(0, 1))


# ------------------------------------------------------------------ total loss and factory


def test_total_loss_adds_weighted_aux_heads():
    main = two_pixels()  # CE (ln 2 + ln 4) / 2
    aux = torch.zeros(1, 2, 1, 2)  # CE ln 2 per pixel
    total = SegmentationLoss(CrossEntropyLoss(), aux_weight=0.4)
    expected_main = 1.5 * LN2
    assert total(main, target(0, 1)).item() == approx(expected_main)
    assert total({"out": main, "aux": []}, target(0, 1)).item() == approx(expected_main)
    assert total({"out": main}, target(0, 1)).item() == approx(expected_main)
    value = total({"out": main, "aux": [aux, aux]}, target(0, 1)).item()
    assert value == approx(expected_main + 0.4 * 2 * LN2)


def loss_cfg(**overrides) -> SimpleNamespace:
    base = dict(
        type="ce",
        aux_weight=1.0,
        class_weights=None,
        ohem_thresh=0.7,
        ohem_min_kept=1,
        dice_smooth=1.0,
        focal_gamma=2.0,
        focal_alpha=None,
        bce_weight=1.0,
        dice_weight=1.0,
    )
    return SimpleNamespace(**{**base, **overrides})


def test_build_loss_factory():
    expected = {
        "ce": 1.5 * LN2,
        "ohem": 1.5 * LN2,  # both gt probabilities (1/2, 1/4) are below 0.7: plain mean
        "dice": 1 - (8 / 13 + 6 / 11) / 2,
        "focal": (0.25 * LN2 + 0.5625 * 2 * LN2) / 2,
    }
    for name, value in expected.items():
        criterion = build_loss(loss_cfg(type=name, aux_weight=0.5))
        assert criterion.aux_weight == 0.5
        assert criterion(two_pixels(), target(0, 1)).item() == approx(value), name
    bce = build_loss(loss_cfg(type="bce_dice"))
    assert isinstance(bce.criterion, BCEDiceLoss)
    with pytest.raises(ValueError, match="unknown loss type"):
        build_loss(loss_cfg(type="hinge"))
