"""Self-checks for lesson 02 (U-Net from scratch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...selfcheck import CheckResult, correct, not_attempted, pending, returned_nothing, wrong

CHANGES = ("smaller", "same", "larger")


def _copy_parameters(source: nn.Module, target: nn.Module) -> bool:
    """Copy ``source``'s parameters into ``target``'s, in registration order; False if their shapes differ."""
    mine, theirs = list(source.parameters()), list(target.parameters())
    if [p.shape for p in mine] != [p.shape for p in theirs]:
        return False
    with torch.no_grad():
        for a, b in zip(mine, theirs):
            b.copy_(a)
    return True


def check_double_conv(block_cls: Any) -> CheckResult:
    """Exercise 1: ``block_cls(in_channels, out_channels)`` = (3x3 conv, BatchNorm, ReLU) twice, size kept; with the
    same weights it computes what :class:`course_utils.models.DoubleConv` computes."""
    if not_attempted(block_cls):
        return pending("`MyDoubleConv`")
    if not isinstance(block_cls, type) or not issubclass(block_cls, nn.Module):
        return wrong("Pass the class itself (a subclass of nn.Module), e.g. MyDoubleConv, not an instance.")
    x = torch.randn(2, 3, 17, 20, generator=torch.Generator().manual_seed(0))
    try:
        block = block_cls(3, 8)
        out = block(x)
    except Exception as err:  # the learner's code: report, don't crash the notebook
        return wrong(f"MyDoubleConv(3, 8) on a (2, 3, 17, 20) input failed: {type(err).__name__}: {err}")
    if returned_nothing(out):
        return pending("`MyDoubleConv` (its forward returns nothing yet)")
    if not isinstance(out, torch.Tensor) or out.shape[:2] != (2, 8):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return wrong(f"Expected (2, 8, 17, 20) out, got {shape}: the block maps in_channels to out_channels.")
    if tuple(out.shape[2:]) != (17, 20):
        return wrong(f"The spatial size changed to {tuple(out.shape[2:])}: use padding=1 with 3x3 kernels.")
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != 2 or any(c.kernel_size != (3, 3) for c in convs):
        return wrong(f"Expected exactly two 3x3 convolutions, found {[c.kernel_size for c in convs]}.")
    if len(norms) != 2:
        return wrong(f"Expected a BatchNorm2d after each convolution, found {len(norms)}.")
    if (out < 0).any():
        return wrong("The block should end with a ReLU (its output is never negative).")
    from ...models import DoubleConv, count_parameters

    course = DoubleConv(3, 8)
    n_mine, n_course = count_parameters(block), count_parameters(course)
    if n_mine == n_course + sum(c.out_channels for c in convs) and all(c.bias is not None for c in convs):
        return wrong("Your convolutions have a bias: BatchNorm subtracts the mean right after, so use bias=False.")
    if n_mine != n_course or not _copy_parameters(block, course):
        return wrong(
            f"Your block has {n_mine:,} parameters, the course's DoubleConv(3, 8) {n_course:,}: use conv_bn_relu "
            "twice, in -> out, then out -> out."
        )
    block.train()
    with torch.no_grad():
        same = torch.allclose(block(x), course.train()(x), atol=1e-5)
    if not same:
        return wrong(
            "With the same weights your block computes something else than the course's DoubleConv: apply "
            "convolution, BatchNorm and ReLU in this order, twice, the second time on the first one's output."
        )
    return correct("Correct: two 3x3 conv + BatchNorm + ReLU layers that keep the spatial size.")


def check_output_size(answer: Any) -> CheckResult:
    """Exercise 2: 64x64 input -> 3x3 conv (no padding) -> 2x2 max-pool -> 3x3 conv (no padding)."""
    if not_attempted(answer):
        return pending("`size_after`")
    if isinstance(answer, (tuple, list)) and len(set(answer)) == 1:
        answer = answer[0]
    if not isinstance(answer, int) or isinstance(answer, bool):
        return wrong(f"Give one whole number (the height = width), got {answer!r}.")
    layers = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    expected = layers(torch.zeros(1, 1, 64, 64)).shape[-1]
    if answer == expected:
        return correct("Correct: 64 - 2 = 62, 62 / 2 = 31, 31 - 2 = 29. An unpadded k x k conv removes k - 1 pixels.")
    if answer == 30:
        return wrong("Close: pool first halves 62 to 31; the second conv then removes 2 more pixels.")
    if answer in (28, 32):
        return wrong("An unpadded 3x3 convolution removes 2 pixels per axis (1 on each side), not 4 or 0.")
    return wrong("Go step by step: each unpadded 3x3 conv removes 2 pixels, the 2x2 pool halves (rounding down).")


def check_valid_input_size(answer: Any, depth: int = 4) -> CheckResult:
    """Exercise 3: the smallest square size >= 100 that a ``depth``-level U-Net accepts."""
    if not_attempted(answer):
        return pending("`smallest_size`")
    if not isinstance(answer, int) or isinstance(answer, bool):
        return wrong(f"Give one whole number, got {answer!r}.")
    divisor = 2 ** (depth - 1)
    expected = -(-100 // divisor) * divisor
    if answer == expected:
        return correct(
            f"Correct: {depth - 1} poolings halve the size {depth - 1} times, so it must be a multiple "
            f"of 2**{depth - 1} = {divisor}; the decoder can then double back to the exact size."
        )
    if answer < 100:
        return wrong(f"{answer} is below 100: the question asks for a size of at least 100 pixels.")
    if answer == 128:
        return wrong("Powers of two work, but a multiple of the divisor is enough: there is a smaller size >= 100.")
    if answer % divisor == 0 and answer > expected:
        return wrong(f"{answer} works, but there is a smaller size >= 100.")
    if depth >= 3 and answer % (divisor // 2) == 0:
        return wrong(
            f"{answer} is a multiple of {divisor // 2} = 2**{depth - 2}, enough for a {depth - 1}-level U-Net like "
            f"the one above; depth={depth} pools {depth - 1} times, so the size must be a multiple of 2**{depth - 1}."
        )
    return wrong(
        f"{answer} is not a multiple of {divisor} = 2**(depth - 1): at some level the pooling would "
        "have to halve an odd size, and the upsampled map would no longer match its skip connection."
    )


# ----------------------------------------------------------------------------- the recurrent residual block
def _unit(f: nn.Module, h: torch.Tensor, t: int, reinject: bool = True) -> torch.Tensor:
    """A recurrent unit with the one layer ``f``: ``x1 = f(h)``, then ``t`` times ``x1 = f(h + x1)``
    (``reinject=False``: the slip ``x1 = f(x1)``)."""
    x1 = f(h)
    for _ in range(t):
        x1 = f(h + x1 if reinject else x1)
    return x1


def _slips(course: nn.Module, x: torch.Tensor, t: int) -> dict[str, torch.Tensor]:
    """Outputs of the course block's weights wired with the common slips, keyed by the message that explains each."""
    f1, f2 = course.recurrent1.unit, course.recurrent2.unit
    p = course.projection(x)
    h = _unit(f1, p, t)
    second_adds_p = f2(h)
    for _ in range(t):
        second_adds_p = f2(p + second_adds_p)
    return {
        "Each step must see the unit's input h again: x1 = f(h + x1), not x1 = f(x1) (without h the unit is just "
        "a deeper stack of the same layer).": p + _unit(f2, _unit(f1, p, t, False), t, False),
        "The residual path is missing: return p + r2(r1(p)), p being the projection of x.": _unit(f2, h, t),
        "The second unit must add its own input (the first unit's output) at every step, not p.": p + second_adds_p,
    }


def _counting_calls(modules: list[nn.Module]) -> tuple[dict[int, int], Callable[[], None]]:
    """Forward-call counters for ``modules`` (by id) and a function that removes the hooks."""
    calls = {id(m): 0 for m in modules}

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        calls[id(module)] += 1

    handles = [m.register_forward_hook(hook) for m in modules]
    return calls, lambda: [h.remove() for h in handles]


def _compare_recurrent(block_cls: type, t: int, norm: str | None) -> CheckResult | None:
    """``None`` when ``block_cls(3, 6, recurrence=t, norm=norm)`` matches the course block, else the result to show."""
    from ...models import RecurrentConv, RecurrentResidualBlock, count_parameters

    in_ch, out_ch = 3, 6
    call = f"MyRecurrentResidualBlock({in_ch}, {out_ch}, recurrence={t}, norm={norm!r})"
    torch.manual_seed(0)
    try:
        mine = block_cls(in_ch, out_ch, recurrence=t, norm=norm)
    except Exception as err:
        return wrong(f"{call} failed: {type(err).__name__}: {err}")
    if any(isinstance(m, (RecurrentConv, RecurrentResidualBlock)) for m in mine.modules()):
        return wrong("Write the recurrence yourself: your block uses course_utils' RecurrentConv, the course answer.")
    convs = [m for m in mine.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    x = torch.randn(2, in_ch, 9, 11, generator=torch.Generator().manual_seed(t))
    calls, remove = _counting_calls(convs)
    try:
        out = mine.train()(x)
    except Exception as err:
        return wrong(f"{call} on a (2, {in_ch}, 9, 11) input failed: {type(err).__name__}: {err}")
    finally:
        remove()
    if returned_nothing(out):
        return pending("`MyRecurrentResidualBlock` (its forward returns nothing yet)")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, out_ch, 9, 11):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return wrong(f"{call} should map (2, {in_ch}, 9, 11) to (2, {out_ch}, 9, 11), got {shape}.")
    course = RecurrentResidualBlock(in_ch, out_ch, recurrence=t, norm=norm)
    n_mine, n_course = count_parameters(mine), count_parameters(course)
    if len(convs) > 2:
        return wrong(
            f"With recurrence={t} your block holds {len(convs)} 3x3 convolutions ({n_mine:,} parameters, the course "
            f"block {n_course:,}). A recurrent unit creates ONE convolution in __init__ and calls it t + 1 times in "
            "forward: its steps share that one weight."
        )
    if len(convs) < 2:
        return wrong(
            f"Found {len(convs)} 3x3 convolution(s) (nn.Conv2d, e.g. inside ConvNormAct); the block has two recurrent "
            "units, each with its own 3x3 convolution that it reuses at every step."
        )
    runs = [calls[id(c)] for c in convs]
    if runs != [t + 1, t + 1]:
        if runs == [1, 1]:
            return wrong(
                f"Each unit ran once; with recurrence={t} it runs t + 1 = {t + 1} times: x1 = f(h), then t "
                "times x1 = f(h + x1)."
            )
        if runs == [t, t]:
            return wrong(
                f"Each unit ran {t} times; it runs t + 1 = {t + 1} times: once as x1 = f(h), then t more "
                "times as x1 = f(h + x1)."
            )
        return wrong(
            f"Your two 3x3 convolutions ran {runs[0]} and {runs[1]} times in one forward pass with "
            f"recurrence={t}; each unit runs its one convolution t + 1 = {t + 1} times."
        )
    if n_mine != n_course:
        biases = sum(c.bias.numel() for c in convs if c.bias is not None)
        if norm is not None and biases and n_mine - n_course == biases:
            return wrong(
                "Your 3x3 convolutions have a bias; a convolution followed by a normalisation needs none "
                "(its shift replaces it). ConvNormAct(channels, channels, norm=norm) sets this up for you."
            )
        if norm is None and n_course - n_mine == 2 * out_ch:
            return wrong(
                "With norm=None nothing shifts after the 3x3 convolutions, so they need their bias: "
                "ConvNormAct(channels, channels, norm=norm) sets this up for you."
            )
        if not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in mine.modules()):
            return wrong(
                "The block starts with a 1x1 convolution (with bias) from in_channels to out_channels, "
                "p = projection(x): the units and the residual sum work on out_channels channels."
            )
        return wrong(
            f"{call} has {n_mine:,} parameters, the course block {n_course:,}: a 1x1 projection (with "
            f"bias), then per unit one 3x3 convolution and its normalisation norm={norm!r}."
        )
    if not _copy_parameters(mine, course):
        return wrong(
            "Create the layers in __init__ in the order they are used: the projection, then the first "
            "unit's convolution and norm, then the second's (the check copies your weights in that order)."
        )
    course.train()
    expected = course(x)
    if not torch.allclose(out, expected, rtol=1e-4, atol=1e-5):
        with torch.no_grad():
            for message, slip in _slips(course, x, t).items():
                if torch.allclose(out, slip, rtol=1e-4, atol=1e-5):
                    return wrong(message)
        return wrong(
            f"With the course block's weights, {call} gives another output. Per unit: x1 = f(h), then t "
            "times x1 = f(h + x1), h being the unit's input; the block returns p + r2(r1(p))."
        )
    grad_slip = wrong(
        "Same output, but other gradients: do not detach x1 (or use torch.no_grad) inside the loop; autograd must "
        "add up, on the one shared weight, what every step contributes."
    )
    if not out.requires_grad:
        return grad_slip
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    for a, b in zip(mine.parameters(), course.parameters()):
        if a.grad is None or not torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-5):
            return grad_slip
    return None


def check_recurrent_block(block_cls: Any) -> CheckResult:
    """Exercise 4: ``block_cls(in_channels, out_channels, recurrence=t, norm=norm)``, the R2U-Net block.

    ``p = projection(x)`` (1x1 conv), then ``p + r2(r1(p))``, where each recurrent unit applies ONE conv-norm-ReLU
    ``f`` ``t + 1`` times: ``x1 = f(h)``, then ``t`` times ``x1 = f(h + x1)``. Given the learner's weights,
    :class:`course_utils.models.RecurrentResidualBlock` must give the same output and the same gradients, for
    several ``t`` and norms; each unit must hold one 3x3 convolution and run it ``t + 1`` times.
    """
    if not_attempted(block_cls):
        return pending("`MyRecurrentResidualBlock`")
    if not isinstance(block_cls, type) or not issubclass(block_cls, nn.Module):
        return wrong("Pass the class itself (a subclass of nn.Module), e.g. MyRecurrentResidualBlock, not an instance.")
    for t, norm in ((2, "group"), (3, None), (1, "batch")):
        result = _compare_recurrent(block_cls, t, norm)
        if result is not None:
            return result
    return correct(
        "Correct: given the same weights, your block and the course's RecurrentResidualBlock give the same output "
        "and the same gradients (t = 1, 2, 3; group, batch and no norm). Each unit runs its one convolution t + 1 "
        "times, so that weight's gradient adds up what all t + 1 steps contribute."
    )


# ----------------------------------------------------------------------------- the recurrence experiment
def _change(before: float, after: float) -> str:
    return "same" if after == before else ("larger" if after > before else "smaller")


def _as_change(answer: Any) -> str | None:
    text = str(answer).strip().strip("'\"").lower() if isinstance(answer, str) else None
    return {"more": "larger", "fewer": "smaller", "less": "smaller", "unchanged": "same"}.get(text, text)


def check_recurrence_experiment(parameters_change: Any, receptive_field_change: Any, measured: Any) -> CheckResult:
    """Exercise 5: the experiment: the block with ``t = 2`` and with ``t_more`` recurrences; ``measured`` maps each
    ``t`` to ``{"parameters": int, "receptive_field": int}``. The answers say how each changed from ``t = 2``:
    ``"smaller"``, ``"same"`` or ``"larger"`` (what was measured, which weight sharing guarantees for the parameters).
    """
    missing = [
        name
        for name, a in (("parameters_change", parameters_change), ("receptive_field_change", receptive_field_change))
        if not_attempted(a)
    ]
    if missing:
        return pending(" and ".join(f"`{name}`" for name in missing))
    try:
        rows = {int(t): (int(m["parameters"]), int(m["receptive_field"])) for t, m in dict(measured).items()}
    except (TypeError, ValueError, KeyError):
        return wrong("Pass `measured` as the cell above filled it: {t: {'parameters': ..., 'receptive_field': ...}}.")
    others = sorted(t for t in rows if t != 2)
    if 2 not in rows or not others:
        return wrong("Set t_more to another number of recurrences than 2 (3, say) and run the measuring cell again.")
    t_more = others[0]
    (p2, r2), (p_more, r_more) = rows[2], rows[t_more]
    answers = {
        "parameters_change": _as_change(parameters_change),
        "receptive_field_change": _as_change(receptive_field_change),
    }
    for name, answer in answers.items():
        if answer not in CHANGES:
            return wrong(f"Answer {name} with one of {', '.join(repr(c) for c in CHANGES)}.")
    if p_more != p2:
        return wrong(
            f"The block in use has {p2:,} parameters with t = 2 and {p_more:,} with t = {t_more}: it does not "
            "share its weights across the steps. Make Exercise 4 pass first."
        )
    seen_p, seen_r = _change(p2, p_more), _change(r2, r_more)
    steps = abs(t_more - 2)
    change = f"{steps} step{'s' if steps > 1 else ''} {'more' if t_more > 2 else 'fewer'}"
    verb = "changes" if steps == 1 else "change"
    why_p = f"each unit reuses its one convolution at every step, so {change} {verb} the computation, not the weights"
    why_r = (
        "each step applies the unit's 3x3 convolution once more, to a map that already mixes neighbours: 2 pixels "
        f"per step and unit, two units, so {r2} -> {r_more} px"
    )
    if answers["parameters_change"] != seen_p:
        return wrong(
            f"Look at the parameter counts: {p2:,} with t = 2, {p_more:,} with t = {t_more} ({seen_p}). Why: {why_p}."
        )
    if answers["receptive_field_change"] != seen_r:
        return wrong(
            f"Look at the receptive fields: {r2} px with t = 2, {r_more} px with t = {t_more} ({seen_r}). Why: {why_r}."
        )
    return correct(
        f"Correct: t = 2 -> {t_more}: parameters {p2:,} -> {p_more:,} (the same: {why_p}); receptive "
        f"field {seen_r} ({why_r}). More steps cost time, not weights."
    )


def check_recurrent_parameters(answer: Any) -> CheckResult:
    """Exercise 6: parameters of ``RecurrentConv(16, recurrence=3)`` (3x3 conv without bias + BatchNorm)."""
    if not_attempted(answer):
        return pending("`n_params_recurrent`")
    if not isinstance(answer, int) or isinstance(answer, bool):
        return wrong(f"Give one whole number, got {answer!r}.")
    from ...models import RecurrentConv, count_parameters

    expected = count_parameters(RecurrentConv(16, recurrence=3))
    if answer == expected:
        return correct(
            f"Correct: one 16 x 16 x 3 x 3 kernel ({16 * 16 * 9}) plus BatchNorm's scale and shift (32). "
            "Applying it 4 times costs compute, not parameters."
        )
    if answer in (4 * expected, 3 * expected):
        return wrong(
            "The unit is applied several times, but it is the same convolution each time: count its weights once."
        )
    if answer == expected + 16:
        return wrong("A convolution followed by BatchNorm needs no bias (BatchNorm's shift replaces it).")
    if answer == 16 * 16 * 9:
        return wrong("You counted the kernel; BatchNorm2d(16) adds a learned scale and shift per channel.")
    return wrong("Count one 3x3 convolution from 16 to 16 channels (no bias) and one BatchNorm2d(16).")


__all__ = [
    "check_double_conv",
    "check_output_size",
    "check_valid_input_size",
    "check_recurrent_block",
    "check_recurrence_experiment",
    "check_recurrent_parameters",
]
