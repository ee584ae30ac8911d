"""course_utils.metrics.boxes against torchvision.ops (box IoU, NMS) and by hand (mask IoU)."""

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou
from torchvision.ops import nms as tv_nms

from course_utils.metrics.boxes import box_area, box_iou, mask_iou, match_detections, nms


def _random_boxes(rng, n, size=100.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 3, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


def test_box_iou_matches_torchvision_and_a_hand_example():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 30), _random_boxes(rng, 20)
    ours = box_iou(a, b)
    theirs = tv_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert ours.shape == (30, 20) and np.allclose(ours, theirs, atol=1e-12)
    assert (ours > 0).any() and (ours == 0).any(), "the random boxes both overlap and miss"
    # two 10x10 squares shifted by 5 in x: intersection 50, union 150
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(1 / 3)
    assert box_area([[0, 0, 10, 10], [1, 2, 4, 6]]).tolist() == [100, 12]
    assert box_iou([[3, 3, 3, 3]], [[3, 3, 3, 3]])[0, 0] == 0.0, "zero-area boxes: 0, not NaN"
    assert box_iou(np.zeros((0, 4)), a).shape == (0, 30)


def test_nms_matches_torchvision():
    rng = np.random.default_rng(1)
    for trial in range(5):
        boxes = _random_boxes(rng, 60, size=60.0)
        scores = rng.random(60)
        for threshold in (0.3, 0.5, 0.7):
            ours = nms(boxes, scores, threshold)
            theirs = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
            assert ours.tolist() == theirs.tolist(), (trial, threshold)
            if threshold == 0.3:
                assert len(ours) < 60, "crowded boxes: some are suppressed"


def test_nms_keeps_the_best_of_a_cluster_and_refuses_bad_input():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]
    assert nms(boxes, [0.5, 0.9, 0.1], 0.5).tolist() == [1, 2]
    assert nms(boxes, [0.5, 0.9, 0.1], 0.9).tolist() == [1, 0, 2], "a high threshold keeps both"
    with pytest.raises(ValueError, match="one score per box"):
        nms(boxes, [0.5], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nms(boxes, [0.5, 0.9, 0.1], 1.5)
    with pytest.raises(ValueError, match="corners"):
        box_iou([[10, 10, 5, 5]], [[0, 0, 1, 1]])


def test_mask_iou_by_hand():
    a = np.zeros((8, 8), bool)
    b = np.zeros((8, 8), bool)
    a[:4, :4] = True
    b[2:6, :4] = True
    assert mask_iou(a, b) == pytest.approx(8 / 24)
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError, match="same grid"):
        mask_iou(a, b[:4])


def test_match_detections_is_cocos_greedy_matching():
    truth = np.array([[0, 0, 10, 10], [8, 0, 18, 10], [40, 40, 50, 50]], dtype=float)
    boxes = np.array([[1, 0, 11, 10], [0, 0, 10, 10], [7, 0, 17, 10], [60, 60, 70, 70]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # by score: box 3 finds nothing; box 0 takes truth 0 (IoU 0.82, with truth 1 0.18); box 1 (IoU 1 with truth 0)
    # finds it taken and truth 1 too far (IoU 0.11); box 2 takes truth 1 (IoU 0.82)
    assert match_detections(boxes, scores, truth).tolist() == [0, -1, 1, -1]
    assert match_detections(boxes, scores, truth, iou_threshold=0.95).tolist() == [-1, 0, -1, -1]
    assert match_detections(boxes[:0], scores[:0], truth).tolist() == []
    assert match_detections(boxes, scores, truth[:0]).tolist() == [-1, -1, -1, -1]
    calls = []
    match_detections(boxes, scores, truth, iou=lambda a, b: calls.append(1) or box_iou(a, b))
    assert calls == [1], "the IoU function is the one given"


def test_more_detections_never_find_fewer_true_boxes():
    """NMS (or any removal of detections) can never raise the number of true boxes found."""
    rng = np.random.default_rng(3)
    for trial in range(30):
        truth = _random_boxes(rng, 12, size=60.0)
        boxes = np.concatenate([truth + rng.normal(0, 3, truth.shape), _random_boxes(rng, 20, size=60.0)])
        boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
        scores = rng.random(len(boxes))
        subset = np.sort(rng.choice(len(boxes), size=rng.integers(1, len(boxes)), replace=False))
        kept = nms(boxes, scores, 0.3)
        everything = (match_detections(boxes, scores, truth) >= 0).sum()
        for part in (subset, kept):
            assert (match_detections(boxes[part], scores[part], truth) >= 0).sum() <= everything, trial
