"""Random training patches from whole fundus images, centred inside the field of view.

A 565x584 DRIVE image is too big (and too few) to train on whole; instead each
epoch draws ``samples_per_epoch`` patches. With probability ``vessel_bias`` a patch
is centred on a vessel pixel, otherwise on any FOV pixel, which counters the
rarity of vessels (about 12 % of the FOV).

Sample ``i`` of epoch ``e`` depends only on ``(seed, e, i)``, never on which
DataLoader worker draws it, so workers never duplicate patches and runs repeat.
Call :meth:`PatchDataset.set_epoch` before each epoch to get fresh patches, or iterate a
:func:`patch_loader`, which does it.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError
from .augment import Transform, fundus_augmentation
from .drive import FundusCase


class PatchDataset(Dataset):
    """Patches ``(image (C, p, p), target (1, p, p), fov (1, p, p))``, all float32 tensors.

    ``cases``: fundus cases (``image (H, W, 3)``, ``vessels``, ``fov``), e.g. from
    :func:`~course_utils.data.drive.load_drive`. ``preprocess``: optional
    ``f(image (H, W, 3)) -> (H, W) or (H, W, C)`` applied once per case up front
    (e.g. take the green channel). ``augment``: optional joint transform
    ``f(image, target, fov, rng)`` from :mod:`course_utils.data.augment`.
    Parts of a patch outside the image are 0 in all three outputs.
    """

    def __init__(
        self,
        cases: Sequence[FundusCase],
        patch_size: int = 64,
        samples_per_epoch: int = 1024,
        vessel_bias: float = 0.5,
        augment: Transform | None = None,
        seed: int = 0,
        preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        if len(cases) == 0:
            raise DataError("PatchDataset got no cases; load some with load_drive(...) or make_synthetic_fundus(...).")
        if int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(f"patch_size must be a positive int, got {patch_size!r}.")
        if int(samples_per_epoch) != samples_per_epoch or samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be a positive int, got {samples_per_epoch!r}.")
        if not 0.0 <= vessel_bias <= 1.0:
            raise ValueError(f"vessel_bias is a probability in [0, 1], got {vessel_bias!r}.")
        self.patch_size, self.samples_per_epoch = int(patch_size), int(samples_per_epoch)
        self.vessel_bias, self.augment, self.seed, self.epoch = float(vessel_bias), augment, int(seed), 0
        self.names = [c.name for c in cases]
        self.images, self.targets, self.fovs = [], [], []
        self.fov_pixels, self.vessel_pixels = [], []
        for case in cases:
            image, vessels, fov = self._prepare(case, preprocess)
            self.images.append(image)
            self.targets.append(vessels.astype(np.float32))
            self.fovs.append(fov.astype(np.float32))
            self.fov_pixels.append(np.flatnonzero(fov))
            self.vessel_pixels.append(np.flatnonzero(vessels & fov))

    def _prepare(self, case: FundusCase, preprocess) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = np.asarray(preprocess(case.image) if preprocess is not None else case.image, dtype=np.float32)
        if image.ndim == 2:
            image = image[..., None]
        h, w = case.fov.shape
        p = self.patch_size
        if image.ndim != 3 or image.shape[:2] != (h, w) or case.vessels.shape != (h, w):
            raise DataError(
                f"Case {case.name!r}: image {image.shape} (after preprocess), vessels "
                f"{case.vessels.shape} and fov {case.fov.shape} must share (H, W); "
                "preprocess must return (H, W) or (H, W, C)."
            )
        if h < p or w < p:
            raise DataError(
                f"Case {case.name!r} is {h}x{w} pixels, smaller than patch_size={p}; "
                f"use patch_size <= {min(h, w)} or larger images."
            )
        if not case.fov.any():
            raise DataError(f"Case {case.name!r} has an empty field-of-view mask; nothing to sample.")
        return np.ascontiguousarray(image.transpose(2, 0, 1)), case.vessels.astype(bool), case.fov.astype(bool)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (but again reproducible) set of patches for ``epoch``.

        Call it before iterating the DataLoader of that epoch (with
        ``persistent_workers=False``, the default, so workers see the change).
        """
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def locate(self, index: int, rng: np.random.Generator | None = None) -> tuple[int, int, int]:
        """``(case index, row, column)`` of the centre of sample ``index``, always inside the FOV."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples per epoch.")
        rng = self.rng(index) if rng is None else rng
        case = int(rng.integers(len(self.images)))
        on_vessel = rng.random() < self.vessel_bias and len(self.vessel_pixels[case]) > 0
        pool = self.vessel_pixels[case] if on_vessel else self.fov_pixels[case]
        flat = int(pool[rng.integers(len(pool))])
        row, col = divmod(flat, self.fovs[case].shape[1])
        return case, row, col

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        case, row, col = self.locate(index, rng)
        top, left = row - self.patch_size // 2, col - self.patch_size // 2
        image = _crop(self.images[case], top, left, self.patch_size)
        target = _crop(self.targets[case], top, left, self.patch_size)
        fov = _crop(self.fovs[case], top, left, self.patch_size)
        if self.augment is not None:
            image, target, fov = self.augment(image, target, fov, rng)
        return tuple(
            torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (image, target[None], fov[None])
        )


def _crop(array: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``array[..., top:top+size, left:left+size]``, zero where the window leaves the array."""
    h, w = array.shape[-2:]
    out = np.zeros(array.shape[:-2] + (size, size), dtype=array.dtype)
    y0, y1 = max(top, 0), min(top + size, h)
    x0, x1 = max(left, 0), min(left + size, w)
    out[..., y0 - top : y1 - top, x0 - left : x1 - left] = array[..., y0:y1, x0:x1]
    return out


class EpochPatches:
    """A DataLoader over a :class:`PatchDataset` that draws fresh patches every time it is iterated.

    Iteration ``k`` calls ``dataset.set_epoch(k)`` first, so epoch after epoch sees new
    (but reproducible) patches, as :func:`course_utils.training.fit` iterates once per epoch.
    """

    def __init__(
        self, dataset: PatchDataset, batch_size: int, shuffle: bool = False, fixed: bool = False, num_workers: int = 0
    ):
        self.dataset, self.fixed, self.epoch = dataset, fixed, 0
        # workers are not persistent, so each epoch's workers see the dataset's new epoch
        self.loader = DataLoader(
            dataset,
            batch_size=int(batch_size),
            shuffle=shuffle,
            num_workers=int(num_workers),
            pin_memory=torch.cuda.is_available(),
        )

    def __iter__(self) -> Iterator:
        self.dataset.set_epoch(0 if self.fixed else self.epoch)
        self.epoch += 1
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def _defined_in_main(transform: Transform) -> bool:
    """True when ``transform`` (or a part of a :class:`~.augment.Compose`) was defined in ``__main__`` (a notebook)."""
    parts = getattr(transform, "transforms", None) or [transform]
    return any(getattr(t, "__module__", None) == "__main__" for t in parts)


def patch_loader(
    cases: Sequence[FundusCase],
    *,
    patch_size: int,
    batch_size: int,
    samples_per_epoch: int,
    vessel_bias: float = 0.5,
    augment_strength: float = 1.0,
    seed: int = 0,
    fixed: bool = False,
    num_workers: int = 0,
    augment: Transform | None = None,
) -> EpochPatches:
    """Batches ``(image (B, C, p, p), target (B, 1, p, p), fov (B, 1, p, p))`` of random patches.

    ``cases`` should already be preprocessed (:func:`course_utils.data.fundus.preprocess_cases`).
    ``vessel_bias``: probability that a patch is centred on a vessel pixel;
    ``augment_strength``: :func:`course_utils.data.augment.fundus_augmentation` (0 = off);
    ``augment``: a joint transform ``f(image, target, fov, rng)`` to use instead (``augment_strength`` is then
    not used), e.g. ``fundus_augmentation(1.0, flip_rotate=...)`` with a learner's flips and turns;
    ``fixed=True`` gives the same patches every time (for validation); ``num_workers``:
    DataLoader worker processes (0 on a CPU-only machine: the cores are busy training); where workers are spawned
    (Windows, macOS) rather than forked, a transform defined in a notebook cannot reach them, so the patches of
    such a transform are loaded in the main process (with a warning).
    """
    if augment is None:
        augment = fundus_augmentation(augment_strength) if augment_strength > 0 else None
    elif not callable(augment):
        raise TypeError(f"augment must be a transform f(image, target, fov, rng), got {augment!r}.")
    if num_workers and augment is not None and _defined_in_main(augment):
        method = torch.multiprocessing.get_start_method()
        if method != "fork":
            warnings.warn(
                f"the augmentation holds a function defined in this notebook, which DataLoader workers started with "
                f"'{method}' (Windows, macOS) cannot import: loading the patches in the main process (num_workers=0).",
                stacklevel=2,
            )
            num_workers = 0
    dataset = PatchDataset(
        cases,
        patch_size=patch_size,
        samples_per_epoch=samples_per_epoch,
        vessel_bias=vessel_bias,
        augment=augment,
        seed=seed,
    )
    return EpochPatches(dataset, batch_size, fixed=fixed, num_workers=num_workers)


__all__ = ["PatchDataset", "EpochPatches", "patch_loader"]
