"""ROC and precision-recall curves inside a mask (NumPy + scikit-learn).

Like :mod:`.fov`, each function takes one image or a list of images and pools all
pixels inside the masks (the DRIVE protocol: one curve over all test pixels in the
field of view). scikit-learn is imported on first use only.
"""

from __future__ import annotations

import numpy as np

from .fov import ArrayOrList, pixels_in_mask


def scores_in_mask(prob: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None) -> tuple[np.ndarray, np.ndarray]:
    p, t = pixels_in_mask(prob, truth, mask, names=("prob", "truth"))
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError("prob holds NaN or infinite values inside the mask; check the model output.")
    if t.all() or not t.any():
        raise ValueError(
            "truth inside the mask is all one class, so ROC/PR curves are undefined; "
            "evaluate on images that contain both vessel and background pixels."
        )
    return p, t


def roc_auc_in_mask(
    prob: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """ROC curve of scores ``prob`` against bool ``truth`` inside ``mask``: ``(fpr, tpr, thresholds, auc)``.

    ``prob``: probabilities or logits (any monotone score), same shape as ``truth``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    p, t = scores_in_mask(prob, truth, mask)
    fpr, tpr, thresholds = roc_curve(t, p)
    return fpr, tpr, thresholds, float(roc_auc_score(t, p))


def pr_curve_in_mask(
    prob: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Precision-recall curve inside ``mask``: ``(precision, recall, thresholds, average_precision)``.

    Same conventions as :func:`sklearn.metrics.precision_recall_curve`; average
    precision is :func:`sklearn.metrics.average_precision_score`.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    p, t = scores_in_mask(prob, truth, mask)
    precision, recall, thresholds = precision_recall_curve(t, p)
    return precision, recall, thresholds, float(average_precision_score(t, p))
