"""Self-checks for lesson 06 (feature maps and activation maximisation)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, wrong

# The image of exercise 2 (one channel, 3 x 3), shown in the notebook.
TV_IMAGE = ((0.0, 1.0, 1.0), (0.0, 3.0, 1.0), (2.0, 2.0, 1.0))


def _diffs(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.diff(image, dim=1).abs(), torch.diff(image, dim=0).abs()


def check_total_variation(answer: Any, image: Any = TV_IMAGE) -> CheckResult:
    """Exercise 2: the (anisotropic, summed) total variation of ``image`` computed by hand."""
    if not_attempted(answer):
        return pending("`tv_by_hand`")
    value = as_number(answer)
    if value is None:
        return wrong(f"Give one number, got {answer!r}.")
    x = torch.as_tensor(image, dtype=torch.float64)
    horizontal, vertical = _diffs(x)
    expected = float(horizontal.sum() + vertical.sum())
    if math.isclose(value, expected, abs_tol=1e-6):
        return correct(
            f"Correct: horizontal differences add up to {horizontal.sum():g}, vertical ones to "
            f"{vertical.sum():g}: TV = {expected:g}. A noisy image has a large TV, a smooth one a small TV."
        )
    if math.isclose(value, float(horizontal.sum()), abs_tol=1e-6) or math.isclose(
        value, float(vertical.sum()), abs_tol=1e-6
    ):
        return wrong(
            "You counted one direction only: add the differences between horizontal neighbours AND "
            "between vertical neighbours."
        )
    if math.isclose(value, float((horizontal**2).sum() + (vertical**2).sum()), abs_tol=1e-6):
        return wrong("Those are squared differences (the 'power=2' variant); the TV here uses absolute values.")
    if math.isclose(value, float(torch.diff(x, dim=1).sum() + torch.diff(x, dim=0).sum()), abs_tol=1e-6):
        return wrong("Take the absolute value of each difference: a step down counts as much as a step up.")
    return wrong(
        "Add |right - left| over every pair of horizontal neighbours and |below - above| over every pair "
        "of vertical neighbours (3 x 3 pixels: 6 + 6 pairs)."
    )


class _Twice(nn.Module):
    """A model that calls its block twice (weights shared): a hook on the block fires twice per forward."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(2, 1, 1)

    def forward(self, x):
        return self.head(self.block(self.block(self.stem(x))))


def check_call_counter(fn: Any) -> CheckResult:
    """Exercise 1: ``fn(model, layer_name, x) -> int``: how often the layer runs in ``model(x)``; the hook
    must be removed afterwards (also if the forward pass fails)."""
    if not_attempted(fn):
        return pending("`count_calls`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. count_calls (without calling it).")
    from ...featurevis import count_forward_hooks

    torch.manual_seed(0)
    model = _Twice()
    x = torch.rand(1, 1, 8, 8)
    results = {}
    for layer, expected in (("block", 2), ("stem", 1), ("block.1", 2)):
        try:
            got = fn(model, layer, x)
        except Exception as err:
            return wrong(
                f"fn(model, {layer!r}, x) failed: {type(err).__name__}: {err}. Register the hook on "
                "dict(model.named_modules())[layer_name]."
            )
        results[layer] = got
        if count_forward_hooks(model) != 0:
            return wrong(
                "A hook is still registered after your function returned: keep the handle of "
                "register_forward_hook and call handle.remove() (in a finally: block)."
            )
        if isinstance(got, bool) or not isinstance(got, int) and not (isinstance(got, float) and got.is_integer()):
            return wrong(f"Return the number of calls as an int, got {got!r}.")
        if int(got) != expected:
            if layer == "block" and int(got) == 1:
                return wrong(
                    "The block is used twice in this model's forward(); count every call of the hook "
                    "(nonlocal counter += 1), do not just check whether it ran."
                )
            return wrong(f"Layer {layer!r} runs {expected} time(s) in model(x), your function says {got}.")
    # the hook must go away also when the forward pass raises
    try:
        fn(model, "block", torch.rand(1, 3, 8, 8))  # wrong number of channels: the stem raises
    except Exception:
        pass
    if count_forward_hooks(model) != 0:
        return wrong("When model(x) raises, your hook stays behind: remove it in a try/finally block.")
    return correct(
        "Correct: the hook counted every call (the shared block runs twice) and was removed afterwards, "
        "even when the forward pass failed. capture_features does the same."
    )


REGULARISER_CHOICES = ("none", "l2", "tv", "jitter")


def check_noise_regulariser(answer: Any) -> CheckResult:
    """Exercise 3: which term *added to the loss* punishes high-frequency noise directly (``"tv"``)."""
    if not_attempted(answer):
        return pending("`noise_regulariser`")
    choice = str(answer).strip().lower().replace(" ", "").replace("_", "")
    aliases = {"totalvariation": "tv", "l2penalty": "l2", "weightdecay": "l2"}
    choice = aliases.get(choice, choice)
    if choice not in REGULARISER_CHOICES:
        return wrong(f"Answer with one of {REGULARISER_CHOICES}, got {answer!r}.")
    if choice == "tv":
        return correct(
            "Correct: total variation adds |difference| between neighbouring pixels to the loss, and "
            "high-frequency noise is nothing but large differences between neighbours."
        )
    if choice == "l2":
        return wrong(
            "L2 makes every pixel smaller (closer to 0), noise and pattern alike; it does not "
            "care whether neighbours differ. Compare the L2 and TV panels above."
        )
    if choice == "jitter":
        return wrong(
            "Jitter helps against noise, but it is not a term of the loss: it moves the image at random "
            "before each step. Which penalty looks at differences between neighbouring pixels?"
        )
    return wrong("Without a regulariser the image fills with high-frequency noise: look at the first panel.")


__all__ = ["TV_IMAGE", "check_total_variation", "check_call_counter", "check_noise_regulariser", "REGULARISER_CHOICES"]
