import numpy as np
import pytest
import torch

from course_utils.data import ShapesDataset, make_shapes


def test_shapes_are_deterministic_and_well_formed():
    x1, m1 = make_shapes(6, 32, seed=3)
    x2, m2 = make_shapes(6, 32, seed=3)
    x3, _ = make_shapes(6, 32, seed=4)
    assert np.array_equal(x1, x2) and np.array_equal(m1, m2) and not np.array_equal(x1, x3)
    assert x1.shape == (6, 1, 32, 32) and x1.dtype == np.float32
    assert m1.dtype == np.uint8 and set(np.unique(m1)) <= {0, 1}


def test_foreground_is_brighter_and_not_trivial():
    x, m = make_shapes(64, 48, seed=0, noise=0.1)
    fraction = m.mean()
    assert 0.02 < fraction < 0.4
    assert x[m == 1].mean() > x[m == 0].mean() + 0.3


def test_thin_structures_exist():
    from scipy import ndimage

    _, m = make_shapes(64, 64, seed=0)
    eroded = ndimage.binary_erosion(m[:, 0], structure=np.ones((1, 3, 3)))
    # pixels that vanish under a 3x3 erosion belong to structures at most ~2 px wide or to borders
    thin_only = [(mi.sum() > 0) and (e.sum() < 0.5 * mi.sum()) for mi, e in zip(m[:, 0], eroded)]
    assert any(thin_only)


def test_distractors_are_bright_but_not_labelled():
    x_plain, _ = make_shapes(32, 48, seed=1, noise=0.0)
    x_dist, m_dist = make_shapes(32, 48, seed=1, noise=0.0, distractors=True)
    bright_background = (x_dist > 0.45) & (m_dist == 0)
    assert bright_background.sum() > (x_plain > 0.45).sum() * 0.05


def test_dataset_items_and_flip_keep_pairs_aligned():
    ds = ShapesDataset(4, 32, seed=0, flip=True)
    torch.manual_seed(0)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (1, 32, 32) and x.dtype == torch.float32
        # the flipped mask still marks the brightest structures of the flipped image
        assert x[y > 0.5].mean() > x[y < 0.5].mean()
    with pytest.raises(ValueError):
        make_shapes(0, 32)
