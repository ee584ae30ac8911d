"""Joint image/mask augmentation: masks stay binary, geometry moves image and masks together."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from course_utils.data.augment import Compose, RandomAffine, RandomFlipRotate90, RandomIntensity, fundus_augmentation


def _sample(shape=(24, 24), channels=3, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((channels,) + shape).astype(np.float32)
    target = rng.random(shape) < 0.3
    fov = np.ones(shape, dtype=bool)
    return image, target, fov


def _marked(shape=(31, 31), at=(6, 20)):
    """Image and target both marked with the same 3x3 block."""
    image = np.zeros((2,) + shape, dtype=np.float32)
    target = np.zeros(shape, dtype=np.float32)
    sl = (slice(at[0] - 1, at[0] + 2), slice(at[1] - 1, at[1] + 2))
    image[(slice(None),) + sl] = 1.0
    target[sl] = 1.0
    return image, target, np.ones(shape, dtype=np.float32)


GEOMETRIC = [
    RandomFlipRotate90(p_flip=0.5),
    RandomAffine(max_degrees=30, scale_range=(0.8, 1.2)),
    fundus_augmentation(1.0),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
@pytest.mark.parametrize("seed", range(6))
def test_geometry_moves_image_and_mask_together(transform, seed):
    image, target, fov = _marked()
    out_image, out_target, out_fov = transform(image, target, fov, np.random.default_rng(seed))
    assert out_image.shape == image.shape and out_target.shape == target.shape == out_fov.shape
    assert out_target.sum() > 0
    channel = out_image[0]  # brightest region (intensity changes are monotone): where the block went
    image_centre = np.array(ndimage.center_of_mass(channel >= (channel.min() + channel.max()) / 2))
    mask_centre = np.array(ndimage.center_of_mass(out_target))
    assert np.abs(image_centre - mask_centre).max() < 1.0


def test_flip_rotate_permutes_pixels_exactly():
    image, target, fov = _sample((8, 8))
    seen = set()
    for seed in range(20):
        out_image, out_target, _ = RandomFlipRotate90()(image, target, fov, np.random.default_rng(seed))
        # a pure permutation of pixels: the same multiset of values, image and mask in step
        np.testing.assert_array_equal(np.sort(out_image, axis=None), np.sort(image, axis=None))
        pairs_in = sorted(zip(image[0].ravel().tolist(), target.ravel().tolist()))
        pairs_out = sorted(zip(out_image[0].ravel().tolist(), out_target.ravel().tolist()))
        assert pairs_in == pairs_out
        seen.add(out_image.tobytes())
    assert len(seen) > 4  # the dihedral group has 8 elements; 20 draws hit most


def test_non_square_keeps_shape():
    image, target, fov = _sample((10, 16))
    for seed in range(10):
        out = Compose([RandomFlipRotate90(), RandomAffine()])(image, target, fov, np.random.default_rng(seed))
        assert out[0].shape == (3, 10, 16) and out[1].shape == out[2].shape == (10, 16)


@pytest.mark.parametrize("dtype", [bool, np.float32])
def test_masks_stay_binary_and_keep_dtype(dtype):
    image, target, fov = _sample((32, 32))
    target, fov = target.astype(dtype), fov.astype(dtype)
    for seed in range(5):
        out_image, out_target, out_fov = fundus_augmentation(2.0)(image, target, fov, np.random.default_rng(seed))
        assert out_target.dtype == dtype and out_fov.dtype == dtype
        assert set(np.unique(out_target).tolist()) <= {0, 1}
        assert set(np.unique(out_fov).tolist()) <= {0, 1}
        assert out_image.dtype == np.float32 and 0.0 <= out_image.min() and out_image.max() <= 1.0


def test_rotation_marks_corners_outside_fov():
    image, target, fov = _sample((32, 32))
    _, _, out_fov = RandomAffine(max_degrees=45, scale_range=(1, 1))(image, target, fov, np.random.default_rng(1))
    assert not out_fov.all() and out_fov[16, 16]


def test_intensity_changes_image_only():
    image, target, fov = _sample()
    out_image, out_target, out_fov = RandomIntensity(0.2, 0.2, 0.3)(image, target, fov, np.random.default_rng(0))
    assert out_target is target and out_fov is fov
    assert not np.allclose(out_image, image)
    # a monotone map of intensities: pixel order within each channel is kept
    for c in range(image.shape[0]):
        order = np.argsort(image[c], axis=None)
        assert np.all(np.diff(out_image[c].ravel()[order]) >= -1e-6)


@pytest.mark.parametrize(
    "transform",
    [
        RandomFlipRotate90(p_flip=0.0, rotate90=False),
        RandomAffine(max_degrees=0.0, scale_range=(1.0, 1.0)),
        RandomIntensity(0.0, 0.0, 0.0),
        fundus_augmentation(0.0),
    ],
    ids=repr,
)
def test_identity_at_zero_strength(transform):
    image, target, fov = _sample()
    out = transform(image, target, fov, np.random.default_rng(0))
    for a, b in zip(out, (image, target, fov)):
        np.testing.assert_array_equal(a, b)


def test_deterministic_given_generator():
    image, target, fov = _sample()
    aug = fundus_augmentation(1.0)
    a = aug(image, target, fov, np.random.default_rng(5))
    b = aug(image, target, fov, np.random.default_rng(5))
    c = aug(image, target, fov, np.random.default_rng(6))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_bad_input():
    image, target, fov = _sample()
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        RandomAffine()(image[0], target, fov, np.random.default_rng(0))
    with pytest.raises(ValueError, match="target"):
        RandomFlipRotate90()(image, target[:-1], fov, np.random.default_rng(0))
    with pytest.raises(ValueError):
        fundus_augmentation(-1)


def test_flip_rotate_hook_replaces_only_the_flips_and_turns():
    """``fundus_augmentation(flip_rotate=...)``: lesson 03's learner-written flips in place of the course's."""
    image, target, fov = _sample((16, 16))
    same = fundus_augmentation(1.0, flip_rotate=RandomFlipRotate90(p_flip=0.5))
    for seed in range(4):
        for a, b in zip(
            same(image, target, fov, np.random.default_rng(seed)),
            fundus_augmentation(1.0)(image, target, fov, np.random.default_rng(seed)),
        ):
            np.testing.assert_array_equal(a, b)
    calls = []

    def spy(image, target, fov, rng):
        calls.append(image.shape)
        return image, target, fov

    aug = fundus_augmentation(1.0, flip_rotate=spy)
    assert aug.transforms[0] is spy and isinstance(aug.transforms[1], RandomAffine)
    aug(image, target, fov, np.random.default_rng(0))
    assert calls == [(3, 16, 16)]
    assert fundus_augmentation(0.0, flip_rotate=spy).transforms == []
    with pytest.raises(TypeError, match="flip_rotate"):
        fundus_augmentation(1.0, flip_rotate="flips")
