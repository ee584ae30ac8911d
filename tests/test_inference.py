"""Sliding-window inference: tiled output equals whole-image output for pointwise models, 2D and 3D."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.errors import ConfigError
from course_utils.inference import (
    TTA_CHOICES,
    blend_weights,
    flip_sets,
    predict_flips,
    predict_image,
    sliding_window_inference,
    tta_axes,
    window_starts,
)


def _pointwise(in_ch: int, out_ch: int, dims: int, seed: int = 0) -> nn.Module:
    """A 1x1 convolution with fixed random weights: each output pixel depends on its own pixel only."""
    torch.manual_seed(seed)
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(in_ch, out_ch, kernel_size=1)
    return conv


def _direct(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(image[None])[0]


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.75])
@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (10, 7), (64, 33)])
def test_2d_tiled_equals_direct(shape, blend, overlap):
    torch.manual_seed(1)
    image = torch.randn((3,) + shape)
    model = _pointwise(3, 2, dims=2)
    out = sliding_window_inference(model, image, patch_size=16, overlap=overlap, blend=blend, batch_size=3)
    assert out.shape == (2,) + shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _direct(model, image), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(9, 21, 14), (4, 5, 6), (12, 12, 12)])
@pytest.mark.parametrize("overlap", [0.0, 0.5])
def test_3d_tiled_equals_direct(shape, overlap):
    torch.manual_seed(2)
    image = torch.randn((2,) + shape)
    model = _pointwise(2, 3, dims=3)
    out = sliding_window_inference(model, image, patch_size=(8, 8, 6), overlap=overlap, batch_size=4)
    assert out.shape == (3,) + shape
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _direct(model, image), rtol=1e-5, atol=1e-5)


def test_sigmoid_activation_and_flip_tta():
    torch.manual_seed(3)
    image = torch.randn(1, 30, 22)
    model = _pointwise(1, 1, dims=2)
    out = sliding_window_inference(model, image, 12, activation="sigmoid", tta_flips=True)
    torch.testing.assert_close(out, torch.sigmoid(_direct(model, image)), rtol=1e-5, atol=1e-5)
    assert 0 <= out.min() and out.max() <= 1


def test_tta_averages_flipped_predictions():
    # a model that is not flip-equivariant: it outputs the row index inside its window
    class RowIndex(nn.Module):
        def forward(self, x):
            rows = torch.arange(x.shape[2], dtype=x.dtype).reshape(1, 1, -1, 1)
            return rows.expand(x.shape[0], 1, x.shape[2], x.shape[3]).clone()

    image = torch.zeros(1, 8, 8)
    plain = sliding_window_inference(RowIndex(), image, 8)
    tta = sliding_window_inference(RowIndex(), image, 8, tta_flips=True)
    torch.testing.assert_close(plain[0, :, 0], torch.arange(8.0))
    torch.testing.assert_close(tta, torch.full((1, 8, 8), 3.5))  # mean of r and 7 - r
    # flips over the second spatial axis only leave the row index alone; over the first they average it
    cols = sliding_window_inference(RowIndex(), image, 8, tta_flips=(1,))
    rows = sliding_window_inference(RowIndex(), image, 8, tta_flips=[0])
    torch.testing.assert_close(cols, plain)
    torch.testing.assert_close(rows, torch.full((1, 8, 8), 3.5))


def test_tta_flip_axes_are_checked():
    image = torch.zeros(1, 8, 8)
    with pytest.raises(ValueError, match="spatial axes 0..1"):
        sliding_window_inference(nn.Identity(), image, 8, tta_flips=(2,))


def test_every_pixel_covered_no_nan_with_constant_model():
    class Ones(nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 1, *x.shape[2:])

    for shape, patch, overlap in [((50, 31), 16, 0.0), ((17, 90), 16, 0.75), ((5, 40, 9), 8, 0.5)]:
        out = sliding_window_inference(Ones(), torch.zeros((1,) + shape), patch, overlap=overlap)
        assert torch.equal(out, torch.ones((1,) + shape))


def test_window_starts_cover_the_axis():
    for size in range(1, 80):
        for patch in (1, 7, 16):
            for overlap in (0.0, 0.5, 0.75, 0.9):
                starts = window_starts(size, patch, overlap)
                covered = set()
                for s in starts:
                    covered.update(range(s, min(s + patch, size)))
                assert covered == set(range(size))
                assert all(0 <= s and (s + patch <= size or size < patch) for s in starts)
    assert window_starts(32, 16, 0.0) == [0, 16]
    assert window_starts(33, 16, 0.0) == [0, 16, 17]
    assert window_starts(32, 16, 0.5) == [0, 8, 16]


def test_gaussian_weights_positive_peaked_and_symmetric():
    w = blend_weights((16, 11), "gaussian")
    assert (w > 0).all() and w.max() == pytest.approx(1.0)
    torch.testing.assert_close(w, w.flip(0))
    torch.testing.assert_close(w, w.flip(1))
    assert w[8, 5] > w[0, 5] and w[8, 5] > w[8, 0]
    w3 = blend_weights((6, 7, 8), "gaussian")
    assert (w3 > 0).all()
    assert torch.equal(blend_weights((4, 4), "constant"), torch.ones(4, 4))


def test_restores_training_mode_and_does_not_track_gradients():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.Dropout(0.5), nn.Conv2d(4, 1, 1))
    model.train()
    image = torch.randn(1, 20, 20)
    a = sliding_window_inference(model, image, 8)
    b = sliding_window_inference(model, image, 8)
    assert model.training
    assert torch.equal(a, b)  # dropout was off (eval mode) during inference
    assert not a.requires_grad
    model.eval()
    sliding_window_inference(model, image, 8)
    assert not model.training


def test_numpy_input_and_plain_callable():
    image = torch.randn(2, 13, 9).numpy()
    out = sliding_window_inference(lambda x: 2 * x, image, 4, overlap=0.5)
    torch.testing.assert_close(out, 2 * torch.as_tensor(image))


def test_bad_arguments():
    model = _pointwise(1, 1, dims=2)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        sliding_window_inference(model, torch.zeros(8, 8), 4)
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_inference(model, torch.zeros(1, 8, 8), 4, overlap=1.0)
    with pytest.raises(ValueError, match="patch_size"):
        sliding_window_inference(model, torch.zeros(1, 8, 8), (4, 4, 4))
    with pytest.raises(ValueError, match="keeps the spatial size"):
        sliding_window_inference(nn.Conv2d(1, 1, 3), torch.zeros(1, 8, 8), 4)


def test_channels_last_3d_model_gives_the_same_windows():
    from course_utils.layout import memory_layout, to_channels_last
    from course_utils.models import UNet

    torch.manual_seed(4)
    model = UNet(in_channels=2, out_channels=1, dims=3, depth=2, base_width=4).eval()
    image = torch.randn(2, 12, 10, 9)
    plain = sliding_window_inference(model, image, patch_size=8, overlap=0.5, activation="sigmoid", tta_flips=True)
    to_channels_last(model)
    assert memory_layout(model) == torch.channels_last_3d
    out = sliding_window_inference(model, image, patch_size=8, overlap=0.5, activation="sigmoid", tta_flips=True)
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- one TTA vocabulary
def test_tta_vocabulary_is_one_everywhere():
    assert TTA_CHOICES == ("none", "lr", "flips")
    assert tta_axes("none", 2) == () and tta_axes("none", 3) == ()
    assert tta_axes("lr", 2) == (1,), "2-D: the width axis"
    assert tta_axes("lr", 3) == (0,), "3-D RAS volumes: the first axis (left to right)"
    assert tta_axes("flips", 2) == (0, 1) and tta_axes("flips", 3) == (0, 1, 2)
    assert tta_axes(True, 3) == (0, 1, 2) and tta_axes(False, 2) == ()
    assert tta_axes([1, 0, 1], 2) == (0, 1)
    assert flip_sets(2, "none") == [()]
    assert flip_sets(2, "lr") == [(), (3,)]
    assert flip_sets(3, "lr") == [(), (2,)]
    assert flip_sets(2, "flips") == [(), (2,), (3,), (2, 3)]
    assert len(flip_sets(3, "flips")) == 8 and flip_sets(3, "flips")[0] == ()


@pytest.mark.parametrize("bad", ["hflip", "rotate", "LR"])
def test_unknown_tta_is_a_config_error_with_a_suggestion(bad):
    with pytest.raises(ConfigError, match=f"tta='{bad}' is not supported.*Choose one of 'none', 'lr', 'flips'"):
        tta_axes(bad, 2)
    with pytest.raises(ValueError, match="is not supported"):  # ConfigError is a ValueError
        sliding_window_inference(nn.Identity(), torch.zeros(1, 8, 8), 8, tta_flips=bad)
    with pytest.raises(ConfigError, match="tta="):
        predict_image(nn.Identity(), torch.zeros(1, 8, 8), tta=bad)
    with pytest.raises(ConfigError, match="Did you mean 'flips'"):
        tta_axes("flip", 2)


class _AxisRamp(nn.Module):
    """Output = the index along one spatial axis of the input: not flip-equivariant along that axis."""

    def __init__(self, axis):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        n = x.shape[2 + self.axis]
        shape = [1] * x.ndim
        shape[2 + self.axis] = n
        ramp = torch.arange(n, dtype=torch.float32).reshape(shape)
        return ramp.expand(x.shape[0], 1, *x.shape[2:]).clone()


def test_lr_tta_flips_the_width_in_2d_and_the_first_axis_in_3d():
    image2 = torch.zeros(1, 6, 8)
    torch.testing.assert_close(
        sliding_window_inference(_AxisRamp(1), image2, (6, 8), tta_flips="lr"), torch.full((1, 6, 8), 3.5)
    )  # mean of c and 7 - c
    torch.testing.assert_close(
        sliding_window_inference(_AxisRamp(0), image2, (6, 8), tta_flips="lr"),
        sliding_window_inference(_AxisRamp(0), image2, (6, 8)),
    )  # rows untouched
    image3 = torch.zeros(1, 4, 6, 8)
    torch.testing.assert_close(
        predict_image(_AxisRamp(0), image3, tta="lr", activation=None), torch.full((1, 4, 6, 8), 1.5)
    )
    torch.testing.assert_close(
        predict_image(_AxisRamp(2), image3, tta="lr", activation=None),
        predict_image(_AxisRamp(2), image3, activation=None),
    )
    torch.testing.assert_close(
        predict_image(_AxisRamp(2), image3, tta="flips", activation=None), torch.full((1, 4, 6, 8), 3.5)
    )


def test_predict_flips_averages_the_flipped_back_outputs():
    batch = torch.randn(2, 1, 5, 7)
    model = _AxisRamp(1)
    plain = predict_flips(model, batch, [()])
    torch.testing.assert_close(plain, model(batch))
    both = predict_flips(model, batch, flip_sets(2, "lr"))
    torch.testing.assert_close(both, torch.full((2, 1, 5, 7), 3.0))
    sig = predict_flips(model, batch, [()], activation="sigmoid")
    torch.testing.assert_close(sig, torch.sigmoid(model(batch)))
    with pytest.raises(ValueError, match="keeps the spatial size"):
        predict_flips(nn.Conv2d(1, 1, 3), batch, [()])


def test_predict_image_pads_to_the_size_divisor_and_matches_the_direct_output():
    from course_utils.models import UNet

    torch.manual_seed(6)
    model = UNet(in_channels=2, out_channels=1, depth=3, base_width=4).eval()
    assert model.size_divisor == 4
    image = torch.randn(2, 16, 20)  # already a multiple: no padding at all
    out = predict_image(model, image)
    assert out.shape == (1, 16, 20) and out.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(out, torch.sigmoid(model(image[None]))[0])
    odd = torch.randn(2, 13, 18)  # reflect-padded to 16 x 20 (symmetrically), cropped back
    padded = torch.nn.functional.pad(odd[None], (1, 1, 1, 2), mode="reflect")
    with torch.no_grad():
        expected = torch.sigmoid(model(padded))[0, :, 1:14, 1:19]
    got = predict_image(model, odd)
    assert got.shape == (1, 13, 18)
    torch.testing.assert_close(got, expected)
    model.train()
    predict_image(model, odd, tta="flips")
    assert model.training, "training mode restored"
    raw = predict_image(model, odd, activation=None)  # logits: the sigmoid comes after
    torch.testing.assert_close(torch.sigmoid(raw), got)
