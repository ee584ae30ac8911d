"""Patch sampling: shapes, centres inside the FOV, vessel bias, reproducibility, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.data.augment import fundus_augmentation
from course_utils.data.drive import FundusCase
from course_utils.data.patches import PatchDataset
from course_utils.data.synthetic_fundus import make_synthetic_fundus
from course_utils.errors import DataError


@pytest.fixture(scope="module")
def cases() -> list[FundusCase]:
    return make_synthetic_fundus(2, size=(128, 120), seed=1)


def _hand_made_case(h=40, w=50) -> FundusCase:
    """Gradient image (pixel value encodes position), a few vessel pixels, a rectangular FOV."""
    yy, xx = np.indices((h, w))
    image = np.stack([yy / h, xx / w, np.zeros((h, w))], axis=-1).astype(np.float32)
    vessels = np.zeros((h, w), dtype=bool)
    vessels[[5, 20, 33], [7, 25, 44]] = True
    fov = np.zeros((h, w), dtype=bool)
    fov[3:35, 4:46] = True
    return FundusCase("hand", image, vessels, fov)


def test_shapes_and_dtypes(cases):
    ds = PatchDataset(cases, patch_size=32, samples_per_epoch=10, seed=0)
    assert len(ds) == 10
    image, target, fov = ds[3]
    assert image.shape == (3, 32, 32) and target.shape == fov.shape == (1, 32, 32)
    assert image.dtype == target.dtype == fov.dtype == torch.float32
    assert set(torch.unique(target).tolist()) <= {0.0, 1.0}


def test_preprocess_sets_channels(cases):
    ds = PatchDataset(cases, patch_size=16, samples_per_epoch=4, preprocess=lambda im: im[..., 1])
    image, _, _ = ds[0]
    assert image.shape == (1, 16, 16)


def test_patch_content_is_the_window_around_the_centre():
    case = _hand_made_case()
    ds = PatchDataset([case], patch_size=9, samples_per_epoch=50, vessel_bias=0.0, seed=3)
    for i in range(50):
        _, row, col = ds.locate(i)
        image, target, fov = ds[i]
        assert case.fov[row, col]
        # the centre pixel of the patch is the sampled pixel
        assert image[0, 4, 4].item() == pytest.approx(row / 40, abs=1e-6)
        assert image[1, 4, 4].item() == pytest.approx(col / 50, abs=1e-6)
        ref_fov = np.zeros((9, 9), dtype=np.float32)
        for dy in range(9):
            for dx in range(9):
                y, x = row - 4 + dy, col - 4 + dx
                if 0 <= y < 40 and 0 <= x < 50:
                    ref_fov[dy, dx] = case.fov[y, x]
        np.testing.assert_array_equal(fov[0].numpy(), ref_fov)


def test_patch_at_the_border_is_zero_padded():
    case = _hand_made_case()
    case.fov[:] = False
    case.fov[0, 0] = True  # the only FOV pixel is the corner
    ds = PatchDataset([case], patch_size=8, samples_per_epoch=3, vessel_bias=0.0)
    image, target, fov = ds[0]
    assert ds.locate(0)[1:] == (0, 0)
    assert (image[:, :4, :].abs().sum() == 0) and (image[:, :, :4].abs().sum() == 0)
    assert fov[0, 4, 4] == 1 and fov.sum() == 1


def test_vessel_bias_one_centres_on_vessels(cases):
    ds = PatchDataset(cases, patch_size=16, samples_per_epoch=60, vessel_bias=1.0, seed=2)
    c = 16 // 2
    for i in range(len(ds)):
        k, row, col = ds.locate(i)
        assert cases[k].vessels[row, col] and cases[k].fov[row, col]
        _, target, fov = ds[i]
        assert target[0, c, c] == 1 and fov[0, c, c] == 1


def test_vessel_bias_zero_follows_vessel_fraction(cases):
    ds = PatchDataset(cases, patch_size=16, samples_per_epoch=400, vessel_bias=0.0, seed=2)
    hits = [cases[k].vessels[r, c] for k, r, c in (ds.locate(i) for i in range(len(ds)))]
    fraction = np.mean([c.vessel_fraction() for c in cases])
    assert abs(np.mean(hits) - fraction) < 0.06
    biased = PatchDataset(cases, patch_size=16, samples_per_epoch=400, vessel_bias=0.5, seed=2)
    hits_biased = [cases[k].vessels[r, c] for k, r, c in (biased.locate(i) for i in range(len(biased)))]
    assert np.mean(hits_biased) > 0.5


def test_centres_inside_fov(cases):
    ds = PatchDataset(cases, patch_size=16, samples_per_epoch=300, vessel_bias=0.3, seed=4)
    for i in range(len(ds)):
        k, row, col = ds.locate(i)
        assert cases[k].fov[row, col]


def test_reproducible_by_seed_epoch_and_index(cases):
    aug = fundus_augmentation(1.0)
    a = PatchDataset(cases, patch_size=16, samples_per_epoch=8, augment=aug, seed=5)
    b = PatchDataset(cases, patch_size=16, samples_per_epoch=8, augment=aug, seed=5)
    # the same sample whatever the order of access (as with several DataLoader workers)
    for i in (7, 0, 3):
        for x, y in zip(a[i], b[i]):
            assert torch.equal(x, y)
    first = [a.locate(i) for i in range(8)]
    assert len(set(first)) > 1
    a.set_epoch(1)
    assert [a.locate(i) for i in range(8)] != first
    a.set_epoch(0)
    assert [a.locate(i) for i in range(8)] == first
    other = PatchDataset(cases, patch_size=16, samples_per_epoch=8, seed=6)
    assert [other.locate(i) for i in range(8)] != first


def test_dataloader_workers_do_not_duplicate(cases):
    ds = PatchDataset(cases, patch_size=16, samples_per_epoch=12, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    images = torch.cat([batch[0] for batch in loader])
    direct = torch.stack([ds[i][0] for i in range(len(ds))])
    assert torch.equal(images, direct)
    assert len({tuple(x.flatten().tolist()[:50]) for x in images}) == 12


def test_augment_is_applied(cases):
    plain = PatchDataset(cases, patch_size=16, samples_per_epoch=6, seed=1)
    aug = PatchDataset(cases, patch_size=16, samples_per_epoch=6, seed=1, augment=fundus_augmentation(1.0))
    assert any(not torch.equal(plain[i][0], aug[i][0]) for i in range(6))


def test_errors(cases):
    with pytest.raises(DataError, match="smaller than patch_size=200"):
        PatchDataset(cases, patch_size=200)
    with pytest.raises(DataError, match="no cases"):
        PatchDataset([], patch_size=16)
    with pytest.raises(ValueError, match="vessel_bias"):
        PatchDataset(cases, vessel_bias=1.5)
    ds = PatchDataset(cases, patch_size=16, samples_per_epoch=2)
    with pytest.raises(IndexError):
        ds[2]


def test_patch_loader_takes_a_transform_in_place_of_the_default(cases):
    """``patch_loader(augment=...)``: lesson 03 passes the augmentation with the learner's flips and turns."""
    from course_utils.data.patches import patch_loader

    calls = []

    def spy(image, target, fov, rng):
        calls.append(image.shape)
        return image, target, fov

    loader = patch_loader(cases, patch_size=16, batch_size=4, samples_per_epoch=8, seed=1, augment=spy)
    assert loader.dataset.augment is spy
    images, _, _ = next(iter(loader))
    plain = patch_loader(cases, patch_size=16, batch_size=4, samples_per_epoch=8, seed=1, augment_strength=0)
    assert len(calls) == 4 and torch.equal(images, next(iter(plain))[0])  # the identity: no default added
    with pytest.raises(TypeError, match="augment"):
        patch_loader(cases, patch_size=16, batch_size=4, samples_per_epoch=8, augment="flips")


def test_a_notebook_transform_stays_in_the_main_process_where_workers_are_spawned(cases, monkeypatch):
    """A function defined in a notebook (``__main__``) cannot be imported by spawned DataLoader workers."""
    from course_utils.data.augment import Compose
    from course_utils.data.patches import patch_loader

    def mine(image, target, fov, rng):
        return image, target, fov

    mine.__module__ = "__main__"
    kwargs = dict(patch_size=16, batch_size=4, samples_per_epoch=8, num_workers=2)
    monkeypatch.setattr(torch.multiprocessing, "get_start_method", lambda *a, **k: "spawn")
    with pytest.warns(UserWarning, match="num_workers=0"):
        assert patch_loader(cases, augment=Compose([mine]), **kwargs).loader.num_workers == 0
    assert patch_loader(cases, augment=fundus_augmentation(1.0), **kwargs).loader.num_workers == 2
    monkeypatch.setattr(torch.multiprocessing, "get_start_method", lambda *a, **k: "fork")
    assert patch_loader(cases, augment=mine, **kwargs).loader.num_workers == 2
