"""Random 3D training patches from MRI cases, centred in the brain, with a lesion/background balance.

Lesions are tiny (often well under 1 % of the brain), so patches drawn uniformly would
almost never show one. Each patch is centred, with probability ``lesion_fraction``, on a
random lesion voxel, and otherwise on a random brain voxel that is not lesion
(background). A random lesion *voxel* lands in the large lesions most of the time, while
lesion-wise sensitivity counts every lesion once, however small: with ``per_lesion`` > 0 that
share of the lesion-centred patches first picks a lesion (a connected component) uniformly,
then a voxel in it, so small lesions are seen as often as large ones. Voxels marked
``ignore`` are never centres. Parts of a patch outside the volume are 0 in every output.

Sample ``i`` of epoch ``e`` depends only on ``(seed, e, i)``, never on which DataLoader
worker draws it. Call :meth:`LesionPatchDataset.set_epoch` before each epoch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .cases import MRICase


def patch_shape(patch_size: int | Sequence[int]) -> tuple[int, int, int]:
    """``patch_size`` as three positive ints ``(px, py, pz)``."""
    size = (int(patch_size),) * 3 if np.isscalar(patch_size) else tuple(int(p) for p in patch_size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"patch_size must be a positive int or three of them, got {patch_size!r}.")
    return size


def extract_patch(volume: np.ndarray, centre: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """The ``size`` window of ``volume (..., X, Y, Z)`` centred on voxel ``centre``, zero outside the volume.

    The window starts at ``centre - size // 2`` on each axis.
    """
    spatial = volume.shape[-3:]
    out = np.zeros(volume.shape[:-3] + tuple(size), dtype=volume.dtype)
    src, dst = [], []
    for c, p, n in zip(centre, size, spatial):
        start = int(c) - p // 2
        lo, hi = max(start, 0), min(start + p, n)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    lead = (slice(None),) * (volume.ndim - 3)
    out[lead + tuple(dst)] = volume[lead + tuple(src)]
    return out


class LesionPatchDataset(Dataset):
    """Patches ``(image (C, px, py, pz), target (1, ...), valid (1, ...))``, float32 tensors.

    ``cases``: loaded :class:`~course_utils.mri.cases.MRICase` objects with a label
    (normalise intensities first, e.g. ``load_case(..., normalise="zscore")``).
    ``modalities``: input channels in order (default: the first case's). ``target``: 1 on
    lesion voxels. ``valid``: 1 in the brain and outside ``ignore`` (use it to mask the
    loss, or ignore it). ``lesion_fraction``: probability that a patch is centred on a
    lesion voxel. ``per_lesion``: share of those that pick a lesion (26-connected component)
    uniformly first, then a voxel in it (0: a lesion voxel uniformly). ``flip_axes``: axes (0, 1, 2)
    each flipped with probability 1/2 as augmentation (axis 0 is left-right in RAS).
    ``intensity_jitter``: each channel of each patch is
    multiplied by ``1 + a`` and shifted by ``b`` inside the brain, ``a, b`` uniform in
    ``[-intensity_jitter, intensity_jitter]`` (z-score units; 0: off): scanners and normalisation
    never give two patients exactly the same contrast, and two training patients are easy to memorise.
    """

    def __init__(
        self,
        cases: Sequence[MRICase],
        patch_size: int | Sequence[int] = 32,
        samples_per_epoch: int = 256,
        lesion_fraction: float = 0.5,
        modalities: Sequence[str] | None = None,
        flip_axes: Sequence[int] = (),
        seed: int = 0,
        per_lesion: float = 0.0,
        intensity_jitter: float = 0.0,
    ):
        if len(cases) == 0:
            raise DataError(
                "LesionPatchDataset got no cases; load some with open_ms_cases(...), load_cases(...) "
                "or make_synthetic_cases(...)."
            )
        if int(samples_per_epoch) != samples_per_epoch or samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be a positive int, got {samples_per_epoch!r}.")
        if not 0.0 <= lesion_fraction <= 1.0:
            raise ValueError(f"lesion_fraction is a probability in [0, 1], got {lesion_fraction!r}.")
        if not 0.0 <= per_lesion <= 1.0:
            raise ValueError(f"per_lesion is a share in [0, 1], got {per_lesion!r}.")
        if not 0.0 <= intensity_jitter < 1.0:
            raise ValueError(f"intensity_jitter must be in [0, 1), got {intensity_jitter!r}.")
        if any(a not in (0, 1, 2) for a in flip_axes):
            raise ValueError(f"flip_axes must be spatial axes among 0, 1, 2, got {tuple(flip_axes)!r}.")
        self.patch_size = patch_shape(patch_size)
        self.samples_per_epoch, self.lesion_fraction = int(samples_per_epoch), float(lesion_fraction)
        self.per_lesion, self.intensity_jitter = float(per_lesion), float(intensity_jitter)
        self.flip_axes, self.seed, self.epoch = tuple(int(a) for a in flip_axes), int(seed), 0
        self.modalities = list(modalities) if modalities is not None else cases[0].modalities
        self.names, self.images, self.targets, self.valid, self.brains = [], [], [], [], []
        self.lesion_voxels, self.background_voxels, self.lesion_starts = [], [], []
        for case in cases:
            if case.label is None:
                raise DataError(f"case {case.name!r} has no label; patches for training need lesion masks.")
            valid = case.brain_mask.astype(bool)
            if case.ignore is not None:
                valid = valid & ~case.ignore
            lesion = (case.label > 0) & valid
            background = valid & ~lesion
            if not background.any():
                raise DataError(f"case {case.name!r} has no brain voxel outside lesions; check its brain mask.")
            self.names.append(case.name)
            self.images.append(case.stack(self.modalities))
            self.targets.append(lesion.astype(np.float32))
            self.valid.append(valid.astype(np.float32))
            self.brains.append(case.brain_mask.astype(bool))
            voxels, starts = _voxels_by_lesion(lesion) if self.per_lesion else (np.flatnonzero(lesion), None)
            self.lesion_voxels.append(voxels)
            self.lesion_starts.append(starts)
            self.background_voxels.append(np.flatnonzero(background))

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (again reproducible) set of patches for ``epoch``."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def locate(self, index: int, rng: np.random.Generator | None = None) -> tuple[int, tuple[int, int, int], bool]:
        """``(case index, centre voxel (x, y, z), centred on a lesion?)`` of sample ``index``.

        A case without lesions always gives a background centre.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples per epoch.")
        rng = self.rng(index) if rng is None else rng
        case = int(rng.integers(len(self.images)))
        on_lesion = rng.random() < self.lesion_fraction and len(self.lesion_voxels[case]) > 0
        pool = self.lesion_voxels[case] if on_lesion else self.background_voxels[case]
        if on_lesion and self.per_lesion and rng.random() < self.per_lesion:
            starts = self.lesion_starts[case]  # lesion k owns pool[starts[k]:starts[k + 1]]
            k = int(rng.integers(len(starts) - 1))
            flat = int(pool[starts[k] + rng.integers(starts[k + 1] - starts[k])])
        else:
            flat = int(pool[rng.integers(len(pool))])
        centre = tuple(int(v) for v in np.unravel_index(flat, self.targets[case].shape))
        return case, centre, bool(on_lesion)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        case, centre, _ = self.locate(index, rng)
        volumes = [self.images[case], self.targets[case][None], self.valid[case][None]]
        if self.intensity_jitter:
            volumes.append(self.brains[case][None])  # only needed to jitter inside the brain
        arrays = [extract_patch(v, centre, self.patch_size) for v in volumes]
        for axis in self.flip_axes:
            if rng.random() < 0.5:
                arrays = [np.flip(a, axis=axis + 1) for a in arrays]
        image, target, valid = arrays[:3]
        if self.intensity_jitter:
            scale, shift = rng.uniform(-self.intensity_jitter, self.intensity_jitter, (2, image.shape[0], 1, 1, 1))
            image = np.where(arrays[3], image * (1 + scale) + shift, 0.0)
        return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (image, target, valid))


def _voxels_by_lesion(lesion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the lesion voxels grouped by lesion, and where each lesion's run starts.

    Returns ``(voxels, starts)``: lesion ``k`` (26-connected) owns ``voxels[starts[k]:starts[k + 1]]``;
    ``len(starts)`` is the number of lesions + 1.
    """
    from ..metrics.lesions import label_lesions

    labels, n = label_lesions(lesion, connectivity=26)
    flat = labels.ravel()
    voxels = np.flatnonzero(flat)
    order = np.argsort(flat[voxels], kind="stable")
    voxels = voxels[order]
    counts = np.bincount(flat[voxels], minlength=n + 1)[1:]
    starts = np.concatenate([[0], np.cumsum(counts)])
    return voxels, starts
