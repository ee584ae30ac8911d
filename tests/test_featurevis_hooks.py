"""Feature maps of named layers; hooks are always removed (normal exit, exceptions, bad names)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.featurevis import (
    capture_features,
    conv_layer_names,
    count_forward_hooks,
    evaluation_mode,
    feature_maps,
    layer_names,
    resolve_layer,
)
from course_utils.models import UNet

torch.set_num_threads(1)


@pytest.fixture
def unet2d() -> UNet:
    torch.manual_seed(0)
    return UNet(3, 1, dims=2, depth=3, base_width=4)


def test_captured_maps_equal_direct_computation(unet2d):
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = feature_maps(unet2d, x, ["encoders.0", "bottleneck", ""])
    with torch.no_grad():
        unet2d.eval()
        first = unet2d.encoders[0](x)
        deepest = unet2d.bottleneck(unet2d.pool(unet2d.encoders[1](unet2d.pool(first))))
        out = unet2d(x)
    assert torch.equal(maps["encoders.0"], first)
    assert torch.allclose(maps["bottleneck"], deepest)
    assert maps["bottleneck"].shape == (2, 16, 4, 4)
    assert torch.equal(maps[""], out)
    assert count_forward_hooks(unet2d) == 0


def test_feature_maps_3d_and_restores_training_mode():
    torch.manual_seed(0)
    model = UNet(2, 1, dims=3, depth=2, base_width=4).train()
    maps = feature_maps(model, torch.rand(1, 2, 4, 8, 8), "decoders.0.block")
    assert maps["decoders.0.block"].shape == (1, 4, 4, 8, 8)
    assert all(m.training for m in model.modules())
    assert count_forward_hooks(model) == 0


def test_hooks_removed_after_exception_in_block(unet2d):
    with pytest.raises(RuntimeError, match="boom"):
        with capture_features(unet2d, ["encoders.0", "encoders.1"]) as store:
            assert count_forward_hooks(unet2d) == 2
            unet2d(torch.rand(1, 3, 16, 16))
            assert set(store) == {"encoders.0", "encoders.1"}
            raise RuntimeError("boom")
    assert count_forward_hooks(unet2d) == 0


def test_hooks_removed_when_forward_fails(unet2d):
    with pytest.raises(ValueError, match="channel"):
        feature_maps(unet2d, torch.rand(1, 2, 16, 16), "encoders.0")  # wrong channel count
    assert count_forward_hooks(unet2d) == 0


def test_unknown_layer_suggests_names_and_registers_nothing(unet2d):
    with pytest.raises(KeyError, match="encoders.0"):
        with capture_features(unet2d, ["encoders.0", "encoder.0"]):
            pass
    assert count_forward_hooks(unet2d) == 0
    with pytest.raises(ValueError, match="at least one"):
        with capture_features(unet2d, []):
            pass


def test_detach_controls_the_graph(unet2d):
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    with capture_features(unet2d, "encoders.0") as kept:
        unet2d(x)
    with capture_features(unet2d, "encoders.0", detach=False) as live:
        unet2d(x)
    assert not kept["encoders.0"].requires_grad
    assert live["encoders.0"].requires_grad


def test_layer_listing_and_evaluation_mode(unet2d):
    convs = conv_layer_names(unet2d)
    assert convs[0] == "encoders.0.conv1.conv" and convs[-1] == "head"
    assert all(isinstance(resolve_layer(unet2d, n), (nn.Conv2d, nn.ConvTranspose2d)) for n in convs)
    assert "bottleneck" in layer_names(unet2d)
    unet2d.train()
    unet2d.encoders[0].eval()
    with evaluation_mode(unet2d):
        assert not any(m.training for m in unet2d.modules())
    assert unet2d.training and not unet2d.encoders[0].training


def test_smp_encoder_layers():
    pretrained = pytest.importorskip("course_utils.models.pretrained")
    model = pretrained.pretrained_unet(None, encoder_name=pretrained.LITE1_ENCODER)
    x = torch.rand(1, 3, 32, 32)
    maps = feature_maps(model, x, ["encoder.model.blocks.1", "encoder"])
    assert maps["encoder.model.blocks.1"].shape == (1, 24, 8, 8)
    assert isinstance(maps["encoder"], list) and len(maps["encoder"]) == 6
    assert count_forward_hooks(model) == 0
