"""Self-checks for lesson 04b (false lesions: segment, then classify)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import ndimage

from ...mri.candidates import SHELL_VOXELS, candidate_features
from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, returned_nothing, wrong


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
            returned = fn(image.copy(), labels.copy(), k, brain.copy())
        except Exception as err:
            return wrong(f"shell_contrast(image, labels, {k}, brain) failed: {type(err).__name__}: {err}")
        if returned_nothing(returned):
            return pending("`shell_contrast`")
        value = as_number(returned)
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


def course_shell_contrast(image: np.ndarray, labels: np.ndarray, k: int, brain: np.ndarray) -> float:
    """The contrast of candidate ``k`` as :func:`course_utils.mri.candidates.candidate_features` computes it (0 when
    its shell is empty), on a crop around the candidate: the other candidates are only left out of its shell."""
    found = ndimage.find_objects((np.asarray(labels) == k).astype(np.int8))
    if not found or found[0] is None:
        raise ValueError(f"labels has no candidate {k}.")
    box = tuple(slice(max(b.start - SHELL_VOXELS - 1, 0), b.stop + SHELL_VOXELS + 1) for b in found[0])
    sub = np.asarray(labels)[box]
    others = (sub > 0) & (sub != k)
    crop = np.where(sub == k, 1, np.where(others, 2, 0)).astype(np.int32)  # candidate k -> 1, any other -> 2
    n = 2 if others.any() else 1
    zeros = np.zeros(crop.shape, np.float32)
    features = candidate_features(
        crop, n, zeros, zeros, {"X": np.asarray(image, np.float32)[box]}, np.asarray(brain, bool)[box], (1, 1, 1)
    )
    return float(features[0, -1])


YES = {"yes", "y", "true"}
NO = {"no", "n", "false"}
REASONS = {
    "a": "out-of-fold training gives the higher lesion F1 on every test patient",
    "b": "out-of-fold maps are made the way the test map is made, by a network that never saw the volume, so the "
    "classifier learns from the kind of candidates it will meet",
    "c": "a filter trained on in-sample maps would have seen the test patient's mask",
}


def false_lesions(metrics: Mapping[str, float]) -> int:
    """Predicted lesions that touch no true lesion, from :func:`~course_utils.lessons.lesson04.pipeline.evaluate_case`
    metrics (``n_pred_lesions`` and ``lesion_precision``)."""
    return int(round(metrics["n_pred_lesions"] * (1 - metrics["lesion_precision"])))


def _yes_no(answer: Any) -> bool | None:
    if isinstance(answer, bool):
        return answer
    text = str(answer).strip().lower()
    return True if text in YES else False if text in NO else None


def check_in_sample_experiment(
    in_sample: Any, out_of_fold: Mapping[str, float], can_win: Any, reason: Any
) -> CheckResult:
    """Exercise 2: the out-of-fold experiment. ``in_sample`` and ``out_of_fold``: the test patient's metrics (from
    ``evaluate_segmentation``) after the filter trained on the in-sample candidates and after the lesson's
    out-of-fold filter. The answers: can an in-sample filter ever give a test patient the higher lesion F1
    (``can_win``: ``"yes"``, a property: one patient and one seed can go either way), and why the lesson trains on
    out-of-fold maps (``reason``: ``"b"`` of :data:`REASONS`).

    Judged on the answers, which hold whatever one run measures; the message explains the numbers of this run.
    """
    if not_attempted(in_sample) or not_attempted(can_win) or not_attempted(reason):
        return pending("`in_sample_after`, `in_sample_can_win` and `why_out_of_fold`")
    needed = {"n_pred_lesions", "lesion_precision", "lesion_sensitivity", "lesion_f1"}
    for name, m in (("in_sample_after", in_sample), ("after", out_of_fold)):
        if not isinstance(m, Mapping) or not needed <= set(m):
            return wrong(f"Pass {name} as the metrics dict of evaluate_segmentation (it has lesion_f1, ...).")
    if in_sample is out_of_fold:
        return wrong(
            "in_sample_after is the out-of-fold filter's result (after) itself: fit a new filter on in_sample "
            "(fit_false_lesion_filter), apply it to test_cands (filter_candidates) and evaluate that."
        )
    runs = {"in-sample": in_sample, "out-of-fold": out_of_fold}
    numbers = "; ".join(
        f"{name}: lesion F1 {m['lesion_f1']:.3f}, {false_lesions(m)} false lesions left, "
        f"lesion sensitivity {m['lesion_sensitivity']:.3f}"
        for name, m in runs.items()
    )
    f1 = {name: round(float(m["lesion_f1"]), 6) for name, m in runs.items()}
    if f1["in-sample"] == f1["out-of-fold"]:
        here = f"In this run both filters gave the test patient the same lesion F1 ({numbers})."
    else:
        best = max(f1, key=f1.get)
        here = f"In this run the {best} filter gave the higher lesion F1 ({numbers})."
    win = _yes_no(can_win)
    if win is None:
        return wrong(f"Answer in_sample_can_win with 'yes' or 'no', got {can_win!r}.")
    if not win:
        return wrong(
            "It can: one test patient and one seed make a noisy judge, and nothing in the method promises the "
            f"out-of-fold filter the higher score on every patient. {here} Out-of-fold is the honest protocol, not a "
            "guarantee."
        )
    key = str(reason).strip().lower().strip("()")
    if key not in REASONS:
        return wrong(f"Answer why_out_of_fold with 'a', 'b' or 'c', got {reason!r}.")
    if key == "a":
        return wrong(
            f"Not on every patient: you have just answered that the in-sample filter can win. {here} The reason is "
            "the data the classifier learns from."
        )
    if key == "c":
        return wrong(
            "The in-sample maps are lesson 04's maps of its TRAINING patients; the test patient's mask enters neither "
            f"filter. The difference is which network made the maps. {here}"
        )
    return correct(
        f"Right. {here} A network's maps of its own training volumes are not what it produces on a new volume (the "
        "count table of section 2 compares them), so a classifier that learns from them learns from false lesions "
        "unlike those it will meet; the out-of-fold maps, like the test map, come from a network that never saw the "
        "volume. Whether that wins on one patient is partly luck: judge protocols over many patients and seeds "
        "(the benchmark's folds, section 6)."
    )


__all__ = [
    "contrast_toy",
    "check_shell_contrast",
    "course_shell_contrast",
    "REASONS",
    "check_in_sample_experiment",
    "false_lesions",
]
