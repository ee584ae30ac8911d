"""How the optimised image is represented: pixels directly, or a Fourier spectrum.

Both are ``nn.Module`` s whose ``forward()`` returns the image ``(1, C, *spatial)``; their
parameters are what gradient ascent changes. With ``value_range=(lo, hi)`` the image is squashed
into that range by a sigmoid (e.g. ``(0, 1)`` for photographs); ``None`` leaves it unbounded
(e.g. z-scored MRI).

:class:`FourierImage` (Olah et al., Distill 2017) stores the image's spectrum scaled by
``1 / frequency**decay_power``: a step changes low frequencies as much as high ones, which
decorrelates the pixels and removes most of the high-frequency noise plain pixels produce.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _check_shape(channels: int, spatial: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    spatial = tuple(int(s) for s in spatial)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}.")
    if len(spatial) not in (2, 3) or min(spatial) < 1:
        raise ValueError(f"spatial must be (H, W) or (D, H, W) with positive sizes, got {spatial}.")
    return channels, spatial


class _ImageParameterization(nn.Module):
    def __init__(self, value_range: tuple[float, float] | None):
        super().__init__()
        if value_range is not None and not value_range[0] < value_range[1]:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}.")
        self.value_range = None if value_range is None else (float(value_range[0]), float(value_range[1]))

    def raw(self) -> torch.Tensor:
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        """The image ``(1, C, *spatial)``, inside ``value_range`` if one was given."""
        raw = self.raw()
        if self.value_range is None:
            return raw
        low, high = self.value_range
        return low + (high - low) * torch.sigmoid(raw)


class PixelImage(_ImageParameterization):
    """One parameter per pixel/voxel, initialised with ``N(0, init_std)`` (before the squashing)."""

    def __init__(
        self,
        channels: int,
        spatial: Sequence[int],
        *,
        init_std: float = 0.5,
        value_range: tuple[float, float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None,
    ):
        super().__init__(value_range)
        channels, spatial = _check_shape(channels, spatial)
        self.pixels = nn.Parameter(torch.randn(1, channels, *spatial, generator=generator) * init_std)

    def raw(self) -> torch.Tensor:
        return self.pixels


def spectrum_scale(spatial: Sequence[int], decay_power: float = 1.0) -> torch.Tensor:
    """``1 / max(|f|, 1/max(size))**decay_power`` on the ``rfftn`` grid of ``spatial`` (``|f|`` in cycles/pixel).

    Shape ``(*spatial[:-1], spatial[-1] // 2 + 1)``.
    """
    spatial = tuple(spatial)
    axes = [torch.fft.fftfreq(n) for n in spatial[:-1]] + [torch.fft.rfftfreq(spatial[-1])]
    grids = torch.meshgrid(*axes, indexing="ij")
    freq = torch.sqrt(sum(g**2 for g in grids))
    return 1.0 / freq.clamp(min=1.0 / max(spatial)) ** decay_power


class FourierImage(_ImageParameterization):
    """The image as a scaled Fourier spectrum (real and imaginary parts), ``torch.fft.irfftn`` of it.

    The spectrum is initialised with ``N(0, init_std)``; ``scale`` makes the initial pixel standard
    deviation about ``init_std`` whatever the size, so the two parameterisations start comparably.
    """

    def __init__(
        self,
        channels: int,
        spatial: Sequence[int],
        *,
        init_std: float = 0.5,
        decay_power: float = 1.0,
        value_range: tuple[float, float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None,
    ):
        super().__init__(value_range)
        channels, spatial = _check_shape(channels, spatial)
        self.spatial = spatial
        scale = spectrum_scale(spatial, decay_power)
        # With norm="ortho", white noise of variance 2 s**2 per complex coefficient (s**2 for the real
        # and for the imaginary part) gives pixels of variance about 2 s**2 (conjugate pairs);
        # dividing by sqrt(2) and by the RMS of the 1/f weights brings the pixel std near s.
        scale = scale / (scale.pow(2).mean().sqrt() * 2**0.5)
        self.register_buffer("scale", scale)
        self.spectrum = nn.Parameter(torch.randn(1, channels, *scale.shape, 2, generator=generator) * init_std)

    def raw(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        dims = tuple(range(2, 2 + len(self.spatial)))
        return torch.fft.irfftn(spectrum, s=self.spatial, dim=dims, norm="ortho")


PARAMETERIZATIONS = ("pixel", "fourier")


def make_image(
    kind: str,
    channels: int,
    spatial: Sequence[int],
    *,
    init_std: float = 0.5,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    decay_power: float = 1.0,
    generator: torch.Generator | None = None,
) -> _ImageParameterization:
    """``"pixel"`` -> :class:`PixelImage`, ``"fourier"`` -> :class:`FourierImage`."""
    if kind == "pixel":
        return PixelImage(channels, spatial, init_std=init_std, value_range=value_range, generator=generator)
    if kind == "fourier":
        return FourierImage(
            channels, spatial, init_std=init_std, decay_power=decay_power, value_range=value_range, generator=generator
        )
    raise ValueError(f"parameterization={kind!r} is not supported; choose one of {PARAMETERIZATIONS}.")
