"""Small helpers around models: counting parameters, padding inputs to a size the U-Net accepts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..validate import check_choice

PAD_MODES = ("reflect", "replicate", "constant")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (shared parameters counted once).

    ``trainable_only=True`` counts only those with ``requires_grad``.
    Buffers (e.g. BatchNorm running statistics) are not parameters and are not counted.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"count_parameters expects an nn.Module, got {type(model).__name__}.")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _per_axis(multiple: int | Sequence[int], n_axes: int) -> tuple[int, ...]:
    values = (multiple,) * n_axes if isinstance(multiple, int) else tuple(multiple)
    if len(values) != n_axes or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in values):
        raise ValueError(
            f"multiple must be a positive int or {n_axes} positive ints (one per "
            f"spatial axis), got {multiple!r}; for a U-Net use model.size_divisor."
        )
    return values


def pad_to_multiple(
    x: torch.Tensor, multiple: int | Sequence[int], mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Pad the spatial axes of ``x`` ``(B, C, *spatial)`` (1 to 3 spatial axes) up to multiples of ``multiple``.

    Padding is symmetric: ``before = total // 2``, ``after = total - before`` on each axis.
    Returns ``(padded, crop_slices)``; ``padded[crop_slices]`` (or ``crop_to(output, crop_slices)``
    on a model output with any channel count) gives back the original spatial extent.

    ``mode``: ``"reflect"`` (mirror without repeating the edge; avoids artificial borders),
    ``"replicate"`` (repeat the edge value) or ``"constant"`` (zeros). Reflect padding needs
    the pad on every axis to be smaller than that axis's size; for inputs too small for that
    it falls back to ``"replicate"`` for the whole tensor.
    """
    if not isinstance(x, torch.Tensor) or not 3 <= x.ndim <= 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"pad_to_multiple expects a tensor (B, C, *spatial) with 1 to 3 spatial "
            f"axes, got {shape}; add batch/channel axes with x[None, None] if needed."
        )
    check_choice("mode", mode, PAD_MODES)
    spatial = tuple(x.shape[2:])
    multiples = _per_axis(multiple, len(spatial))
    befores, afters = [], []
    for size, m in zip(spatial, multiples):
        total = -(-size // m) * m - size
        befores.append(total // 2)
        afters.append(total - total // 2)
    crop = (slice(None), slice(None)) + tuple(slice(b, b + s) for b, s in zip(befores, spatial))
    if not any(befores) and not any(afters):
        return x, crop
    if mode == "reflect" and any(max(b, a) >= s for b, a, s in zip(befores, afters, spatial)):
        mode = "replicate"
    # F.pad takes (last-axis before, last-axis after, second-to-last before, ...).
    pad: list[int] = []
    for b, a in zip(reversed(befores), reversed(afters)):
        pad += [b, a]
    if mode == "constant":
        return F.pad(x, pad, mode="constant", value=0.0), crop
    return F.pad(x, pad, mode=mode), crop


def crop_to(x: torch.Tensor, crop_slices: tuple[slice, ...]) -> torch.Tensor:
    """``x[crop_slices]`` after checking that ``x`` has as many axes as the padded input did."""
    if x.ndim != len(crop_slices):
        raise ValueError(
            f"crop_slices are for {len(crop_slices)}-D tensors (B, C, *spatial), "
            f"got a {x.ndim}-D tensor of shape {tuple(x.shape)}."
        )
    for axis, sl in enumerate(crop_slices[2:], start=2):
        if sl.stop is not None and sl.stop > x.shape[axis]:
            raise ValueError(
                f"axis {axis} of shape {tuple(x.shape)} is smaller than the padded "
                f"size these crop_slices were made for (needs >= {sl.stop})."
            )
    return x[crop_slices]
