"""Blocks of the course U-Net: shapes, hand-counted parameters, residual, recurrent and MultiRes behaviour."""

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
from course_utils.models.blocks import BLOCK_KINDS, MultiResBlock, ResPath, multires_split

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
@pytest.mark.parametrize("kind", BLOCK_KINDS)
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
        (dict(kind="multires", in_channels=2, out_channels=2), "out_channels=2 is too small"),
    ],
)
def test_make_block_rejects_bad_arguments(kwargs, match):
    kind = kwargs.pop("kind")
    with pytest.raises(ConfigError, match=match):
        make_block(kind, **kwargs)


# ---------------------------------------------------------------- MultiResUNet
def test_block_kinds_include_multires():
    assert BLOCK_KINDS == ("double_conv", "residual", "recurrent_residual", "multires")
    assert isinstance(make_block("multires", 2, 6), MultiResBlock)


@pytest.mark.parametrize(
    "channels,split",
    # exact sixths and thirds (6, 12): the paper's int(0.333 * W) would give one channel less to b
    [
        (3, (1, 1, 1)),
        (4, (1, 1, 2)),
        (5, (1, 1, 3)),
        (6, (1, 2, 3)),
        (7, (1, 2, 4)),
        (12, (2, 4, 6)),
        (13, (2, 4, 7)),
        (32, (5, 10, 17)),
    ],
)
def test_multires_split_by_hand(channels, split):
    assert multires_split(channels) == split


def test_multires_split_sums_to_the_width_and_grows_like_the_paper():
    for channels in range(3, 300):
        a, b, c = multires_split(channels)
        assert a + b + c == channels and min(a, b, c) >= 1, channels
        assert a <= b <= c, channels  # W/6 <= W/3 <= W/2
    with pytest.raises(ConfigError, match="at least 3"):
        multires_split(2)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("out_channels", [5, 7, 13])
def test_multires_block_odd_widths_are_split_exactly(dims, out_channels):
    block = MultiResBlock(3, out_channels, dims=dims, norm="batch")
    a, b, c = multires_split(out_channels)
    assert (block.conv1.conv.in_channels, block.conv1.conv.out_channels) == (3, a)
    assert (block.conv2.conv.in_channels, block.conv2.conv.out_channels) == (a, b)
    assert (block.conv3.conv.in_channels, block.conv3.conv.out_channels) == (b, c)
    assert block.conv3.conv.kernel_size == (3,) * dims
    assert block.shortcut.conv.kernel_size == (1,) * dims
    assert block.shortcut.conv.out_channels == out_channels
    out = block(_input(dims, 3, size=5))
    assert out.shape == (2, out_channels) + (5,) * dims


def test_multires_block_parameter_count_by_hand():
    # split of 7: (1, 2, 4). Without norm: conv1 3->1 (27 + 1), conv2 1->2 (18 + 2), conv3 2->4 (72 + 4),
    # shortcut 1x1 3->7 (21 + 7).
    assert count_parameters(MultiResBlock(3, 7, norm=None)) == 28 + 20 + 76 + 28
    # BatchNorm: no conv biases; 2 per channel after conv1..3 (2 * 7) and the shortcut (2 * 7),
    # plus the norm of the concatenation (2 * 7) and the output norm (2 * 7).
    assert count_parameters(MultiResBlock(3, 7, norm="batch")) == 27 + 18 + 72 + 21 + 4 * 2 * 7


def test_multires_block_matches_hand_computation():
    # Only centre taps are non-zero, so every conv is pointwise; x has one channel, out_channels=3
    # gives the split (1, 1, 1): y1 = relu(0.5 x + 0.1), y2 = relu(2 y1 - 0.3), y3 = relu(-y2 + 0.4),
    # shortcut = (1, -1, 0.5) * x + 0.2, output = relu(cat[y1, y2, y3] + shortcut).
    block = MultiResBlock(1, 3, norm=None)
    with torch.no_grad():
        for conv, w, b in ((block.conv1, 0.5, 0.1), (block.conv2, 2.0, -0.3), (block.conv3, -1.0, 0.4)):
            conv.conv.weight.zero_()
            conv.conv.weight[0, 0, 1, 1] = w
            conv.conv.bias.fill_(b)
        block.shortcut.conv.weight.copy_(torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1, 1))
        block.shortcut.conv.bias.fill_(0.2)
    x = torch.linspace(-2, 2, 16).view(1, 1, 4, 4)
    y1 = torch.relu(0.5 * x + 0.1)
    y2 = torch.relu(2 * y1 - 0.3)
    y3 = torch.relu(-y2 + 0.4)
    shortcut = torch.cat([x, -x, 0.5 * x]).view(1, 3, 4, 4) + 0.2
    expected = torch.relu(torch.cat([y1, y2, y3], dim=1) + shortcut)
    torch.testing.assert_close(block(x), expected)


def test_multires_block_keeps_the_shortcut_when_the_branch_is_silent():
    torch.manual_seed(0)
    block = MultiResBlock(2, 5, norm=None)
    with torch.no_grad():  # the chain outputs relu(0) = 0: output must be relu(shortcut(x)), not 0
        for conv in (block.conv1, block.conv2, block.conv3):
            conv.conv.weight.zero_()
            conv.conv.bias.zero_()
    x = _input(2, 2)
    out = block(x)
    torch.testing.assert_close(out, torch.relu(block.shortcut(x)))
    assert out.abs().sum() > 0


def test_multires_block_dropout_only_in_training():
    torch.manual_seed(0)
    block = MultiResBlock(2, 8, dropout=0.5, norm=None)
    x = _input(2, 2)
    block.train()
    assert not torch.equal(block(x), block(x))
    block.eval()
    assert torch.equal(block(x), block(x))
    assert isinstance(MultiResBlock(2, 8).dropout, nn.Identity)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("norm", ["batch", "instance", "group", None])
@pytest.mark.parametrize("length", [1, 3])
def test_res_path_keeps_the_shape(dims, norm, length):
    path = ResPath(5, length, dims=dims, norm=norm)
    assert path.length == len(path.units) == length
    x = _input(dims, 5, size=5)
    assert path(x).shape == x.shape


def test_res_path_parameter_count_by_hand():
    # per unit, 4 channels, no norm: 3x3 conv 4->4 (144 + 4) and 1x1 shortcut 4->4 (16 + 4)
    assert count_parameters(ResPath(4, 3, norm=None)) == 3 * (148 + 20)
    # BatchNorm: no biases; norms after the 3x3 conv, the shortcut and the sum: 3 * 2 * 4
    assert count_parameters(ResPath(4, 2, norm="batch")) == 2 * (144 + 16 + 3 * 2 * 4)
    with pytest.raises(ConfigError, match="length must be >= 1"):
        ResPath(4, 0)


def test_res_path_units_add_their_shortcut():
    torch.manual_seed(0)
    path = ResPath(2, 2, norm=None)
    with torch.no_grad():  # silence the 3x3 convs: each unit becomes relu(shortcut(x))
        for unit in path.units:
            unit["conv"].conv.weight.zero_()
            unit["conv"].conv.bias.zero_()
    x = _input(2, 2)
    expected = torch.relu(path.units[1]["shortcut"](torch.relu(path.units[0]["shortcut"](x))))
    torch.testing.assert_close(path(x), expected)
