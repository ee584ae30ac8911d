"""Regularisers and random transformations that keep activation-maximisation images interpretable.

* :func:`l2_penalty`: mean squared value (Simonyan et al. 2013): pulls every pixel towards 0
  (the mean image only when the inputs are normalised to mean 0).
* :func:`total_variation`: differences between neighbouring pixels/voxels (Mahendran & Vedaldi 2015):
  favours smooth, piecewise constant images.
* :func:`jitter`, :func:`random_rotate_scale`: small random shifts, rotations and scalings applied
  before each step (Olah et al. 2017, "transformation robustness"): the pattern must work wherever
  it lands, so high-frequency noise that only works at one exact position is discouraged.

All take ``(B, C, H, W)`` or ``(B, C, D, H, W)`` tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..validate import check_choice


def _check_image(x: torch.Tensor, what: str) -> int:
    if not isinstance(x, torch.Tensor) or x.ndim not in (4, 5):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} expects (B, C, H, W) or (B, C, D, H, W), got {shape}.")
    return x.ndim - 2


def l2_penalty(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x**2`` over all elements (a scalar)."""
    _check_image(x, "l2_penalty")
    return x.pow(2).mean()


def total_variation(x: torch.Tensor, power: float = 1.0, reduction: str = "sum") -> torch.Tensor:
    """Anisotropic total variation: ``sum over spatial axes a, over positions i of |x[i+1]-x[i]|**power``.

    ``reduction="sum"`` adds every difference; ``"mean"`` divides by the number of elements of
    ``x`` (so that the weight does not depend on the image size). ``power=2`` gives the squared
    (smoother) variant. Example by hand: ``[[1, 2], [4, 8]]`` has horizontal differences 1 and 4,
    vertical 3 and 6: TV = 14.
    """
    dims = _check_image(x, "total_variation")
    check_choice("reduction", reduction, ("sum", "mean"))
    total = x.new_zeros(())
    for axis in range(2, 2 + dims):
        total = total + torch.diff(x, dim=axis).abs().pow(power).sum()
    return total / x.numel() if reduction == "mean" else total


def jitter(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift every spatial axis by a random whole number of pixels in ``[-max_shift, max_shift]`` (circular)."""
    dims = _check_image(x, "jitter")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}.")
    if max_shift == 0:
        return x
    shifts = torch.randint(-max_shift, max_shift + 1, (dims,), generator=generator).tolist()
    return torch.roll(x, shifts=shifts, dims=tuple(range(2, 2 + dims)))


def random_rotate_scale(
    x: torch.Tensor,
    max_degrees: float = 0.0,
    scale_range: tuple[float, float] = (1.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate (in the H-W plane) by a random angle in ``[-max_degrees, max_degrees]`` and zoom by a
    random factor in ``scale_range``, about the centre; the size is kept, borders are mirrored.
    """
    dims = _check_image(x, "random_rotate_scale")
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}.")
    if max_degrees == 0 and low == high == 1.0:
        return x
    u = torch.rand(2, generator=generator).tolist()
    angle = math.radians((2 * u[0] - 1) * max_degrees)
    scale = low + (high - low) * u[1]
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    batch = x.shape[0]
    if dims == 2:
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
    else:
        # grid coordinates are (x=W, y=H, z=D): rotate x-y, scale z.
        theta = torch.tensor(
            [[cos, -sin, 0.0, 0.0], [sin, cos, 0.0, 0.0], [0.0, 0.0, 1 / scale, 0.0]], dtype=x.dtype, device=x.device
        )
    grid = F.affine_grid(theta.expand(batch, *theta.shape), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
