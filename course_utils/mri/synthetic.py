"""Synthetic FLAIR-like, T1-like and T2-like brain volumes with white-matter lesions, built offline.

The anatomy is real: the MNI152 (ICBM 2009a nonlinear symmetric) T1 template and its
grey- and white-matter probability maps, which the nilearn wheel ships in
``nilearn/datasets/data/`` (no download). Each case is drawn on the grid of the
open_ms_data volumes (182 x 218 x 182 at 1 mm in MNI space, reoriented to RAS), or a
coarser one, so synthetic and real cases can be mixed in one training set.

One case (everything depends on ``seed`` only, for a given lesion source):

The template is shrunk by :data:`ANATOMY_SCALE` to the brain size of real patients
(MNI152 brains are larger), so that real lesion masks fall into its white matter.

1. lesions: either the real lesion masks of the open_ms_data patients that have no
   images (27 of them; the three test patients are never used), each possibly mirrored
   left-right and with a random subset of its lesions, or procedural lesions: ovoid
   blobs with irregular borders placed in deep white matter, more often near the
   ventricles (periventricular), as in multiple sclerosis and small-vessel disease;
2. a small random affine deformation of anatomy and lesions together (scale, rotation,
   shift), so that the network does not learn one brain by heart;
3. intensities by tissue (partial volumes mixed): FLAIR-like has dark CSF, grey matter
   brighter than white matter and hyperintense lesions; T1-like mixes the template's T1
   with a tissue model and has hypointense lesions; T2-like has bright CSF, grey matter brighter
   than white matter and hyperintense lesions; each lesion gets its own contrast,
   from the real open_ms_data patients' contrast up to twice it (see :data:`FLAIR_LESION`);
4. a smooth multiplicative bias field per modality and Rician noise; zero outside the brain.

About 0.5-1 s per volume at 2 mm; the first call also reads the templates (about 1.5 s).

MNI152 template licence notice (:data:`LICENSE_NOTICE`; nilearn's own description of
the data set says "License: unknown", the notice below is the ``COPYING`` file of the
ICBM 2009 template archives from the McConnell Brain Imaging Centre)::

    Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre,
    Montreal Neurological Institute, McGill University. Permission to use,
    copy, modify, and distribute this software and its documentation for any
    purpose and without fee is hereby granted, provided that the above
    copyright notice appear in all copies. The authors and McGill University
    make no representations about the suitability of this software for any
    purpose. It is provided "as is" without express or implied warranty. The
    authors are not responsible for any data loss, equipment damage, property
    loss, or injury to subjects or patients resulting from the use or misuse
    of this software package.

References: Fonov et al., NeuroImage 54(1):313-327, 2011 (doi:10.1016/j.neuroimage.2010.07.033);
Fonov et al., NeuroImage 47(S1):S102, 2009; Collins et al., 1999.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..errors import DataError
from ..validate import check_choice
from .cases import MRICase, open_ms_dir, open_ms_lesion_masks
from .io import Volume, coarse_grid, load_volume, resample_to_grid, to_canonical

LICENSE_NOTICE = """\
MNI152 template (ICBM 2009a nonlinear symmetric, as shipped by nilearn), used for the synthetic volumes:
Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute,
McGill University. Permission to use, copy, modify, and distribute this software and its documentation
for any purpose and without fee is hereby granted, provided that the above copyright notice appear in
all copies. The authors and McGill University make no representations about the suitability of this
software for any purpose. It is provided "as is" without express or implied warranty. The authors are
not responsible for any data loss, equipment damage, property loss, or injury to subjects or patients
resulting from the use or misuse of this software package.
References: V.S. Fonov et al., NeuroImage 54(1):313-327, 2011; V.S. Fonov et al., NeuroImage 47(S1):S102, 2009."""

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
# The open_ms_data grid (MNI, 1 mm), reoriented to RAS.
GRID_SHAPE = (182, 218, 182)
GRID_AFFINE = np.array([[1.0, 0, 0, -91.0], [0, 1.0, 0, -126.0], [0, 0, 1.0, -72.0], [0, 0, 0, 1.0]])
LESION_SOURCES = ("auto", "open_ms", "procedural")
# MNI152 brains are larger than most (the space was scaled to the Talairach atlas); the open_ms_data
# patients keep their own size. Shrinking the template by 0.87 about (0, -20, 10) mm matches their brain
# masks best (Dice 0.95 at 2 mm) and puts 83 % of their lesion voxels in template white matter.
ANATOMY_SCALE = 0.87
ANATOMY_CENTRE = (0.0, -20.0, 10.0)

# Mean intensities by tissue (arbitrary units, white matter of FLAIR = 0.5).
FLAIR_MEANS = {"csf": 0.10, "gm": 0.62, "wm": 0.50}
T1_MEANS = {"csf": 0.15, "gm": 0.50, "wm": 0.85}
# T2: CSF brightest (the real patients' 95th percentile in the brain is 2.1-2.8 times the median), grey matter
# brighter than white, lesions bright.
T2_MEANS = {"csf": 1.10, "gm": 0.58, "wm": 0.42}
# Lesion contrast, measured on the real patients 07, 19 and 26 (z-scored inside the brain, 1 mm, see
# course_utils.mri.contrast): their lesions are 1.1-1.3 standard deviations brighter than the white matter
# 2-3 mm around them in FLAIR (small lesions 0.7-1.0) and 0.6-0.8 darker in T1; that tissue varies by 0.77 SD.
# Until 2026-12 synthetic lesions stood out by 2.4-3.0 SD (median per volume; FLAIR 0.68-0.98, T1 depth
# 0.25-0.55, texture 0.03: tissue 0.53 SD). Lesions drawn only from the real range (0.59-0.77) made the
# network call faint hyperintensities lesions (patient 07's Dice fell to 0.26); the range now runs from the
# real contrast up to the old one (about 1.0-2.9 SD), with real-like texture. benchmarks/RESULTS.md has the runs.
FLAIR_LESION = (0.59, 0.98)  # range of lesion means (white matter 0.5)
T1_LESION_DEPTH = (0.10, 0.55)  # fraction of T1 intensity a lesion loses (follows the FLAIR contrast)
# Real T2 lesions stand out by 0.84-1.11 SD (patients 07, 19, 26); synthetic ones by 1.05-1.53 (seeds 1000-1002
# at 1 mm), about as much above the real ones as synthetic FLAIR lesions are (1.58-1.66 against 1.09-1.30).
T2_LESION = (0.50, 0.78)  # range of T2 lesion means (follows the FLAIR contrast; white matter 0.42)
TISSUE_TEXTURE = 0.08  # smooth multiplicative tissue heterogeneity (relative SD)


def template_dir() -> Path:
    """The folder of nilearn's bundled MNI152 files; :class:`DataError` if nilearn lacks them."""
    try:
        import nilearn
    except ImportError as err:
        raise DataError(
            "nilearn is not installed; install the course requirements (pip install -r "
            "requirements.txt) to get the MNI152 template for the synthetic volumes."
        ) from err
    folder = Path(nilearn.__file__).parent / "datasets" / "data"
    missing = [f for f in TEMPLATE_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise DataError(f"nilearn at {folder} lacks {missing}; reinstall nilearn (>= 0.10), whose wheel ships them.")
    return folder


def synthetic_grid(spacing: float = 2.0) -> tuple[tuple[int, int, int], np.ndarray]:
    """``(shape, affine)`` of the synthetic volumes: the open_ms_data grid at ``spacing`` mm."""
    return coarse_grid(GRID_SHAPE, GRID_AFFINE, spacing)


@functools.lru_cache(maxsize=4)
def mni152_maps(spacing: float = 2.0) -> dict[str, np.ndarray]:
    """MNI152 maps on :func:`synthetic_grid`: ``t1`` (0..1), ``gm``, ``wm``, ``csf``, ``brain`` probabilities.

    float32 ``(X, Y, Z)`` each, read-only and cached per ``spacing``.
    """
    shape, affine = synthetic_grid(spacing)
    folder = template_dir()
    shrink = np.eye(4)
    shrink[:3, :3] *= ANATOMY_SCALE
    shrink[:3, 3] = np.array(ANATOMY_CENTRE) * (1.0 - ANATOMY_SCALE)
    maps = {}
    for key, name in TEMPLATE_FILES.items():
        vol = load_volume(folder / name)
        vol = Volume(vol.data, shrink @ vol.affine)
        maps[key] = resample_to_grid(vol, shape, affine, "image").data / 255.0
    maps["brain"] = np.clip(ndimage.gaussian_filter((maps["t1"] > 0.02).astype(np.float32), 0.5 / spacing), 0, 1)
    maps["csf"] = np.clip(maps["brain"] - maps["gm"] - maps["wm"], 0.0, 1.0)
    for a in maps.values():
        a.setflags(write=False)
    return maps


@functools.lru_cache(maxsize=4)
def _placement_weights(spacing: float) -> np.ndarray:
    """Where procedural lesion centres go: deep white matter, more often near the ventricles."""
    maps = mni152_maps(spacing)
    brain = maps["brain"] > 0.5
    depth = ndimage.distance_transform_edt(brain) * spacing  # mm from the brain surface
    ventricles = (maps["csf"] > 0.5) & (depth > 15.0)
    to_ventricles = ndimage.distance_transform_edt(~ventricles) * spacing if ventricles.any() else depth
    weights = (maps["wm"] > 0.85) * (depth > 8.0) * (0.25 + np.exp(-to_ventricles / 8.0))
    weights = weights.astype(np.float64).ravel()
    return weights / weights.sum()


@functools.lru_cache(maxsize=64)
def _lesion_mask_1mm(path: str) -> np.ndarray:
    vol = to_canonical(load_volume(path, dtype=None))
    if vol.shape != GRID_SHAPE or not np.allclose(vol.affine, GRID_AFFINE, atol=1e-3):
        vol = resample_to_grid(vol, GRID_SHAPE, GRID_AFFINE, "mask")
    out = np.asarray(vol.data) > 0
    out.setflags(write=False)
    return out


def make_synthetic_case(
    seed: int = 0,
    spacing: float = 2.0,
    *,
    lesions: str = "auto",
    n_lesions: tuple[int, int] = (6, 24),
    noise: float = 0.03,
    bias: float = 0.2,
    deform: bool = True,
    root: str | Path | None = None,
) -> MRICase:
    """One synthetic case (``FLAIR``, ``T1`` and ``T2`` images, lesion label, brain mask) on :func:`synthetic_grid`.

    ``lesions``: ``"open_ms"`` (real lesion masks, needs the data root),
    ``"procedural"`` or ``"auto"`` (real masks when open_ms_data is under the data root,
    else procedural). ``n_lesions``: range of the number of procedural lesions.
    ``noise``: Rician noise level relative to white matter of FLAIR (0.5).
    ``bias``: strength of the smooth bias field (about +-bias at most). ``root``: data
    root for the lesion masks (default :func:`~course_utils.paths.data_root`).
    Deterministic: the same arguments give the same volumes. ``extras`` holds the
    tissue maps ``gm``, ``wm``, ``csf`` and the soft ``lesion_fraction`` (float32).
    """
    check_choice("lesions", lesions, LESION_SOURCES)
    spacing = float(spacing)
    if not 0.5 <= spacing <= 8:
        raise ValueError(f"spacing is a voxel size in mm between 0.5 and 8, got {spacing}.")
    if lesions == "auto":
        lesions = "open_ms" if open_ms_dir(root) is not None else "procedural"
    rng = np.random.default_rng([int(seed), 424242])
    maps = mni152_maps(spacing)
    shape, affine = synthetic_grid(spacing)

    if lesions == "open_ms":
        fraction, contrast = _real_lesions(rng, spacing, root)
    else:
        fraction, contrast = _procedural_lesions(rng, spacing, n_lesions)
    fields = {k: maps[k] for k in ("t1", "gm", "wm", "brain")}
    fields["lesion"], fields["contrast"] = fraction, contrast
    if deform:
        fields = _deform(fields, rng, spacing)
    fields["csf"] = np.clip(fields["brain"] - fields["gm"] - fields["wm"], 0.0, 1.0)

    brain = fields["brain"] >= 0.5
    lesion = np.clip(fields["lesion"], 0.0, 1.0) * brain
    # Lesions replace white matter: tissue maps see them as neither tissue.
    gm, wm, csf = fields["gm"], fields["wm"], fields["csf"]
    flair = FLAIR_MEANS["csf"] * csf + FLAIR_MEANS["gm"] * gm + FLAIR_MEANS["wm"] * wm
    flair = flair * (1.0 - lesion) + lesion * fields["contrast"]
    depth = np.interp(fields["contrast"], FLAIR_LESION, T1_LESION_DEPTH[::-1])
    template_t1 = fields["t1"] / max(float(np.percentile(maps["t1"][maps["wm"] > 0.9], 50)), 1e-6)
    tissue_t1 = T1_MEANS["csf"] * csf + T1_MEANS["gm"] * gm + T1_MEANS["wm"] * wm
    t1 = 0.5 * template_t1 * T1_MEANS["wm"] + 0.5 * tissue_t1
    t1 = t1 * (1.0 - lesion * depth)
    t2 = T2_MEANS["csf"] * csf + T2_MEANS["gm"] * gm + T2_MEANS["wm"] * wm
    t2 = t2 * (1.0 - lesion) + lesion * np.interp(fields["contrast"], FLAIR_LESION, T2_LESION)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5 / spacing)
    texture *= TISSUE_TEXTURE / max(float(texture.std()), 1e-6)
    images = {}
    # T2 last: its noise and bias field are drawn after FLAIR's and T1's, which stay as they were before T2 existed.
    for name, img in (("FLAIR", flair), ("T1", t1), ("T2", t2)):
        img = img * (1.0 + texture) * _bias_field(rng, shape, bias)
        images[name] = np.where(brain, _rician(rng, img, noise * FLAIR_MEANS["wm"]), 0.0).astype(np.float32)
    label = (lesion >= 0.5).astype(np.uint8)
    extras = {
        "gm": gm.astype(np.float32),
        "wm": wm.astype(np.float32),
        "csf": csf.astype(np.float32),
        "lesion_fraction": lesion.astype(np.float32),
    }
    return MRICase(
        name=f"synthetic-{int(seed):03d}", images=images, label=label, brain_mask=brain, affine=affine, extras=extras
    )


def make_synthetic_cases(n: int, seed: int = 0, spacing: float = 2.0, **kwargs) -> list[MRICase]:
    """``n`` synthetic cases with seeds ``seed, seed + 1, ...`` (see :func:`make_synthetic_case`)."""
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of cases, got {n!r}.")
    return [make_synthetic_case(seed + i, spacing, **kwargs) for i in range(int(n))]


# ----- lesions -------------------------------------------------------------------------------------
def _real_lesions(rng: np.random.Generator, spacing: float, root) -> tuple[np.ndarray, np.ndarray]:
    """A real patient's lesion mask (random patient, mirrored or not, random subset of lesions).

    Returns the lesion fraction of each voxel and a FLAIR mean per lesion (26-connected components).
    """
    masks = open_ms_lesion_masks(root)
    if not masks:
        raise DataError("open_ms_data holds no lesion mask besides the test patients; use lesions='procedural'.")
    mask = _lesion_mask_1mm(str(masks[int(rng.integers(len(masks)))]))
    shape, affine = synthetic_grid(spacing)
    fraction = resample_to_grid(Volume(mask, GRID_AFFINE), shape, affine, "image").data
    if rng.random() < 0.5:
        fraction = np.ascontiguousarray(fraction[::-1])  # left-right mirror: the template is symmetric
    components, n = ndimage.label(fraction > 0, np.ones((3, 3, 3), bool))
    keep = np.ones(n + 1, dtype=np.float32)
    if n > 1:
        keep[1:] = rng.random(n) < rng.uniform(0.6, 1.0)
        if not keep[1:].any():
            keep[1 + int(rng.integers(n))] = 1.0
    values = np.concatenate([[FLAIR_LESION[0]], rng.uniform(*FLAIR_LESION, size=n)]).astype(np.float32)
    return (fraction * keep[components]).astype(np.float32), values[components]


def _procedural_lesions(
    rng: np.random.Generator, spacing: float, n_range: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Ovoid lesions with irregular borders in deep white matter, denser near the ventricles."""
    lo, hi = int(n_range[0]), int(n_range[1])
    if not 0 <= lo <= hi:
        raise ValueError(f"n_lesions must be (min, max) with 0 <= min <= max, got {n_range!r}.")
    shape, _ = synthetic_grid(spacing)
    maps = mni152_maps(spacing)
    weights = _placement_weights(spacing)
    fraction = np.zeros(shape, dtype=np.float32)
    contrast = np.full(shape, FLAIR_LESION[0], dtype=np.float32)
    n = int(rng.integers(lo, hi + 1))
    centres = rng.choice(weights.size, size=n, p=weights) if n else []
    for flat in centres:
        centre = np.array(np.unravel_index(int(flat), shape), dtype=float)
        radii = np.exp(rng.normal(np.log(2.8), 0.45, size=3)) / spacing  # voxels
        radii[rng.integers(3)] *= rng.uniform(1.0, 2.2)  # elongated (ovoid)
        radii = np.clip(radii, 0.6, 14.0 / spacing)
        rotation = _random_rotation(rng)
        half = int(np.ceil(radii.max() * 1.5)) + 1
        lo_idx = np.maximum(centre.astype(int) - half, 0)
        hi_idx = np.minimum(centre.astype(int) + half + 1, shape)
        grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo_idx, hi_idx)], indexing="ij"), -1)
        local = (grid - centre) @ rotation / radii
        q = np.sqrt((local**2).sum(-1))
        wobble = ndimage.gaussian_filter(rng.standard_normal(q.shape), 1.0) * 0.9
        soft = np.clip((1.0 + 0.35 * wobble - q) / 0.35 + 0.5, 0.0, 1.0).astype(np.float32)
        box = tuple(slice(a, b) for a, b in zip(lo_idx, hi_idx))
        soft *= np.clip(maps["wm"][box] * 1.6, 0.0, 1.0)  # stay in white matter
        value = np.float32(rng.uniform(*FLAIR_LESION))
        region = fraction[box]
        contrast[box] = np.where(soft > region, value, contrast[box])
        fraction[box] = np.maximum(region, soft)
    return fraction, contrast


def _random_rotation(rng: np.random.Generator, max_angle: float = np.pi) -> np.ndarray:
    """A random 3x3 rotation matrix (angle up to ``max_angle`` about a random axis)."""
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


# ----- deformation, bias, noise --------------------------------------------------------------------
def _deform(fields: dict[str, np.ndarray], rng: np.random.Generator, spacing: float) -> dict[str, np.ndarray]:
    """Every field through one small random affine about the grid centre (order 1)."""
    shape = next(iter(fields.values())).shape
    matrix = _random_rotation(rng, np.deg2rad(4.0)) * rng.uniform(0.95, 1.05, size=3)[None, :]
    centre = (np.array(shape) - 1) / 2.0
    shift = rng.uniform(-3.0, 3.0, size=3) / spacing
    offset = centre - matrix @ centre + shift
    out = {}
    for key, values in fields.items():
        cval = FLAIR_LESION[0] if key == "contrast" else 0.0
        out[key] = ndimage.affine_transform(
            values, matrix, offset=offset, order=1, mode="constant", cval=cval, prefilter=False
        )
    return out


def _bias_field(rng: np.random.Generator, shape: Sequence[int], strength: float) -> np.ndarray:
    """A smooth multiplicative field ``exp(p(x, y, z))``, ``p`` a random quadratic, about ``1 +- strength``."""
    if strength <= 0:
        return np.ones(shape, dtype=np.float32)
    x, y, z = (
        np.linspace(-1.0, 1.0, n, dtype=np.float32).reshape([-1 if i == a else 1 for i in range(3)])
        for a, n in enumerate(shape)
    )
    terms = [x, y, z, x * x - 1 / 3, y * y - 1 / 3, z * z - 1 / 3, x * y, x * z, y * z]
    coefs = rng.normal(0.0, 1.0, size=len(terms))
    log_field = sum(c * t for c, t in zip(coefs, terms))
    log_field = log_field * (np.log1p(strength) / max(float(np.abs(log_field).max()), 1e-6))
    return np.exp(log_field).astype(np.float32)


def _rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of std ``sigma`` (MRI magnitude noise)."""
    if sigma <= 0:
        return signal
    real = signal + rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)
