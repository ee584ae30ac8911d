"""Self-checks for lesson 04b (false lesions: segment, then classify)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import ndimage

from ...mri.candidates import SHELL_VOXELS, candidate_features
from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, wrong


def contrast_toy(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image float32, labels int32, brain bool)``, ``(20, 20, 20)``, for exercise 1.

    Three candidates: 1, a 3x3x2 block deep in the brain; 2, a 2x2x2 cube with one empty layer between them
    (each lies in the other's shell); 3, a 2x2x1 plate on the brain's edge (half its shell lies outside the brain).
    The image is noise on a gradient, brighter inside the candidates and much brighter outside the brain.
    """
    rng = np.random.default_rng(seed)
    shape = (20, 20, 20)
    brain = np.zeros(shape, bool)
    brain[2:18, 2:18, 2:18] = True
    labels = np.zeros(shape, np.int32)
    labels[6:9, 6:9, 8:10] = 1
    labels[10:12, 7:9, 8:10] = 2
    labels[2:4, 14:16, 2] = 3
    x = np.linspace(0, 1, 20, dtype=np.float32)
    image = x[:, None, None] + rng.normal(0, 0.3, shape).astype(np.float32)
    image = image + 1.5 * (labels > 0) + 4.0 * ~brain
    return image.astype(np.float32), labels, brain


def _shell_mean(image, labels, k, brain, width=SHELL_VOXELS, others=True, in_brain=True, itself=False) -> float:
    region = ndimage.binary_dilation(labels == k, np.ones((3, 3, 3), bool), iterations=width)
    if not itself:
        region &= labels != k
    if others:
        region &= (labels == 0) | (labels == k)
    if in_brain:
        region &= brain
    return float(image[region].mean())


def check_shell_contrast(fn: Any) -> CheckResult:
    """Exercise 1: ``fn(image, labels, k, brain) -> float``, the contrast of candidate ``k``: its mean intensity
    minus the mean over its shell (voxels within 2 voxels of it, 26-neighbourhood, in the brain, in no candidate).

    Compared with :func:`course_utils.mri.candidates.candidate_features` on :func:`contrast_toy`.
    """
    if not_attempted(fn):
        return pending("`shell_contrast`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. shell_contrast (without calling it).")
    image, labels, brain = contrast_toy()
    n = int(labels.max())
    got = []
    for k in range(1, n + 1):
        try:
            value = as_number(fn(image.copy(), labels.copy(), k, brain.copy()))
        except Exception as err:
            return wrong(f"shell_contrast(image, labels, {k}, brain) failed: {type(err).__name__}: {err}")
        if value is None:
            return wrong(f"shell_contrast(image, labels, {k}, brain) should return one number.")
        got.append(value)
    depth = np.zeros(labels.shape, np.float32)
    feats = candidate_features(labels, n, np.zeros(labels.shape), depth, {"X": image}, brain, (1, 1, 1))
    expected = feats[:, -1]
    if np.allclose(got, expected, atol=1e-4):
        return correct(
            f"Correct: contrasts {', '.join(f'{v:.2f}' for v in expected)} for the three candidates, the same as "
            "course_utils.mri.candidates.candidate_features. A lesion is brighter than the tissue right around it; "
            "a bright patch of cortex or a streak at the brain's edge often is not."
        )
    inside = np.array([image[labels == k].mean() for k in range(1, n + 1)])

    def variant(**kw):
        return np.array([inside[k - 1] - _shell_mean(image, labels, k, brain, **kw) for k in range(1, n + 1)])

    hints = (
        (
            -expected,
            "The sign is reversed: inside minus around, so that a candidate brighter than its shell has a "
            "positive contrast.",
        ),
        (
            variant(width=1),
            "Your shell is one voxel wide (one dilation step); it should reach 2 voxels out "
            "(iterations=2 with a 3x3x3 structure, or a 5x5x5 cube).",
        ),
        (
            variant(others=False),
            "Your shell includes voxels of the other candidates: candidate 2 is two voxels "
            "from candidate 1. Keep only voxels in no candidate (labels == 0).",
        ),
        (
            variant(in_brain=False),
            "Your shell reaches outside the brain (candidate 3 lies on its edge): keep only "
            "shell voxels inside the brain mask.",
        ),
        (
            variant(itself=True),
            "Your 'shell' still contains the candidate itself: remove its own voxels (the "
            "dilation minus the candidate).",
        ),
    )
    for values, message in hints:
        if np.allclose(got, values, atol=1e-4):
            return wrong(message)
    return wrong(
        "Not yet, and not one single slip this check knows. The rules: the contrast is the mean inside candidate k "
        "minus the mean over its shell; the shell reaches two 26-neighbour steps out from the candidate, leaves out "
        "the candidate itself and every other candidate, and stays inside the brain mask. "
        f"Expected {', '.join(f'{v:.3f}' for v in expected)}, got {', '.join(f'{v:.3f}' for v in got)}."
    )


ANSWERS = {"in-sample": "in-sample", "in_sample": "in-sample", "out-of-fold": "out-of-fold", "oof": "out-of-fold"}


def false_lesions(metrics: Mapping[str, float]) -> int:
    """Predicted lesions that touch no true lesion, from :func:`~course_utils.lessons.lesson04.pipeline.evaluate_case`
    metrics (``n_pred_lesions`` and ``lesion_precision``)."""
    return int(round(metrics["n_pred_lesions"] * (1 - metrics["lesion_precision"])))


def check_in_sample_experiment(
    answer: Any, in_sample: Mapping[str, float], out_of_fold: Mapping[str, float]
) -> CheckResult:
    """Exercise 2: which filter gave the test patient the higher lesion F1, ``"in-sample"`` (trained on the
    candidates of the network's own training volumes) or ``"out-of-fold"``? ``in_sample`` and ``out_of_fold``: the
    test patient's metrics after each filter (from ``evaluate_segmentation``)."""
    if not_attempted(answer):
        return pending("`better_filter`")
    needed = {"n_pred_lesions", "lesion_precision", "lesion_sensitivity", "lesion_f1"}
    for name, m in (("in_sample", in_sample), ("out_of_fold", out_of_fold)):
        if not isinstance(m, Mapping) or not needed <= set(m):
            return wrong(f"Pass {name} as the metrics dict of evaluate_segmentation (it has lesion_f1, ...).")
    key = ANSWERS.get(str(answer).strip().lower())
    if key is None:
        return wrong(f"Answer 'in-sample' or 'out-of-fold', got {answer!r}.")
    runs = {"in-sample": in_sample, "out-of-fold": out_of_fold}
    numbers = "; ".join(
        f"{name}: lesion F1 {m['lesion_f1']:.3f}, {false_lesions(m)} false lesions left, "
        f"lesion sensitivity {m['lesion_sensitivity']:.3f}"
        for name, m in runs.items()
    )
    why = (
        " The in-sample maps come from the network's own training volumes, which it has learned: their candidates "
        "are not like those of an unseen volume (compare the counts of section 2), so a classifier trained on them "
        "fits the test map less well. The test map is unseen data, like the out-of-fold maps."
    )
    f1 = {name: round(float(m["lesion_f1"]), 6) for name, m in runs.items()}
    if f1["in-sample"] == f1["out-of-fold"]:
        return correct(f"Both gave the same lesion F1 on this run, so either answer holds ({numbers}).{why}")
    best = max(f1, key=f1.get)
    if key != best:
        return wrong(f"Look at the numbers again: {numbers}. The higher lesion F1 wins.")
    if best == "out-of-fold":
        return correct(f"Right: {numbers}.{why}")
    return correct(
        f"Right: {numbers}. Here the in-sample filter did better: with one test patient and one seed a single run "
        "can go either way, so this does not settle the question; it says the difference is small on this data."
    )


__all__ = ["contrast_toy", "check_shell_contrast", "check_in_sample_experiment", "false_lesions"]
