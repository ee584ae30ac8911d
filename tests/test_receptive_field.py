"""Receptive fields: textbook recurrence by hand, U-Net analytic vs measured by back-propagation."""

from __future__ import annotations

import warnings
from fractions import Fraction

import pytest
import torch
from torch import nn

from course_utils.models import (
    UNet,
    conv_receptive_field,
    empirical_receptive_field,
    unet_layers,
    unet_receptive_field,
    unet_receptive_window,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------- textbook recurrence
@pytest.mark.parametrize(
    "layers,expected",
    [
        ([], 1),
        ([(3, 1)], 3),
        ([(3, 1)] * 3, 7),  # three stacked 3x3 = one 7x7 (VGG argument)
        ([(3, 1), (2, 2), (3, 1)], 8),  # 1 + 2 + 1 + 2*2
        ([(3, 1, 2)], 5),  # dilation 2: effective kernel 5
        ([(3, 1, 1), (3, 1, 2), (3, 1, 4)], 15),  # 1 + 2 + 4 + 8
        ([(7, 2), (3, 2), (3, 1)], 19),  # 1 + 6 + 2*2 + 4*2
        ([(2, 2), (1, Fraction(1, 2))], 2),  # pool then nearest/transposed upsampling
        ([(2, 2), (2, 0.5)], 4),  # pool then linear upsampling: 1 + 1 + 2*1
    ],
)
def test_conv_receptive_field_by_hand(layers, expected):
    assert conv_receptive_field(layers) == expected


def test_conv_receptive_field_errors():
    with pytest.raises(ValueError, match="kernel, stride"):
        conv_receptive_field([(3,)])
    with pytest.raises(ValueError, match="beyond the input resolution"):
        conv_receptive_field([(1, 0.5), (2, 1)])  # 1 + 1 * 1/2 pixels


@pytest.mark.parametrize(
    "layers",
    [
        [(3, 1), (3, 2), (3, 1)],
        [(5, 1), (2, 2), (3, 1, 2), (3, 2), (3, 1)],
    ],
)
def test_conv_receptive_field_matches_measurement(layers):
    convs, channels = [], 1
    for kernel, stride, *dil in layers:
        d = dil[0] if dil else 1
        convs.append(nn.Conv2d(channels, 2, kernel, stride=stride, dilation=d))
        convs.append(nn.ReLU())
        channels = 2
    assert empirical_receptive_field(nn.Sequential(*convs), (1, 1, 64, 64)) == (conv_receptive_field(layers),) * 2


# ---------------------------------------------------------------- analytic U-Net
def test_unet_receptive_field_by_hand():
    # depth 1: two 3x3 convs -> 5.
    assert unet_receptive_field(1) == 5
    # depth 2, output pixel p = 2m: decoder convs see p-2..p+2 -> coarse m-1..m+1 -> bottleneck
    # convs m-3..m+3 -> unpool 2m-6..2m+7 -> encoder convs 2m-8..2m+9: 18 pixels.
    assert unet_receptive_window(2, 10) == (10 - 8, 10 + 9)
    assert unet_receptive_field(2) == 18
    # the textbook recurrence on the deepest path agrees for shallow nets ...
    assert conv_receptive_field(unet_layers(2)) == 18
    assert conv_receptive_field(unet_layers(3)) == unet_receptive_field(3) == 44
    # ... but not at depth 4, where the pooling grid makes the field depend on the pixel
    assert conv_receptive_field(unet_layers(4)) == 96
    sizes = {unet_receptive_field(4, position=p) for p in range(8)}
    assert sizes == {92, 100} and unet_receptive_field(4) == 100


def test_unet_layers_chain():
    layers = unet_layers(2, convs_per_block=1, kernel_size=5, upsampling="interpolate")
    assert layers == [(5, 1), (2, 2), (5, 1), (2, Fraction(1, 2)), (5, 1)]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_field_grows_with_depth_and_block_length(depth):
    assert unet_receptive_field(depth + 1) > unet_receptive_field(depth)
    assert unet_receptive_field(depth, convs_per_block=4) > unet_receptive_field(depth)
    assert unet_receptive_field(depth, upsampling="interpolate") >= unet_receptive_field(depth)


# ---------------------------------------------------------------- analytic == measured
def _measure(model: UNet, size: int) -> tuple[int, ...]:
    shape = (1, model.in_channels) + (size,) * model.dims
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a field clipped by the border would fail the test
        return empirical_receptive_field(model, shape)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("upsampling", ["transpose", "interpolate"])
@pytest.mark.parametrize("size_steps", [16, 17])  # centre pixel at different places in the grid
def test_unet_analytic_equals_empirical_2d(depth, upsampling, size_steps):
    model = UNet(1, 1, depth=depth, base_width=2, norm=None, upsampling=upsampling)
    size = size_steps * model.size_divisor
    expected = unet_receptive_field(depth, upsampling=upsampling, position=size // 2)
    assert _measure(model, size) == (expected, expected)


@pytest.mark.parametrize("block,convs", [("residual", 2), ("recurrent_residual", 2 * (2 + 1))])
def test_unet_analytic_equals_empirical_other_blocks(block, convs):
    model = UNet(2, 1, depth=2, base_width=2, norm="batch", block=block, recurrence=2)
    expected = unet_receptive_field(2, convs_per_block=convs, position=40)
    assert _measure(model, 80) == (expected, expected)


@pytest.mark.parametrize("size", [120, 128])
def test_unet_depth_4_pixel_dependence_is_measured(size):
    model = UNet(1, 1, depth=4, base_width=1, norm=None)
    expected = unet_receptive_field(4, position=size // 2)
    assert expected == {120: 100, 128: 92}[size]  # centre 60 = 4 mod 8, 64 = 0 mod 8
    assert _measure(model, size) == (expected, expected)


def test_unet_analytic_equals_empirical_3d():
    model = UNet(2, 1, dims=3, depth=2, base_width=1, norm="instance")
    assert _measure(model, 24) == (18, 18, 18)


# ---------------------------------------------------------------- empirical tool itself
def test_empirical_does_not_touch_the_model():
    torch.manual_seed(0)
    model = UNet(1, 1, depth=2, base_width=2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    empirical_receptive_field(model, (1, 1, 32, 32))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_empirical_warns_when_the_field_is_clipped():
    model = UNet(1, 1, depth=3, base_width=1, norm=None)
    with pytest.warns(UserWarning, match="larger input_shape"):
        assert empirical_receptive_field(model, (1, 1, 16, 16)) == (16, 16)


def test_empirical_input_shape_must_be_full():
    with pytest.raises(ValueError, match=r"\(B, C, \*spatial\)"):
        empirical_receptive_field(nn.Conv2d(1, 1, 3), (32, 32))
