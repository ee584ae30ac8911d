"""Self-checks for lesson 04 (MRI white-matter lesions in 3D)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, wrong


def toy_volumes() -> tuple[np.ndarray, np.ndarray]:
    """``(truth, pred)`` bool ``(6, 6, 6)`` of exercise 2.

    truth: a 2x2x2 cube (8 voxels) at ``[1:3, 1:3, 1:3]``; pred: a 2x2x3 box (12 voxels)
    at ``[1:3, 1:3, 1:4]`` that covers the cube and one more layer.
    """
    truth = np.zeros((6, 6, 6), dtype=bool)
    pred = np.zeros((6, 6, 6), dtype=bool)
    truth[1:3, 1:3, 1:3] = True
    pred[1:3, 1:3, 1:4] = True
    return truth, pred


def check_toy_dice(answer: Any) -> CheckResult:
    """Exercise 2: the voxel Dice of :func:`toy_volumes` (a number)."""
    if not_attempted(answer):
        return pending("`toy_dice`")
    value = as_number(answer)
    if value is None:
        return wrong(f"Give one number between 0 and 1, got {answer!r}.")
    truth, pred = toy_volumes()
    inter, p, t = int((truth & pred).sum()), int(pred.sum()), int(truth.sum())
    expected = 2 * inter / (p + t)
    if math.isclose(value, expected, abs_tol=1e-3):
        return correct(
            f"Correct: 2 x {inter} / ({p} + {t}) = {expected:.3f}. One extra layer of 4 voxels costs "
            "20 % of Dice on a lesion this small: Dice punishes small lesions hard."
        )
    if math.isclose(value, inter / int((truth | pred).sum()), abs_tol=1e-3):
        return wrong(
            "That is the intersection over union (Jaccard index). Dice counts the overlap twice: "
            "2 |P & T| / (|P| + |T|)."
        )
    if math.isclose(value, inter / p, abs_tol=1e-3) or math.isclose(value, inter / t, abs_tol=1e-3):
        return wrong("That is precision or sensitivity; Dice combines both: 2 |P & T| / (|P| + |T|).")
    return wrong("Count the voxels: |T| (the cube), |P| (the box) and |P & T|, then 2 |P & T| / (|P| + |T|).")


def lesion_toy(seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, truth)`` bool ``(24, 24, 24)`` volumes for exercise 3.

    Truth: seven lesions of different sizes with 26-connectivity (eight with 6): one of them is
    made of two blobs that touch only at a corner. Pred: finds some of them
    (one large blob only partly), misses others and adds false alarms.
    """
    truth = np.zeros((24, 24, 24), dtype=bool)
    pred = np.zeros_like(truth)
    # true lesions: big, medium, small, single voxels
    truth[2:8, 2:8, 2:6] = True  # A: found (partly)
    truth[12:15, 3:6, 3:6] = True  # B: found
    truth[18:20, 18:20, 18:20] = True  # C: missed
    truth[3, 18, 18] = True  # D: a single voxel, missed
    truth[20, 4, 12] = True  # E: single voxel, found
    truth[9:11, 15:17, 5:7] = True  # F: two blobs touching at a corner (one 26-connected lesion)
    truth[11:13, 17:19, 7:9] = True
    truth[15:18, 10:12, 15:18] = True  # G: missed
    # predictions
    pred[4:8, 4:8, 3:6] = True  # hits A
    pred[13:16, 4:7, 4:7] = True  # hits B
    pred[20, 4, 12] = True  # hits E
    pred[11:13, 17:19, 7:9] = True  # hits the second blob of F only
    pred[8:10, 20:22, 20:22] = True  # false alarm
    pred[1, 1, 20] = True  # false alarm
    return pred, truth


def check_lesion_sensitivity(fn: Any) -> CheckResult:
    """Exercise 3: ``fn(pred, truth) -> lesion-wise sensitivity`` (26-connected components).

    Compared with :func:`course_utils.metrics.lesions.lesion_detection` on :func:`lesion_toy`
    and on a random pair.
    """
    if not_attempted(fn):
        return pending("`lesion_sensitivity`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. lesion_sensitivity (without calling it).")
    from ...metrics.lesions import lesion_detection

    rng = np.random.default_rng(11)
    cases = [lesion_toy(), ((rng.random((20, 20, 20)) < 0.04), (rng.random((20, 20, 20)) < 0.04))]
    got = []
    for pred, truth in cases:
        try:
            got.append(float(fn(pred.copy(), truth.copy())))
        except Exception as err:
            return wrong(
                f"Calling fn(pred, truth) on two small 3D bool volumes failed or did not return one "
                f"number: {type(err).__name__}: {err}"
            )
    expected = [lesion_detection(p, t)["sensitivity"] for p, t in cases]
    if all(math.isclose(g, e, abs_tol=1e-6) for g, e in zip(got, expected)):
        d = lesion_detection(*cases[0])
        return correct(
            f"Correct: on the toy volumes {d['n_detected']} of {d['n_true']} true lesions are touched by "
            f"the prediction, sensitivity {expected[0]:.3f}, although the voxel-wise sensitivity is "
            f"{(cases[0][0] & cases[0][1]).sum() / cases[0][1].sum():.3f}."
        )
    pred, truth = cases[0]
    if math.isclose(got[0], lesion_detection(pred, truth, connectivity=6)["sensitivity"], abs_tol=1e-6):
        return wrong(
            "Your lesions are 6-connected (scipy's default): voxels that touch only by an edge or a corner "
            "are split. Pass structure=np.ones((3, 3, 3)) to ndimage.label, as the WMH challenge does."
        )
    if math.isclose(got[0], (pred & truth).sum() / truth.sum(), abs_tol=1e-6):
        return wrong(
            "That is the voxel-wise sensitivity. Label the true lesions with ndimage.label and count "
            "those that contain at least one predicted voxel."
        )
    if math.isclose(got[0], lesion_detection(pred, truth)["precision"], abs_tol=1e-6):
        return wrong(
            "That is the lesion-wise precision (label the predicted blobs); sensitivity labels the "
            "TRUE lesions and asks which of them the prediction touches."
        )
    return wrong(
        "Label the true lesions (ndimage.label(truth, structure=np.ones((3, 3, 3)))), then for each label "
        "k check (pred[labels == k]).any(); sensitivity = detected / number of lesions."
    )


def check_window_count(
    answer: Any, shape: Sequence[int] = (91, 109, 91), patch: int = 32, overlap: float = 0.5
) -> CheckResult:
    """Exercise 1: how many ``patch^3`` windows with ``overlap`` tile a volume of ``shape``."""
    if not_attempted(answer):
        return pending("`n_windows`")
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        return wrong(f"Give one whole number, got {answer!r}.")
    from ...inference import window_starts

    starts = [window_starts(int(s), patch, overlap) for s in shape]
    per_axis = [len(s) for s in starts]
    expected = int(np.prod(per_axis))
    step = max(1, int(round(patch * (1 - overlap))))
    if answer == expected:
        return correct(
            f"Correct: {' x '.join(map(str, per_axis))} = {expected} windows (a step of {step} voxels "
            "plus one window flush with the far edge on each axis). In 3D the count grows with the cube "
            "of 1 / step: halving the step multiplies the work by 8."
        )
    naive = int(np.prod([math.ceil(s / patch) for s in shape]))
    if answer == naive:
        return wrong(
            f"{naive} windows tile the volume without overlap; with overlap {overlap} they start every {step} voxels."
        )
    without_last = int(np.prod([len(range(0, s - patch + 1, step)) for s in shape]))
    if answer == without_last:
        return wrong("Close: on each axis add the last window that ends exactly at the border.")
    if answer == sum(per_axis):
        return wrong("Multiply the counts of the three axes, do not add them.")
    return wrong(
        f"Count the window starts per axis (0, {step}, {2 * step}, ... while start + {patch} <= size, plus "
        "one ending at the border), then multiply the three counts."
    )


__all__ = ["toy_volumes", "check_toy_dice", "lesion_toy", "check_lesion_sensitivity", "check_window_count"]
