"""Box and mask overlap, and greedy non-maximum suppression (NMS): the object-level pieces of detection.

Boxes are ``(N, 4)`` arrays ``x_min, y_min, x_max, y_max`` in pixels on pixel edges (the convention of
:mod:`course_utils.data.boxes`), so a box's area is ``(x_max - x_min) * (y_max - y_min)``. Lesson 07 writes these
by hand; ``tests/test_metrics_boxes.py`` compares them with ``torchvision.ops.box_iou`` and ``torchvision.ops.nms``.
"""

from __future__ import annotations

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


__all__ = ["box_area", "box_iou", "mask_iou", "nms"]
