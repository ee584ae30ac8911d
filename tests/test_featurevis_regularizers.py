"""Regularisers (hand-computed), transformations and image parameterisations."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.featurevis import (
    FourierImage,
    PixelImage,
    jitter,
    l2_penalty,
    make_image,
    random_rotate_scale,
    spectrum_scale,
    total_variation,
)

torch.set_num_threads(1)


def test_total_variation_by_hand_2d():
    x = torch.tensor([[1.0, 2.0], [4.0, 8.0]]).view(1, 1, 2, 2)
    # horizontal |2-1| + |8-4| = 5, vertical |4-1| + |8-2| = 9
    assert total_variation(x).item() == pytest.approx(14.0)
    assert total_variation(x, power=2).item() == pytest.approx(1 + 16 + 9 + 36)
    assert total_variation(x, reduction="mean").item() == pytest.approx(14.0 / 4)
    two_channels = torch.cat([x, -x], dim=1)  # channels add up, sign does not matter
    assert total_variation(two_channels).item() == pytest.approx(28.0)


def test_total_variation_by_hand_3d_and_constant_image():
    x = torch.zeros(1, 1, 2, 2, 2)
    x[0, 0, 1, 1, 1] = 3.0  # one corner voxel: 3 neighbours differ by 3
    assert total_variation(x).item() == pytest.approx(9.0)
    assert total_variation(torch.full((2, 3, 5, 5), 7.0)).item() == 0.0
    with pytest.raises(ValueError, match="B, C, H, W"):
        total_variation(torch.zeros(5, 5))
    with pytest.raises(ValueError, match="reduction"):
        total_variation(x, reduction="max")


def test_l2_penalty_by_hand():
    x = torch.tensor([1.0, -2.0, 3.0, 0.0]).view(1, 1, 2, 2)
    assert l2_penalty(x).item() == pytest.approx((1 + 4 + 9) / 4)


def test_jitter_is_a_reproducible_circular_shift():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    a = jitter(x, 2, generator=torch.Generator().manual_seed(5))
    b = jitter(x, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.equal(a.sort(dim=-1).values.sum(), x.sum())  # same values, moved
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    assert any(torch.equal(a, torch.roll(x, s, dims=(2, 3))) for s in shifts)
    assert torch.equal(jitter(x, 0), x)
    vol = torch.rand(1, 1, 4, 6, 6)
    assert jitter(vol, 1, generator=torch.Generator().manual_seed(0)).shape == vol.shape


def test_rotate_scale_identity_reproducible_and_3d():
    x = torch.rand(1, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(random_rotate_scale(x), x)
    a = random_rotate_scale(x, 10, (0.9, 1.1), generator=torch.Generator().manual_seed(1))
    b = random_rotate_scale(x, 10, (0.9, 1.1), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    # A centred disk hardly changes under rotation only.
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disk = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2) < 64).float().view(1, 1, 32, 32)
    rotated = random_rotate_scale(disk, 45, generator=torch.Generator().manual_seed(2))
    assert (rotated - disk).abs().mean() < 0.03
    # Zooming in (scale 2) makes the disk larger.
    zoomed = random_rotate_scale(disk, 0, (2.0, 2.0))
    assert zoomed.sum() > 3 * disk.sum()
    vol = torch.rand(1, 1, 4, 8, 8)
    assert random_rotate_scale(vol, 10, (0.9, 1.1), generator=torch.Generator().manual_seed(0)).shape == vol.shape
    with pytest.raises(ValueError, match="scale_range"):
        random_rotate_scale(x, 0, (1.2, 1.1))


@pytest.mark.parametrize("spatial", [(16, 16), (4, 8, 8)])
@pytest.mark.parametrize("channels", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["pixel", "fourier"])
def test_parameterizations_shapes_and_ranges(kind, channels, spatial):
    image = make_image(kind, channels, spatial, generator=torch.Generator().manual_seed(0))()
    assert image.shape == (1, channels, *spatial)
    assert image.min() >= 0.0 and image.max() <= 1.0
    raw = make_image(kind, channels, spatial, value_range=None, generator=torch.Generator().manual_seed(0))()
    assert raw.min() < 0 < raw.max()
    image.sum().backward()  # gradients reach the parameters


def test_parameterizations_reproducible_under_a_seed():
    a = FourierImage(3, (16, 16), generator=torch.Generator().manual_seed(3))()
    b = FourierImage(3, (16, 16), generator=torch.Generator().manual_seed(3))()
    c = FourierImage(3, (16, 16), generator=torch.Generator().manual_seed(4))()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_spectrum_scale_by_hand():
    scale = spectrum_scale((8, 8), decay_power=1.0)
    assert scale.shape == (8, 5)
    assert scale[0, 0].item() == pytest.approx(8.0)  # DC clamped at 1 / (1/8)
    assert scale[0, 4].item() == pytest.approx(2.0)  # 0.5 cycles / pixel
    assert scale[1, 1].item() == pytest.approx(1 / math.hypot(1 / 8, 1 / 8))
    assert torch.all(spectrum_scale((8, 8), decay_power=0.0) == 1.0)


def test_fourier_start_is_smoother_than_pixels_at_equal_spread():
    g = torch.Generator().manual_seed(0)
    pixel = PixelImage(1, (64, 64), value_range=None, generator=g)()
    fourier = FourierImage(1, (64, 64), value_range=None, generator=g)()
    assert 0.2 < fourier.std() / pixel.std() < 2.0  # comparable spread
    steeper = FourierImage(1, (64, 64), value_range=None, decay_power=2.0, generator=g)()

    def tv_per_std(im):
        return float(total_variation(im.detach()) / im.detach().std())

    # 1/f weighting moves energy to low frequencies: less variation per unit of spread,
    # the more so the steeper the decay.
    assert tv_per_std(fourier) < 0.75 * tv_per_std(pixel)
    assert tv_per_std(steeper) < 0.5 * tv_per_std(fourier)


def test_bad_parameterization_arguments():
    with pytest.raises(ValueError, match="parameterization"):
        make_image("wavelet", 1, (8, 8))
    with pytest.raises(ValueError, match="channels"):
        PixelImage(0, (8, 8))
    with pytest.raises(ValueError, match="spatial"):
        PixelImage(1, (8,))
    with pytest.raises(ValueError, match="value_range"):
        PixelImage(1, (8, 8), value_range=(1.0, 0.0))
