"""Detection results scored the COCO way, by ``pycocotools``' own ``COCOeval``: AP at IoU 0.5, AP averaged over
IoU 0.50:0.95, per class, and the precision-recall curve.

AP (average precision) of one class: sort all its detections over all images by score, walk down the list, and
at each step compute recall (found boxes / annotated boxes) and precision (right detections / detections so
far); AP is the area under the precision-recall curve (COCO samples it at 101 recall points, with precision
made monotone). A detection is right when its IoU with a not-yet-matched annotated box of its class reaches the
IoU threshold. mAP is the mean over classes; COCO's headline "AP" is also averaged over the ten IoU thresholds
0.50, 0.55, ..., 0.95, so it rewards boxes that fit tightly.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..data.boxes import AnnotatedImage, to_coco, voc_to_coco_box
from ..errors import MetricWarning

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class CocoScores:
    """``map50``, ``map50_95``: mean over classes; ``ap50``, ``ap50_95``: per class name; ``precision50``: per
    class, precision at :data:`RECALL_POINTS` for IoU 0.5 (0 beyond the highest recall reached, ``recall50``);
    ``stats``: COCOeval's 12 summary numbers (zeros when there is no detection at all)."""

    map50: float
    map50_95: float
    ap50: dict[str, float]
    ap50_95: dict[str, float]
    precision50: dict[str, np.ndarray]
    recall50: dict[str, float]
    stats: list[float]


def detections_to_coco(detections: Sequence[Any], classes: Sequence[str]) -> list[dict[str, Any]]:
    """COCO result entries (``image_id`` from 1 in the order given, ``category_id`` = class index + 1,
    ``bbox = [x, y, width, height]``, ``score``) of per-image detections with ``boxes``, ``scores``, ``labels``
    (e.g. :class:`~course_utils.detection.Detections`)."""
    out = []
    for image_id, det in enumerate(detections, start=1):
        for box, score, label in zip(np.asarray(det.boxes), np.asarray(det.scores), np.asarray(det.labels)):
            if not 0 <= int(label) < len(classes):
                raise ValueError(f"detection label {int(label)} is not an index into classes {list(classes)}.")
            out.append(
                {
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [float(v) for v in voc_to_coco_box(box)],
                    "score": float(score),
                }
            )
    return out


def coco_evaluate(
    truth: Sequence[AnnotatedImage], detections: Sequence[Any], classes: Sequence[str], *, max_detections: int = 100
) -> CocoScores:
    """Score ``detections`` (one entry per image of ``truth``, same order) with ``pycocotools.COCOeval``
    (bounding boxes, all areas, up to ``max_detections`` per image). A class with no annotated box gets NaN
    and a :class:`MetricWarning`; it is left out of the means."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(truth) != len(detections):
        raise ValueError(f"one detection list per image: {len(truth)} images, {len(detections)} detection lists.")
    annotated = np.bincount(np.concatenate([t.labels for t in truth] + [np.zeros(0, np.int64)]), minlength=len(classes))
    gt = COCO()
    gt.dataset = to_coco(truth, classes)
    results = detections_to_coco(detections, classes)
    stats = [0.0] * 12
    precision = np.zeros((10, len(RECALL_POINTS), len(classes)))  # no detection at all: precision 0 everywhere
    recall = np.zeros((10, len(classes)))
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
            evaluator.params.maxDets = [1, 10, max_detections]
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        precision = np.clip(evaluator.eval["precision"][:, :, :, 0, -1], 0, None)  # (IoUs, recall points, classes)
        recall = np.clip(evaluator.eval["recall"][:, :, 0, -1], 0, None)  # (IoUs, classes): the highest reached
        stats = [float(v) for v in evaluator.stats]
    ap50, ap50_95, curves, reached = {}, {}, {}, {}
    for k, name in enumerate(classes):
        if annotated[k] == 0:
            message = f"class {name!r} has no annotated box in these images: its AP is NaN."
            warnings.warn(message, MetricWarning, stacklevel=2)
            ap50[name] = ap50_95[name] = float("nan")
            curves[name] = np.full(len(RECALL_POINTS), np.nan)
            reached[name] = float("nan")
            continue
        ap50[name] = float(np.mean(precision[0, :, k]))
        ap50_95[name] = float(np.mean(precision[:, :, k]))
        curves[name] = precision[0, :, k]
        reached[name] = float(recall[0, k])
    defined50 = [v for v in ap50.values() if np.isfinite(v)]
    defined = [v for v in ap50_95.values() if np.isfinite(v)]
    return CocoScores(
        map50=float(np.mean(defined50)) if defined50 else float("nan"),
        map50_95=float(np.mean(defined)) if defined else float("nan"),
        ap50=ap50,
        ap50_95=ap50_95,
        precision50=curves,
        recall50=reached,
        stats=stats,
    )
