"""Box and mask overlap, greedy non-maximum suppression (NMS) and COCO's greedy matching of detections to true
boxes: the object-level pieces of detection.

Boxes are ``(N, 4)`` arrays ``x_min, y_min, x_max, y_max`` in pixels on pixel edges (the convention of
:mod:`course_utils.data.boxes`), so a box's area is ``(x_max - x_min) * (y_max - y_min)``. Lesson 07 writes these
by hand; ``tests/test_metrics_boxes.py`` compares them with ``torchvision.ops.box_iou`` and ``torchvision.ops.nms``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (x_min, y_min, x_max, y_max), got {b.shape}.")
    if not np.isfinite(b).all():
        raise ValueError(f"{name} hold NaN or infinite values.")
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise ValueError(f"{name}: some boxes have x_max < x_min or y_max < y_min; give corners, not width and height.")
    return b


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` areas in square pixels of ``boxes (N, 4)``."""
    b = _boxes(boxes, "boxes")
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of every box of ``a (N, 4)`` with every box of ``b (M, 4)``.

    Two empty (zero-area) boxes have IoU 0, not NaN.
    """
    a, b = _boxes(a, "a"), _boxes(b, "b")
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks of the same shape; 0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of shapes {a.shape} and {b.shape}: they must lie on the same grid.")
    union = int((a | b).sum())
    return 0.0 if union == 0 else int((a & b).sum()) / union


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices (int64, by decreasing score) of the boxes kept.

    Take the highest-scoring box left, keep it, drop every remaining box whose IoU with it is above
    ``iou_threshold``; repeat. Ties in score keep the lower index first.
    """
    b = _boxes(boxes, "boxes")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"one score per box: {b.shape[0]} boxes, {s.shape[0]} scores.")
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or infinite values.")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold is an IoU in [0, 1], got {iou_threshold!r}.")
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(b[best : best + 1], b[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def match_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    truth: np.ndarray,
    iou_threshold: float = 0.5,
    iou: Callable[[np.ndarray, np.ndarray], np.ndarray] = box_iou,
) -> np.ndarray:
    """COCO's greedy matching of the detections of one image and one class to its true boxes.

    The detections ``boxes (N, 4)`` are taken by decreasing ``scores (N,)`` (ties: by their corners, so that
    the same boxes are matched the same way whatever their order); each takes the still unmatched true box of
    ``truth (M, 4)`` it overlaps most, if that IoU reaches ``iou_threshold``. Returns ``(N,)`` int64: the
    index of the matched true box for each detection (in the given order), -1 for a false positive.
    ``iou``: the box IoU function (``(N, 4), (M, 4) -> (N, M)``).

    Adding detections never unmatches a true box (each keeps being found, maybe by another detection): the
    number of true boxes found can only grow with more detections.
    """
    b = _boxes(boxes, "boxes")
    t = _boxes(truth, "truth")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"one score per box: {b.shape[0]} boxes, {s.shape[0]} scores.")
    matched = np.full(len(b), -1, dtype=np.int64)
    if not len(b) or not len(t):
        return matched
    overlap = np.asarray(iou(b, t), dtype=np.float64).reshape(len(b), len(t))
    taken = np.zeros(len(t), dtype=bool)
    for d in np.lexsort((b[:, 3], b[:, 2], b[:, 1], b[:, 0], -s)):
        candidates = np.where(taken, -1.0, overlap[d])
        g = int(np.argmax(candidates))
        if candidates[g] >= iou_threshold:
            matched[d], taken[g] = g, True
    return matched


__all__ = ["box_area", "box_iou", "mask_iou", "match_detections", "nms"]
