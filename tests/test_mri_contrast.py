"""lesion_contrast: known answers on hand-made volumes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.errors import DataError
from course_utils.mri.contrast import lesion_contrast


def _cube_volume(lesion_value: float = 3.0):
    brain = np.ones((20, 20, 20), bool)
    image = np.ones(brain.shape, np.float32)
    label = np.zeros(brain.shape, np.uint8)
    label[8:12, 8:12, 8:12] = 1  # 64 voxels, 0.8 % of the brain: above the 99.5th percentile clip
    image[label > 0] = lesion_value
    return image, brain, label


def test_contrast_of_a_bright_cube_in_flat_tissue():
    image, brain, label = _cube_volume(3.0)
    out = lesion_contrast(image, brain, label)
    share = 64 / 8000
    std = 2.0 * np.sqrt(share * (1 - share))  # z-score over the brain: two values, 1 and 3
    assert out["contrast"] == pytest.approx(2.0 / std, rel=1e-4)
    assert out["lesion"] == pytest.approx((3.0 - (1 + 2 * share)) / std, rel=1e-4)
    assert out["surround_sd"] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(out["small_lesion"]) and np.isnan(out["small_contrast"])  # 64 voxels > 30
    small = lesion_contrast(image, brain, label, max_small_voxels=64)
    assert small["small_contrast"] == pytest.approx(out["contrast"], rel=1e-6)


def test_ring_skips_the_border_and_sees_the_surround():
    image, brain, label = _cube_volume(3.0)
    border = np.zeros(brain.shape, bool)
    border[7:13, 7:13, 7:13] = True
    border &= label == 0
    image[border] = 2.0  # a blurred border, one voxel thick
    with_border = lesion_contrast(image, brain, label, inner=1, outer=3)["contrast"]
    touching = lesion_contrast(image, brain, label, inner=0, outer=1)["contrast"]
    assert touching < with_border  # the ring that includes the border sees it brighter
    dark = _cube_volume(0.5)
    assert lesion_contrast(*dark)["contrast"] < 0  # hypointense lesions (T1) give a negative contrast


def test_errors_say_what_is_wrong():
    image, brain, label = _cube_volume()
    with pytest.raises(DataError, match="no lesion voxel"):
        lesion_contrast(image, brain, np.zeros_like(label))
    with pytest.raises(ValueError, match="one shape"):
        lesion_contrast(image[:-1], brain, label)
    with pytest.raises(ValueError, match="inner < outer"):
        lesion_contrast(image, brain, label, inner=3, outer=2)
