"""Self-checks for lesson 03 (DRIVE retinal vessel segmentation)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, returned_nothing, wrong


def check_fov_metrics(fn: Any) -> CheckResult:
    """Exercise 7: ``fn(pred, truth, fov) -> (sensitivity, specificity)`` counted inside the FOV only.

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
        if returned_nothing(got):
            return pending("`fov_sensitivity_specificity`")
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
    """Exercise 3: the fraction of patch centres on a vessel with ``vessel_bias`` and vessels covering
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
    """Exercise 5: how many ``patch x patch`` windows with ``overlap`` tile an image of ``size = (H, W)``."""
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


# --------------------------------------------------------------------------- Exercise 2: flips and turns
_MOVES = (
    "unchanged",
    "turned 90 degrees",
    "turned 180 degrees",
    "turned 270 degrees",
    "mirrored left-right",
    "mirrored, then turned 90 degrees",
    "mirrored upside down",
    "mirrored, then turned 270 degrees",
)


def _dihedral(a: np.ndarray) -> list[np.ndarray]:
    """The 8 flips and quarter turns of ``a``'s last two axes, in the order of ``_MOVES``."""
    return [np.rot90(b, k, axes=(-2, -1)) for b in (a, np.flip(a, -1)) for k in range(4)]


def _judge_flip_rotate_draw(
    out: Any, image: np.ndarray, masks: dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]
) -> tuple[str | None, int | None]:
    """``(problem, move)`` of one call: what is wrong with ``out`` (or ``None``), and which of ``_MOVES`` the image
    made. A mask that did not follow the image is ``move`` set and a problem starting with its key
    (``"stayed:target|..."``, ``"differently:fov|..."``), so that the caller can weigh many draws."""
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        return "Return the three arrays (image, target, fov), in that order.", None
    got = dict(zip(("image", "target", "fov"), (np.asarray(a) for a in out)))
    for name, given in (("image", image), *((n, m) for n, (m, _) in masks.items())):
        if got[name].shape != given.shape:
            return (
                f"The {name} {given.shape} came back as {got[name].shape}: flip and turn only the last two axes "
                "(rows and columns). The image is (C, H, W), the masks (H, W), so use negative axes for all three: "
                "axis=-1 or -2 to flip, axes=(-2, -1) to turn."
            ), None
        if got[name].dtype != given.dtype:
            return f"The {name} came in as {given.dtype} and went out as {got[name].dtype}: keep each dtype.", None
    variants = _dihedral(image)
    move = next((k for k, v in enumerate(variants) if np.array_equal(got["image"], v)), None)
    if move is None:
        if any(np.array_equal(got["image"][::-1], v) for v in variants):
            return (
                "The image's channels were swapped: its axis 0 is the channel axis (C, H, W), while axis 0 of a "
                "mask (H, W) is the rows. Use negative axes, the same for all three: -1 (columns), -2 (rows)."
            ), None
        if np.array_equal(np.sort(got["image"], axis=None), np.sort(image, axis=None)):
            return "The image's pixels were rearranged, but not by a flip or a quarter turn.", None
        return (
            "The image's values changed: flips and quarter turns only move pixels. (Keep to those here; the lesson "
            "adds the small rotations and the intensity changes itself.)"
        ), None
    for name, (given, rule) in masks.items():
        if np.array_equal(got[name], rule(got["image"])):
            continue
        if move != 0 and np.array_equal(got[name], given):
            return (
                f"stayed:{name}|The image moved ({_MOVES[move]}) but the {name} stayed where it was: the label "
                "must follow its pixels. Apply the same flips and turns to image, target and fov."
            ), move
        if any(np.array_equal(got[name], v) for v in _dihedral(given)):
            return (
                f"differently:{name}|The image and the {name} moved differently (the image {_MOVES[move]}): draw "
                "each random choice once per call and apply it to all three arrays."
            ), move
        return (
            f"The {name} no longer lines up with the image, and it is not a flip or a turn of the {name} given.",
            None,
        )
    return None, move


def check_flip_rotate(fn: Any, draws: int = 400) -> CheckResult:
    """Exercise 2: ``fn(image (C, p, p), target (p, p), fov (p, p), rng) -> (image, target, fov)``: random flips
    and quarter turns, the same for all three.

    The target and the FOV mask of the test patch are computed pixel by pixel from its image, so after any joint
    move they must still be that function of the moved image; over ``draws`` draws all 8 flips and turns must
    occur; shapes and dtypes are kept; the same generator state gives the same result.
    """
    if not_attempted(fn):
        return pending("`flip_rotate`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. flip_rotate (without calling it).")
    image = np.random.default_rng(11).random((2, 16, 16)).astype(np.float32)

    def vessel(img: np.ndarray) -> np.ndarray:
        return (img[0] > 0.6).astype(np.float32)

    def inside(img: np.ndarray) -> np.ndarray:
        return (img[1] > 0.3).astype(np.float32)

    masks = {"target": (vessel(image), vessel), "fov": (inside(image), inside)}

    def call(rng: np.random.Generator, dtype: Any = np.float32) -> Any:
        return fn(image.copy(), *(m.astype(dtype) for m, _ in masks.values()), rng)

    seen: Counter = Counter()
    apart: dict[str, str] = {}  # draws where a mask did not follow the image, by kind
    try:
        for i in range(draws):
            out = call(np.random.default_rng([19, i]))
            if returned_nothing(out):
                return pending("`flip_rotate`")
            problem, move = _judge_flip_rotate_draw(out, image, masks)
            if problem and move is None:
                return wrong(problem)
            if problem:
                kind, message = problem.split("|", 1)
                apart.setdefault(kind, message)
            seen[move] += 1
        repeats = all(
            all(np.array_equal(a, b) for a, b in zip(call(np.random.default_rng(s)), call(np.random.default_rng(s))))
            for s in range(16)
        )
        as_bool = call(np.random.default_rng(5), bool)
    except Exception as err:
        return wrong(
            f"Calling fn(image (2, 16, 16), target (16, 16), fov (16, 16), rng) failed: {type(err).__name__}: {err}"
        )
    for kind in ("differently:target", "stayed:target", "differently:fov", "stayed:fov"):
        if kind in apart:  # "differently" first: a mask moved by its own draw also stays put now and then
            return wrong(apart[kind])
    if len(seen) < len(_MOVES):
        if set(seen) == {0}:
            return wrong(f"In {draws} draws the patch never moved: draw the flips and the turns from rng.")
        if set(seen) <= {0, 2, 4, 6}:
            return wrong(
                "Only flips occurred, never a turn by 90 or 270 degrees: add a random number of quarter turns (0-3)."
            )
        if set(seen) <= {0, 1, 2, 3}:
            return wrong("Only turns occurred, never a mirror image: add random flips.")
        missing = ", ".join(m for k, m in enumerate(_MOVES) if k not in seen)
        return wrong(
            f"Only {len(seen)} of the 8 flips and turns occurred in {draws} draws; never: {missing}. "
            "Flip left-right and upside down with probability 1/2 each, then turn 0, 1, 2 or 3 times."
        )
    if not repeats:
        return wrong(
            "Two calls with generators in the same state gave different patches: draw every random choice from "
            "the rng you are given (not np.random, random or torch), so that each patch depends only on the "
            "dataset's seed, epoch and index, and a run repeats."
        )
    if any(np.asarray(a).dtype != bool for a in as_bool[1:]):
        return wrong("Bool masks came back as another dtype: keep each array's dtype (a flip needs no conversion).")
    return correct(
        f"Correct: in {draws} draws the target and the FOV mask, computed pixel by pixel from the image, still "
        f"matched the moved image every time; all 8 flips and turns occurred ({min(seen.values())} to "
        f"{max(seen.values())} times each); shapes and dtypes were kept; and the same generator state gives the "
        "same patch."
    )


# --------------------------------------------------------------------------- Exercise 4: soft Dice loss
def _dice(
    prob: torch.Tensor, target: torch.Tensor, dims: tuple[int, ...], eps_num: float, eps_den: float, squares=False
):
    inter = (prob * target).sum(dim=dims)
    total = (
        (prob**2).sum(dim=dims) + (target**2).sum(dim=dims) if squares else prob.sum(dim=dims) + target.sum(dim=dims)
    )
    return (2 * inter + eps_num) / (total + eps_den)


_DICE_SLIPS = {
    "no_sigmoid": "It looks like the sigmoid is missing: the network outputs logits (any real number), the Dice "
    "needs probabilities. Take torch.sigmoid(logits) first.",
    "dice": "You return the Dice itself; a loss must fall as the overlap grows: return 1 - Dice.",
    "per_image": "You average the Dice of each image; the course's soft Dice pools the whole batch: one sum over "
    "every pixel of every image, then one division. (Per image, a patch with three vessel pixels weighs as much "
    "as one full of vessels.)",
    "per_pixel": "You take the Dice of each pixel and average: the sums run over all pixels of the batch first, "
    "then one division.",
    "no_eps": "Almost: without eps the value differs a little here, and an empty patch predicted empty gives 0 / 0. "
    "Add eps (default 1) to the numerator and to the denominator: (2 I + eps) / (P + T + eps).",
    "eps_denominator": "eps is only in the denominator: add it to the numerator too, (2 I + eps) / (P + T + eps), so "
    "that an empty patch predicted empty has loss 0, not 1.",
    "squares": "That is the V-Net variant (squares in the denominator); the course's soft Dice sums the "
    "probabilities and the labels themselves: (2 I + eps) / (P + T + eps).",
}


def _dice_slips(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> dict[str, float]:
    """The values of the common wrong soft Dice losses on ``logits``, ``target`` ``(B, 1, H, W)``."""
    prob, every, per_image = torch.sigmoid(logits), tuple(range(logits.ndim)), tuple(range(1, logits.ndim))
    values = {
        "no_sigmoid": 1 - _dice(logits, target, every, eps, eps),
        "dice": _dice(prob, target, every, eps, eps),
        "per_image": 1 - _dice(prob, target, per_image, eps, eps).mean(),
        "per_pixel": 1 - ((2 * prob * target + eps) / (prob + target + eps)).mean(),
        "no_eps": 1 - _dice(prob, target, every, 0.0, 0.0),
        "eps_denominator": 1 - _dice(prob, target, every, 0.0, eps),
        "squares": 1 - _dice(prob, target, every, eps, eps, squares=True),
    }
    return {k: float(v) for k, v in values.items()}


def check_soft_dice_loss(fn: Any) -> CheckResult:
    """Exercise 4: ``fn(logits, target) -> 1 - soft Dice`` of ``sigmoid(logits)``, pooled over the batch and
    smoothed by ``eps = 1``, with its gradient.

    Compared with :func:`course_utils.losses.soft_dice_loss` on random logits and masks of three images with
    different vessel fractions, and on an empty mask predicted empty; the common slips get their own message.
    """
    if not_attempted(fn):
        return pending("`soft_dice_loss`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. soft_dice_loss (without calling it).")
    from ...losses import soft_dice_loss

    gen = torch.Generator().manual_seed(2004)
    logits = 2 * torch.randn(3, 1, 12, 10, generator=gen)
    fractions = torch.tensor([0.05, 0.3, 0.6]).view(3, 1, 1, 1)
    target = (torch.rand(3, 1, 12, 10, generator=gen) < fractions).float()
    mine = logits.clone().requires_grad_(True)
    try:
        got = fn(mine, target.clone())
        if returned_nothing(got):
            return pending("`soft_dice_loss`")
        if not isinstance(got, torch.Tensor):
            return wrong(
                f"Return a torch tensor, got {type(got).__name__}: keep every step in torch (no .item(), no NumPy), "
                "so that the loss has a gradient."
            )
        if got.numel() != 1:
            return wrong(
                f"Return one number for the whole batch; yours has shape {tuple(got.shape)}: sum over every axis "
                "(batch, channel, rows, columns) before dividing."
            )
        value = float(got.detach())
        expected = soft_dice_loss(logits, target)
        if not math.isclose(value, float(expected), abs_tol=1e-5):
            slips = _dice_slips(logits, target)
            slip = next((k for k, v in slips.items() if math.isclose(value, v, abs_tol=1e-5)), None)
            if slip:
                return wrong(_DICE_SLIPS[slip])
            return wrong(
                f"Expected {float(expected):.5f} on random logits (3, 1, 12, 10), got {value:.5f}. Loss = 1 - (2 I + "
                "eps) / (P + T + eps), with p = sigmoid(logits), I = sum of p * target, P = sum of p, T = sum of "
                "target, every sum over all pixels of the batch."
            )
        if not got.requires_grad:
            return wrong(
                "Right value, but no gradient flows back to the logits: keep every step in torch (no .item(), no "
                "NumPy, no threshold like prob > 0.5), or the network cannot learn from it."
            )
        got.sum().backward()
        reference = logits.clone().requires_grad_(True)
        soft_dice_loss(reference, target).backward()
        if mine.grad is None or not torch.allclose(mine.grad, reference.grad, atol=1e-6):
            return wrong("Right value, but a different gradient: is some step detached (.detach(), .data)?")
        empty = fn(torch.full((2, 1, 8, 8), -1e4), torch.zeros(2, 1, 8, 8))
    except Exception as err:
        return wrong(f"Calling fn(logits, target) on (3, 1, 12, 10) tensors failed: {type(err).__name__}: {err}")
    empty = float(empty.detach()) if isinstance(empty, torch.Tensor) and empty.numel() == 1 else float("nan")
    if not math.isclose(empty, 0.0, abs_tol=1e-5):
        return wrong(
            f"On an empty mask predicted empty (a perfect answer) your loss is {empty:.4g}, not 0: add eps (default "
            "1) to the numerator and the denominator, so that 0 / 0 becomes eps / eps: a perfect "
            "answer must cost nothing, and a single NaN loss turns every weight into NaN."
        )
    return correct(
        "Correct: 1 - (2 I + eps) / (P + T + eps) on sigmoid probabilities, pooled over the batch: same value and "
        "same gradient as course_utils.losses.soft_dice_loss, and 0 (not NaN) for an empty patch predicted empty."
    )


# --------------------------------------------------------------------------- Exercise 6: the threshold experiment
def check_threshold_experiment(
    can_be_lower: Any,
    report: Any,
    threshold_on_test: Any,
    threshold: float,
    probs: Sequence[np.ndarray],
    cases: Sequence[Any],
    chosen_on: str = "validation",
) -> CheckResult:
    """Exercise 6 (experiment): a threshold chosen on the test images (``threshold_on_test``) against the lesson's
    ``threshold``, chosen on the ``chosen_on`` images, both scored by pooled F1 on the test ``probs`` and ``cases``.

    Answers: ``can_be_lower`` (can the test-chosen threshold's F1 on the test images ever be lower? No: it is the
    best cut-off there, by construction) and ``report`` (which F1 is the model's test score: the ``chosen_on`` one).
    """
    if not_attempted(threshold_on_test):
        return pending("`threshold_on_test`")
    if not_attempted(can_be_lower) or not_attempted(report):
        return pending("`can_be_lower` and `report`")
    from ...metrics import binary_metrics, choose_threshold

    cut = as_number(threshold_on_test)
    if cut is None:
        return wrong(f"threshold_on_test should be one number (a probability), got {threshold_on_test!r}.")
    truths, fovs = [c.vessels for c in cases], [c.fov for c in cases]

    def f1(t: float) -> float:
        # in float64: a float32 array compared with a Python float rounds the threshold to float32 (NumPy 2)
        return float(binary_metrics([np.asarray(p, dtype=np.float64) > t for p in probs], truths, fovs)["f1"])

    best = choose_threshold(list(probs), truths, fovs, criterion="f1")
    f1_test, f1_best, f1_honest = f1(cut), f1(best), f1(threshold)
    if f1_test < f1_best - 1e-9:
        return wrong(
            f"Your threshold_on_test ({cut:.3f}) scores F1 {f1_test:.4f} on the test images, but another threshold "
            f"scores more there: choose it with choose_threshold on the test probabilities and the test cases' "
            f"vessels and fov (criterion 'f1'), as the cell above does on the {chosen_on} images."
        )
    if not isinstance(can_be_lower, (bool, np.bool_)):
        return wrong(f"can_be_lower: answer True or False, got {can_be_lower!r}.")
    answer = str(report).strip().lower().replace("-chosen", "").replace(" images", "")
    if answer not in ("test", "validation", "training", "val", "train"):
        return wrong(f"report: answer 'test' or '{chosen_on}', got {report!r}.")
    tie = " (a tie here: both thresholds cut between the same two scores)" if f1_test == f1_honest else ""
    measured = (
        f"Measured on the {len(cases)} test images: F1 {f1_test:.4f} at the test-chosen threshold {cut:.3f}, "
        f"{f1_honest:.4f} at the threshold {threshold:.3f} chosen on the {chosen_on} images{tie}."
    )
    if can_be_lower:
        return wrong(
            f"{measured} Can it ever be lower? choose_threshold tries every cut-off between two neighbouring "
            f"scores of the pixels it is given and keeps the best. Is the {chosen_on}-chosen threshold one of the "
            "cut-offs it tried on the test pixels?"
        )
    if answer == "test":
        return wrong(
            f"{measured} The test-chosen F1 was fitted to the test labels: that threshold won because it scores "
            "best on exactly these pixels, luck included, which a new image would not share. A test score must "
            "come from decisions made without the test labels."
        )
    return correct(
        f"{measured} Right on both: the test-chosen threshold is the best of all cut-offs on the very pixels it is "
        f"scored on, so it is never lower, at best a tie. That advantage was fitted to the test labels (an "
        f"optimistic bias), so the model's test score is the F1 at the threshold chosen on the {chosen_on} images; "
        f"the gap ({f1_test - f1_honest:+.4f}) is how much choosing on the test set would have flattered it."
    )


__all__ = [
    "check_empty_prediction_accuracy",
    "check_flip_rotate",
    "check_vessel_centre_fraction",
    "check_soft_dice_loss",
    "check_window_count",
    "check_threshold_experiment",
    "check_fov_metrics",
]
