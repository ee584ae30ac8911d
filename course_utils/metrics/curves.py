"""ROC and precision-recall curves, and threshold choice, inside a mask (NumPy + scikit-learn).

Like :mod:`.fov`, each function takes one image or a list of images and pools all
pixels inside the masks (the DRIVE protocol: one curve over all test pixels in the
field of view). scikit-learn is imported on first use only.
"""
from __future__ import annotations

import numpy as np

from .fov import ArrayOrList, pixels_in_mask

CRITERIA = ("f1", "accuracy", "youden")


def _scores_in_mask(prob: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None) -> tuple[np.ndarray, np.ndarray]:
    p, t = pixels_in_mask(prob, truth, mask, names=("prob", "truth"))
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError("prob holds NaN or infinite values inside the mask; check the model output.")
    if t.all() or not t.any():
        raise ValueError("truth inside the mask is all one class, so ROC/PR curves are undefined; "
                         "evaluate on images that contain both vessel and background pixels.")
    return p, t


def roc_auc_in_mask(prob: ArrayOrList, truth: ArrayOrList,
                    mask: ArrayOrList | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """ROC curve of scores ``prob`` against bool ``truth`` inside ``mask``: ``(fpr, tpr, thresholds, auc)``.

    ``prob``: probabilities or logits (any monotone score), same shape as ``truth``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    p, t = _scores_in_mask(prob, truth, mask)
    fpr, tpr, thresholds = roc_curve(t, p)
    return fpr, tpr, thresholds, float(roc_auc_score(t, p))


def pr_curve_in_mask(prob: ArrayOrList, truth: ArrayOrList,
                     mask: ArrayOrList | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Precision-recall curve inside ``mask``: ``(precision, recall, thresholds, average_precision)``.

    Same conventions as :func:`sklearn.metrics.precision_recall_curve`; average
    precision is :func:`sklearn.metrics.average_precision_score`.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    p, t = _scores_in_mask(prob, truth, mask)
    precision, recall, thresholds = precision_recall_curve(t, p)
    return precision, recall, thresholds, float(average_precision_score(t, p))


def best_threshold(prob: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None = None,
                   criterion: str = "f1") -> float:
    """The threshold ``t`` for which ``prob > t`` scores best on the data given.

    ``criterion``: ``"f1"`` (Dice), ``"accuracy"`` or ``"youden"`` (sensitivity +
    specificity - 1). Every distinct score is tried; the returned ``t`` lies halfway
    between two neighbouring scores, so ``prob > t`` and ``prob >= t`` give the same
    segmentation. Choose it on training or validation data and then keep it fixed:
    never choose a threshold on the test set, or the test score is optimistically biased.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}.")
    p, t = _scores_in_mask(prob, truth, mask)
    order = np.argsort(-p, kind="stable")
    scores, labels = p[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # last index of each distinct score
    tp = np.cumsum(labels)[last].astype(np.float64)                 # predicted positive: score >= scores[last]
    fp = (last + 1) - tp
    pos, neg = float(labels.sum()), float(labels.size - labels.sum())
    fn, tn = pos - tp, neg - fp
    if criterion == "f1":
        value = 2 * tp / (2 * tp + fp + fn)
    elif criterion == "accuracy":
        value = (tp + tn) / labels.size
    else:
        value = tp / pos - fp / neg
    k = int(np.argmax(value))
    chosen = scores[last[k]]
    below = scores[last[k] + 1] if last[k] + 1 < scores.size else chosen - max(1.0, abs(chosen))
    return float((chosen + below) / 2.0)
