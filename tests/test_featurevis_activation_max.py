"""Activation maximisation on a hand-made model (known optimum), the course UNet (2D/3D) and smp."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.featurevis import (
    ChannelObjective,
    NeuronObjective,
    RegionObjective,
    activation_table,
    count_forward_hooks,
    maximize_activation,
    random_weight_copy,
    total_variation,
)
from course_utils.models import UNet

torch.set_num_threads(1)


def edge_model() -> nn.Sequential:
    """Channel 0: vertical-edge detector (right column minus left column of a 3x3 window); channel 1: identity."""
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, :, 0] = -1.0
        conv.weight[0, 0, :, 2] = 1.0
        conv.weight[1, 0, 1, 1] = 1.0
    return nn.Sequential(conv, nn.ReLU())


def test_channel_activation_rises_by_a_large_factor():
    model = edge_model()
    result = maximize_activation(model, ChannelObjective("1", 0), (1, 16, 16), steps=60, lr=0.1, init_std=0.05, seed=0)
    assert result.start_activation > 0
    assert result.gain > 10
    assert result.history[-1] > result.history[0]
    assert count_forward_hooks(model) == 0


def test_neuron_reaches_the_hand_computed_optimum():
    # With pixels in [0, 1], the edge response at one pixel is at most 3 (three ones on the right,
    # three zeros on the left); the optimum image has exactly that pattern around the pixel.
    model = edge_model()
    result = maximize_activation(model, NeuronObjective("1", 0, (8, 8)), (1, 16, 16), steps=60, lr=0.2, init_std=0.1)
    assert 2.8 < result.final_activation <= 3.0
    window = result.image[0, 0, 7:10, 7:10]
    assert torch.all(window[:, 0] < 0.1) and torch.all(window[:, 2] > 0.9)
    # The pixels the neuron does not see get no gradient: they stay at their start value.
    start = maximize_activation(model, NeuronObjective("1", 0, (8, 8)), (1, 16, 16), steps=0, init_std=0.1)
    assert torch.equal(result.image[0, 0, :5], start.image[0, 0, :5])


def test_regularisers_do_what_they_say():
    model = edge_model()
    common = dict(steps=60, lr=0.1, init_std=0.1, seed=1)
    plain = maximize_activation(model, ChannelObjective("1", 0), (1, 16, 16), **common)
    with_l2 = maximize_activation(model, ChannelObjective("1", 0), (1, 16, 16), l2=5.0, **common)
    with_tv = maximize_activation(model, ChannelObjective("1", 0), (1, 16, 16), tv=5.0, **common)
    assert with_l2.model_input.pow(2).mean() < 0.5 * plain.model_input.pow(2).mean()
    assert total_variation(with_tv.image) < 0.5 * total_variation(plain.image)
    moved = maximize_activation(
        model,
        ChannelObjective("1", 0),
        (1, 16, 16),
        jitter=1,
        rotate_degrees=10,
        scale_range=(0.9, 1.1),
        parameterization="fourier",
        **common,
    )
    assert moved.gain > 3


def test_reproducible_under_a_seed_and_model_untouched():
    torch.manual_seed(0)
    model = UNet(1, 1, dims=2, depth=2, base_width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = dict(steps=5, jitter=1, rotate_degrees=5, scale_range=(0.9, 1.1), parameterization="fourier")
    a = maximize_activation(model, ChannelObjective("encoders.0", 1), (1, 16, 16), seed=7, **kwargs)
    b = maximize_activation(model, ChannelObjective("encoders.0", 1), (1, 16, 16), seed=7, **kwargs)
    c = maximize_activation(model, ChannelObjective("encoders.0", 1), (1, 16, 16), seed=8, **kwargs)
    assert torch.equal(a.image, b.image) and a.history == b.history
    assert not torch.equal(a.image, c.image)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # BN stats too
    assert all(p.grad is None for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert count_forward_hooks(model) == 0


def test_uses_the_model_normalisation():
    seen = []

    class Recorder(nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x

    model = Recorder()
    result = maximize_activation(
        model, ChannelObjective("", 1), (2, 8, 8), steps=0, normalize=((0.5, 0.25), (0.5, 0.125))
    )
    mean, std = torch.tensor([0.5, 0.25]).view(1, 2, 1, 1), torch.tensor([0.5, 0.125]).view(1, 2, 1, 1)
    expected = (result.image - mean) / std
    assert torch.allclose(seen[-1], expected) and torch.allclose(result.model_input, expected)
    called = maximize_activation(model, ChannelObjective("", 0), (2, 8, 8), steps=0, normalize=lambda x: 2 * x)
    assert torch.allclose(called.model_input, 2 * called.image)
    with pytest.raises(ValueError, match="2 values"):
        maximize_activation(model, ChannelObjective("", 0), (2, 8, 8), steps=0, normalize=((0.5,), (0.5,)))


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_unet_2d_objectives_increase(channels):
    torch.manual_seed(1)
    model = UNet(channels, 1, dims=2, depth=3, base_width=4)
    objectives = [
        ChannelObjective("encoders.1", 2),
        NeuronObjective("bottleneck", 3),
        RegionObjective.disk((16, 16), (8, 8), radius=2),
    ]  # "vessel around this pixel"
    for objective in objectives:
        result = maximize_activation(model, objective, (channels, 16, 16), steps=25, lr=0.1, value_range=None)
        assert result.final_activation > result.start_activation + 0.01, objective.describe()
    assert count_forward_hooks(model) == 0


def test_unet_3d_volume():
    torch.manual_seed(2)
    model = UNet(2, 1, dims=3, depth=2, base_width=4)
    result = maximize_activation(
        model,
        ChannelObjective("bottleneck", 0),
        (2, 4, 8, 8),
        steps=15,
        lr=0.1,
        jitter=1,
        rotate_degrees=5,
        tv=0.01,
        parameterization="fourier",
        value_range=None,
    )
    assert result.image.shape == (1, 2, 4, 8, 8)
    assert result.final_activation > result.start_activation


def test_smp_encoder_filter():
    pretrained = pytest.importorskip("course_utils.models.pretrained")
    torch.manual_seed(0)
    model = pretrained.pretrained_unet(None, encoder_name=pretrained.LITE1_ENCODER)
    result = maximize_activation(
        model,
        ChannelObjective("encoder.model.blocks.1", 4),
        (3, 32, 32),
        steps=10,
        normalize=model.encoder_info.normalize,
    )
    assert result.final_activation > result.start_activation
    assert count_forward_hooks(model) == 0


def test_bad_objectives_fail_clearly_and_leave_no_hook():
    model = edge_model()
    with pytest.raises(ValueError, match="2 channels"):
        maximize_activation(model, ChannelObjective("1", 5), (1, 8, 8), steps=1)
    with pytest.raises(ValueError, match="outside"):
        maximize_activation(model, NeuronObjective("1", 0, (8, 1)), (1, 8, 8), steps=1)
    with pytest.raises(ValueError, match="mask has shape"):
        maximize_activation(model, RegionObjective.disk((4, 4), (1, 1), 1), (1, 8, 8), steps=1)
    with pytest.raises(KeyError, match="no layer"):
        maximize_activation(model, ChannelObjective("3", 0), (1, 8, 8), steps=1)
    with pytest.raises(ValueError, match="empty"):
        RegionObjective(mask=torch.zeros(4, 4, dtype=torch.bool))
    assert count_forward_hooks(model) == 0


def test_random_weight_copy_is_a_fresh_network_of_the_same_architecture():
    torch.manual_seed(0)
    model = UNet(1, 1, dims=2, depth=2, base_width=4)
    with torch.no_grad():  # pretend training moved BN parameters and statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(2.0)
                m.running_mean.fill_(3.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    copy_a = random_weight_copy(model, seed=1)
    assert torch.equal(rng, torch.random.get_rng_state())  # the caller's random stream is untouched
    copy_b = random_weight_copy(model, seed=1)
    copy_c = random_weight_copy(model, seed=2)
    state_a, state_b = copy_a.state_dict(), copy_b.state_dict()
    assert {k: v.shape for k, v in state_a.items()} == {k: v.shape for k, v in before.items()}
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not torch.equal(state_a["head.weight"], copy_c.state_dict()["head.weight"])
    conv_keys = [k for k in before if k.endswith("conv.weight")]
    assert conv_keys and all(not torch.equal(state_a[k], before[k]) for k in conv_keys)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    bn = copy_a.encoders[0].conv1.norm
    assert torch.all(bn.weight == 1) and torch.all(bn.running_mean == 0) and not copy_a.training


def test_activation_table_rows():
    torch.manual_seed(0)
    model = UNet(1, 1, dims=2, depth=2, base_width=4)
    baseline = random_weight_copy(model, seed=0)
    rows = activation_table(
        model, baseline, [ChannelObjective("encoders.0", 0), NeuronObjective("", 0)], (1, 16, 16), steps=3
    )
    assert [r["filter"] for r in rows] == ["encoders.0[0]", "output[0] at centre"]
    assert all(set(r) == {"filter", "start", "reached", "gain", "baseline_reached"} for r in rows)
