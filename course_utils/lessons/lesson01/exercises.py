"""Self-checks for lesson 01 (PyTorch basics)."""

from __future__ import annotations

import math
from typing import Any

import torch

from ...selfcheck import CheckResult, correct, not_attempted, pending, returned_nothing, wrong

OUTCOMES = ("faster", "slower", "diverges")


def check_broadcast_shape(answer: Any) -> CheckResult:
    """Exercise 1: the shape of ``a + b`` for ``a`` of shape (3, 1, 5) and ``b`` of shape (4, 1)."""
    if not_attempted(answer):
        return pending("`answer`")
    if isinstance(answer, torch.Size):
        answer = tuple(answer)
    if not isinstance(answer, (tuple, list)) or not all(isinstance(d, int) for d in answer):
        return wrong(f"Give the shape as a tuple of ints, like (2, 3); got {answer!r}.")
    expected = tuple(torch.broadcast_shapes((3, 1, 5), (4, 1)))
    if tuple(answer) == expected:
        return correct("Correct: b is treated as (1, 4, 1); each size-1 axis stretches to match.")
    if len(answer) != len(expected):
        return wrong(
            f"The result has as many axes as the longer operand ({len(expected)}). "
            "Align the shapes from the right, then pad the shorter one with 1s on the left."
        )
    return wrong(
        "Align the shapes from the right: (3, 1, 5) against (_, 4, 1). On each axis the sizes must "
        "be equal or one of them 1; the result takes the larger."
    )


def check_mse_gradient(grad_fn: Any) -> CheckResult:
    """Exercise 2: ``grad_fn(w, b, x, y) -> (dL/dw, dL/db)`` for ``L = mean((w * x + b - y) ** 2)``."""
    if not_attempted(grad_fn):
        return pending("`grad_w_b`")
    if not callable(grad_fn):
        return wrong("Define a function grad_w_b(w, b, x, y) that returns the tuple (dL/dw, dL/db).")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, generator=g), torch.randn(50, generator=g)
    w = torch.tensor(0.7, requires_grad=True)
    b = torch.tensor(-0.3, requires_grad=True)
    ((w * x + b - y) ** 2).mean().backward()
    try:
        result = grad_fn(w.detach(), b.detach(), x, y)
    except Exception as err:  # the learner's code: report, don't crash the notebook
        return wrong(f"Calling your function failed with {type(err).__name__}: {err}")
    if returned_nothing(result):
        return pending("`grad_w_b` (it returns nothing yet)")
    try:
        dw, db = (torch.as_tensor(v, dtype=torch.float32) for v in result)
    except Exception as err:
        return wrong(f"Return the pair (dL/dw, dL/db), two numbers; got {type(result).__name__} ({err}).")
    if dw.numel() != 1 or db.numel() != 1:
        return wrong(
            f"dL/dw and dL/db are single numbers (L is a mean over the points); got shapes {tuple(dw.shape)} and "
            f"{tuple(db.shape)}: average over the points with .mean()."
        )
    ok_w = torch.allclose(dw, w.grad, rtol=1e-4, atol=1e-5)
    ok_b = torch.allclose(db, b.grad, rtol=1e-4, atol=1e-5)
    if ok_w and ok_b:
        return correct("Correct: your hand-derived gradient matches autograd.")
    for name, mine, true in (("dL/dw", dw, w.grad), ("dL/db", db, b.grad)):
        if torch.allclose(mine, true / 2, rtol=1e-4):
            return wrong(f"{name} is half the true value: the derivative of a square brings down a factor 2.")
        if torch.allclose(mine, -true, rtol=1e-4):
            return wrong(f"{name} has the wrong sign: differentiate (w*x + b - y)^2, not (y - w*x - b).")
        if torch.allclose(mine, true * len(x), rtol=1e-4):
            return wrong(f"{name} is {len(x)} times too large: L is a mean, so divide the sum by N.")
    return wrong(
        f"Not yet: autograd gives dL/dw={w.grad.item():.4f}, dL/db={b.grad.item():.4f}; yours give "
        f"{dw.item():.4f}, {db.item():.4f}. Hint: dL/dw = mean(2 * (w*x + b - y) * x)."
    )


def check_dataset(dataset: Any, reference: Any = None, draws: int = 24) -> CheckResult:
    """Exercise 5: a ``Dataset`` whose items are ``(image (1, H, W) float32, mask (1, H, W) in {0, 1})`` and that,
    given ``reference`` (the data set it wraps), serves ``reference``'s pairs flipped left-right together with
    probability 0.5: each of the first few samples is drawn ``draws`` times and must come out either unchanged or
    with image and mask both mirrored along W, and both outcomes must occur."""
    if not_attempted(dataset):
        return pending("`my_dataset`")
    if isinstance(dataset, type):
        return wrong("Pass an instance (my_dataset = MyDataset(...)), not the class itself.")
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        return wrong("A map-style Dataset needs __len__ and __getitem__.")
    try:
        n = dataset.__len__()
    except Exception as err:
        return wrong(f"len(my_dataset) failed with {type(err).__name__}: {err}")
    if returned_nothing(n):
        return pending("`my_dataset` (its __len__ returns nothing yet)")
    if not isinstance(n, int) or isinstance(n, bool):
        return wrong(f"__len__ must return an int (the number of samples), got {n!r}.")
    if n == 0:
        return wrong("len(dataset) is 0: the dataset holds no samples.")
    try:
        item = dataset[0]
        last = dataset[n - 1]
    except Exception as err:
        return wrong(f"Indexing failed with {type(err).__name__}: {err}")
    if returned_nothing(item):
        return pending("`my_dataset` (its __getitem__ returns nothing yet)")
    for name, it in (("dataset[0]", item), (f"dataset[{n - 1}]", last)):
        if not isinstance(it, (tuple, list)) or len(it) != 2:
            return wrong(f"{name} should be a pair (image, mask), got {type(it).__name__}.")
        image, mask = it
        if not torch.is_tensor(image) or not torch.is_tensor(mask):
            return wrong(f"{name} should hold tensors; convert arrays with torch.from_numpy(...).")
        if image.dtype != torch.float32:
            return wrong(f"The image should be float32 (what conv layers expect), got {image.dtype}.")
        if image.ndim != 3 or image.shape[0] != 1:
            return wrong(f"The image should be (1, H, W) (channels first), got {tuple(image.shape)}.")
        if mask.shape != image.shape:
            return wrong(f"The mask {tuple(mask.shape)} must have the image's shape {tuple(image.shape)}.")
        if not torch.isin(mask.float().unique(), torch.tensor([0.0, 1.0])).all():
            return wrong("The mask should hold only 0 and 1.")
    if reference is None:
        return correct(f"Correct: {n} samples of (image, mask) with shape {tuple(item[0].shape)}.")
    return _check_joint_flips(dataset, reference, draws)


def _check_joint_flips(dataset: Any, reference: Any, draws: int) -> CheckResult:
    """Every draw of ``dataset[i]`` is ``reference[i]`` as it is or mirrored along W, image and mask together."""
    if len(dataset) != len(reference):
        return wrong(f"len(my_dataset) is {len(dataset)}, but it should serve the {len(reference)} pairs it wraps.")
    torch.manual_seed(0)
    flipped = kept = 0
    for i in range(min(4, len(reference))):
        ref_image, ref_mask = (torch.as_tensor(t) for t in reference[i])
        for _ in range(draws):
            image, mask = dataset[i]
            same = torch.equal(image, ref_image), torch.equal(mask, ref_mask)
            mirrored = torch.equal(image, ref_image.flip(-1)), torch.equal(mask, ref_mask.flip(-1))
            if all(same):
                kept += 1
            elif all(mirrored):
                flipped += 1
            elif (same[0] and mirrored[1]) or (mirrored[0] and same[1]):
                return wrong(f"Sample {i}: only one of image and mask was flipped; flip both with the same coin.")
            elif torch.equal(image, ref_image.flip(-2)) or torch.equal(mask, ref_mask.flip(-2)):
                return wrong(f"Sample {i} was flipped up-down; left-right is the last axis: .flip(-1).")
            else:
                return wrong(f"Sample {i} is neither the original pair nor its left-right mirror image.")
    total = flipped + kept
    if flipped == 0:
        return wrong(f"None of {total} draws was flipped: flip with probability 0.5 (e.g. torch.rand(()) < 0.5).")
    if kept == 0:
        return wrong(f"All {total} draws were flipped: flip with probability 0.5, not always.")
    return correct(f"Correct: {flipped} of {total} draws flipped, image and mask together.")


def _measured_outcome(losses: list[float], losses_large: list[float]) -> str:
    """``"diverges"`` if the large-step run ends above where it started (or overflows), else ``"faster"`` or
    ``"slower"`` by the loss both runs reach after the same number of steps."""
    if not math.isfinite(losses_large[-1]) or losses_large[-1] > losses_large[0]:
        return "diverges"
    return "faster" if losses_large[-1] < losses[len(losses_large) - 1] else "slower"


def _as_outcome(answer: Any) -> str | None:
    if not isinstance(answer, str):
        return None
    text = answer.strip().strip("'\"").lower()
    synonyms = {"diverge": "diverges", "diverged": "diverges", "explodes": "diverges"}
    return synonyms.get(text, text)


def check_learning_rate_experiment(
    outcome: Any, losses: Any, losses_large: Any, lr: float, lr_large: float, x: Any = None
) -> CheckResult:
    """Exercise 3: the experiment: gradient descent on the line fit with ``lr_large`` instead of ``lr``. ``losses``,
    ``losses_large``: the loss before each step of the two runs (the large run at most as long). ``outcome``:
    ``"faster"``, ``"slower"`` or ``"diverges"``, judged against what was measured; ``x`` (the inputs of the fit)
    lets the message give the largest learning rate that still converges, ``2 / (largest curvature of L)``."""
    if not_attempted(outcome):
        return pending("`lr_outcome`")
    answer = _as_outcome(outcome)
    if answer not in OUTCOMES:
        return wrong(f"Answer with one of {', '.join(repr(o) for o in OUTCOMES)}, got {outcome!r}.")
    try:
        losses, losses_large = [float(v) for v in losses], [float(v) for v in losses_large]
    except (TypeError, ValueError):
        return wrong("Pass the two lists of losses that the experiment cell measured.")
    if len(losses_large) < 2 or len(losses) < len(losses_large):
        return wrong("Run the experiment cell first: it needs both runs, the large-step one at most as long.")
    if lr_large == lr:
        return wrong(
            f"lr_large equals the learning rate of the first run ({lr:g}): change it, then run the cell again."
        )
    seen = _measured_outcome(losses, losses_large)
    steps = len(losses_large) - 1
    limit = ""
    if x is not None:
        x = torch.as_tensor(x, dtype=torch.float64)
        hessian = 2 * torch.tensor([[float((x * x).mean()), float(x.mean())], [float(x.mean()), 1.0]])
        largest = float(torch.linalg.eigvalsh(hessian).max())
        limit = (
            f" L is a bowl whose steepest curvature is {largest:.2f} (along b, where d2L/db2 = 2); each step "
            f"multiplies the distance to the minimum along it by |1 - lr x {largest:.2f}|, which is below 1 only "
            f"for lr < 2 / {largest:.2f} = {2 / largest:.2f}."
        )
    story = {
        "diverges": f"with lr = {lr_large:g} the loss grew from {losses_large[0]:.3g} to {losses_large[-1]:.3g} in "
        f"{steps} steps: every step jumps past the minimum, further than it started.",
        "faster": f"after {steps} steps the loss is {losses_large[-1]:.3g} with lr = {lr_large:g} against "
        f"{losses[steps]:.3g} with lr = {lr:g}: larger steps, still short of overshooting.",
        "slower": f"after {steps} steps the loss is {losses_large[-1]:.3g} with lr = {lr_large:g} against "
        f"{losses[steps]:.3g} with lr = {lr:g}.",
    }[seen]
    if answer == seen:
        return correct(f"Correct: {story}{limit}")
    if answer == "faster" and seen == "diverges":
        return wrong(f"A larger step is not always faster: {story} Look at the losses again.")
    return wrong(f"Look at the measured losses again: {story}")


def check_conv_parameters(answer: Any) -> CheckResult:
    """Exercise 4: the number of parameters of ``nn.Conv2d(3, 16, kernel_size=3)``."""
    if not_attempted(answer):
        return pending("`n_params_conv`")
    if not isinstance(answer, int) or isinstance(answer, bool):
        return wrong(f"Give a whole number, got {answer!r}.")
    conv = torch.nn.Conv2d(3, 16, kernel_size=3)
    expected = sum(p.numel() for p in conv.parameters())
    weights = conv.weight.numel()
    if answer == expected:
        return correct(f"Correct: 16 filters x (3 channels x 3 x 3) = {weights} weights, plus 16 biases.")
    if answer == weights:
        return wrong("You counted the weights; each output channel also has one bias.")
    if answer == 16 * 9 + 16:
        return wrong("Each filter spans all 3 input channels: it has 3 x 3 x 3 weights, not 3 x 3.")
    return wrong("Count per output channel: one 3x3 kernel per input channel, plus one bias.")


def check_training_improved(history: Any, min_gain: float = 0.05) -> CheckResult:
    """Recap check: the validation Dice of the last epoch beats the first by ``min_gain``."""
    if not_attempted(history):
        return pending("`history`")
    try:
        dice = [r["val_dice"] for r in history]
    except (TypeError, KeyError):
        return wrong("Pass the list of per-epoch dicts with a 'val_dice' entry that your training loop filled.")
    if len(dice) < 2:
        return wrong("Train for at least two epochs to see a trend.")
    if dice[-1] - dice[0] >= min_gain:
        return correct(f"Validation Dice rose from {dice[0]:.3f} to {dice[-1]:.3f}.")
    return wrong(
        f"Validation Dice went from {dice[0]:.3f} to {dice[-1]:.3f}; try a larger learning rate or more epochs."
    )


__all__ = [
    "check_broadcast_shape",
    "check_mse_gradient",
    "check_learning_rate_experiment",
    "check_dataset",
    "check_conv_parameters",
    "check_training_improved",
]
