"""Lesion metrics on hand-made volumes with known answers, cross-checked against scipy / scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import dice as scipy_dice_dissimilarity
from scipy.spatial.distance import directed_hausdorff
from skimage.measure import label as sk_label

from course_utils.metrics.lesions import (
    avd_percent,
    boundary,
    dice,
    hd95,
    label_lesions,
    lesion_detection,
    lesion_metrics,
    surface_distances,
)


def vol(shape=(20, 20, 20)) -> np.ndarray:
    return np.zeros(shape, dtype=bool)


@pytest.fixture
def two_cubes_one_missed():
    """Truth: cube A (27 voxels) and cube B (8). Prediction: A exactly and a false blob (8) far away."""
    truth, pred = vol(), vol()
    truth[2:5, 2:5, 2:5] = True
    truth[10:12, 10:12, 10:12] = True
    pred[2:5, 2:5, 2:5] = True
    pred[15:17, 2:4, 15:17] = True
    return pred, truth


def test_two_cubes_known_answers(two_cubes_one_missed):
    pred, truth = two_cubes_one_missed
    m = lesion_metrics(pred, truth)
    assert m["dice"] == pytest.approx(2 * 27 / (35 + 35))
    assert m["n_true_lesions"] == 2 and m["n_pred_lesions"] == 2
    assert m["lesion_sensitivity"] == pytest.approx(0.5)  # A found, B missed
    assert m["lesion_precision"] == pytest.approx(0.5)  # A correct, the blob a false alarm
    assert m["lesion_f1"] == pytest.approx(0.5)
    assert m["avd_percent"] == pytest.approx(0.0)  # 35 voxels each
    assert m["true_volume_ml"] == pytest.approx(35 / 1000)


def test_precision_counts_predicted_lesions_not_true_ones():
    """Three predicted fragments inside one true lesion plus one false blob: precision 3/4, sensitivity 1.

    The seminar's "PPV" (detected true lesions / predicted lesions) would give 1/4 here.
    """
    truth, pred = vol(), vol()
    truth[2:12, 2:5, 2:5] = True
    for x in (2, 6, 10):
        pred[x, 3, 3] = True
    pred[17, 17, 17] = True
    det = lesion_detection(pred, truth)
    assert (det["n_true"], det["n_detected"], det["n_pred"], det["n_correct"]) == (1, 1, 4, 3)
    assert det["sensitivity"] == 1.0
    assert det["precision"] == pytest.approx(3 / 4)
    assert det["f1"] == pytest.approx(2 * 0.75 / 1.75)


def test_one_prediction_detects_two_lesions():
    truth, pred = vol(), vol()
    truth[2:4, 2:4, 2:4] = True
    truth[2:4, 6:8, 2:4] = True
    pred[2:4, 2:8, 2:4] = True
    det = lesion_detection(pred, truth)
    assert det["sensitivity"] == 1.0 and det["precision"] == 1.0 and det["n_pred"] == 1


def test_min_overlap_rule():
    truth, pred = vol(), vol()
    truth[2:6, 2:6, 2:6] = True
    pred[5:8, 5:8, 5:8] = True  # touches the true cube in one voxel (5, 5, 5)
    assert lesion_detection(pred, truth, min_overlap=1)["sensitivity"] == 1.0
    assert lesion_detection(pred, truth, min_overlap=2)["sensitivity"] == 0.0
    assert lesion_detection(pred, truth, min_overlap=2)["precision"] == 0.0


def test_connectivity_corner_touching_voxels():
    mask = vol((5, 5, 5))
    mask[1, 1, 1] = mask[2, 2, 2] = True  # share a corner only
    assert label_lesions(mask, 26)[1] == 1  # the default, as the WMH challenge
    assert label_lesions(mask, 18)[1] == 2
    assert label_lesions(mask, 6)[1] == 2
    edge = vol((5, 5, 5))
    edge[1, 1, 1] = edge[2, 2, 1] = True  # share an edge
    assert label_lesions(edge, 18)[1] == 1 and label_lesions(edge, 6)[1] == 2
    with pytest.raises(ValueError, match="6, 18 or 26"):
        label_lesions(mask, 8)


def test_ignore_mask_removes_voxels_from_both(two_cubes_one_missed):
    pred, truth = two_cubes_one_missed
    ignore = vol()
    ignore[10:12, 10:12, 10:12] = True  # the missed lesion B is "other pathology"
    ignore[15:17, 2:4, 15:17] = True  # and so is the false blob
    m = lesion_metrics(pred, truth, ignore=ignore)
    assert m["dice"] == 1.0 and m["lesion_sensitivity"] == 1.0 and m["lesion_precision"] == 1.0
    assert m["n_true_lesions"] == 1 and m["n_pred_lesions"] == 1


def test_empty_masks_conventions():
    empty, full = vol(), vol()
    full[3:6, 3:6, 3:6] = True
    both = lesion_metrics(empty, empty)
    assert (
        both["dice"],
        both["lesion_sensitivity"],
        both["lesion_precision"],
        both["avd_percent"],
        both["hd95_mm"],
    ) == (1.0, 1.0, 1.0, 0.0, 0.0)
    missed = lesion_metrics(empty, full)  # nothing predicted
    assert missed["dice"] == 0.0 and missed["lesion_sensitivity"] == 0.0 and missed["lesion_precision"] == 1.0
    assert missed["lesion_f1"] == 0.0 and missed["avd_percent"] == 100.0 and math.isnan(missed["hd95_mm"])
    false_alarm = lesion_metrics(full, empty)  # nothing to find
    assert false_alarm["lesion_sensitivity"] == 1.0 and false_alarm["lesion_precision"] == 0.0
    assert math.isnan(false_alarm["avd_percent"]) and math.isnan(false_alarm["hd95_mm"])


def test_avd_percent_hand_computed():
    truth, pred = vol(), vol()
    truth[0:4, 0:5, 0:2] = True  # 40 voxels
    pred[0:5, 0:5, 0:2] = True  # 50 voxels
    assert avd_percent(pred, truth) == pytest.approx(25.0)
    assert avd_percent(truth, pred) == pytest.approx(20.0)  # relative to the truth: not symmetric


def test_hd95_single_voxels_anisotropic():
    truth, pred = vol(), vol()
    truth[5, 5, 5] = True
    pred[5, 6, 6] = True
    spacing = (0.5, 1.0, 3.0)
    assert hd95(pred, truth, spacing) == pytest.approx(math.sqrt(1.0**2 + 3.0**2))


def test_hd95_parallel_sheets_all_distances_equal():
    truth, pred = vol(), vol()
    truth[2:12, 2:12, 4] = True
    pred[2:12, 2:12, 6] = True  # two slices further along axis 2, 3 mm slices
    assert hd95(pred, truth, (1.0, 1.0, 3.0)) == pytest.approx(6.0)


def test_shifted_cube_hausdorff_matches_scipy():
    truth, pred = vol(), vol()
    truth[5:15, 5:15, 5:15] = True
    pred[5:15, 5:15, 7:17] = True
    spacing = np.array([0.9, 1.0, 3.0])
    hd_max = hd95(pred, truth, spacing, percentile=100)
    assert hd_max == pytest.approx(6.0)  # the bottom face moved by 2 slices of 3 mm
    bp, bt = np.argwhere(boundary(pred)) * spacing, np.argwhere(boundary(truth)) * spacing
    ref = max(directed_hausdorff(bp, bt)[0], directed_hausdorff(bt, bp)[0])
    assert hd_max == pytest.approx(ref)
    value = hd95(pred, truth, spacing)
    d1, d2 = surface_distances(pred, truth, spacing)
    assert 0 < value <= hd_max
    assert value == pytest.approx(max(np.percentile(d1, 95), np.percentile(d2, 95)))


def test_boundary_counts():
    cube = vol((7, 7, 7))
    cube[1:6, 1:6, 1:6] = True
    assert boundary(cube, "3d").sum() == 125 - 27
    assert boundary(cube, "2d").sum() == 5 * (25 - 9)  # eroded in the plane of axes 0, 1 only


def test_dice_matches_scipy_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.random((12, 10, 8)) < 0.3, rng.random((12, 10, 8)) < 0.2
        assert dice(a, b) == pytest.approx(1.0 - scipy_dice_dissimilarity(a.ravel(), b.ravel()))
        assert dice(a, b) == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_detection_matches_brute_force_with_skimage_labels():
    rng = np.random.default_rng(1)
    pred, truth = rng.random((16, 16, 16)) < 0.04, rng.random((16, 16, 16)) < 0.04
    t_lab, p_lab = sk_label(truth, connectivity=3), sk_label(pred, connectivity=3)
    detected = sum(pred[t_lab == k].any() for k in range(1, t_lab.max() + 1))
    correct = sum(truth[p_lab == k].any() for k in range(1, p_lab.max() + 1))
    det = lesion_detection(pred, truth)
    assert det["n_true"] == t_lab.max() and det["n_pred"] == p_lab.max()
    assert det["sensitivity"] == pytest.approx(detected / t_lab.max())
    assert det["precision"] == pytest.approx(correct / p_lab.max())


def test_bad_inputs_say_what_to_do():
    with pytest.raises(ValueError, match="one voxel grid"):
        dice(vol((4, 4, 4)), vol((4, 4, 5)))
    with pytest.raises(ValueError, match="threshold probabilities"):
        dice(np.full((4, 4, 4), 0.7), vol((4, 4, 4)))
    with pytest.raises(ValueError, match="spacing"):
        hd95(vol(), vol(), spacing=(1.0, 0.0, 1.0))
