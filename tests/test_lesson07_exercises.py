"""Lesson 07's self-checks: right answers pass, each known slip gets its own diagnosis, placeholders are pending."""

import numpy as np
import pytest

from course_utils.lessons.lesson07 import exercises as ex


def voc_to_coco(box):
    x0, y0, x1, y1 = box
    return x0, y0, x1 - x0, y1 - y0


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda b: b, "corners unchanged"),
        (lambda b: (b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1), "one pixel too large"),
        (lambda b: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]), "centre"),
        (lambda b: (1, 2, 3), "4 numbers"),
    ],
)
def test_voc_to_coco_slips_are_named(fn, message):
    result = ex.check_voc_to_coco(fn)
    assert not result and message in result.message


def test_voc_to_coco_right_and_pending():
    assert ex.check_voc_to_coco(voc_to_coco)
    assert not ex.check_voc_to_coco(...).attempted


def box_iou(a, b):
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).prod(-1), (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def _no_clip(a, b):
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (hi - lo).prod(-1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).prod(-1), (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def _sum_of_areas(a, b):
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    return inter / ((a[:, 2:] - a[:, :2]).prod(-1)[:, None] + (b[:, 2:] - b[:, :2]).prod(-1)[None])


def _nan_on_empty(a, b):
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / ((a[:, 2:] - a[:, :2]).prod(-1)[:, None] + (b[:, 2:] - b[:, :2]).prod(-1)[None] - inter)


@pytest.mark.parametrize(
    "fn, message",
    [
        (_no_clip, "clip the intersection"),
        (_sum_of_areas, "sum of the two areas"),
        (lambda a, b: box_iou(b, a), "rows should follow a"),
        (_nan_on_empty, "NaN"),
    ],
)
def test_box_iou_slips_are_named(fn, message):
    result = ex.check_box_iou(fn)
    assert not result and message in result.message


def test_box_iou_right():
    assert ex.check_box_iou(box_iou)


def decode_slot(numbers, row, col, stride, prior):
    tx, ty, tw, th, to = numbers[:5]
    cx, cy = (col + 1 / (1 + np.exp(-tx))) * stride, (row + 1 / (1 + np.exp(-ty))) * stride
    w, h = prior[0] * np.exp(tw), prior[1] * np.exp(th)
    logits = numbers[5:]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), probs.max() / (1 + np.exp(-to)), int(probs.argmax())


def _variant(**change):
    def fn(numbers, r, c, stride, prior):  # the learner's own argument names
        row, col = r, c
        box, score, label = decode_slot(numbers, row, col, stride, prior)
        if "swap" in change:
            box, score, label = decode_slot(numbers, col, row, stride, prior)
        if "no_sigmoid" in change:
            tx, ty, tw, th = numbers[:4]
            cx, cy, w, h = (col + tx) * stride, (row + ty) * stride, prior[0] * np.exp(tw), prior[1] * np.exp(th)
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if "no_objectness" in change:
            score = score * (1 + np.exp(-numbers[4]))
        if "corner" in change:
            x0, y0, x1, y1 = box
            box = ((x0 + x1) / 2, (y0 + y1) / 2, (x0 + x1) / 2 + (x1 - x0), (y0 + y1) / 2 + (y1 - y0))
        return box, score, label

    return fn


@pytest.mark.parametrize(
    "change, message",
    [("swap", "swapped"), ("no_sigmoid", "sigmoid first"), ("no_objectness", "objectness"), ("corner", "centre")],
)
def test_decode_slot_slips_are_named(change, message):
    result = ex.check_decode_slot(_variant(**{change: True}))
    assert not result and message in result.message


def test_decode_slot_right():
    assert ex.check_decode_slot(decode_slot)


def nms(boxes, scores, iou_threshold):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if box_iou(boxes[best : best + 1], boxes[i : i + 1])[0, 0] <= iou_threshold]
    return np.array(keep)


def _unsorted_nms(boxes, scores, t):
    return np.sort(nms(boxes, scores, t))


def _suppressed_still_suppress(boxes, scores, t):
    order = np.argsort(-scores, kind="stable")
    removed = set()
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if box_iou(boxes[a : a + 1], boxes[b : b + 1])[0, 0] > t:
                removed.add(b)
    return np.array([i for i in order if i not in removed])


@pytest.mark.parametrize(
    "fn, message",
    [
        (_unsorted_nms, "best first"),
        (_suppressed_still_suppress, "already suppressed"),
        (lambda b, s, t: np.argsort(-s), "Walk the boxes"),
    ],
)
def test_nms_slips_are_named(fn, message):
    result = ex.check_nms(fn)
    assert not result and message in result.message


def test_nms_right_and_pending():
    assert ex.check_nms(nms)
    assert not ex.check_nms(None).attempted


def test_stubs_that_return_nothing_are_not_attempted():
    for check in (ex.check_voc_to_coco, ex.check_box_iou, ex.check_decode_slot, ex.check_nms):
        result = check(lambda *args: None)
        assert not result and not result.attempted and "Not attempted" in result.message, check.__name__


def _tally(detections, found, annotated=50):
    return {
        "detections": detections,
        "found": found,
        "annotated": annotated,
        "recall": found / annotated,
        "precision": found / detections if detections else 0.0,
    }


def test_the_nms_experiment_is_judged_by_the_rule_and_explained_with_the_numbers():
    trained = (_tally(60, 45), _tally(400, 47), 0.8, 0.6)  # NMS removed 340 boxes, 2 cells fewer found
    right = ex.check_nms_experiment("precision", *trained)
    assert right and "never the recall" in right.message and "338 fewer false positives" in right.message
    assert "2 fewer cells found" in right.message and "0.800 with NMS, 0.600 without" in right.message
    for answer in ("recall", "Both"):
        result = ex.check_nms_experiment(answer, *trained)
        assert not result and "cannot raise the recall" in result.message
    neither = ex.check_nms_experiment("neither", *trained)
    assert not neither and "can raise the precision" in neither.message
    # a barely trained detector (smoke): NMS removed boxes that found cells as often as the kept ones
    smoke = ex.check_nms_experiment("precision", _tally(20, 0), _tally(90, 0), 0.0, 0.0)
    assert smoke and "did not rise" in smoke.message
    same = ex.check_nms_experiment("precision", _tally(20, 3), _tally(20, 3), 0.1, 0.1)
    assert same and "removed no box" in same.message
    broken = ex.check_nms_experiment("precision", _tally(20, 5), _tally(40, 4), 0.1, 0.1)
    assert "breaks that rule" in broken.message
    assert "one of" in ex.check_nms_experiment("higher", *trained).message
    assert "Pass the two tallies" in ex.check_nms_experiment("precision", {}, trained[1], 0.8, 0.6).message
    assert not ex.check_nms_experiment(..., *trained).attempted
