"""Overlap metrics on torch tensors, used as validation metrics while training."""

from __future__ import annotations

import torch


def _binarize(logits: torch.Tensor, target: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(logits.shape)} and target shape {tuple(target.shape)} differ; "
            "both must be (B, 1, *spatial)."
        )
    pred = torch.sigmoid(logits.detach().float()) > threshold
    return pred, target.detach() > 0.5


def dice_score(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> float:
    """Dice of the thresholded sigmoid of ``logits`` against binary ``target``.

    Both ``(B, 1, *spatial)``. The whole batch counts as one volume (micro average);
    two empty masks score 1.0, an empty prediction of a non-empty target 0.0.
    """
    pred, true = _binarize(logits, target, threshold)
    inter = (pred & true).sum().item()
    total = pred.sum().item() + true.sum().item()
    return 1.0 if total == 0 else 2.0 * inter / total


def iou_score(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> float:
    """Intersection over union (Jaccard), same conventions as :func:`dice_score`."""
    pred, true = _binarize(logits, target, threshold)
    inter = (pred & true).sum().item()
    union = (pred | true).sum().item()
    return 1.0 if union == 0 else inter / union
