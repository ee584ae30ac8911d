"""The one threshold chooser: which probability cut-off scores best on the images given.

Choose it on training or validation data and keep it fixed: a threshold chosen on the test images
makes the test score optimistically biased.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..validate import check_choice
from .curves import scores_in_mask
from .fov import ArrayOrList
from .lesions import lesion_detection

POOLED_CRITERIA = ("f1", "dice", "accuracy", "youden")
PER_CASE_CRITERIA = ("f1", "dice", "lesion_f1", "dice+lesion_f1")
AVERAGES = ("pooled", "per_case")
DEFAULT_CANDIDATES = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))


def choose_threshold(
    probs: ArrayOrList,
    truths: ArrayOrList,
    masks: ArrayOrList | None = None,
    *,
    criterion: str = "f1",
    average: str = "pooled",
    candidates: Sequence[float] | None = None,
    tolerance: float = 0.0,
) -> float:
    """The threshold whose binarisation scores best by ``criterion`` on ``probs`` against ``truths`` inside ``masks``.

    ``probs``, ``truths`` (bool) and ``masks`` (bool, optional): one array or a list of arrays, same shapes.

    * ``average="pooled"`` (the DRIVE protocol): all pixels of all images in one pool; every distinct
      score is tried and the threshold returned lies halfway between two neighbouring scores, so
      ``prob > t`` and ``prob >= t`` give the same segmentation. ``criterion``: ``"f1"`` (= ``"dice"``),
      ``"accuracy"`` or ``"youden"`` (sensitivity + specificity - 1).
    * ``average="per_case"`` (the WMH protocol): the mean of per-image scores of ``prob >= t`` over
      ``candidates`` (default 0.05, 0.10, ..., 0.95), so that the image with the largest foreground does
      not decide alone. ``criterion``: ``"dice"`` (= ``"f1"``), ``"lesion_f1"`` (lesion-wise F1, 26-connected
      components) or ``"dice+lesion_f1"`` (the mean of voxel Dice and lesion-wise F1). Ties go to the
      lowest threshold, and so do near-ties: ``tolerance > 0`` picks the lowest threshold within
      ``tolerance`` of the best mean score.
    """
    check_choice("average", average, AVERAGES)
    if average == "pooled":
        check_choice("criterion", criterion, POOLED_CRITERIA)
        if tolerance or candidates is not None:
            raise ValueError("tolerance and candidates apply to average='per_case' only.")
        return _best_pooled(probs, truths, masks, criterion)
    check_choice("criterion", criterion, PER_CASE_CRITERIA)
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance is a difference of mean scores in [0, 1), got {tolerance}.")
    probs, truths = _as_list(probs), _as_list(truths)
    masks = [None] * len(probs) if masks is None else _as_list(masks)
    if not probs or not len(probs) == len(truths) == len(masks):
        raise ValueError(
            f"need one probability map, truth and mask per case, got {len(probs)}, {len(truths)} and {len(masks)}."
        )
    grid = np.asarray(DEFAULT_CANDIDATES if candidates is None else candidates, dtype=float)
    scores = np.zeros(grid.size)
    for i, (prob, truth, mask) in enumerate(zip(probs, truths, masks)):
        prob, truth = np.asarray(prob), np.asarray(truth, bool)
        keep = np.ones(prob.shape, bool) if mask is None else np.asarray(mask, bool)
        if not prob.shape == truth.shape == keep.shape:
            raise ValueError(
                f"case {i}: probability {prob.shape}, truth {truth.shape} and mask {keep.shape} "
                "must be on the same grid (bring the probability to the label's grid first)."
            )
        scores += _case_scores(prob, truth, keep, grid, criterion)
    scores = scores / len(probs)
    return float(grid[int(np.flatnonzero(scores >= scores.max() - tolerance - 1e-12)[0])])


def _as_list(x: ArrayOrList) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _case_scores(prob: np.ndarray, truth: np.ndarray, keep: np.ndarray, grid: np.ndarray, criterion: str) -> np.ndarray:
    p, t = prob[keep], truth[keep]
    p_true, p_all = np.sort(p[t]), np.sort(p)
    n_pred = p_all.size - np.searchsorted(p_all, grid, side="left")  # voxels >= threshold
    n_tp = p_true.size - np.searchsorted(p_true, grid, side="left")
    total = n_pred + p_true.size
    dices = np.where(total > 0, 2 * n_tp / np.maximum(total, 1), 1.0)
    if criterion in ("dice", "f1"):
        return dices
    box = bounding_box(keep)  # components only need the mask's box
    prob_box, truth_box, keep_box = prob[box], truth[box], keep[box]
    f1s = np.array([lesion_detection((prob_box >= c) & keep_box, truth_box & keep_box)["f1"] for c in grid])
    return f1s if criterion == "lesion_f1" else 0.5 * (dices + f1s)


def _best_pooled(prob: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None, criterion: str) -> float:
    p, t = scores_in_mask(prob, truth, mask)
    order = np.argsort(-p, kind="stable")
    scores, labels = p[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # last index of each distinct score
    tp = np.cumsum(labels)[last].astype(np.float64)  # predicted positive: score >= scores[last]
    fp = (last + 1) - tp
    pos, neg = float(labels.sum()), float(labels.size - labels.sum())
    fn, tn = pos - tp, neg - fp
    if criterion in ("f1", "dice"):
        value = 2 * tp / (2 * tp + fp + fn)
    elif criterion == "accuracy":
        value = (tp + tn) / labels.size
    else:
        value = tp / pos - fp / neg
    k = int(np.argmax(value))
    chosen = scores[last[k]]
    if last[k] + 1 < scores.size:
        below = scores[last[k] + 1]
    else:  # every score is predicted positive: go below the lowest, staying >= 0 for probabilities
        below = 0.0 if chosen > 0 else chosen - 1.0
    return float((chosen + below) / 2.0)


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """The smallest box of slices holding every ``True`` voxel of ``mask`` (the whole array if none),
    grown by ``margin`` voxels on each side (clipped to the array)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return tuple(slice(None) for _ in mask.shape)
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


__all__ = ["choose_threshold", "bounding_box", "POOLED_CRITERIA", "PER_CASE_CRITERIA", "AVERAGES"]
