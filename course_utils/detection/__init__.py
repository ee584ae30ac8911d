"""Object detection with a single-pass grid detector (lesson 07): output layout, targets, loss, decoding, network.

* :mod:`.grid`: :class:`GridSpec`, :func:`encode_targets`, :func:`decode`, :func:`kmeans_priors`;
* :mod:`.loss`: :class:`GridDetectionLoss`;
* :mod:`.model`: :class:`GridDetector` (EfficientNet-Lite1 backbone with ImageNet weights, or a small one).

COCO evaluation of the results: :mod:`course_utils.metrics.coco`. IoU and NMS: :mod:`course_utils.metrics.boxes`.
"""

from .grid import Detections, GridSpec, cells_view, decode, decode_boxes, encode_targets, kmeans_priors, shape_iou
from .loss import GridDetectionLoss
from .model import BACKBONES, DETECTOR_STRIDE, GridDetector

__all__ = [
    "BACKBONES",
    "DETECTOR_STRIDE",
    "Detections",
    "GridDetectionLoss",
    "GridDetector",
    "GridSpec",
    "cells_view",
    "decode",
    "decode_boxes",
    "encode_targets",
    "kmeans_priors",
    "shape_iou",
]
