"""Binary segmentation metrics counted inside a mask only (NumPy).

On DRIVE only pixels inside the field of view (FOV) count: the black corners
outside the camera's circle are trivially "background" and would inflate accuracy
and specificity. Every function takes either one image or a list of images; a list
is pooled (all pixels of all images counted together), as the DRIVE protocol does.

Conventions for 0/0 (a ratio with nothing to count), applied with
``zero_division`` (default 1.0, as scikit-learn's ``zero_division=1``):

* sensitivity (recall) with no vessel pixels in ``truth``: nothing to miss;
* specificity with no background pixels in ``truth``: nothing to mislabel;
* precision with no predicted vessel pixels: no false alarm;
* F1 (= Dice) and IoU when both prediction and truth are empty: perfect agreement
  (the same convention as :func:`course_utils.metrics.overlap.dice_score`).

Accuracy never divides by zero because an empty mask is an error.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

ArrayOrList = Union[np.ndarray, Sequence[np.ndarray]]


def pixels_in_mask(
    values: ArrayOrList,
    truth: ArrayOrList,
    mask: ArrayOrList | None = None,
    *,
    names: tuple[str, str] = ("pred", "truth"),
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of ``values`` and of bool ``truth`` where ``mask`` is true, flattened and pooled.

    Each may be one array or a list of arrays (one per image) with matching shapes.
    ``mask=None`` counts every pixel. Raises ``ValueError`` on mismatched shapes, a
    non-binary ``truth`` or mask, and an empty mask.
    """
    values_list, truth_list = _as_list(values), _as_list(truth)
    mask_list = [None] * len(values_list) if mask is None else _as_list(mask)
    if not len(values_list) == len(truth_list) == len(mask_list):
        raise ValueError(
            f"got {len(values_list)} {names[0]}, {len(truth_list)} {names[1]} and "
            f"{len(mask_list)} mask arrays; give one of each per image."
        )
    if not values_list:
        raise ValueError("no images given.")
    out_v, out_t = [], []
    for i, (v, t, m) in enumerate(zip(values_list, truth_list, mask_list)):
        v, t = np.asarray(v), np.asarray(t)
        where = f" (image {i})" if len(values_list) > 1 else ""
        if v.shape != t.shape:
            raise ValueError(
                f"{names[0]} shape {v.shape} and {names[1]} shape {t.shape} differ{where}; "
                "they must match pixel for pixel."
            )
        t = _as_bool(t, names[1] + where)
        if m is None:
            m = np.ones(t.shape, dtype=bool)
        else:
            m = np.asarray(m)
            if m.shape != t.shape:
                raise ValueError(f"mask shape {m.shape} differs from {names[1]} shape {t.shape}{where}.")
            m = _as_bool(m, "mask" + where)
        out_v.append(v[m])
        out_t.append(t[m])
    v, t = np.concatenate(out_v), np.concatenate(out_t)
    if v.size == 0:
        raise ValueError(
            "the mask selects no pixel (an empty field of view?); check that the FOV "
            "mask is the right one and not inverted."
        )
    return v, t


def confusion_in_mask(pred: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None = None) -> dict[str, int]:
    """True/false positives/negatives ``{"tp", "fp", "tn", "fn"}`` counted where ``mask`` is true.

    ``pred`` and ``truth``: bool (or 0/1) arrays of one shape, or lists of them.
    Threshold probabilities first (``prob >= t``).
    """
    p, t = pixels_in_mask(pred, truth, mask)
    p = _as_bool(p, "pred")
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return {"tp": tp, "fp": fp, "tn": int(p.size - tp - fp - fn), "fn": fn}


def binary_metrics(
    pred: ArrayOrList, truth: ArrayOrList, mask: ArrayOrList | None = None, zero_division: float = 1.0
) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, precision, F1 (= Dice) and IoU inside ``mask``.

    See the module docstring for what 0/0 gives (``zero_division``).
    """
    c = confusion_in_mask(pred, truth, mask)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]

    def ratio(num: int, den: int) -> float:
        return float(zero_division) if den == 0 else num / den

    return {
        "accuracy": (tp + tn) / (tp + fp + tn + fn),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
    }


def _as_list(x: ArrayOrList) -> list:
    if isinstance(x, np.ndarray) or np.isscalar(x) or hasattr(x, "__array__") and not isinstance(x, (list, tuple)):
        return [x]
    return list(x)


def _as_bool(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype == bool:
        return a
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(
            f"{what} must be binary (bool or 0/1), got values like "
            f"{np.unique(a)[:5].tolist()}; threshold probabilities first, e.g. prob >= 0.5."
        )
    return a.astype(bool)
