"""The course U-Net: shapes, input errors, gradients, determinism, configs, skip ablation, padding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.errors import ConfigError
from course_utils.models import UNet, count_parameters, crop_to, pad_to_multiple
from course_utils.models.blocks import ResPath

torch.set_num_threads(1)

BLOCKS = ["double_conv", "residual", "recurrent_residual", "multires"]
UPSAMPLINGS = ["transpose", "interpolate"]


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _tiny(**kwargs) -> UNet:
    # a MultiRes block splits its width in three parts of at least 1 channel: 3 is its smallest width
    args = dict(base_width=3 if kwargs.get("block") == "multires" else 2, depth=3)
    args.update(kwargs)
    return UNet(**args)


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
@pytest.mark.parametrize("spatial", [(12, 20), (16, 8)])  # bottleneck 3x5 (odd) and 4x2 (even)
def test_output_shape_2d(block, upsampling, spatial):
    model = _tiny(in_channels=3, out_channels=2, block=block, upsampling=upsampling, recurrence=1)
    out = model(_rand(2, 3, *spatial))
    assert out.shape == (2, 2) + spatial


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
@pytest.mark.parametrize("spatial", [(4, 8, 12), (8, 4, 4)])
def test_output_shape_3d(block, upsampling, spatial):
    model = _tiny(
        in_channels=2,
        out_channels=1,
        dims=3,
        block=block,
        upsampling=upsampling,
        recurrence=1,
        norm="instance" if spatial[0] == 8 else "batch",
    )
    out = model(_rand(2, 2, *spatial))
    assert out.shape == (2, 1) + spatial


@pytest.mark.parametrize("spatial", [(7, 9), (1, 5)])
def test_depth_one_accepts_odd_sizes(spatial):
    model = UNet(1, 1, depth=1, base_width=2, norm=None)
    assert model.size_divisor == 1
    assert len(model.encoders) == 0 and len(model.decoders) == 0
    assert model(_rand(1, 1, *spatial)).shape == (1, 1) + spatial


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_size_divisor(depth):
    assert UNet(depth=depth, base_width=1).size_divisor == 2 ** (depth - 1)


def test_widths_follow_the_multiplier_at_every_level():
    assert UNet(base_width=16).widths == (16, 32, 64, 128)
    model = UNet(base_width=4, width_multiplier=1.5, depth=4, norm=None)
    assert model.widths == (4, 6, 9, 13)  # int(4 * 1.5**3) = int(13.5)
    seen = {}
    for name in (
        "encoders.0",
        "encoders.1",
        "encoders.2",
        "bottleneck",
        "decoders.2",
        "decoders.1",
        "decoders.0",
        "head",
    ):
        module = model.get_submodule(name)
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    model(_rand(1, 1, 16, 16))
    assert seen == {
        "encoders.0": (1, 4, 16, 16),
        "encoders.1": (1, 6, 8, 8),
        "encoders.2": (1, 9, 4, 4),
        "bottleneck": (1, 13, 2, 2),
        "decoders.2": (1, 9, 4, 4),
        "decoders.1": (1, 6, 8, 8),
        "decoders.0": (1, 4, 16, 16),
        "head": (1, 1, 16, 16),
    }


def test_layer_names_are_stable():
    names = dict(_tiny().named_modules())
    for name in (
        "encoders.0",
        "encoders.1",
        "pool",
        "bottleneck",
        "decoders.0.up",
        "decoders.1.block",
        "decoders.0.block.conv1.conv",
        "head",
    ):
        assert name in names, name
    assert "encoders.2" not in names  # depth 3: two encoders + bottleneck


# ---------------------------------------------------------------- input errors
def test_size_100_fails_with_depth_4_and_104_works():
    model = UNet(3, 1, depth=4, base_width=2)
    with pytest.raises(ValueError) as info:
        model(_rand(1, 3, 100, 100))
    msg = str(info.value)
    for part in ("(100, 100)", "not divisible by 8", "2**(depth-1)", "(104, 104)", "pad_to_multiple"):
        assert part in msg, (part, msg)
    assert model(_rand(1, 3, 104, 104)).shape == (1, 1, 104, 104)


def test_divisibility_checked_per_axis():
    model = _tiny(dims=3)  # divisor 4
    with pytest.raises(ValueError, match=r"\(8, 6, 8\) is not divisible by 4.*\(8, 8, 8\)"):
        model(_rand(1, 1, 8, 6, 8))


def test_wrong_number_of_dims_explains_the_layout():
    model = _tiny(in_channels=3)
    with pytest.raises(ValueError, match=r"4-D tensor \(B, C, H, W\).*unsqueeze\(0\)"):
        model(_rand(3, 16, 16))
    with pytest.raises(ValueError, match=r"build UNet\(dims=3"):
        model(_rand(1, 3, 8, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\)"):
        _tiny(dims=3)(_rand(1, 1, 8, 8))


def test_wrong_channel_count_explains_axis_1():
    model = _tiny(in_channels=3)
    with pytest.raises(ValueError, match=r"in_channels=3\) got 16 channel.*axis 1.*movedim"):
        model(_rand(1, 16, 16, 3))


def test_integer_input_refused():
    with pytest.raises(ValueError, match=r"x.float\(\)"):
        _tiny()(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(norm="layer"), "norm='layer'"),
        (dict(upsampling="bilinear"), "upsampling='bilinear'"),
        (dict(block="resnet"), "block='resnet'"),
        (dict(dims=4), "dims=4"),
        (dict(depth=0), "depth must be >= 1"),
        (dict(base_width=2, width_multiplier=0.25), "at least 1 channel"),
        (dict(dropout=-0.1), "dropout"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        UNet(**kwargs)


def test_bad_types_are_type_errors():
    with pytest.raises(TypeError):
        UNet(in_channels=1.0)
    with pytest.raises(TypeError):
        UNet(skip_connections="no")


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
@pytest.mark.parametrize("norm", ["batch", "group", None])
def test_gradient_reaches_every_parameter(block, upsampling, norm):
    torch.manual_seed(0)
    # width 4: with 2 channels and no norm a whole level can start dead (all ReLUs off); a MultiRes
    # block's first conv has only width // 6 channels, so it gets width 12 (split 2, 4, 6)
    width = 12 if block == "multires" else 4
    model = _tiny(in_channels=2, base_width=width, block=block, upsampling=upsampling, norm=norm, recurrence=1)
    target = (_rand(2, 1, 16, 16, seed=1) > 0).float()
    loss = nn.functional.binary_cross_entropy_with_logits(model(_rand(2, 2, 16, 16)), target)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_gradient_reaches_every_parameter_3d_without_skips():
    torch.manual_seed(0)
    model = _tiny(in_channels=2, dims=3, norm="instance", skip_connections=False)
    model(_rand(2, 2, 8, 8, 8)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# ---------------------------------------------------------------- determinism and configs
@pytest.mark.parametrize("block", BLOCKS)
def test_same_seed_same_model(block):
    x = _rand(2, 1, 8, 8)
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append(_tiny(block=block)(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(in_channels=3, out_channels=2, block="residual", upsampling="interpolate", norm="group"),
        dict(
            in_channels=2,
            dims=3,
            block="recurrent_residual",
            recurrence=3,
            norm="instance",
            skip_connections=False,
            dropout=0.1,
            width_multiplier=1.5,
        ),
        dict(in_channels=2, block="multires", norm="group", upsampling="interpolate", dropout=0.1),
        dict(dims=3, depth=2, block="multires", norm="instance", skip_connections=False),
    ],
)
def test_from_config_rebuilds_the_architecture(kwargs):
    torch.manual_seed(0)
    model = _tiny(**kwargs).eval()
    config = json.loads(json.dumps(model.config))  # as stored in a checkpoint
    assert config == model.config
    torch.manual_seed(1)
    rebuilt = UNet.from_config(config).eval()
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = _rand(1, model.in_channels, *(8,) * model.dims)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_from_config_with_a_different_architecture_fails_strict_loading():
    model = _tiny()
    other = UNet.from_config({**model.config, "block": "residual"})
    with pytest.raises(RuntimeError):
        other.load_state_dict(model.state_dict(), strict=True)


def test_from_config_unknown_key_has_a_hint():
    with pytest.raises(ConfigError, match="Did you mean 'base_width'"):
        UNet.from_config({"base_widht": 8})


def test_config_lists_every_constructor_argument():
    import inspect

    params = set(inspect.signature(UNet.__init__).parameters) - {"self"}
    assert set(UNet().config) == params


# ---------------------------------------------------------------- skip connections ablation
def test_skip_connections_false_removes_the_skips():
    with_skips = UNet(1, 1, depth=3, base_width=4, norm=None)
    without = UNet(1, 1, depth=3, base_width=4, norm=None, skip_connections=False)
    # Each decoder's first 3x3 conv loses the w_i skip channels: w_i * w_i * 9 weights.
    widths = (4, 8)
    assert count_parameters(with_skips) - count_parameters(without) == sum(w * w * 9 for w in widths)
    for i, w in enumerate(widths):
        assert with_skips.decoders[i].block.conv1.conv.in_channels == 2 * w
        assert without.decoders[i].block.conv1.conv.in_channels == w
    received = []
    for decoder in without.decoders:
        decoder.register_forward_pre_hook(lambda m, args: received.append(args))
    without(_rand(1, 1, 8, 8))
    assert [len([a for a in args if a is not None]) for args in received] == [1, 1]


def test_without_skips_the_output_sees_only_the_bottleneck():
    torch.manual_seed(0)
    model = _tiny(norm=None, skip_connections=False).eval()
    x = _rand(1, 1, 16, 16)
    bottleneck_out = {}
    model.bottleneck.register_forward_hook(lambda m, i, o: bottleneck_out.setdefault("first", o))
    reference = model(x)
    # Everything the output depends on must flow through the bottleneck: replaying the
    # decoders on the bottleneck output alone reproduces it exactly.
    y = bottleneck_out["first"]
    for level in reversed(range(len(model.decoders))):
        y = model.decoders[level](y)
    torch.testing.assert_close(model.head(y), reference, rtol=0, atol=0)


# ---------------------------------------------------------------- parameters
def test_parameter_count_of_a_tiny_unet_by_hand():
    model = UNet(1, 1, depth=2, base_width=2, norm=None)
    enc0 = (2 * 1 * 9 + 2) + (2 * 2 * 9 + 2)  # DoubleConv 1->2 with biases: 20 + 38
    bottleneck = (4 * 2 * 9 + 4) + (4 * 4 * 9 + 4)  # DoubleConv 2->4: 76 + 148
    up = 4 * 2 * 2 * 2 + 2  # ConvTranspose 4->2, 2x2 kernel: 34
    dec0 = (2 * 4 * 9 + 2) + (2 * 2 * 9 + 2)  # DoubleConv (2 skip + 2 up)->2: 74 + 38
    head = 2 * 1 + 1  # 1x1 conv 2->1
    assert count_parameters(model) == enc0 + bottleneck + up + dec0 + head == 431
    interp = UNet(1, 1, depth=2, base_width=2, norm=None, upsampling="interpolate")
    assert count_parameters(interp) == 431 - up + (4 * 2 + 2)  # 1x1 conv 4->2 instead


def test_dropout_changes_training_outputs_only():
    torch.manual_seed(0)
    model = _tiny(dropout=0.5, norm=None)
    x = _rand(1, 1, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


# ---------------------------------------------------------------- padding helpers
@pytest.mark.parametrize(
    "shape,multiple", [((2, 3, 100, 97), 8), ((1, 2, 5, 9, 13), 4), ((1, 1, 10), 16), ((1, 1, 16, 24), 8)]
)
def test_pad_to_multiple_round_trip(shape, multiple):
    x = _rand(*shape)
    padded, crop = pad_to_multiple(x, multiple)
    assert all(s % multiple == 0 for s in padded.shape[2:])
    assert all(0 <= p - s < multiple for p, s in zip(padded.shape[2:], shape[2:]))
    assert torch.equal(padded[crop], x)
    assert torch.equal(crop_to(padded, crop), x)


def test_pad_to_multiple_is_symmetric_reflect_like_numpy():
    x = _rand(1, 1, 5, 7)
    padded, crop = pad_to_multiple(x, (8, 4))  # H: 3 more -> 1 before, 2 after; W: 1 -> 0, 1
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 2), (0, 1)), mode="reflect")
    np.testing.assert_array_equal(padded.numpy(), expected)
    assert crop == (slice(None), slice(None), slice(1, 6), slice(0, 7))


def test_pad_to_multiple_small_input_falls_back_to_replicate():
    x = _rand(1, 1, 2, 3)
    padded, crop = pad_to_multiple(x, 8)  # H: 6 more (3 + 3) > 1 = largest reflect pad
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (3, 3), (2, 3)), mode="edge")
    np.testing.assert_array_equal(padded.numpy(), expected)
    assert torch.equal(padded[crop], x)


def test_pad_to_multiple_constant_and_noop():
    x = _rand(1, 1, 3, 4)
    padded, _ = pad_to_multiple(x, 4, mode="constant")
    np.testing.assert_array_equal(padded.numpy(), np.pad(x.numpy(), ((0, 0), (0, 0), (0, 1), (0, 0))))
    same, crop = pad_to_multiple(x, 1)
    assert same is x and torch.equal(same[crop], x)


def test_pad_to_multiple_errors():
    with pytest.raises(ValueError, match="model.size_divisor"):
        pad_to_multiple(_rand(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match=r"\(B, C, \*spatial\)"):
        pad_to_multiple(_rand(4, 4), 8)
    with pytest.raises(ValueError, match="mode"):
        pad_to_multiple(_rand(1, 1, 4, 4), 8, mode="wrap")
    with pytest.raises(ValueError, match="crop_slices"):
        crop_to(_rand(1, 4, 4), (slice(None),) * 4)


def test_pad_then_unet_then_crop_gives_the_original_size():
    model = UNet(3, 2, depth=4, base_width=2).eval()
    x = _rand(1, 3, 100, 90)
    padded, crop = pad_to_multiple(x, model.size_divisor)
    with torch.inference_mode():
        out = crop_to(model(padded), crop)
    assert out.shape == (1, 2, 100, 90)


# ---------------------------------------------------------------- MultiResUNet
@pytest.mark.parametrize("depth,lengths", [(1, []), (2, [1]), (3, [2, 1]), (4, [3, 2, 1]), (5, [4, 3, 2, 1])])
def test_res_path_lengths_shrink_towards_the_bottleneck(depth, lengths):
    model = UNet(depth=depth, base_width=3, block="multires", norm=None)
    assert len(model.res_paths) == len(model.encoders) == depth - 1
    assert all(isinstance(p, ResPath) for p in model.res_paths)
    assert [p.length for p in model.res_paths] == [len(p.units) for p in model.res_paths] == lengths
    assert [p.units[0]["conv"].conv.in_channels for p in model.res_paths] == list(model.widths[:-1])


def test_res_paths_process_every_skip_before_its_decoder():
    model = _tiny(block="multires", depth=4).eval()
    assert "res_paths.2.units.0.conv.conv" in dict(model.named_modules())
    path_out, decoder_skip = {}, {}
    for i in range(3):
        model.res_paths[i].register_forward_hook(lambda m, args, out, i=i: path_out.__setitem__(i, out))
        model.decoders[i].register_forward_pre_hook(lambda m, args, i=i: decoder_skip.__setitem__(i, args[1]))
    model(_rand(1, 1, 16, 16))
    assert sorted(path_out) == sorted(decoder_skip) == [0, 1, 2]
    assert all(decoder_skip[i] is path_out[i] for i in range(3))


def test_no_res_paths_without_skips_or_for_other_blocks():
    assert len(_tiny(block="multires", skip_connections=False).res_paths) == 0
    for block in BLOCKS[:-1]:
        model = _tiny(block=block)
        assert isinstance(model.res_paths, nn.ModuleList) and len(model.res_paths) == 0
        assert not any(key.startswith("res_paths") for key in model.state_dict())


def test_state_dict_keys_of_the_existing_blocks_are_unchanged():
    # The keys a checkpoint of the original double-conv U-Net holds (depth 2, no norm).
    keys = [
        f"{stage}.{conv}.conv.{p}"
        for stage in ("encoders.0", "bottleneck", "decoders.0.block")
        for conv in ("conv1", "conv2")
        for p in ("weight", "bias")
    ]
    expected = keys[:8] + ["decoders.0.up.weight", "decoders.0.up.bias"] + keys[8:] + ["head.weight", "head.bias"]
    assert list(UNet(depth=2, base_width=2, norm=None).state_dict()) == expected
    residual = UNet(depth=2, base_width=2, block="residual").state_dict()
    assert "encoders.0.shortcut.conv.weight" in residual and "bottleneck.shortcut.norm.running_mean" in residual
    assert not any("res_paths" in key for key in residual)


def test_multires_unet_differs_from_double_conv_and_rebuilds_from_its_config():
    torch.manual_seed(0)
    model = UNet(2, 1, depth=4, base_width=6, block="multires").eval()
    double = UNet(2, 1, depth=4, base_width=6)
    assert count_parameters(model) != count_parameters(double)
    assert any(key.startswith("res_paths.0.units.2.") for key in model.state_dict())
    config = json.loads(json.dumps(model.config))
    assert config["block"] == "multires"
    rebuilt = UNet.from_config(config).eval()
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = _rand(1, 2, 16, 16)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)
    with pytest.raises(RuntimeError):  # a double-conv checkpoint does not fit a MultiResUNet
        model.load_state_dict(double.state_dict(), strict=True)
    assert "block='multires'" in repr(model)


@pytest.mark.parametrize("dims", [2, 3])
def test_multires_unet_backward_gives_finite_gradients(dims):
    torch.manual_seed(0)
    model = UNet(2, 2, dims=dims, depth=3, base_width=4, block="multires", norm="batch")
    x = _rand(2, 2, *(8,) * dims)
    out = model(x)
    assert out.shape == (2, 2) + (8,) * dims
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in model.res_paths.parameters())


def test_multires_unet_needs_three_channels_per_level():
    with pytest.raises(ConfigError, match="base_width >= 3"):
        UNet(base_width=2, block="multires")


# ---------------------------------------------------------------- a block of your own
def test_a_block_class_of_your_own_builds_the_same_unet_as_its_name():
    """``block=`` takes a callable ``(in_channels, out_channels) -> nn.Module`` (lesson 02 builds its R2U-Net from
    the learner's block); given the course's own class, it is the same network, weight for weight."""
    from functools import partial

    from course_utils.models import DoubleConv, RecurrentResidualBlock

    x = _rand(2, 1, 16, 16)
    cases = (
        (
            dict(block="recurrent_residual", recurrence=3, norm="group"),
            partial(RecurrentResidualBlock, recurrence=3, norm="group"),
            "RecurrentResidualBlock",
        ),
        (dict(), DoubleConv, "DoubleConv"),
    )
    for named, factory, name in cases:
        torch.manual_seed(0)
        reference = UNet(1, 1, depth=3, base_width=4, **named)
        torch.manual_seed(0)
        custom = UNet(1, 1, depth=3, base_width=4, block=factory)
        assert custom.custom_block and not reference.custom_block
        assert list(custom.state_dict()) == list(reference.state_dict())
        assert count_parameters(custom) == count_parameters(reference)
        assert torch.equal(custom(x), reference(x))
        assert f"block='{name}'" in repr(custom)


def test_a_block_of_your_own_has_no_config_and_takes_no_dropout():
    from course_utils.errors import ConfigTypeError
    from course_utils.models import DoubleConv

    model = UNet(1, 1, depth=2, base_width=2, block=DoubleConv)
    with pytest.raises(ConfigError, match="block of your own"):
        _ = model.config
    with pytest.raises(ConfigError, match="put the dropout in it"):
        UNet(depth=2, base_width=2, block=DoubleConv, dropout=0.1)
    with pytest.raises(ConfigTypeError, match="not an nn.Module"):
        UNet(depth=2, base_width=2, block=lambda i, o: None)
    with pytest.raises(ConfigError, match="block='resnet'"):
        UNet(block="resnet")
