"""Synthetic fundus images: deterministic, DRIVE-shaped, with plausible vessels."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from course_utils.data.drive import FundusCase
from course_utils.data.synthetic_fundus import make_synthetic_fundus, synthetic_drive


@pytest.fixture(scope="module")
def drive_sized() -> list[FundusCase]:
    return make_synthetic_fundus(3, seed=7)


def test_shapes_and_dtypes(drive_sized):
    for case in drive_sized:
        assert case.image.shape == (584, 565, 3) and case.image.dtype == np.float32
        assert case.vessels.shape == case.fov.shape == (584, 565)
        assert case.vessels.dtype == bool and case.fov.dtype == bool
        assert 0.0 <= case.image.min() and case.image.max() <= 1.0
    small = make_synthetic_fundus(1, size=(96, 128))[0]
    assert small.image.shape == (96, 128, 3) and small.fov.shape == (96, 128)


def test_deterministic_per_seed_and_independent_of_n():
    a = make_synthetic_fundus(2, size=(160, 150), seed=3)
    b = make_synthetic_fundus(3, size=(160, 150), seed=3)
    c = make_synthetic_fundus(2, size=(160, 150), seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.vessels, y.vessels)
    assert not np.array_equal(a[0].vessels, c[0].vessels)
    assert not np.array_equal(a[0].vessels, a[1].vessels)


def test_circular_fov_dark_outside_nothing_labelled_outside(drive_sized):
    for case in drive_sized:
        fov = case.fov
        assert not (case.vessels & ~fov).any()
        assert 0.55 < fov.mean() < 0.8  # a disc of radius ~0.47 * 565 in a 584x565 frame
        xs = np.nonzero(fov)[1]
        assert fov[292, 282] and not fov[0, 0] and not fov[-1, -1]
        # a disc: its area matches pi * r^2 for the radius seen along its widest row
        radius = (xs.max() - xs.min() + 1) / 2
        assert abs(fov.sum() / (np.pi * radius**2) - 1) < 0.05
        assert case.image[~fov].mean() < 0.05 < case.image[fov].mean()


def test_realistic_vessel_fraction_inside_fov(drive_sized):
    for case in drive_sized:
        assert 0.05 <= case.vessel_fraction() <= 0.2, case.vessel_fraction()


def test_vessels_darker_than_background_mostly_in_green(drive_sized):
    for case in drive_sized:
        inside = case.image[case.fov & case.vessels]
        around = case.image[case.fov & ~ndimage.binary_dilation(case.vessels, iterations=2)]
        drop = around.mean(axis=0) - inside.mean(axis=0)  # per channel, R G B
        assert drop[1] > 0.03, drop
        relative = drop / around.mean(axis=0)
        assert relative[1] > relative[0], relative  # green shows vessels more than red
        red_dominant = case.image[case.fov].mean(axis=0)
        assert red_dominant[0] > red_dominant[1] > red_dominant[2]  # orange-red retina


def test_thin_and_thick_vessels_present(drive_sized):
    for case in drive_sized:
        v = case.vessels
        depth = ndimage.distance_transform_edt(v)  # distance to background: half the local width
        assert depth.max() >= 3.0  # some vessel at least ~6 px wide
        thin = v & ~ndimage.binary_opening(v, structure=np.ones((3, 3)))  # parts narrower than 3 px
        assert thin.sum() > 0.3 * v.sum()
        thick = ndimage.binary_opening(v, structure=np.ones((5, 5)))
        assert thick.sum() > 0.05 * v.sum()


def test_vessel_trees_are_mostly_connected(drive_sized):
    for case in drive_sized:
        labels, n = ndimage.label(case.vessels, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        assert sizes.max() > 0.5 * case.vessels.sum()  # branching trees, not scattered specks


def test_synthetic_drive_splits_differ():
    train, test = synthetic_drive(n_train=2, n_test=2, size=(128, 128), seed=0)
    assert len(train) == 2 and len(test) == 2
    assert len({c.name for c in train + test}) == 4
    assert not np.array_equal(train[0].image, test[0].image)


def test_fast_enough():
    make_synthetic_fundus(1, seed=123)  # warm up imports
    start = time.perf_counter()
    make_synthetic_fundus(2, seed=11)
    assert (time.perf_counter() - start) / 2 < 1.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_synthetic_fundus(-1)
    with pytest.raises(ValueError):
        make_synthetic_fundus(1, size=(8, 8))
