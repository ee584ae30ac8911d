"""Blocks of the course U-Net: shapes, hand-counted parameters, residual and recurrent behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.errors import ConfigError
from course_utils.models import (
    ConvNormAct,
    DoubleConv,
    RecurrentConv,
    RecurrentResidualBlock,
    ResidualBlock,
    count_parameters,
    make_block,
    make_norm,
    make_upsampling,
)

torch.set_num_threads(1)


def _input(dims: int, channels: int, size: int = 6, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, channels) + (size,) * dims, generator=g)


# ---------------------------------------------------------------- norms
@pytest.mark.parametrize("dims", [2, 3])
def test_make_norm_kinds(dims):
    assert isinstance(make_norm("batch", 4, dims), {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims])
    inst = make_norm("instance", 4, dims)
    assert isinstance(inst, {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims]) and inst.affine
    assert isinstance(make_norm(None, 4, dims), nn.Identity)
    assert isinstance(make_norm("none", 4, dims), nn.Identity)


@pytest.mark.parametrize("channels,groups", [(16, 8), (12, 6), (6, 6), (5, 5), (9, 3), (7, 7), (11, 1)])
def test_group_norm_uses_a_divisor_of_at_most_8(channels, groups):
    norm = make_norm("group", channels, 2)
    assert isinstance(norm, nn.GroupNorm)
    assert norm.num_groups == groups
    norm(torch.randn(2, channels, 3, 3))  # GroupNorm itself refuses a non-divisor


def test_make_norm_rejects_unknown_kind_with_hint():
    with pytest.raises(ConfigError, match="Did you mean 'batch'"):
        make_norm("batchnorm", 4, 2)
    with pytest.raises(ConfigError, match="dims=3 for volumes"):
        make_norm("batch", 4, 1)


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("kind", ["double_conv", "residual", "recurrent_residual"])
@pytest.mark.parametrize("norm", ["batch", "instance", "group", None])
def test_blocks_keep_spatial_size_and_set_channels(dims, kind, norm):
    block = make_block(kind, 3, 4, dims=dims, norm=norm, recurrence=2)
    out = block(_input(dims, 3, size=5))
    assert out.shape == (2, 4) + (5,) * dims


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("kind", ["transpose", "interpolate"])
def test_upsampling_doubles_size(dims, kind):
    up = make_upsampling(kind, 4, 2, dims=dims)
    assert up(_input(dims, 4, size=3)).shape == (2, 2) + (6,) * dims


def test_convs_have_no_bias_when_a_norm_follows():
    assert ConvNormAct(2, 3, norm="batch").conv.bias is None
    assert ConvNormAct(2, 3, norm=None).conv.bias is not None


def test_even_kernel_refused():
    with pytest.raises(ConfigError, match="odd"):
        ConvNormAct(2, 3, kernel_size=4)


# ---------------------------------------------------------------- parameter counts
def test_double_conv_parameter_count_by_hand():
    # conv1: 3 -> 4 channels, 3x3 kernel, no bias (BatchNorm follows): 4*3*9 = 108
    # bn1: weight + bias per channel: 2*4 = 8
    # conv2: 4 -> 4, 3x3: 4*4*9 = 144;  bn2: 8
    assert count_parameters(DoubleConv(3, 4, dims=2, norm="batch")) == 108 + 8 + 144 + 8
    # without norm the convs get a bias of 4 each
    assert count_parameters(DoubleConv(3, 4, dims=2, norm=None)) == (108 + 4) + (144 + 4)
    # 3D: kernels have 27 taps
    assert count_parameters(DoubleConv(3, 4, dims=3, norm=None)) == (4 * 3 * 27 + 4) + (4 * 4 * 27 + 4)


def test_count_parameters_trainable_only_and_shared():
    block = DoubleConv(3, 4, dims=2, norm=None)
    block.conv1.requires_grad_(False)
    assert count_parameters(block) == 260
    assert count_parameters(block, trainable_only=True) == 4 * 4 * 9 + 4
    shared = nn.Sequential(block.conv2, block.conv2)  # one module used twice counts once
    assert count_parameters(shared) == 4 * 4 * 9 + 4
    with pytest.raises(TypeError):
        count_parameters(torch.zeros(3))


def test_residual_block_parameter_count_by_hand():
    # conv1 3->4 (108) + bn (8), conv2 4->4 (144) + bn (8), shortcut 1x1 3->4 (12) + bn (8)
    assert count_parameters(ResidualBlock(3, 4, norm="batch")) == 108 + 8 + 144 + 8 + 12 + 8
    # same channel count: identity shortcut, no parameters
    assert count_parameters(ResidualBlock(4, 4, norm="batch")) == 144 + 8 + 144 + 8
    assert isinstance(ResidualBlock(4, 4).shortcut, nn.Identity)


# ---------------------------------------------------------------- behaviour
def test_residual_block_adds_the_input():
    torch.manual_seed(0)
    block = ResidualBlock(2, 2, norm=None)
    with torch.no_grad():  # silence the main branch: output must be ReLU(x)
        block.conv2.conv.weight.zero_()
        block.conv2.conv.bias.zero_()
    x = _input(2, 2)
    torch.testing.assert_close(block(x), torch.relu(x))


@pytest.mark.parametrize("t,expected", [(1, 0.9), (2, 1.05), (3, 1.125)])
def test_recurrent_conv_matches_hand_computation(t, expected):
    # Only the centre tap is non-zero, so the 3x3 conv is pointwise: f(v) = relu(0.5 v + 0.1).
    # x = 1: x1 = f(1) = 0.6; f(1 + 0.6) = 0.9; f(1 + 0.9) = 1.05; f(1 + 1.05) = 1.125.
    unit = RecurrentConv(1, dims=2, norm=None, recurrence=t)
    with torch.no_grad():
        unit.unit.conv.weight.zero_()
        unit.unit.conv.weight[0, 0, 1, 1] = 0.5
        unit.unit.conv.bias.fill_(0.1)
    out = unit(torch.ones(1, 1, 4, 4))
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), expected))


@pytest.mark.parametrize("dims", [2, 3])
def test_recurrent_parameter_count_independent_of_t(dims):
    counts = {t: count_parameters(RecurrentResidualBlock(3, 4, dims=dims, recurrence=t)) for t in (1, 2, 5)}
    assert len(set(counts.values())) == 1, counts
    units = {t: count_parameters(RecurrentConv(4, dims=dims, recurrence=t)) for t in (1, 3)}
    # one 3x3 conv 4->4 without bias plus a BatchNorm, whatever t is
    assert units[1] == units[3] == 4 * 4 * 3**dims + 8


@pytest.mark.parametrize("t", [1, 2, 4])
def test_recurrent_block_calls_its_shared_convs_t_plus_one_times(t):
    block = RecurrentResidualBlock(2, 3, dims=2, norm="batch", recurrence=t)
    calls = {"recurrent1": 0, "recurrent2": 0}

    def counter(name):
        def hook(module, inputs, output):
            calls[name] += 1

        return hook

    block.recurrent1.unit.conv.register_forward_hook(counter("recurrent1"))
    block.recurrent2.unit.conv.register_forward_hook(counter("recurrent2"))
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3  # projection + one conv per recurrent unit, however large t is
    block(_input(2, 2))
    assert calls == {"recurrent1": t + 1, "recurrent2": t + 1}


def test_recurrent_residual_block_is_projection_plus_branch():
    torch.manual_seed(0)
    block = RecurrentResidualBlock(2, 3, norm=None, recurrence=2)
    with torch.no_grad():  # zero both recurrent convs: branch output = relu(0) = 0
        for unit in (block.recurrent1, block.recurrent2):
            unit.unit.conv.weight.zero_()
            unit.unit.conv.bias.zero_()
    x = _input(2, 2)
    torch.testing.assert_close(block(x), block.projection(x))


def test_dropout_only_in_training():
    torch.manual_seed(0)
    block = DoubleConv(2, 8, dropout=0.5, norm=None)
    x = _input(2, 2)
    block.train()
    assert not torch.equal(block(x), block(x))
    block.eval()
    assert torch.equal(block(x), block(x))
    assert isinstance(DoubleConv(2, 8).dropout, nn.Identity)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(kind="double", in_channels=2, out_channels=3), "Did you mean 'double_conv'"),
        (dict(kind="recurrent_residual", in_channels=2, out_channels=3, recurrence=0), "recurrence must be >= 1"),
        (dict(kind="double_conv", in_channels=0, out_channels=3), "in_channels must be >= 1"),
        (dict(kind="double_conv", in_channels=2, out_channels=3, dropout=1.0), r"dropout must be in \[0, 1\)"),
        (dict(kind="double_conv", in_channels=2, out_channels=3, dims=1), "dims=2 for images"),
    ],
)
def test_make_block_rejects_bad_arguments(kwargs, match):
    kind = kwargs.pop("kind")
    with pytest.raises(ConfigError, match=match):
        make_block(kind, **kwargs)
