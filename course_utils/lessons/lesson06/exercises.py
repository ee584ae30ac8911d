"""Self-checks for lesson 06 (feature maps and activation maximisation)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, returned_nothing, wrong

# The image the total-variation check tries first (one channel, 3 x 3), shown in the notebook.
TV_IMAGE = ((0.0, 1.0, 1.0), (0.0, 3.0, 1.0), (2.0, 2.0, 1.0))


class _Twice(nn.Module):
    """A model that calls its block twice (weights shared): a hook on the block fires twice per forward.

    The block holds a BatchNorm layer with running statistics far from a batch's own, so that a forward pass in
    training mode gives other feature maps than one in eval mode.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU())
        self.head = nn.Conv2d(2, 1, 1)

    def forward(self, x):
        return self.head(self.block(self.block(self.stem(x))))


LAYERS = ("stem", "block", "head")


def _twice_model() -> _Twice:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _Twice()
    with torch.no_grad():
        model.block[1].running_mean.fill_(-0.3)
        model.block[1].running_var.fill_(0.5)
    return model.train()


def _every_call(training: bool, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """The outputs of every call of each layer of a fresh check model, in training or eval mode."""
    model = _twice_model().train(training)
    calls: dict[str, list[torch.Tensor]] = {name: [] for name in LAYERS}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(lambda m, i, o, name=name: calls[name].append(o.detach()))
        for name in LAYERS
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _same(got: Mapping, want: Mapping[str, torch.Tensor]) -> bool:
    return all(
        isinstance(got[name], torch.Tensor)
        and got[name].shape == want[name].shape
        and torch.allclose(got[name].float(), want[name], atol=1e-5)
        for name in want
    )


def check_feature_maps(fn: Any) -> CheckResult:
    """Exercise 1: ``fn(model, x, layers) -> {name: output}``: each named layer's output for ``model(x)``, in eval
    mode, without gradients; every hook removed afterwards, also when the forward pass fails. Compared with
    :func:`course_utils.featurevis.feature_maps` on a model that runs one of its blocks twice."""
    if not_attempted(fn):
        return pending("`feature_maps`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. feature_maps (without calling it).")
    from ...featurevis import count_forward_hooks
    from ...featurevis import feature_maps as course_feature_maps

    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    want = course_feature_maps(_twice_model(), x, list(LAYERS))
    model = _twice_model()
    try:
        got = fn(model, x, list(LAYERS))
    except Exception as err:
        return wrong(
            f"feature_maps(model, x, {list(LAYERS)}) failed: {type(err).__name__}: {err}. Register one hook per "
            "name on dict(model.named_modules())[name]; the hook gets (module, inputs, output)."
        )
    if count_forward_hooks(model) != 0:
        return wrong(
            "A hook is still registered after your function returned: keep the handle of each "
            "register_forward_hook and call handle.remove() (in a finally: block). A forgotten hook keeps every "
            "output alive and slows every later forward pass."
        )
    if returned_nothing(got):
        return pending("the body of `feature_maps`")
    if not isinstance(got, Mapping):
        return wrong(f"Return a dict, layer name -> its output; got {type(got).__name__}.")
    if set(got) != set(LAYERS):
        return wrong(
            f"The dict should have one entry per layer asked for, {list(LAYERS)}; got {sorted(map(str, got))}."
        )
    for name in LAYERS:
        value = got[name]
        if isinstance(value, (list, tuple)):
            return wrong(
                f"got[{name!r}] is a {type(value).__name__}: keep one tensor per layer, the output of its last call "
                "(the hook stores the output under the layer's name, and a second call overwrites it)."
            )
        if not isinstance(value, torch.Tensor):
            return wrong(f"got[{name!r}] should be the layer's output tensor, got {type(value).__name__}.")
        if value.requires_grad:
            return wrong(
                "The feature maps still carry their autograd graph (requires_grad=True): run the model inside "
                "torch.no_grad() (or store output.detach()), or every map keeps the whole graph in memory."
            )
    if _same(got, want):
        kept_mode = model.training
        note = (
            ""
            if kept_mode
            else " Your function leaves the model in eval mode; the course's feature_maps puts every layer back the "
            "way it was (no harm here: the lesson's networks are in eval mode anyway)."
        )
        hooks_on_error = _hooks_left_when_forward_fails(fn)
        if hooks_on_error:
            return wrong("When model(x) raises, your hook stays behind: remove the hooks in a try/finally block.")
        return correct(
            "Correct: the same feature maps as course_utils.featurevis.feature_maps, the shared block's from its "
            "second (last) call, and no hook left behind, even when the forward pass failed." + note
        )
    train_calls, eval_calls = _every_call(True, x), _every_call(False, x)
    if _same(got, {n: c[-1] for n, c in train_calls.items()}) or _same(got, {n: c[0] for n, c in train_calls.items()}):
        return wrong(
            "These are the feature maps of the model in training mode: its BatchNorm layer normalised with the "
            "batch's own statistics (and updated its running ones). Call model.eval() before the forward pass."
        )
    if _same(got, {n: c[0] for n, c in eval_calls.items()}):
        return wrong(
            "The block runs twice in this model's forward(); you kept its first output. Let every call overwrite "
            "the stored output, so that the dict holds the last one, as the course's version does."
        )
    return wrong(
        "Not the outputs of the layers: the hook's third argument, output, is what the layer returned; store it "
        "under the layer's name."
    )


def _hooks_left_when_forward_fails(fn: Any) -> bool:
    from ...featurevis import count_forward_hooks

    model = _twice_model()
    try:
        fn(model, torch.rand(1, 3, 8, 8), list(LAYERS))  # three channels for a one-channel stem: it raises
    except Exception:
        pass
    return count_forward_hooks(model) != 0


def check_total_variation(fn: Any) -> CheckResult:
    """Exercise 2: ``fn(x (B, C, H, W)) -> number``: the anisotropic total variation, the sum of ``|right - left|``
    over horizontal neighbours plus ``|below - above|`` over vertical ones, over the whole batch. Compared with
    :func:`course_utils.featurevis.total_variation` (``reduction="sum"``) on :data:`TV_IMAGE` and a random batch."""
    if not_attempted(fn):
        return pending("`total_variation`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. total_variation (without calling it).")
    from ...featurevis import total_variation as course_tv

    cases = (
        torch.tensor(TV_IMAGE, dtype=torch.float32)[None, None],
        torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(2)),
    )
    for x in cases:
        try:
            value = fn(x.clone())
        except Exception as err:
            return wrong(f"total_variation(x) failed on x of shape {tuple(x.shape)}: {type(err).__name__}: {err}")
        if returned_nothing(value):
            return pending("the body of `total_variation`")
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            return wrong(
                f"Return one number for the whole batch (a sum over everything), got a tensor of shape "
                f"{tuple(value.shape)}."
            )
        number = as_number(value)
        if number is None:
            return wrong(f"Return one number (a 0-d tensor or a float), got {value!r}.")
        expected = float(course_tv(x))
        if math.isclose(number, expected, rel_tol=1e-4, abs_tol=1e-5):
            continue
        horizontal = torch.diff(x, dim=-1).abs().sum().item()
        vertical = torch.diff(x, dim=-2).abs().sum().item()
        slips = (
            (
                horizontal,
                "You added the horizontal differences only: add |below - above| between vertical neighbours too.",
            ),
            (
                vertical,
                "You added the vertical differences only: add |right - left| between horizontal neighbours too.",
            ),
            (
                float(course_tv(x, power=2)),
                "Those are squared differences (the 'power=2' variant); the TV here adds absolute values.",
            ),
            (
                (torch.diff(x, dim=-1).sum() + torch.diff(x, dim=-2).sum()).item(),
                "Take the absolute value of each difference: a step down counts as much as a step up.",
            ),
            (
                torch.diff(x, dim=-1).abs().mean().item() + torch.diff(x, dim=-2).abs().mean().item(),
                "You took means; this TV is the sum of all the absolute differences (.sum(), not .mean()).",
            ),
            (
                float(course_tv(x, reduction="mean")),
                "You divided by the number of pixels; this TV is the plain sum.",
            ),
            (
                expected + torch.diff(x, dim=0).abs().sum().item() + torch.diff(x, dim=1).abs().sum().item(),
                "Differences between images of the batch or between channels are no neighbours: take the "
                "differences along the last two axes (height and width) only.",
            ),
        )
        for slip, message in slips:
            if math.isclose(number, slip, rel_tol=1e-4, abs_tol=1e-5):
                return wrong(message)
        return wrong(
            f"For x of shape {tuple(x.shape)} the total variation is {expected:.4g}, yours {number:.4g}. Add "
            "|right - left| over every pair of horizontal neighbours and |below - above| over every pair of "
            "vertical neighbours (torch.diff along the last and the second-last axis)."
        )
    image = torch.tensor(TV_IMAGE)
    h, v = torch.diff(image, dim=1).abs().sum().item(), torch.diff(image, dim=0).abs().sum().item()
    return correct(
        f"Correct, the same as course_utils.featurevis.total_variation: on the 3 x 3 image, horizontal "
        f"differences {h:g} and vertical ones {v:g}, TV = {h + v:g}. A noisy image has a large TV, a smooth one a "
        "small TV."
    )


EXPERIMENT_ANSWERS = ("lower", "higher", "same")
SAME_WITHIN = 0.05  # relative difference under which two TVs count as the same


def check_parameterization_experiment(
    answer: Any, tv_pixel: Any, tv_fourier: Any, activation_pixel: Any, activation_fourier: Any
) -> CheckResult:
    """Exercise 3: with no regulariser at all, is the picture's TV ``"lower"``, ``"higher"`` or the ``"same"``
    (within 5 %) when gradient ascent runs on a Fourier spectrum instead of on the pixels? Judged by the two TVs
    of the run (per pixel), explained; the activations reached are reported."""
    if not_attempted(answer):
        return pending("`fourier_tv`")
    word = str(answer).strip().lower()
    if word not in EXPERIMENT_ANSWERS:
        return wrong(f"Answer with one of {', '.join(map(repr, EXPERIMENT_ANSWERS))}, got {answer!r}.")
    values = [as_number(v) for v in (tv_pixel, tv_fourier, activation_pixel, activation_fourier)]
    if any(v is None for v in values):
        return wrong(
            "Pass the measured numbers: check_parameterization_experiment(answer, tv_pixel, tv_fourier, "
            "activation_pixel, activation_fourier)."
        )
    pixel, fourier, act_pixel, act_fourier = values
    if abs(fourier - pixel) <= SAME_WITHIN * max(abs(pixel), abs(fourier), 1e-12):
        truth = "same"
    else:
        truth = "lower" if fourier < pixel else "higher"
    numbers = (
        f"TV per pixel {pixel:.4f} with pixels, {fourier:.4f} with the spectrum; activation reached "
        f"{act_pixel:.3g} and {act_fourier:.3g}"
    )
    why = {
        "lower": "The loss was the same, minus the activation, with no smoothness term in it, and yet the "
        "spectrum's picture is smoother. Adam moves every parameter by about the same amount per step. With "
        "pixels a parameter is one pixel, so each step can change neighbouring pixels in opposite directions: "
        "noise. In the Fourier parameterisation a parameter is the coefficient of one frequency, scaled by "
        "1 / frequency, so a step moves the low frequencies far more than the high ones, and the start picture "
        "is smooth as well (its spectrum falls off as 1 / frequency). A parameterisation is a prior: it decides "
        "which pictures gradient ascent reaches easily, without changing what it maximises.",
        "higher": "That is unusual: the Fourier parameterisation scales each frequency's coefficient by "
        "1 / frequency, so its steps and its start picture favour low frequencies. Look at the two pictures, and "
        "at the steps of the profile: with very many steps the high frequencies can catch up.",
        "same": "The two pictures came out equally rough here (within 5 %); the Fourier parameterisation usually "
        "gives a much smoother picture, because it scales each frequency's coefficient by 1 / frequency.",
    }[truth]
    if word == truth:
        return correct(f"Yes: {numbers}. {why}")
    return wrong(f"Look at the numbers: {numbers}, so '{truth}'. {why}")


__all__ = [
    "TV_IMAGE",
    "LAYERS",
    "check_feature_maps",
    "check_total_variation",
    "check_parameterization_experiment",
    "EXPERIMENT_ANSWERS",
]
