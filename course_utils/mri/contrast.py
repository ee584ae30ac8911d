"""How much lesions stand out of the tissue around them: the number that calibrates the synthetic volumes.

A network learns the contrast it is shown. Synthetic training volumes whose lesions are far more
conspicuous than real ones teach it a bar that real lesions do not reach, so lesson 04 measures
this contrast on the real patients and on the synthetic volumes side by side.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import DataError
from .io import normalise_intensity


def lesion_contrast(
    image: np.ndarray,
    brain_mask: np.ndarray,
    label: np.ndarray,
    *,
    inner: int = 1,
    outer: int = 3,
    max_small_voxels: int = 30,
) -> dict[str, float]:
    """Lesion contrast of one image ``(X, Y, Z)`` in standard deviations of the brain (z-score inside ``brain_mask``).

    The *surround* is the brain tissue ``inner + 1`` to ``outer`` voxels away from any lesion (a ring that
    skips the blurred lesion border). Returns medians of the z-scored image: ``lesion``, ``surround``,
    ``small_lesion`` (lesions of at most ``max_small_voxels`` voxels, 26-connected; NaN if none),
    ``contrast`` = ``lesion - surround``, ``small_contrast`` = ``small_lesion - surround``, and
    ``surround_sd`` (how much the tissue around lesions varies: texture plus noise).
    """
    brain = np.asarray(brain_mask, bool)
    lesion = np.asarray(label) > 0
    if brain.shape != lesion.shape or np.shape(image) != brain.shape:
        raise ValueError(
            f"image {np.shape(image)}, brain mask {brain.shape} and label {lesion.shape} must have one shape."
        )
    if not 0 <= inner < outer:
        raise ValueError(f"need 0 <= inner < outer (voxels), got inner={inner}, outer={outer}.")
    lesion &= brain
    if not lesion.any():
        raise DataError(
            "the label has no lesion voxel inside the brain mask: there is no lesion contrast "
            "to measure. Check that the label belongs to this image."
        )
    ring = ndimage.binary_dilation(lesion, iterations=outer) & brain
    if inner > 0:
        ring &= ~ndimage.binary_dilation(lesion, iterations=inner)
    else:
        ring &= ~lesion
    if not ring.any():
        raise DataError("no brain tissue around the lesions (the lesions fill the brain mask?).")
    z = normalise_intensity(image, brain)
    components, _ = ndimage.label(lesion, np.ones((3, 3, 3), bool))
    sizes = np.bincount(components.ravel())
    small = (sizes[components] <= max_small_voxels) & lesion
    out = {
        "lesion": float(np.median(z[lesion])),
        "surround": float(np.median(z[ring])),
        "small_lesion": float(np.median(z[small])) if small.any() else float("nan"),
        "surround_sd": float(z[ring].std()),
    }
    out["contrast"] = out["lesion"] - out["surround"]
    out["small_contrast"] = out["small_lesion"] - out["surround"]
    return out
