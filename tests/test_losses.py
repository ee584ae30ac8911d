"""Soft Dice and soft Tversky losses: hand-computed values, the Dice special case, the FN/FP asymmetry."""

import math

import pytest
import torch

from course_utils.losses import BCEDiceLoss, soft_dice_loss, soft_tversky_loss

BIG = 30.0  # a logit this large is a probability of 1 - 1e-13: the soft sums are counts


def _pair(pred_bits, true_bits):
    logits = torch.tensor([BIG if b else -BIG for b in pred_bits]).reshape(1, 1, -1)
    target = torch.tensor([float(b) for b in true_bits]).reshape(1, 1, -1)
    return logits, target


def test_tversky_by_hand():
    # TP 2, FP 1, FN 3; eps 1 -> (2 + 0.5) / (2 + 0.3 * 1 + 0.7 * 3 + 0.5)
    logits, target = _pair([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 1, 1, 0])
    expected = 1 - 2.5 / (2 + 0.3 + 2.1 + 0.5)
    assert soft_tversky_loss(logits, target, fn_weight=0.7).item() == pytest.approx(expected, abs=1e-6)


def test_tversky_at_one_half_is_dice():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.7).float()
    assert soft_tversky_loss(logits, target, fn_weight=0.5).item() == pytest.approx(
        soft_dice_loss(logits, target).item(), abs=1e-6
    )
    plain, same = BCEDiceLoss(0.5), BCEDiceLoss(0.5, fn_weight=0.5)
    assert plain(logits, target).item() == same(logits, target).item()


def test_missing_lesion_costs_more_than_a_false_one_when_fn_weight_is_high():
    truth = [1, 1, 1, 1, 0, 0, 0, 0]
    missed = _pair([1, 1, 0, 0, 0, 0, 0, 0], truth)  # 2 lesion voxels missed
    invented = _pair([1, 1, 1, 1, 1, 1, 0, 0], truth)  # 2 false lesion voxels
    assert soft_tversky_loss(*missed, fn_weight=0.7).item() > soft_tversky_loss(*invented, fn_weight=0.7).item()
    assert soft_tversky_loss(*missed, fn_weight=0.3).item() < soft_tversky_loss(*invented, fn_weight=0.3).item()
    loss = BCEDiceLoss(0.5, fn_weight=0.7)
    assert math.isfinite(loss(*missed).item()) and loss(*missed).item() > loss(*invented).item()


def test_bad_weights_are_refused():
    logits, target = _pair([1, 0], [1, 0])
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="fn_weight"):
            soft_tversky_loss(logits, target, fn_weight=bad)
        with pytest.raises(ValueError, match="fn_weight"):
            BCEDiceLoss(0.5, fn_weight=bad)


def test_bce_dice_takes_another_dice_loss():
    """``BCEDiceLoss(dice_loss=...)``: lesson 03 trains with the learner's soft Dice in place of the course's."""
    torch.manual_seed(1)
    logits, target = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.6).float()
    calls = []

    def mine(lg, tg):
        calls.append(lg.shape)
        return soft_dice_loss(lg, tg)

    assert BCEDiceLoss(0.5, dice_loss=mine)(logits, target).item() == BCEDiceLoss(0.5)(logits, target).item()
    assert calls == [(2, 1, 6, 6)]
    constant = BCEDiceLoss(0.0, dice_loss=lambda lg, tg: 0 * lg.sum() + 0.25)
    assert constant(logits, target).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="dice_loss replaces the soft Dice"):
        BCEDiceLoss(0.5, fn_weight=0.7, dice_loss=mine)
