"""course_utils.mri.candidates and lesson 04's false-lesion filter: candidates, their features, the classifier."""

import warnings

import numpy as np
import pytest
from scipy import ndimage

from course_utils.errors import MetricWarning
from course_utils.lessons.lesson04 import pipeline as p04
from course_utils.metrics.lesions import lesion_detection
from course_utils.mri.candidates import (
    DEPTH_CAP_MM,
    SHELL_VOXELS,
    CandidateClassifier,
    candidate_features,
    candidate_is_lesion,
    feature_names,
    label_candidates,
    paint,
    zscore_in_mask,
)


def _scene(seed: int = 0):
    """A 24^3 brain with four candidates: a 3^3 cube (0.95 at its centre), a voxel two voxels from it (a
    candidate of its own, inside the cube's shell), two voxels that touch by a corner only (one 26-connected
    candidate) and a single voxel at 0.3; random images."""
    rng = np.random.default_rng(seed)
    shape = (24, 24, 24)
    mask = np.zeros(shape, bool)
    mask[2:22, 2:22, 2:22] = True
    prob = np.zeros(shape, np.float32)
    prob[5:8, 5:8, 5:8] = 0.8
    prob[6, 6, 6] = 0.95
    prob[9, 6, 6] = 0.7  # not touching the cube (x = 8 is empty), but in its 2-voxel shell
    prob[12, 12, 12] = prob[13, 13, 13] = 0.6  # corner neighbours: one 26-connected candidate
    prob[18, 5, 10] = 0.3
    images = {"FLAIR": rng.normal(size=shape).astype(np.float32), "T1": rng.normal(size=shape).astype(np.float32)}
    depth = ndimage.distance_transform_edt(mask).astype(np.float32)
    return prob, mask, images, depth


def test_zscore_in_mask_has_zero_mean_and_unit_sd_inside_and_zero_outside():
    rng = np.random.default_rng(1)
    image = rng.normal(50, 7, size=(10, 10, 10))
    mask = np.zeros(image.shape, bool)
    mask[2:8, 2:8, 2:8] = True
    z = zscore_in_mask(image, mask, clip=(0, 100))
    assert z.dtype == np.float32 and abs(z[mask].mean()) < 1e-5 and abs(z[mask].std() - 1) < 1e-4
    assert (z[~mask] == 0).all()
    with pytest.raises(ValueError, match="constant"):
        zscore_in_mask(np.ones_like(image), mask)
    with pytest.raises(ValueError, match="shape"):
        zscore_in_mask(image, mask[:-1])


def test_candidates_are_the_components_the_lesion_metrics_count():
    prob, mask, _, _ = _scene()
    labels, n = label_candidates(prob, 0.5, mask)
    assert n == 3, "the cube, its neighbour and the diagonal pair (26-connected); the 0.3 voxel is below"
    assert n == lesion_detection((prob >= 0.5) & mask, np.zeros_like(mask))["n_pred"]
    with pytest.raises(ValueError, match="threshold"):
        label_candidates(prob, 0.0, mask)


def test_candidate_features_match_a_direct_computation():
    prob, mask, images, depth = _scene()
    labels, n = label_candidates(prob, 0.2, mask)
    spacing = (1.0, 1.0, 2.0)
    feats = candidate_features(labels, n, prob, depth, images, mask, spacing)
    names = feature_names(["FLAIR", "T1"])
    assert feats.shape == (n, len(names)) == (4, 9)
    for i in range(n):
        inside = labels == i + 1
        row = dict(zip(names, feats[i]))
        assert row["log_volume_mm3"] == pytest.approx(np.log(inside.sum() * 2.0))
        assert row["mean_prob"] == pytest.approx(prob[inside].mean())
        assert row["max_prob"] == pytest.approx(prob[inside].max())
        assert row["mean_depth_mm"] == pytest.approx(depth[inside].mean())
        assert row["capped_depth_mm"] == pytest.approx(min(depth[inside].mean(), DEPTH_CAP_MM))
        # the shell: voxels within SHELL_VOXELS (chessboard distance) of the candidate, in the brain, in no candidate
        near = ndimage.binary_dilation(inside, np.ones((3, 3, 3)), iterations=SHELL_VOXELS)
        shell = near & mask & (labels == 0)
        for m, image in images.items():
            assert row[f"{m}_inside"] == pytest.approx(image[inside].mean(), abs=1e-6)
            assert row[f"{m}_contrast"] == pytest.approx(image[inside].mean() - image[shell].mean(), abs=1e-5)


def test_candidate_features_refuse_mismatched_arrays_and_handle_no_candidate():
    prob, mask, images, depth = _scene()
    labels, n = label_candidates(prob, 0.99, mask)
    assert n == 0 and candidate_features(labels, n, prob, depth, images, mask, (1, 1, 1)).shape == (0, 9)
    labels, n = label_candidates(prob, 0.5, mask)
    with pytest.raises(ValueError, match="T1 has shape"):
        candidate_features(labels, n, prob, depth, {**images, "T1": images["T1"][:-1]}, mask, (1, 1, 1))


def test_a_candidate_is_a_lesion_when_it_touches_one():
    prob, mask, _, _ = _scene()
    labels, n = label_candidates(prob, 0.2, mask)
    truth = np.zeros_like(mask)
    truth[7, 7, 7:10] = True  # touches the cube only
    real = candidate_is_lesion(labels, n, truth)
    assert real.tolist() == [True, False, False, False]
    assert real.sum() == lesion_detection(labels > 0, truth)["n_correct"]


def test_paint_keeps_exactly_the_candidates_whose_value_reaches_the_cut():
    prob, mask, _, _ = _scene()
    labels, n = label_candidates(prob, 0.2, mask)
    score = paint(labels, np.array([0.9, 0.2, 0.6, 0.1]))
    kept = score >= 0.5
    assert np.array_equal(kept, (labels == 1) | (labels == 3))
    with pytest.raises(ValueError, match="one value per candidate"):
        paint(labels, np.ones(3))


def test_classifier_learns_a_separable_rule_and_says_when_there_is_nothing_to_learn():
    rng = np.random.default_rng(0)
    names = ("a", "b")
    x = rng.normal(size=(200, 2))
    y = x[:, 0] + 0.1 * rng.normal(size=200) > 0.5  # unbalanced: about a third are "lesions"
    clf = CandidateClassifier(names).fit(x, y)
    p = clf.lesion_probability(x)
    assert ((p >= 0.5) == y).mean() > 0.9 and clf.weights()["a"] > 5 * abs(clf.weights()["b"])
    with pytest.warns(MetricWarning, match="all 3 training candidates are false"):
        constant = CandidateClassifier(names).fit(x[:3], np.zeros(3, bool))
    assert constant.lesion_probability(x[:4]).tolist() == [0.0] * 4 and constant.weights() == {}
    with pytest.warns(MetricWarning, match="no training candidates"):
        empty = CandidateClassifier(names).fit(np.zeros((0, 2)), np.zeros(0, bool))
    assert empty.lesion_probability(x[:3]).tolist() == [1.0] * 3, "nothing learned: every candidate is kept"
    with pytest.raises(ValueError, match="NaN"):
        CandidateClassifier(names).fit(np.array([[np.nan, 0.0], [1.0, 1.0]]), np.array([True, False]))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        CandidateClassifier(names).fit(x[:, :1], y)
    with pytest.raises(RuntimeError, match="fit first"):
        CandidateClassifier(names).lesion_probability(x)


def _prepared_with_false_rim(seed: int):
    """A smoke synthetic case and a probability map: its true lesions at 0.9 plus false blobs on the brain's edge."""
    pc = p04.prepare_synthetic(1, seed=seed, spacing=4.0)[0]
    truth = pc.native_label > 0
    prob = np.where(truth, 0.9, 0.0).astype(np.float32)
    depth = pc.native_depth_mm()
    edge = np.argwhere((depth > 0) & (depth <= 4.0) & ~ndimage.binary_dilation(truth, iterations=3))
    rng = np.random.default_rng(seed)
    for x, y, z in edge[rng.choice(len(edge), 12, replace=False)]:
        prob[x, y, z] = max(prob[x, y, z], 0.6)
    return pc, prob


def test_the_filter_trained_on_some_volumes_removes_false_edge_blobs_of_another():
    train = [_prepared_with_false_rim(s) for s in (1, 2)]
    test_case, test_prob = _prepared_with_false_rim(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        training = [p04.case_candidates(prob, pc, 0.5, ("FLAIR", "T1")) for pc, prob in train]
        assert all(c.is_lesion.any() and not c.is_lesion.all() for c in training), "both kinds to learn from"
        classifier, cut = p04.fit_false_lesion_filter(training)
        candidates = p04.case_candidates(test_prob, test_case, 0.5, ("FLAIR", "T1"))
        seg, kept = p04.filter_candidates(candidates, classifier, cut)
    before = p04.evaluate_case(test_prob, test_case, 0.5)
    after = p04.evaluate_segmentation(seg, test_case)
    assert kept.sum() < candidates.n and after["n_pred_lesions"] == kept.sum()
    assert after["lesion_precision"] > before["lesion_precision"] and after["lesion_precision"] == 1.0
    assert after["lesion_sensitivity"] == before["lesion_sensitivity"], "no real lesion was removed"
    with pytest.raises(ValueError, match="modalities"):
        p04.filter_candidates(p04.case_candidates(test_prob, test_case, 0.5, ("FLAIR",)), classifier, cut)
