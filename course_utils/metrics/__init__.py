"""Segmentation metrics.

* :mod:`.overlap`: batch Dice / IoU on torch tensors, for training-time validation.
* :mod:`.fov`: confusion counts and binary metrics inside a mask (the DRIVE field of view).
* :mod:`.curves`: ROC / precision-recall curves and threshold choice inside a mask.
"""
from .curves import best_threshold, pr_curve_in_mask, roc_auc_in_mask
from .fov import binary_metrics, confusion_in_mask
from .overlap import dice_score, iou_score

__all__ = ["dice_score", "iou_score", "confusion_in_mask", "binary_metrics", "roc_auc_in_mask",
           "pr_curve_in_mask", "best_threshold"]
