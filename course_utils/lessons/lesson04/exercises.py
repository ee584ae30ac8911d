"""Self-checks for lesson 04 (MRI white-matter lesions in 3D)."""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, returned_nothing, wrong


def toy_volumes() -> tuple[np.ndarray, np.ndarray]:
    """``(truth, pred)`` bool ``(6, 6, 6)`` of exercise 4.

    truth: a 2x2x2 cube (8 voxels) at ``[1:3, 1:3, 1:3]``; pred: a 2x2x3 box (12 voxels)
    at ``[1:3, 1:3, 1:4]`` that covers the cube and one more layer.
    """
    truth = np.zeros((6, 6, 6), dtype=bool)
    pred = np.zeros((6, 6, 6), dtype=bool)
    truth[1:3, 1:3, 1:3] = True
    pred[1:3, 1:3, 1:4] = True
    return truth, pred


def check_toy_dice(answer: Any) -> CheckResult:
    """Exercise 4: the voxel Dice of :func:`toy_volumes` (a number)."""
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
            value = fn(pred.copy(), truth.copy())
            if returned_nothing(value):
                return pending("`lesion_sensitivity`")
            got.append(float(value))
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
    """Exercise 2: how many ``patch^3`` windows with ``overlap`` tile a volume of ``shape``."""
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


# ----- exercise 1: the training step ------------------------------------------------------------------
STEP_LR = 0.1
STEP_BATCH = (2, 2, 8, 8, 8)  # (B, C, X, Y, Z): two patches of 8^3 voxels, two input images


def _step_setup() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor], list[torch.Tensor]]:
    """A small 3-D U-Net (BatchNorm, train mode), a fixed batch ``(x (2, 2, 8, 8, 8), y (2, 1, 8, 8, 8))`` and one
    stale gradient per parameter (what the previous batch left in ``.grad``)."""
    from ...models import UNet

    with torch.random.fork_rng():
        torch.manual_seed(7)
        model = UNet(in_channels=STEP_BATCH[1], out_channels=1, dims=3, depth=2, base_width=2)
    model.train()
    g = torch.Generator().manual_seed(8)
    x = torch.randn(*STEP_BATCH, generator=g)
    y = (torch.rand(STEP_BATCH[0], 1, *STEP_BATCH[2:], generator=g) > 0.7).float()
    stale = [0.5 * torch.randn(p.shape, generator=g) for p in model.parameters()]
    return model, (x, y), stale


def _weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _run_step(fn: Callable, start: torch.nn.Module, batch, stale) -> tuple[Any, torch.nn.Module]:
    """``(returned value, model after)``: ``fn`` on a copy of ``start`` whose ``.grad`` holds ``stale``, with plain SGD
    (so the update is ``w - lr * grad``) and the course's BCE + soft Dice loss. Exceptions propagate."""
    from ...losses import BCEDiceLoss

    model = copy.deepcopy(start)
    for p, s in zip(model.parameters(), stale):
        p.grad = s.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=STEP_LR)
    x, y = batch
    return fn(model, (x.clone(), y.clone()), optimizer, BCEDiceLoss()), model


def check_training_step(fn: Any) -> CheckResult:
    """Exercise 1: ``fn(model, batch, optimizer, loss_fn) -> float``, one optimisation step on a batch of 3-D
    patches ``(B, C, X, Y, Z)``: forward, loss, ``zero_grad``, ``backward``, ``step``, the loss as a float.

    Compared with :func:`course_utils.training.training_step` on a small 3-D U-Net and a fixed batch, the previous
    batch's gradients left in ``.grad``: the same returned loss and the same updated weights (plain SGD, so each
    slip leaves its own trace in the weights).
    """
    if not_attempted(fn):
        return pending("`training_step`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. training_step (without calling it).")
    from ...training import training_step

    start, batch, stale = _step_setup()
    w0 = _weights(start)
    expected, reference = _run_step(training_step, start, batch, stale)
    w_ref = _weights(reference)
    try:
        value, model = _run_step(fn, start, batch, stale)
    except RuntimeError as err:
        text = str(err)
        if "backward through the graph a second time" in text:
            return wrong(
                "loss.backward() ran twice on the same graph: the first call frees the graph it went through. "
                "Call backward() once per step."
            )
        if "modified by an inplace operation" in text:
            return wrong(
                "optimizer.step() changed the weights before loss.backward() went back through the graph that used "
                "them, so backward fails. The order: forward, loss, zero_grad, backward, step."
            )
        if "does not require grad" in text:
            return wrong(
                "The loss has no graph to go back through: was the forward pass run under torch.no_grad(), or the "
                "loss detached (.item(), .detach()) before backward()? Compute loss = loss_fn(model(images), "
                f"targets) and call loss.backward() on it. ({text})"
            )
        return wrong(f"training_step(model, batch, optimizer, loss_fn) failed: RuntimeError: {text}")
    except Exception as err:
        return wrong(f"training_step(model, batch, optimizer, loss_fn) failed: {type(err).__name__}: {err}")
    w = _weights(model)

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.allclose(a, b, rtol=1e-5, atol=1e-6)

    moved = not same(w, w0)
    touched = any(p.grad is None or not torch.equal(p.grad, s) for p, s in zip(model.parameters(), stale))
    if returned_nothing(value) and not moved and not touched:  # the stub: its body did nothing
        return pending("`training_step`")
    stale_flat = torch.cat([s.flatten() for s in stale])
    if not model.training:
        return wrong(
            "Your step left the model in eval mode (model.eval()): BatchNorm then normalises with its running "
            "statistics instead of the batch's, and the loss differs. Training steps run in train mode; fit calls "
            "model.train() for you."
        )
    if not same(w, w_ref):
        gradient = (w0 - w_ref) / STEP_LR  # this batch's gradient, from the course's SGD step
        if not moved:
            return wrong(
                "The weights did not move. Is optimizer.step() missing, or called before backward(), or is "
                "zero_grad() called between backward() and step() (it wipes the gradients step needs)? The order: "
                "forward, loss, zero_grad, backward, step."
            )
        if same(w, w_ref - STEP_LR * stale_flat):
            return wrong(
                "The update used this batch's gradient PLUS the one the previous batch left in .grad: "
                "optimizer.zero_grad() is missing, so gradients accumulate from step to step. Call it before "
                "loss.backward()."
            )
        if same(w, w0 - 2 * STEP_LR * gradient) or same(w, w0 - STEP_LR * (2 * gradient + stale_flat)):
            return wrong(
                "The update used twice this batch's gradient: backward() ran twice (retain_graph=True), and the "
                "second call added the same gradient again. Call backward() once per step."
            )
        return wrong(
            "The weights after your step differ from the course's step. Run the model once on the images, "
            "loss_fn(logits, targets) in that order (logits first), then zero_grad, backward and step, once each."
        )
    if returned_nothing(value):
        return wrong("The weights are updated right, but the function returns nothing: return loss.item().")
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            return wrong(
                "The weights are right, but you return the loss tensor itself, with its graph: whoever keeps it "
                "(fit adds up the losses of an epoch) keeps every activation of the 3-D U-Net for that batch alive "
                "in memory. Return the number: loss.item()."
            )
        return wrong("The weights are right; return the loss as a Python float (loss.item()), not as a tensor.")
    number = as_number(value)
    if number is None:
        return wrong(f"The weights are right; return the loss as one number (loss.item()), got {value!r}.")
    if not math.isclose(number, expected, rel_tol=1e-5, abs_tol=1e-7):
        return wrong(
            f"The weights are right, but the number returned ({number:.5f}) is not this batch's loss "
            f"({expected:.5f}), computed on the batch before the update: return loss.item() of that loss."
        )
    return correct(
        f"Correct: the same loss ({expected:.4f}) and the same updated weights as course_utils.training."
        f"training_step, on a small 3-D U-Net with a batch of {STEP_BATCH[0]} patches {tuple(STEP_BATCH[1:])} and the "
        "previous batch's gradients still in .grad. zero_grad before backward keeps them out; .item() returns a "
        "number and lets the graph go."
    )


# ----- exercise 3: lesion-wise sensitivity -------------------------------------------------------------
def course_lesion_sensitivity(pred: np.ndarray, truth: np.ndarray) -> float:
    """The course's lesion-wise sensitivity of ``pred`` against ``truth`` (bool ``(X, Y, Z)``, 26-connected
    lesions): ``course_utils.metrics.lesions.lesion_detection(pred, truth)["sensitivity"]``."""
    from ...metrics.lesions import lesion_detection

    return float(lesion_detection(pred, truth)["sensitivity"])


# ----- exercise 5: 6- against 26-connectivity --------------------------------------------------------------
EFFECTS = {
    "a": "6-connectivity can only lower lesion sensitivity: it makes more lesions to find",
    "b": "both can rise or fall: each piece a split makes is one more lesion in a count, found or missed (true "
    "lesions), real or false (predicted lesions)",
    "c": "neither can change: the predicted and the true voxels are the same",
}
YES = {"yes", "y", "true"}
NO = {"no", "n", "false"}


def _yes_no(answer: Any) -> bool | None:
    if isinstance(answer, bool):
        return answer
    text = str(answer).strip().lower()
    return True if text in YES else False if text in NO else None


def _moved(before: float, after: float) -> str:
    if math.isclose(before, after, abs_tol=5e-4):
        return f"stayed at {before:.3f}"
    return f"{'rose' if after > before else 'fell'} from {before:.3f} to {after:.3f}"


def check_connectivity_experiment(measured: Any, fewer_possible: Any, effect: Any) -> CheckResult:
    """Exercise 5: the experiment, 6- against 26-connectivity. ``measured`` maps a connectivity (26, and the
    learner's 6) to the :func:`~course_utils.metrics.lesions.lesion_detection` result of the test patient's
    prediction; the answers:
    can 6-connectivity ever count fewer lesions than 26 on the same mask (``"yes"``/``"no"``: no, a property), and
    what it can do to lesion sensitivity and precision (``"a"``, ``"b"`` or ``"c"`` of :data:`EFFECTS`: ``"b"``).

    Judged on the property, which holds on any mask; the message explains the numbers measured here.
    """
    if not_attempted(fewer_possible) or not_attempted(effect):
        return pending("`fewer_possible` and `effect`")
    needed = {"n_true", "n_pred", "sensitivity", "precision", "f1"}
    if not isinstance(measured, Mapping) or not all(
        isinstance(m, Mapping) and needed <= set(m) for m in measured.values()
    ):
        return wrong("Pass the measured results as the cell above builds them: {26: lesion_detection(...), 6: ...}.")
    rules = {int(k): v for k, v in measured.items() if str(k).strip() in ("6", "26")}
    if 6 not in rules or 26 not in rules:
        return wrong("Measure both rules first: set connectivity = 6 in the cell above and run it again.")
    six, full = rules[6], rules[26]
    if six["n_true"] < full["n_true"] or six["n_pred"] < full["n_pred"]:
        return wrong(
            "The numbers under 6 count fewer lesions than those under 26, which cannot happen on the same masks: "
            "were the two rules swapped, or the masks changed between the runs?"
        )
    counts = (
        f"Here 6-connectivity counted {six['n_true']} true lesions against {full['n_true']} with 26, and "
        f"{six['n_pred']} predicted lesions against {full['n_pred']}."
    )
    fewer = _yes_no(fewer_possible)
    if fewer is None:
        return wrong(f"Answer fewer_possible with 'yes' or 'no', got {fewer_possible!r}.")
    if fewer:
        return wrong(
            "It cannot. Two voxels that share a face are neighbours under both rules (a face neighbour is one of the "
            "26), so every 6-connected lesion lies whole inside one 26-connected lesion: 26-connectivity only joins "
            f"6-connected pieces, never splits one. {counts}"
        )
    key = str(effect).strip().lower().strip("()")
    if key not in EFFECTS:
        return wrong(f"Answer effect with 'a', 'b' or 'c', got {effect!r}.")
    numbers = (
        f"Lesion sensitivity {_moved(full['sensitivity'], six['sensitivity'])}, precision "
        f"{_moved(full['precision'], six['precision'])}, F1 {_moved(full['f1'], six['f1'])}."
    )
    if key == "a":
        return wrong(
            "Sensitivity can rise too: a found lesion that splits into pieces the prediction all touches counts as "
            f"several found lesions, and a missed one that splits into pieces adds several misses. {counts} {numbers}"
        )
    if key == "c":
        return wrong(
            "The voxels are the same, the counts are not: sensitivity and precision are shares of LESIONS, and the "
            f"rule decides what one lesion is. {counts} {numbers}"
        )
    if six["n_true"] == full["n_true"] and six["n_pred"] == full["n_pred"]:
        here = (
            "On these masks no lesion had parts that touch only at an edge or a corner, so nothing split and no "
            "number changed; on other masks they do (the toy volumes of exercise 3 hold one such lesion)."
        )
    else:
        here = (
            f"{numbers} Which way each share moves depends on which pieces the prediction touches: a missed piece "
            "counts as much as a lesion of a hundred voxels."
        )
    return correct(
        f"Right: 6-connectivity never counts fewer lesions (it only splits 26-connected ones at edges and corners), "
        f"and each split changes the counts behind sensitivity and precision, either way. {counts} {here} A "
        "lesion-wise number means little without its rule: the WMH challenge counts 26-connected lesions, "
        "scipy's ndimage.label uses 6 unless given a structure."
    )


__all__ = [
    "check_training_step",
    "check_window_count",
    "lesion_toy",
    "check_lesion_sensitivity",
    "course_lesion_sensitivity",
    "toy_volumes",
    "check_toy_dice",
    "EFFECTS",
    "check_connectivity_experiment",
]
