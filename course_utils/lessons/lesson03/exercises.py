"""Self-checks for lesson 03 (DRIVE retinal vessel segmentation)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, wrong


def check_fov_metrics(fn: Any) -> CheckResult:
    """Exercise 4: ``fn(pred, truth, fov) -> (sensitivity, specificity)`` counted inside the FOV only.

    Compared with :func:`course_utils.metrics.binary_metrics` on random images whose
    outside-FOV pixels are deliberately misleading.
    """
    if not_attempted(fn):
        return pending("`fov_sensitivity_specificity`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. fov_sensitivity_specificity (without calling it).")
    from ...metrics import binary_metrics

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:40, :50]
    fov = (yy - 20) ** 2 + (xx - 25) ** 2 < 18**2
    truth = (rng.random((40, 50)) < 0.15) & fov
    pred = np.where(fov, rng.random((40, 50)) < 0.2, rng.random((40, 50)) < 0.5)  # noise outside the FOV
    try:
        got = fn(pred.copy(), truth.copy(), fov.copy())
        sens, spec = (float(v) for v in (got.values() if isinstance(got, dict) else got))
    except Exception as err:
        return wrong(
            f"Calling fn(pred, truth, fov) on (40, 50) bool arrays failed or did not return two numbers: "
            f"{type(err).__name__}: {err}"
        )
    ref = binary_metrics(pred, truth, fov)
    whole = binary_metrics(pred, truth)
    if math.isclose(sens, ref["sensitivity"], abs_tol=1e-6) and math.isclose(spec, ref["specificity"], abs_tol=1e-6):
        return correct("Correct: TP / (TP + FN) and TN / (TN + FP), counting only pixels where fov is True.")
    if math.isclose(spec, whole["specificity"], abs_tol=1e-6):
        return wrong(
            "Your specificity counts the pixels outside the FOV too: select pixels with pred[fov], truth[fov] first."
        )
    if math.isclose(sens, ref["specificity"], abs_tol=1e-6) and math.isclose(spec, ref["sensitivity"], abs_tol=1e-6):
        return wrong("Swapped: return (sensitivity, specificity) in that order.")
    return wrong(
        f"Expected ({ref['sensitivity']:.4f}, {ref['specificity']:.4f}), got ({sens:.4f}, {spec:.4f}). "
        "Sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), inside the FOV."
    )


def check_vessel_centre_fraction(answer: Any, vessel_bias: float = 0.5, vessel_fraction: float = 0.12) -> CheckResult:
    """Exercise 2: the fraction of patch centres on a vessel with ``vessel_bias`` and vessels covering
    ``vessel_fraction`` of the FOV: ``bias + (1 - bias) * fraction``."""
    if not_attempted(answer):
        return pending("`centre_on_vessel`")
    value = as_number(answer)
    if value is None:
        return wrong(f"Give one number between 0 and 1, got {answer!r}.")
    expected = vessel_bias + (1 - vessel_bias) * vessel_fraction
    if math.isclose(value, expected, abs_tol=0.005):
        return correct(
            f"Correct: {vessel_bias} of the centres are drawn on vessels, and the other "
            f"{1 - vessel_bias:g} land on a vessel with probability {vessel_fraction}: "
            f"{vessel_bias} + {1 - vessel_bias:g} x {vessel_fraction} = {expected:.2f}, "
            f"instead of {vessel_fraction} with uniform sampling."
        )
    if math.isclose(value, vessel_bias, abs_tol=0.005):
        return wrong("Almost: the centres drawn anywhere in the FOV sometimes land on a vessel too.")
    if math.isclose(value, vessel_fraction, abs_tol=0.005):
        return wrong("That is uniform sampling; with vessel_bias a share of the centres is drawn on vessels only.")
    return wrong("Split the draws in two: a share vessel_bias always on a vessel, the rest anywhere in the FOV.")


def check_window_count(
    answer: Any, size: tuple[int, int] = (584, 565), patch: int = 96, overlap: float = 0.5
) -> CheckResult:
    """Exercise 3: how many ``patch x patch`` windows with ``overlap`` tile an image of ``size = (H, W)``."""
    if not_attempted(answer):
        return pending("`n_windows`")
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        return wrong(f"Give one whole number, got {answer!r}.")
    from ...inference import window_starts

    rows, cols = (window_starts(s, patch, overlap) for s in size)
    expected = len(rows) * len(cols)
    step = max(1, int(round(patch * (1 - overlap))))
    if answer == expected:
        return correct(
            f"Correct: windows start every {step} px, plus one flush with the far edge: "
            f"{len(rows)} rows x {len(cols)} columns = {expected}. With 50 % overlap every pixel is "
            f"predicted about 4 times, which is why a whole-image pass is about 4x cheaper."
        )
    naive = math.ceil(size[0] / patch) * math.ceil(size[1] / patch)
    if answer == naive:
        return wrong(
            f"{naive} windows tile the image without overlap; with overlap {overlap} they start every {step} px."
        )
    without_last = len(range(0, size[0] - patch + 1, step)) * len(range(0, size[1] - patch + 1, step))
    if answer == without_last:
        return wrong(
            "Close: the last window of each axis must end exactly at the border, add it where the "
            "regular steps stop short."
        )
    return wrong(
        f"Count the window starts per axis: 0, {step}, {2 * step}, ... while start + {patch} <= size, "
        "plus one last window ending at the border; multiply rows by columns."
    )


def check_empty_prediction_accuracy(answer: Any, cases: Sequence[Any]) -> CheckResult:
    """Exercise 1: the in-FOV accuracy of predicting "no vessel" everywhere on ``cases`` (pooled)."""
    if not_attempted(answer):
        return pending("`empty_accuracy`")
    value = as_number(answer)
    if value is None:
        return wrong(f"Give one number between 0 and 1, got {answer!r}.")
    vessels = sum(int(np.count_nonzero(c.vessels & c.fov)) for c in cases)
    fov = sum(int(np.count_nonzero(c.fov)) for c in cases)
    whole = sum(c.vessels.size for c in cases)
    expected = 1.0 - vessels / fov
    if math.isclose(value, expected, abs_tol=0.002):
        return correct(
            f"Correct: {expected:.3f}. A network that finds no vessel at all scores this accuracy, "
            "so accuracy alone says little here: look at sensitivity, F1 and AUC."
        )
    if math.isclose(value, 1.0 - vessels / whole, abs_tol=0.002):
        return wrong(
            "That counts the black corners outside the FOV too (trivially background): count only "
            "pixels where fov is True."
        )
    return wrong(
        "Predict False everywhere, then compute (TP + TN) / N over the FOV pixels of all images together, "
        "e.g. with course_utils.metrics.binary_metrics(preds, truths, fovs)['accuracy']."
    )


__all__ = ["check_fov_metrics", "check_vessel_centre_fraction", "check_window_count", "check_empty_prediction_accuracy"]
