"""The dataset patches that most activate a filter: planted bright spots must be found where they are."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.featurevis import count_forward_hooks, top_activating_patches
from course_utils.models import UNet

torch.set_num_threads(1)


def spot_detector(dims: int = 2) -> nn.Sequential:
    """Channel 0 = the input (1x1 identity), channel 1 = minus the input; then 2x max-pooling (stride 2)."""
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.weight[1, 0] = -1.0
    pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)
    return nn.Sequential(conv, pool)


def planted_images() -> torch.Tensor:
    """4 noise images (N, 1, 32, 32) in [0, 0.5); spots of 5 in image 2 at (20, 9), of 3 in image 0 at (4, 27)."""
    images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    images[2, 0, 20, 9] = 5.0
    images[0, 0, 4, 27] = 3.0
    return images


def test_finds_planted_spots_strongest_first():
    model = spot_detector()
    hits = top_activating_patches(model, planted_images(), "1", channel=0, patch_size=8, k=2)
    assert [h.image_index for h in hits] == [2, 0]
    assert [h.activation for h in hits] == [5.0, 3.0]
    # Pooled position p covers input pixels 2p and 2p + 1: the centre is within 1 pixel of the spot.
    assert abs(hits[0].centre[0] - 20) <= 1 and abs(hits[0].centre[1] - 9) <= 1
    assert abs(hits[1].centre[0] - 4) <= 1 and abs(hits[1].centre[1] - 27) <= 1
    assert hits[0].patch.shape == (1, 8, 8) and hits[0].patch.max() == 5.0
    assert hits[1].patch.shape == (1, 8, 8) and hits[1].patch.max() == 3.0  # shifted inside at the border
    assert count_forward_hooks(model) == 0


def test_other_channel_and_several_hits_per_image():
    images = planted_images()
    hits = top_activating_patches(spot_detector(), images, "0", channel=1, patch_size=4, k=3, one_per_image=False)
    # Channel 1 is minus the input: it likes the darkest pixel of each 2 x 2 pooling window.
    window_minima = -F.max_pool2d(-images, 2)
    expected = window_minima.flatten().topk(3, largest=False).values
    assert sorted(-h.activation for h in hits) == pytest.approx(sorted(expected.tolist()))
    one_each = top_activating_patches(spot_detector(), images, "1", channel=0, k=4)
    assert sorted(h.image_index for h in one_each) == [0, 1, 2, 3]


def test_dataloader_batches_normalisation_and_3d():
    images = planted_images()
    loader = DataLoader(TensorDataset(images, torch.zeros(4)), batch_size=3)
    hits = top_activating_patches(
        spot_detector(), loader, "1", channel=0, patch_size=8, k=1, normalize=((1.0,), (2.0,))
    )
    assert hits[0].image_index == 2
    assert hits[0].activation == pytest.approx((5.0 - 1.0) / 2.0)
    assert hits[0].patch.max() == 5.0  # patches come from the un-normalised images

    volumes = torch.rand(2, 1, 8, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.5
    volumes[1, 0, 5, 3, 12] = 4.0
    hit = top_activating_patches(spot_detector(3), volumes, "1", channel=0, patch_size=4, k=1)[0]
    assert hit.image_index == 1 and hit.patch.shape == (1, 4, 4, 4)
    assert all(abs(c - s) <= 1 for c, s in zip(hit.centre, (5, 3, 12)))


def test_works_on_the_course_unet_and_rejects_bad_input():
    torch.manual_seed(0)
    model = UNet(3, 1, dims=2, depth=3, base_width=4)
    hits = top_activating_patches(model, torch.rand(3, 3, 16, 16), "encoders.1", channel=2, patch_size=6, k=2)
    assert len(hits) == 2 and hits[0].activation >= hits[1].activation
    assert hits[0].patch.shape == (3, 6, 6)
    with pytest.raises(ValueError, match="channel"):
        top_activating_patches(model, torch.rand(1, 3, 16, 16), "encoders.1", channel=99)
    with pytest.raises(ValueError, match="k must"):
        top_activating_patches(model, torch.rand(1, 3, 16, 16), "encoders.1", channel=0, k=0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        top_activating_patches(model, torch.rand(3, 16, 16), "encoders.1", channel=0)
    assert count_forward_hooks(model) == 0
