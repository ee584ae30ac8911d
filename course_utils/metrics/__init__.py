"""Segmentation metrics.

* :mod:`.overlap`: batch Dice / IoU on torch tensors, for training-time validation.
* :mod:`.fov`: confusion counts and binary metrics inside a mask (the DRIVE field of view).
* :mod:`.curves`: ROC / precision-recall curves inside a mask.
* :mod:`.threshold`: the one threshold chooser (pooled pixels or the mean over cases).
* :mod:`.lesions`: lesion-wise detection, volume difference and HD95 (lesson 04).
* :mod:`.boxes`: box and mask IoU, greedy non-maximum suppression, COCO's greedy matching (object detection).
"""

from .curves import pr_curve_in_mask, roc_auc_in_mask
from .fov import binary_metrics, confusion_in_mask
from .overlap import dice_score, iou_score
from .threshold import choose_threshold

__all__ = [
    "dice_score",
    "iou_score",
    "confusion_in_mask",
    "binary_metrics",
    "roc_auc_in_mask",
    "pr_curve_in_mask",
    "choose_threshold",
]
