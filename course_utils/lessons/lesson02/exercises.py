"""Self-checks for lesson 02 (U-Net from scratch)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...selfcheck import CheckResult, correct, not_attempted, pending, wrong


def check_double_conv(block_cls: Any) -> CheckResult:
    """Exercise 1: ``block_cls(in_channels, out_channels)`` = (3x3 conv, BatchNorm, ReLU) twice, size kept."""
    if not_attempted(block_cls):
        return pending("`MyDoubleConv`")
    if not isinstance(block_cls, type) or not issubclass(block_cls, nn.Module):
        return wrong("Pass the class itself (a subclass of nn.Module), e.g. MyDoubleConv, not an instance.")
    try:
        block = block_cls(3, 8)
        out = block(torch.randn(2, 3, 17, 20))
    except Exception as err:
        return wrong(f"MyDoubleConv(3, 8) on a (2, 3, 17, 20) input failed: {type(err).__name__}: {err}")
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
    if answer % divisor == 0 and answer > expected:
        return wrong(f"{answer} works, but there is a smaller size >= 100.")
    if answer == 128:
        return wrong("Powers of two work, but a multiple of the divisor is enough.")
    return wrong(
        f"{answer} is not a multiple of {divisor} = 2**(depth - 1): at some level the pooling would "
        "have to halve an odd size, and the upsampled map would no longer match its skip connection."
    )


def check_recurrent_parameters(answer: Any) -> CheckResult:
    """Exercise 4: parameters of ``RecurrentConv(16, recurrence=3)`` (3x3 conv without bias + BatchNorm)."""
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
    return wrong("Count one 3x3 convolution from 16 to 16 channels (no bias) and one BatchNorm2d(16).")


__all__ = ["check_double_conv", "check_output_size", "check_valid_input_size", "check_recurrent_parameters"]
