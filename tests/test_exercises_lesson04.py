import numpy as np
from scipy import ndimage

from course_utils.lessons.lesson04 import exercises as ex
from course_utils.selfcheck import CheckResult


def test_placeholders_are_pending_not_errors():
    for result in (ex.check_toy_dice(...), ex.check_lesion_sensitivity(...), ex.check_window_count(...)):
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted


def test_toy_dice_right_and_typical_mistakes():
    truth, pred = ex.toy_volumes()
    assert truth.sum() == 8 and pred.sum() == 12 and (truth & pred).sum() == 8
    assert ex.check_toy_dice(0.8)  # 2 * 8 / (12 + 8), by hand
    iou = ex.check_toy_dice(8 / 12)
    assert not iou.ok and "Jaccard" in iou.message
    assert "precision or sensitivity" in ex.check_toy_dice(1.0).message
    assert not ex.check_toy_dice("a lot").ok


def _labels(mask, structure=None):
    return ndimage.label(mask, structure)


def test_lesion_sensitivity_right_and_typical_mistakes():
    def right(pred, truth):
        labels, n = ndimage.label(truth, np.ones((3, 3, 3)))
        return sum(pred[labels == k].any() for k in range(1, n + 1)) / n

    def six_connected(pred, truth):
        labels, n = ndimage.label(truth)
        return sum(pred[labels == k].any() for k in range(1, n + 1)) / n

    def voxelwise(pred, truth):
        return (pred & truth).sum() / truth.sum()

    def precision(pred, truth):
        labels, n = ndimage.label(pred, np.ones((3, 3, 3)))
        return sum(truth[labels == k].any() for k in range(1, n + 1)) / n

    assert ex.check_lesion_sensitivity(right)
    assert "6-connected" in ex.check_lesion_sensitivity(six_connected).message
    assert "voxel-wise" in ex.check_lesion_sensitivity(voxelwise).message
    assert "precision" in ex.check_lesion_sensitivity(precision).message
    assert "failed" in ex.check_lesion_sensitivity(lambda p, t: 1 / 0).message
    assert "function itself" in ex.check_lesion_sensitivity(0.5).message


def test_lesion_toy_counts_by_hand():
    pred, truth = ex.lesion_toy()
    assert _labels(truth, np.ones((3, 3, 3)))[1] == 7 and _labels(truth)[1] == 8
    assert _labels(pred, np.ones((3, 3, 3)))[1] == 6


def test_window_count_right_and_typical_mistakes():
    # (91, 109, 91), patch 32, step 16: starts 0,16,32,48 + 59 -> 5; 0..64 + 77 -> 6; 5
    assert ex.check_window_count(5 * 6 * 5)
    assert "without overlap" in ex.check_window_count(3 * 4 * 3).message
    assert "Close" in ex.check_window_count(4 * 5 * 4).message
    assert "Multiply" in ex.check_window_count(16).message
    assert not ex.check_window_count(150.0).ok
    assert ex.check_window_count(1, shape=(20, 20, 20), patch=32)
