"""From a foreground map to objects: split touching objects, box them, describe them, classify them.

Segment-then-classify: a network says which pixels belong to *some* object; touching objects are split by the
watershed of the distance transform (each object's centre is far from the background, the neck between two
touching discs is close to it); each object is then described by numbers (size, shape, colour) that a small
classifier turns into a class. ``skimage`` does the watershed and the region measurements.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.measure import regionprops_table
from skimage.segmentation import watershed
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

OBJECT_FEATURES = (
    "log_area_px",
    "eccentricity",
    "solidity",
    "mean_red",
    "mean_green",
    "mean_blue",
    "green_p10",
    "mean_prob",
)
"""The columns of :func:`object_features`: log of the area in pixels, eccentricity (0 = disc), solidity (area
over convex hull area), mean colour in [0, 1], the 10th percentile of green (dark-stained parts such as a white
cell's nucleus are low in green), and the mean foreground probability."""


def feature_classifier() -> Pipeline:
    """The course's classifier of hand-made features: standardise each feature, then a logistic regression
    (scikit-learn, balanced class weights so a rare class counts as much as a common one). Two or more
    classes; its weights stay readable (one per standardised feature and class)."""
    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))


def split_touching(mask: np.ndarray, *, min_distance: int, min_area: int = 1) -> tuple[np.ndarray, int]:
    """``(labels (H, W) int32, n)``: the objects of the bool ``mask (H, W)``, touching ones split.

    Markers are the maxima of the distance to the background at least ``min_distance`` pixels apart (one per
    object the size of a red cell: about its radius / 2 works); the watershed of the negated distance grows them
    back to the mask. Objects under ``min_area`` pixels are dropped; labels are 1..n.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}.")
    if min_distance < 1:
        raise ValueError(f"min_distance must be at least 1 pixel, got {min_distance}.")
    if not mask.any():
        return np.zeros(mask.shape, np.int32), 0
    distance = ndimage.distance_transform_edt(mask)
    components, _ = ndimage.label(mask)
    peaks = peak_local_max(distance, min_distance=int(min_distance), labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # a component with no peak (a flat or tiny one) keeps one marker at its deepest pixel
    missing = np.setdiff1d(np.unique(components[components > 0]), np.unique(components[tuple(peaks.T)]))
    for c in missing:
        inside = np.where(components == c, distance, -1)
        markers[np.unravel_index(np.argmax(inside), mask.shape)] = markers.max() + 1
    labels = watershed(-distance, markers, mask=mask).astype(np.int32)
    if min_area > 1:
        areas = np.bincount(labels.ravel())
        labels[areas[labels] < min_area] = 0
    return relabel(labels)


def relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``(labels, n)`` with the non-zero labels renumbered 1..n, keeping their order."""
    values = np.unique(labels[labels > 0])
    lookup = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.int32)
    lookup[values] = np.arange(1, len(values) + 1)
    return lookup[labels], len(values)


def object_boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """``(n, 4)`` float32 boxes ``x_min, y_min, x_max, y_max`` on pixel edges around objects 1..n of ``labels``."""
    boxes = np.zeros((n, 4), np.float32)
    for k, sl in enumerate(ndimage.find_objects(labels, max_label=n)):
        if sl is not None:
            boxes[k] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return boxes


def object_features(labels: np.ndarray, n: int, image: np.ndarray, prob: np.ndarray | None = None) -> np.ndarray:
    """``(n, F)`` float64 features :data:`OBJECT_FEATURES` of objects 1..n of ``labels (H, W)`` over the RGB
    ``image (H, W, 3)`` (uint8, or float in [0, 1]) and the foreground ``prob (H, W)`` (1 where not given)."""
    if n == 0:
        return np.zeros((0, len(OBJECT_FEATURES)))
    rgb = np.asarray(image, np.float64)
    if rgb.shape != (*labels.shape, 3):
        raise ValueError(f"image must be (H, W, 3) with H, W of labels {labels.shape}, got {rgb.shape}.")
    if np.asarray(image).dtype == np.uint8:
        rgb = rgb / 255.0
    prob = np.ones(labels.shape) if prob is None else np.asarray(prob, np.float64)
    table = regionprops_table(labels, properties=("label", "area", "eccentricity", "solidity"))
    index = np.asarray(table["label"]) - 1
    out = np.zeros((n, len(OBJECT_FEATURES)))
    out[index, 0] = np.log(np.asarray(table["area"], np.float64))
    out[index, 1] = table["eccentricity"]
    out[index, 2] = table["solidity"]
    flat = labels.ravel()
    inside = flat > 0
    counts = np.bincount(flat[inside], minlength=n + 1)[1:].clip(1)
    for j, channel in enumerate(np.moveaxis(rgb, -1, 0)):
        out[:, 3 + j] = np.bincount(flat[inside], channel.ravel()[inside], minlength=n + 1)[1:] / counts
    out[:, 7] = np.bincount(flat[inside], prob.ravel()[inside], minlength=n + 1)[1:] / counts
    green = rgb[..., 1]
    for k, sl in enumerate(ndimage.find_objects(labels, max_label=n)):
        if sl is not None:
            out[k, 6] = np.percentile(green[sl][labels[sl] == k + 1], 10)
    return out
