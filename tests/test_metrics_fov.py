"""FOV metrics and curves: cross-checked against scikit-learn, blind to pixels outside the mask."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.metrics import auc as sklearn_auc

from course_utils.errors import ConfigError
from course_utils.metrics import binary_metrics, choose_threshold, confusion_in_mask, pr_curve_in_mask, roc_auc_in_mask
from course_utils.metrics.curves import scores_in_mask


def _random(seed: int, shape=(23, 19), n: int = 1):
    rng = np.random.default_rng(seed)
    truth = [rng.random(shape) < 0.2 for _ in range(n)]
    prob = [np.clip(0.35 * t + rng.random(shape) * 0.8, 0, 1) for t in truth]
    mask = [rng.random(shape) < 0.7 for _ in range(n)]
    return prob, truth, mask


def _pool(arrays, masks):
    return np.concatenate([a[m] for a, m in zip(arrays, masks)])


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_sklearn_on_masked_pixels(seed):
    prob, truth, mask = _random(seed, n=3)
    pred = [p >= 0.5 for p in prob]
    ours = binary_metrics(pred, truth, mask)
    y_pred, y_true = _pool(pred, mask), _pool(truth, mask)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ours["sensitivity"] == pytest.approx(recall_score(y_true, y_pred))
    assert ours["specificity"] == pytest.approx(recall_score(~y_true, ~y_pred))
    assert ours["precision"] == pytest.approx(precision_score(y_true, y_pred))
    assert ours["f1"] == pytest.approx(f1_score(y_true, y_pred))
    assert ours["iou"] == pytest.approx(jaccard_score(y_true, y_pred))
    counts = confusion_in_mask(pred, truth, mask)
    assert sum(counts.values()) == sum(m.sum() for m in mask)
    assert counts["tp"] == int((y_pred & y_true).sum())


def test_hand_computed_confusion():
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 1]], dtype=bool)
    truth = np.array([[1, 0, 1, 0], [1, 1, 0, 1]], dtype=bool)
    mask = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=bool)
    # inside mask: (1,1) tp, (1,0) fp, (0,1) fn, (0,0) tn, (1,1) tp
    assert confusion_in_mask(pred, truth, mask) == {"tp": 2, "fp": 1, "tn": 1, "fn": 1}
    m = binary_metrics(pred, truth, mask)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(4 / 6) and m["iou"] == pytest.approx(2 / 4)
    assert confusion_in_mask(pred, truth) == {"tp": 3, "fp": 1, "tn": 2, "fn": 2}


@pytest.mark.parametrize("seed", range(3))
def test_pixels_outside_mask_do_not_matter(seed):
    prob, truth, mask = _random(seed, n=2)
    pred = [p >= 0.5 for p in prob]
    flip_pred = [np.where(m, p, ~p) for p, m in zip(pred, mask)]
    flip_truth = [np.where(m, t, ~t) for t, m in zip(truth, mask)]
    noise_prob = [np.where(m, p, 1 - p) for p, m in zip(prob, mask)]
    assert binary_metrics(pred, truth, mask) == binary_metrics(flip_pred, flip_truth, mask)
    assert binary_metrics(pred, truth) != binary_metrics(flip_pred, flip_truth)  # the mask matters
    assert roc_auc_in_mask(prob, truth, mask)[3] == roc_auc_in_mask(noise_prob, flip_truth, mask)[3]
    assert pr_curve_in_mask(prob, truth, mask)[3] == pr_curve_in_mask(noise_prob, flip_truth, mask)[3]
    assert choose_threshold(prob, truth, mask) == choose_threshold(noise_prob, flip_truth, mask)


def test_zero_division_conventions_match_sklearn():
    cases = {
        "both empty": (np.zeros(6, bool), np.zeros(6, bool)),
        "empty prediction": (np.zeros(6, bool), np.array([1, 0, 0, 0, 0, 0], bool)),
        "empty truth": (np.array([0, 1, 0, 0, 0, 0], bool), np.zeros(6, bool)),
        "all positive truth": (np.ones(6, bool), np.ones(6, bool)),
    }
    for name, (pred, truth) in cases.items():
        m = binary_metrics(pred, truth)
        assert m["sensitivity"] == recall_score(truth, pred, zero_division=1.0), name
        assert m["precision"] == precision_score(truth, pred, zero_division=1.0), name
        assert m["f1"] == f1_score(truth, pred, zero_division=1.0), name
        assert m["iou"] == jaccard_score(truth, pred, zero_division=1.0), name
        assert m["specificity"] == recall_score(~truth, ~pred, zero_division=1.0), name
    assert binary_metrics(np.zeros(4, bool), np.zeros(4, bool), zero_division=0.0)["f1"] == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_roc_and_pr_pooled_over_images_match_sklearn(seed):
    prob, truth, mask = _random(seed, n=3)
    y_score, y_true = _pool(prob, mask), _pool(truth, mask)
    fpr, tpr, thresholds, auc = roc_auc_in_mask(prob, truth, mask)
    assert auc == pytest.approx(roc_auc_score(y_true, y_score))
    assert auc == pytest.approx(sklearn_auc(fpr, tpr))
    assert fpr[0] == 0 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)
    precision, recall, pr_thresholds, ap = pr_curve_in_mask(prob, truth, mask)
    assert ap == pytest.approx(average_precision_score(y_true, y_score))
    assert len(precision) == len(recall) == len(pr_thresholds) + 1
    single = roc_auc_in_mask(prob[0], truth[0], mask[0])[3]
    assert single == pytest.approx(roc_auc_score(truth[0][mask[0]], prob[0][mask[0]]))


def _brute_force_best(scores, labels, criterion):
    best, best_t = -np.inf, None
    for t in np.unique(scores):
        pred = scores >= t
        if criterion == "f1":
            value = f1_score(labels, pred)
        elif criterion == "accuracy":
            value = accuracy_score(labels, pred)
        else:
            value = recall_score(labels, pred) + recall_score(~labels, ~pred) - 1
        if value > best + 1e-12:
            best, best_t = value, t
    return best, best_t


@pytest.mark.parametrize("criterion", ["f1", "accuracy", "youden"])
def test_pooled_threshold_matches_brute_force(criterion):
    prob, truth, mask = _random(7, shape=(12, 11), n=2)
    prob = [np.round(p, 2) for p in prob]  # ties, as with quantised probabilities
    t = choose_threshold(prob, truth, mask, criterion=criterion, average="pooled")
    scores, labels = _pool(prob, mask), _pool(truth, mask)
    best, _ = _brute_force_best(scores, labels, criterion)
    pred_gt, pred_ge = scores > t, scores >= t
    assert np.array_equal(pred_gt, pred_ge)  # t lies between two distinct scores
    if criterion == "f1":
        assert f1_score(labels, pred_gt) == pytest.approx(best)
    elif criterion == "accuracy":
        assert accuracy_score(labels, pred_gt) == pytest.approx(best)
    else:
        assert recall_score(labels, pred_gt) + recall_score(~labels, ~pred_gt) - 1 == pytest.approx(best)


def test_pooled_threshold_finds_planted_optimum():
    rng = np.random.default_rng(0)
    truth = rng.random((40, 40)) < 0.3
    # vessels score in [0.6, 0.9], background in [0.0, 0.5] except the FOV-outside decoys
    prob = np.where(truth, rng.uniform(0.6, 0.9, truth.shape), rng.uniform(0.0, 0.5, truth.shape))
    mask = np.ones_like(truth)
    mask[:, :5] = False
    prob[:, :5] = np.where(truth[:, :5], 0.0, 1.0)  # outside the mask: maximally wrong
    t = choose_threshold(prob, truth, mask)
    assert prob[mask & ~truth].max() < t < prob[mask & truth].min()
    assert binary_metrics(prob > t, truth, mask)["f1"] == 1.0


def test_errors_are_clear():
    a = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        confusion_in_mask(a, np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="mask shape"):
        confusion_in_mask(a, a, np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="selects no pixel"):
        binary_metrics(a, a, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="threshold probabilities"):
        binary_metrics(np.full((4, 4), 0.7), a)
    with pytest.raises(ValueError, match="one class"):
        roc_auc_in_mask(np.random.default_rng(0).random((4, 4)), a, np.ones((4, 4), bool))
    with pytest.raises(ConfigError, match="criterion"):
        choose_threshold(np.eye(4), np.eye(4, dtype=bool), criterion="dice+lesion_f1")  # per_case only
    with pytest.raises(ConfigError, match="criterion"):
        choose_threshold(np.eye(4), np.eye(4, dtype=bool), criterion="youden", average="per_case")
    with pytest.raises(ConfigError, match="average"):
        choose_threshold(np.eye(4), np.eye(4, dtype=bool), average="mean")
    with pytest.raises(ValueError, match="apply to average='per_case' only"):
        choose_threshold(np.eye(4), np.eye(4, dtype=bool), candidates=[0.5])
    with pytest.raises(ValueError, match="apply to average='per_case' only"):
        choose_threshold(np.eye(4), np.eye(4, dtype=bool), tolerance=0.1)
    with pytest.raises(ValueError, match="one of each per image"):
        binary_metrics([a, a], [a])


def test_dice_is_f1_for_the_pooled_chooser():
    prob, truth, mask = _random(11, n=2)
    assert choose_threshold(prob, truth, mask, criterion="dice") == choose_threshold(prob, truth, mask, criterion="f1")


def _worked_example():
    """One case with a big foreground and two with one small lesion each (1-D "images")."""
    big_prob = np.array([0.5] * 10 + [0.1] * 2)
    big_truth = np.array([True] * 10 + [False] * 2)
    small_prob = np.array([0.8, 0.5, 0.5, 0.5])
    small_truth = np.array([True, False, False, False])
    return [big_prob, small_prob, small_prob.copy()], [big_truth, small_truth, small_truth.copy()]


def test_pooled_and_per_case_thresholds_on_a_worked_example():
    probs, truths = _worked_example()
    # pooled (all 20 pixels in one pool): score >= 0.8 gives F1 2*2/(4+0+10) = 0.29, >= 0.5 gives
    # 2*12/(24+6+0) = 0.80, >= 0.1 gives 2*12/(24+8) = 0.75: the cut lies halfway between 0.5 and 0.1
    assert choose_threshold(probs, truths) == pytest.approx(0.3)
    assert choose_threshold(probs, truths, average="pooled", criterion="f1") == pytest.approx(0.3)
    # per case (mean of the three Dice of prob >= t): t in (0.1, 0.5] -> (1 + 0.4 + 0.4) / 3 = 0.60,
    # t in (0.5, 0.8] -> (0 + 1 + 1) / 3 = 0.67 (best), t <= 0.1 -> (20/22 + 0.4 + 0.4) / 3 = 0.57
    assert choose_threshold(probs, truths, average="per_case") == pytest.approx(0.55)  # 0.5 itself: >= counts it
    assert choose_threshold(probs, truths, average="per_case", criterion="f1") == pytest.approx(0.55)
    assert choose_threshold(probs, truths, average="per_case", candidates=[0.3, 0.6]) == pytest.approx(0.6)
    assert choose_threshold(probs, truths, average="per_case", candidates=[0.5, 0.6]) == pytest.approx(0.6)
    # near-ties go to the lowest threshold: 0.60 is within 0.1 of 0.67
    assert choose_threshold(probs, truths, average="per_case", candidates=[0.3, 0.6], tolerance=0.1) == 0.3
    assert choose_threshold(probs, truths, average="per_case", candidates=[0.3, 0.6], tolerance=0.05) == 0.6
    # a mask that hides the second case's background: it scores 1 at every t <= 0.8, so (1 + 1 + 0.4) / 3
    # = 0.8 for t in (0.1, 0.5] wins, at its lowest candidate
    masks = [np.ones(12, bool), np.array([True, False, False, False]), np.ones(4, bool)]
    assert choose_threshold(probs, truths, masks, average="per_case") == pytest.approx(0.15)
    with pytest.raises(ValueError, match="one probability map, truth and mask per case"):
        choose_threshold(probs, truths[:2], average="per_case")
    with pytest.raises(ValueError, match="same grid"):
        choose_threshold([probs[0][:5]], [truths[0]], average="per_case")
    with pytest.raises(ValueError, match="tolerance"):
        choose_threshold(probs, truths, average="per_case", tolerance=-0.1)


def test_scores_in_mask_pools_the_masked_pixels():
    prob = [np.array([[0.1, 0.9], [0.4, 0.6]]), np.array([[0.2, 0.3]])]
    truth = [np.array([[False, True], [False, True]]), np.array([[True, False]])]
    mask = [np.array([[True, True], [False, True]]), np.array([[True, False]])]
    p, t = scores_in_mask(prob, truth, mask)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, [0.1, 0.9, 0.6, 0.2])
    np.testing.assert_array_equal(t, [False, True, True, True])
    with pytest.raises(ValueError, match="all one class"):
        scores_in_mask(prob, truth, [np.array([[False, True], [False, True]]), np.array([[True, False]])])
    with pytest.raises(ValueError, match="NaN"):
        scores_in_mask([np.array([np.nan, 0.5])], [np.array([True, False])], None)
