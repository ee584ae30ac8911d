"""Lesion candidates: the connected components of a thresholded lesion probability, described by features
a second stage classifies as lesion or not (segment, then classify).

Arrays only (no lesson code). A candidate map is ``labels (X, Y, Z) int32`` with candidates ``1..n``
(26-connected, the lesion metrics' rule) and 0 elsewhere; features are one row per candidate, in
:func:`feature_names` order. The classifier is scikit-learn's logistic regression on standardised
features, with balanced class weights (false candidates outnumber real ones): a well-kept library
instead of a hand-written one, and small enough to read its weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from sklearn.pipeline import Pipeline

from ..errors import MetricWarning
from ..metrics.lesions import label_lesions
from ..objects import feature_classifier

DEPTH_CAP_MM = 10.0  # depth beyond this says nothing more about being a lesion
SHELL_VOXELS = 2  # the shell a candidate's contrast is measured against: this many voxels around it


def zscore_in_mask(image: np.ndarray, mask: np.ndarray, clip: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """``image`` clipped to the ``clip`` percentiles of its ``mask`` voxels and z-scored there (float32, 0 outside).

    Makes intensity features comparable between patients and scanners.
    """
    image, mask = np.asarray(image, np.float32), np.asarray(mask, bool)
    if image.shape != mask.shape:
        raise ValueError(f"image of shape {image.shape} and mask of shape {mask.shape} differ.")
    if mask.sum() < 2:
        raise ValueError("the mask holds fewer than two voxels; z-scoring needs a brain mask.")
    lo, hi = np.percentile(image[mask], clip)
    x = np.clip(image, lo, hi)
    sd = float(x[mask].std())
    if sd == 0:
        raise ValueError("the image is constant inside the mask; it carries no contrast to z-score.")
    return np.where(mask, (x - x[mask].mean()) / sd, 0.0).astype(np.float32)


def label_candidates(prob: np.ndarray, threshold: float, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """``(labels int32, n)``: the 26-connected components of ``(prob >= threshold) & mask``."""
    prob, mask = np.asarray(prob), np.asarray(mask, bool)
    if prob.shape != mask.shape:
        raise ValueError(f"probability of shape {prob.shape} and mask of shape {mask.shape} differ.")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold is a probability in (0, 1], got {threshold!r}.")
    return label_lesions((prob >= threshold) & mask, connectivity=26)


def feature_names(modalities: Sequence[str]) -> tuple[str, ...]:
    """The column names of :func:`candidate_features` for these image ``modalities``."""
    names = ["log_volume_mm3", "mean_prob", "max_prob", "mean_depth_mm", "capped_depth_mm"]
    for m in modalities:
        names += [f"{m}_inside", f"{m}_contrast"]
    return tuple(names)


def candidate_features(
    labels: np.ndarray,
    n: int,
    prob: np.ndarray,
    depth_mm: np.ndarray,
    images: Mapping[str, np.ndarray],
    mask: np.ndarray,
    spacing: Sequence[float],
) -> np.ndarray:
    """Features ``(n, F)`` float64 of candidates ``1..n`` of ``labels`` (columns: :func:`feature_names`).

    * ``log_volume_mm3``: log of the volume (mm^3, from ``spacing`` in mm);
    * ``mean_prob``, ``max_prob``: the segmentation's probability inside;
    * ``mean_depth_mm``: mean distance from the brain mask's edge (``depth_mm``), and the same capped at
      :data:`DEPTH_CAP_MM` (false candidates crowd the edge; deeper than that, depth says little);
    * per modality: the mean of the z-scored image inside (``<m>_inside``, see :func:`zscore_in_mask`) and
      ``<m>_contrast``, inside minus the mean over a shell of :data:`SHELL_VOXELS` voxels around the
      candidate (inside ``mask``, other candidates excluded; 0 when the shell is empty).
    """
    labels, mask = np.asarray(labels), np.asarray(mask, bool)
    for name, a in (("prob", prob), ("depth_mm", depth_mm), ("mask", mask), *images.items()):
        if np.shape(a) != labels.shape:
            raise ValueError(f"{name} has shape {np.shape(a)}, the candidate labels {labels.shape}.")
    columns = len(feature_names(list(images)))
    if n == 0:
        return np.zeros((0, columns))
    idx = np.arange(1, n + 1)
    voxel_mm3 = float(np.prod(spacing))
    size = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    if (size == 0).any():
        raise ValueError(f"labels should number candidates 1..{n}; some of them have no voxel.")
    depth = np.asarray(ndimage.mean(depth_mm, labels, idx))
    feats = [
        np.log(size * voxel_mm3),
        np.asarray(ndimage.mean(prob, labels, idx)),
        np.asarray(ndimage.maximum(prob, labels, idx)),
        depth,
        np.minimum(depth, DEPTH_CAP_MM),
    ]
    inside_means = [np.asarray(ndimage.mean(image, labels, idx)) for image in images.values()]
    shell_means = np.zeros((len(images), n))
    has_shell = np.zeros(n, bool)
    reach = ndimage.generate_binary_structure(3, 3)  # 26 neighbours; SHELL_VOXELS steps: a (2 s + 1)^3 cube
    for i, box in enumerate(ndimage.find_objects(labels, max_label=n)):
        grown_box = tuple(slice(max(b.start - SHELL_VOXELS, 0), b.stop + SHELL_VOXELS) for b in box)
        sub = labels[grown_box]
        shell = ndimage.binary_dilation(sub == i + 1, reach, iterations=SHELL_VOXELS) & (sub == 0) & mask[grown_box]
        if shell.any():
            has_shell[i] = True
            for j, image in enumerate(images.values()):
                shell_means[j, i] = image[grown_box][shell].mean()
    for j in range(len(images)):
        feats += [inside_means[j], np.where(has_shell, inside_means[j] - shell_means[j], 0.0)]
    return np.stack(feats, 1).astype(np.float64)


def candidate_is_lesion(labels: np.ndarray, n: int, truth: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: whether candidate ``i + 1`` touches a true lesion voxel (the lesion-wise matching rule
    of :func:`course_utils.metrics.lesions.lesion_detection`)."""
    labels, truth = np.asarray(labels), np.asarray(truth, bool)
    if labels.shape != truth.shape:
        raise ValueError(f"truth of shape {truth.shape} differs from the candidate labels {labels.shape}.")
    return np.bincount(labels[truth], minlength=n + 1)[1 : n + 1] > 0


def paint(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A float32 map where each candidate's voxels carry its value (``values[i]`` for candidate ``i + 1``),
    0 elsewhere: thresholding it keeps the candidates whose value reaches the threshold."""
    values = np.asarray(values, np.float32)
    n = int(np.asarray(labels).max(initial=0))
    if values.shape != (n,):
        raise ValueError(f"one value per candidate: {n} candidates, got values of shape {values.shape}.")
    return np.concatenate([[np.float32(0)], values])[labels]


@dataclass
class CandidateClassifier:
    """Lesion probability of a candidate from its features: a logistic regression (scikit-learn) on
    standardised features with balanced class weights.

    ``fit`` on the candidates of training volumes (out-of-fold predictions: the network that made them had not
    seen those volumes), then ``lesion_probability``. When the training candidates are all of one kind
    (all real or all false) there is nothing to learn: the classifier then answers that kind's rate for
    every candidate and says so with a :class:`~course_utils.errors.MetricWarning`; with no training candidates at
    all it keeps every candidate (probability 1), and says so too.
    """

    names: tuple[str, ...]
    model: Pipeline | None = field(default=None, repr=False)
    constant: float | None = None

    def fit(self, features: np.ndarray, is_lesion: np.ndarray) -> CandidateClassifier:
        """Train on ``features (n, F)`` and ``is_lesion (n,)`` bool; returns ``self``."""
        x, y = np.asarray(features, np.float64), np.asarray(is_lesion, bool)
        if x.ndim != 2 or x.shape[1] != len(self.names) or y.shape != (x.shape[0],):
            raise ValueError(f"need features (n, {len(self.names)}) and labels (n,), got {x.shape} and {y.shape}.")
        if not np.isfinite(x).all():
            raise ValueError("candidate features hold NaN or infinite values; check the images and the mask.")
        if x.shape[0] == 0:
            self.model, self.constant = None, 1.0
            warnings.warn(
                "no training candidates (the training maps have no component above their threshold): the classifier "
                "learns nothing and keeps every candidate.",
                MetricWarning,
                stacklevel=2,
            )
            return self
        if y.all() or not y.any():
            self.model, self.constant = None, float(y.mean())
            warnings.warn(
                f"all {y.size} training candidates are {'real' if y.all() else 'false'}: the classifier learns "
                f"nothing and gives every candidate {self.constant:.0f}.",
                MetricWarning,
                stacklevel=2,
            )
            return self
        self.model = feature_classifier()
        self.model.fit(x, y)
        self.constant = None
        return self

    def lesion_probability(self, features: np.ndarray) -> np.ndarray:
        """``(n,)`` probability that each candidate is a lesion."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise ValueError(f"need features (n, {len(self.names)}), got {x.shape}.")
        if self.model is None and self.constant is None:
            raise RuntimeError("the classifier is not trained yet; call fit first.")
        if x.shape[0] == 0:
            return np.zeros(0)
        if self.model is None:
            return np.full(x.shape[0], self.constant)
        return self.model.predict_proba(x)[:, 1]

    def weights(self) -> dict[str, float]:
        """Weight of each standardised feature (positive: pushes toward "lesion"); empty when constant."""
        if self.model is None:
            return {}
        return dict(zip(self.names, map(float, self.model[-1].coef_[0])))
