"""Lesion segmentation metrics on 3D masks: the five of the MICCAI 2017 WMH challenge (Dice, HD95, AVD,
lesion recall, lesion F1), plus lesion precision (the other half of F1; not a challenge metric on its own).

``pred`` and ``truth`` are binary volumes ``(X, Y, Z)`` (bool or 0/1) on one grid;
``spacing`` is the voxel size in mm along the three axes. ``ignore`` (optional, bool):
voxels left out of everything, removed from both masks first (the challenge's label 2,
"other pathology"). Definitions, following the challenge's ``evaluation.py``
(github.com/hjkuijf/wmhchallenge):

* **Dice** ``2 |P & T| / (|P| + |T|)``, voxel-wise; 1.0 when both are empty.
* **lesions** are connected components, **26-connected** by default (``connectivity=26``:
  voxels touching by a face, an edge or a corner belong to one lesion), as the challenge
  (SimpleITK ``FullyConnected=True``); 6 and 18 are available.
* **matching rule**: a true lesion is *detected* when at least ``min_overlap`` (default 1)
  of its voxels are predicted; a predicted lesion is *correct* when at least
  ``min_overlap`` of its voxels are true lesion. One predicted blob may detect several
  true lesions, and the other way round.
* **lesion sensitivity** (recall) = detected true lesions / true lesions; 1.0 when there is
  no true lesion (nothing to miss).
* **lesion precision** = correct predicted lesions / predicted lesions: the fraction of
  *predicted* lesions that overlap a true lesion (the seminar's "PPV", 0.799 beside a
  sensitivity of 0.494, mixed two denominators and is not this number); 1.0 when nothing
  is predicted (no false alarm).
* **lesion F1** = ``2 P R / (P + R)``; 0.0 when both are 0.
* **AVD** (absolute volume difference) = ``|V_P - V_T| / V_T * 100`` in percent; 0.0 when
  both are empty, NaN when only the truth is empty (undefined: no reference volume).
* **HD95**: the 95th percentile of the distances (mm) from each boundary voxel of one mask
  to the nearest boundary voxel of the other, taken both ways, the larger of the two.
  Boundary voxels: the mask minus its erosion (3D, 6-neighbour cross) by default;
  ``erosion="2d"`` erodes in the plane of the first two axes only, as the challenge
  (whose axial slices are that plane). Distances are between voxel centres scaled by
  ``spacing``. 0.0 when both are empty; NaN when exactly one is empty (the challenge
  returns NaN for an empty prediction): average HD95 with ``np.nanmean`` and report how
  many were NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..validate import check_choice

CONNECTIVITY = {6: 1, 18: 2, 26: 3}  # -> rank of scipy's generate_binary_structure
EROSIONS = ("3d", "2d")


def _binary(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        return a
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(
            f"{name} must be binary (bool or 0/1), got values like {np.unique(a)[:5].tolist()}; "
            "threshold probabilities first (prob >= 0.5) and select the lesion label (label == 1)."
        )
    return a.astype(bool)


def _prepare(pred, truth, ignore=None) -> tuple[np.ndarray, np.ndarray]:
    p, t = _binary(pred, "pred"), _binary(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {p.shape} and truth shape {t.shape} differ; they must be on one voxel grid.")
    if p.ndim != 3:
        raise ValueError(f"expected 3D volumes (X, Y, Z), got shape {p.shape}.")
    if ignore is not None:
        ig = _binary(ignore, "ignore")
        if ig.shape != p.shape:
            raise ValueError(f"ignore shape {ig.shape} differs from pred shape {p.shape}.")
        p, t = p & ~ig, t & ~ig
    return p, t


def _spacing(spacing: float | Sequence[float]) -> np.ndarray:
    s = np.full(3, float(spacing)) if np.isscalar(spacing) else np.asarray(spacing, dtype=float)
    if s.shape != (3,) or (s <= 0).any():
        raise ValueError(f"spacing must be a positive voxel size in mm, or three of them, got {spacing!r}.")
    return s


def label_lesions(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Connected components of a binary ``mask (X, Y, Z)``: ``(labels int32, number of lesions)``."""
    if connectivity not in CONNECTIVITY:
        raise ValueError(f"connectivity must be 6, 18 or 26 (3D neighbours), got {connectivity!r}.")
    structure = ndimage.generate_binary_structure(3, CONNECTIVITY[connectivity])
    labels, n = ndimage.label(_binary(mask, "mask"), structure)
    return labels.astype(np.int32, copy=False), int(n)


def dice(pred: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Voxel Dice ``2 |P & T| / (|P| + |T|)``; 1.0 when both are empty."""
    p, t = _prepare(pred, truth, ignore)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def lesion_detection(
    pred: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None, connectivity: int = 26, min_overlap: int = 1
) -> dict[str, float]:
    """Lesion-wise counts and rates (see the module docstring for the matching rule).

    Returns ``n_true``, ``n_detected`` (true lesions hit), ``n_pred``, ``n_correct``
    (predicted lesions that hit a true lesion), ``sensitivity``, ``precision``, ``f1``.
    """
    if int(min_overlap) < 1:
        raise ValueError(f"min_overlap is a number of voxels >= 1, got {min_overlap!r}.")
    p, t = _prepare(pred, truth, ignore)
    true_labels, n_true = label_lesions(t, connectivity)
    pred_labels, n_pred = label_lesions(p, connectivity)
    hits_true = np.bincount(true_labels[p], minlength=n_true + 1)[1:]  # predicted voxels per true lesion
    hits_pred = np.bincount(pred_labels[t], minlength=n_pred + 1)[1:]  # true voxels per predicted lesion
    n_detected = int((hits_true >= min_overlap).sum())
    n_correct = int((hits_pred >= min_overlap).sum())
    sensitivity = 1.0 if n_true == 0 else n_detected / n_true
    precision = 1.0 if n_pred == 0 else n_correct / n_pred
    f1 = 0.0 if sensitivity + precision == 0 else 2 * sensitivity * precision / (sensitivity + precision)
    return {
        "n_true": n_true,
        "n_detected": n_detected,
        "n_pred": n_pred,
        "n_correct": n_correct,
        "sensitivity": float(sensitivity),
        "precision": float(precision),
        "f1": float(f1),
    }


def avd_percent(pred: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Absolute volume difference ``|V_P - V_T| / V_T * 100``; 0 if both empty, NaN if only truth is."""
    p, t = _prepare(pred, truth, ignore)
    vp, vt = int(p.sum()), int(t.sum())
    if vt == 0:
        return 0.0 if vp == 0 else float("nan")
    return abs(vp - vt) / vt * 100.0


def boundary(mask: np.ndarray, erosion: str = "3d") -> np.ndarray:
    """Boundary voxels of a binary ``mask``: the mask minus its erosion (``"3d"``: 6-neighbour
    cross; ``"2d"``: 4-neighbour cross in the plane of axes 0 and 1). Voxels on the edge of
    the array count as boundary."""
    check_choice("erosion", erosion, EROSIONS)
    m = _binary(mask, "mask")
    structure = ndimage.generate_binary_structure(3, 1)
    if erosion == "2d":
        structure[:, :, 0] = structure[:, :, 2] = False
    eroded = ndimage.binary_erosion(m, structure, border_value=0)
    return m & ~eroded


def surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: float | Sequence[float] = 1.0, erosion: str = "3d"
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each boundary voxel of ``pred`` to the nearest of ``truth``, and back.

    Both masks must be non-empty.
    """
    s = _spacing(spacing)
    bp = np.argwhere(boundary(pred, erosion)) * s
    bt = np.argwhere(boundary(truth, erosion)) * s
    if len(bp) == 0 or len(bt) == 0:
        raise ValueError("surface distances need two non-empty masks.")
    pred_to_truth = cKDTree(bt).query(bp, k=1)[0]
    truth_to_pred = cKDTree(bp).query(bt, k=1)[0]
    return pred_to_truth, truth_to_pred


def hd95(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: float | Sequence[float] = 1.0,
    ignore: np.ndarray | None = None,
    erosion: str = "3d",
    percentile: float = 95.0,
) -> float:
    """95th-percentile symmetric Hausdorff distance in mm between the mask boundaries.

    0.0 when both masks are empty, NaN when exactly one is (module docstring).
    ``percentile=100`` gives the classic Hausdorff distance between the boundaries.
    """
    p, t = _prepare(pred, truth, ignore)
    spacing = _spacing(spacing)
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("nan")
    d_pt, d_tp = surface_distances(p, t, spacing, erosion)
    return float(max(np.percentile(d_pt, percentile), np.percentile(d_tp, percentile)))


def lesion_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: float | Sequence[float] = 1.0,
    ignore: np.ndarray | None = None,
    connectivity: int = 26,
    min_overlap: int = 1,
    erosion: str = "3d",
) -> dict[str, float]:
    """All five WMH-challenge metrics and the lesion counts, as one flat dict.

    Keys: ``dice``, ``lesion_sensitivity``, ``lesion_precision``, ``lesion_f1``,
    ``avd_percent``, ``hd95_mm``, ``n_true_lesions``, ``n_pred_lesions``,
    ``n_detected``, ``n_correct``, ``true_volume_ml``, ``pred_volume_ml``.
    """
    p, t = _prepare(pred, truth, ignore)
    det = lesion_detection(p, t, None, connectivity, min_overlap)
    ml = float(np.prod(_spacing(spacing))) / 1000.0
    return {
        "dice": dice(p, t),
        "lesion_sensitivity": det["sensitivity"],
        "lesion_precision": det["precision"],
        "lesion_f1": det["f1"],
        "avd_percent": avd_percent(p, t),
        "hd95_mm": hd95(p, t, spacing, erosion=erosion),
        "n_true_lesions": det["n_true"],
        "n_pred_lesions": det["n_pred"],
        "n_detected": det["n_detected"],
        "n_correct": det["n_correct"],
        "true_volume_ml": int(t.sum()) * ml,
        "pred_volume_ml": int(p.sum()) * ml,
    }
