"""Losses for binary segmentation with imbalanced foreground (vessels, lesions)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice of ``sigmoid(logits)`` against ``target``, both ``(B, 1, *spatial)``.

    Computed over the whole batch; ``eps`` smooths empty patches (no NaN).
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    prob = torch.sigmoid(logits)
    target = target.to(prob.dtype)
    inter = (prob * target).sum()
    return 1.0 - (2.0 * inter + eps) / (prob.sum() + target.sum() + eps)


def soft_tversky_loss(
    logits: torch.Tensor, target: torch.Tensor, fn_weight: float = 0.7, eps: float = 1.0
) -> torch.Tensor:
    """1 - soft Tversky index ``TP / (TP + (1 - fn_weight) FP + fn_weight FN)`` over the batch, ``(B, 1, *spatial)``.

    ``fn_weight`` above 0.5 costs a missed lesion voxel more than a false one (Salehi et al., "Tversky loss
    function for image segmentation using 3D fully convolutional deep networks", MLMI 2017, on MS lesions);
    ``fn_weight = 0.5`` is exactly :func:`soft_dice_loss`.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    if not 0.0 < fn_weight < 1.0:
        raise ValueError(f"fn_weight must be between 0 and 1 (0.5: Dice), got {fn_weight}")
    prob = torch.sigmoid(logits)
    target = target.to(prob.dtype)
    tp = (prob * target).sum()
    fp = (prob * (1 - target)).sum()
    fn = ((1 - prob) * target).sum()
    return 1.0 - (tp + 0.5 * eps) / (tp + (1.0 - fn_weight) * fp + fn_weight * fn + 0.5 * eps)


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + (1 - bce_weight) * soft Dice``: per-pixel calibration plus overlap.

    ``fn_weight`` other than 0.5 replaces the soft Dice by the soft Tversky loss (:func:`soft_tversky_loss`),
    which weighs missed foreground more (``> 0.5``) or less than false foreground. ``dice_loss``: another
    ``f(logits, target) -> 0-d tensor`` in place of :func:`soft_dice_loss` (a learner's own, in lesson 03).
    """

    def __init__(
        self,
        bce_weight: float = 0.5,
        pos_weight: float | None = None,
        fn_weight: float = 0.5,
        dice_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        if not 0.0 <= bce_weight <= 1.0:
            raise ValueError(f"bce_weight must be in [0, 1], got {bce_weight}")
        if not 0.0 < fn_weight < 1.0:
            raise ValueError(f"fn_weight must be between 0 and 1 (0.5: Dice), got {fn_weight}")
        if dice_loss is not None and fn_weight != 0.5:
            raise ValueError(
                f"dice_loss replaces the soft Dice, but fn_weight={fn_weight} asks for the soft Tversky loss: give one."
            )
        self.bce_weight = bce_weight
        self.pos_weight = pos_weight
        self.fn_weight = fn_weight
        self.dice_loss = soft_dice_loss if dice_loss is None else dice_loss

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        pw = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw)
        overlap = (
            self.dice_loss(logits, target)
            if self.fn_weight == 0.5
            else soft_tversky_loss(logits, target, self.fn_weight)
        )
        return self.bce_weight * bce + (1.0 - self.bce_weight) * overlap
