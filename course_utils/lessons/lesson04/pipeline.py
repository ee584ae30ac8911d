"""Lesson 04 (MRI white-matter lesions in 3D): the steps the notebook and ``benchmarks/bench_mri.py`` share.

Two grids per case:

* the **native** grid: the label as stored (open_ms_data: 1 mm, reoriented to RAS, a flip
  only); metrics are always computed here, against the original mask;
* the **working** grid: where the network trains and predicts, optionally coarser
  (e.g. ``spacing=2.0`` mm: 8x fewer voxels; the smoke profile works at 4 mm, cpu and gpu at 1 mm),
  images normalised (z-score) inside the brain mask.

Steps: :func:`prepare_open_ms` / :func:`prepare_synthetic` give :class:`PreparedCase`
objects; :func:`build_lesion_model` a 3D U-Net, trained on
:class:`~course_utils.mri.patches.LesionPatchDataset` patches (:func:`lesion_patches`,
:func:`patch_batches`) with the course's training recipe :func:`course_utils.recipe.train_model`
(BCE + soft Dice, AdamW, warm-up + cosine); :func:`predict_case` runs sliding-window inference
on the working grid, sets the probability to 0 outside the brain, brings it back to the
native grid (linear interpolation) and masks it with the native brain mask;
:func:`choose_case_threshold` picks the binarisation threshold on *training* volumes only (best mean
Dice, through :func:`course_utils.metrics.choose_threshold`); :func:`evaluate_case` computes the
WMH-challenge metrics at native resolution; :func:`model_record` is the checkpoint contract.

False lesions (segment, then classify): :func:`case_candidates` turns a probability map into candidate
lesions with features; :func:`fit_false_lesion_filter` trains the candidate classifier and its cut-off on
*out-of-fold* maps of training volumes (from networks that did not train on them); :func:`filter_candidates`
keeps the candidates it calls lesions. The general pieces are in :mod:`course_utils.mri.candidates`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset

from ...checkpoint import ModelRecord
from ...errors import ConfigError, DataError
from ...inference import sliding_window_inference
from ...metrics.lesions import dice, lesion_metrics
from ...metrics.threshold import bounding_box, choose_threshold
from ...models import UNet
from ...mri.candidates import (
    CandidateClassifier,
    candidate_features,
    candidate_is_lesion,
    feature_names,
    label_candidates,
    paint,
    zscore_in_mask,
)
from ...mri.cases import OPEN_MS_LAYOUT, MRICase, find_cases, image_name, load_case, missing_files, open_ms_dir
from ...mri.io import Volume, load_volume, normalise_intensity, resample_to_grid, resample_to_voxel_size, to_canonical
from ...mri.patches import LesionPatchDataset, patch_shape
from ...mri.synthetic import make_synthetic_cases
from ...recipe import train_model
from ...seeding import seed_everything
from .settings import LESSON, modalities_of

CHECKPOINT_KIND = "unet3d"
METRIC_KEYS = ("dice", "lesion_sensitivity", "lesion_precision", "lesion_f1", "avd_percent", "hd95_mm")


@dataclass
class PreparedCase:
    """One case ready for training and evaluation.

    ``case``: the :class:`MRICase` on the working grid, images z-scored inside its brain
    mask. ``native_label`` (uint8 0/1), ``native_mask`` (bool brain), ``native_ignore``
    (bool or ``None``): on the native grid ``(native_shape, native_affine)``, where metrics
    are computed. ``source``: ``"open_ms"`` or ``"synthetic"``.
    """

    case: MRICase
    native_label: np.ndarray
    native_mask: np.ndarray
    native_affine: np.ndarray
    native_ignore: np.ndarray | None = None
    source: str = "open_ms"

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def native_shape(self) -> tuple[int, int, int]:
        return tuple(self.native_label.shape)

    @property
    def native_spacing(self) -> tuple[float, float, float]:
        return Volume(self.native_label, self.native_affine).spacing

    def native_depth_mm(self) -> np.ndarray:
        """Distance (mm, float32 ``native_shape``) of each native voxel from the outside of the brain mask:
        0 outside, one voxel's size on its edge. Computed once, then cached."""
        depth = getattr(self, "_depth_mm", None)
        if depth is None:
            depth = brain_depth_mm(self.native_mask, self.native_spacing)
            self._depth_mm = depth
        return depth


def to_working_grid(case: MRICase, spacing: float | None, normalise: str = "zscore") -> MRICase:
    """``case`` (native grid, raw intensities) on a grid of ``spacing`` mm (``None``: unchanged),
    images normalised inside the brain mask. Labels keep a coarse voxel when lesion covers
    at least half of it; the brain mask likewise."""
    images, mask, label, ignore, affine = dict(case.images), case.brain_mask, case.label, case.ignore, case.affine
    if spacing is not None and not np.allclose(case.spacing, spacing, atol=1e-3):
        first = Volume(next(iter(images.values())), case.affine)
        grid = resample_to_voxel_size(first, spacing)
        shape, affine = grid.shape, grid.affine
        images = {m: resample_to_grid(Volume(v, case.affine), shape, affine, "image").data for m, v in images.items()}
        mask = resample_to_grid(Volume(case.brain_mask, case.affine), shape, affine, "mask").data
        if label is not None:
            label = resample_to_grid(Volume(label, case.affine), shape, affine, "label").data
        if ignore is not None:
            ignore = resample_to_grid(Volume(ignore, case.affine), shape, affine, "mask").data
    images = {
        m: normalise_intensity(v, mask, normalise, name=image_name(case.name, m, case.paths.get(m)))
        for m, v in images.items()
    }
    return MRICase(
        name=case.name,
        images=images,
        label=label,
        brain_mask=mask,
        affine=affine,
        ignore=ignore,
        header=case.header,
        source_shape=case.source_shape,
        source_affine=case.source_affine,
        paths=dict(case.paths),
        extras={},
    )


def prepare_case(native: MRICase, spacing: float | None, source: str = "open_ms") -> PreparedCase:
    """A :class:`PreparedCase` from a labelled case loaded on its native grid (raw intensities)."""
    if native.label is None:
        raise DataError(f"case {native.name!r} has no label; training and evaluation need lesion masks.")
    return PreparedCase(
        case=to_working_grid(native, spacing),
        native_label=np.asarray(native.label, np.uint8),
        native_mask=np.asarray(native.brain_mask, bool),
        native_affine=np.asarray(native.affine),
        native_ignore=native.ignore,
        source=source,
    )


def prepare_open_ms(
    spacing: float | None = 2.0,
    modalities: Sequence[str] = ("FLAIR", "T1"),
    patients: Sequence[str] | None = None,
    root: str | Path | None = None,
) -> list[PreparedCase]:
    """The open_ms_data patients with images (07, 19, 26, or ``patients``), prepared at ``spacing`` mm.

    Native grid: the stored 1 mm grid reoriented to RAS. Raises :class:`DataError` when the
    data are not under the data root (use :func:`prepare_synthetic` instead).
    """
    folder = open_ms_dir(root)
    if folder is None:
        raise DataError(
            "open_ms_data not found under the data root (COURSE_DATA_DIR); use prepare_synthetic "
            "or point COURSE_DATA_DIR at the folder that holds open_ms_data/."
        )
    files = find_cases(folder, OPEN_MS_LAYOUT, modalities, on_incomplete="skip" if patients is not None else "warn")
    if patients is not None:
        wanted = set(patients)
        complete = [f.name for f in files]
        files = [f for f in files if f.name in wanted]
        problems = []
        for name in sorted(wanted - set(complete)):
            if not (folder / name).is_dir():
                problems.append(f"{name}: no folder {folder / name}")
            else:
                lacking = ", ".join(missing_files(folder / name, OPEN_MS_LAYOUT, modalities))
                problems.append(f"{name}: {folder / name} has no file for {lacking}")
        if problems:
            raise DataError(
                f"open_ms_data under {folder} lacks what patients {sorted(wanted - set(complete))} need for "
                f"{list(modalities)} and the GOLD_STANDARD mask: {'; '.join(problems)}. Complete ones here: "
                f"{', '.join(complete) or 'none'}. Choose among those, or restore the missing files (download "
                "open_ms_data again)."
            )
    return [prepare_case(load_case(f, OPEN_MS_LAYOUT, modalities), spacing, "open_ms") for f in files]


@dataclass
class LessonData:
    """Lesson 04's cases: training patients, the test patient, synthetic training volumes, and where they came from."""

    cases: list[PreparedCase]
    train: list[PreparedCase]
    test: PreparedCase
    extra: list[PreparedCase]
    real: bool


def lesson_data(cfg: Any) -> LessonData:
    """The cases of lesson 04 (and 04b) for the profile ``cfg``: with open_ms_data under the data root, patients 07
    and 19 train (plus ``cfg.n_synthetic`` synthetic volumes) and patient 26 is the test patient; without it,
    ``cfg.n_synthetic_cases`` synthetic cases, the last one for testing."""
    if open_ms_dir() is not None:
        cases = prepare_open_ms(cfg.spacing, modalities_of(cfg))
        by_name = {c.name: c for c in cases}
        extra = prepare_synthetic(cfg.n_synthetic, seed=1000, spacing=cfg.spacing) if cfg.n_synthetic else []
        return LessonData(cases, [by_name["patient07"], by_name["patient19"]], by_name["patient26"], extra, True)
    cases = prepare_synthetic(cfg.n_synthetic_cases, seed=cfg.seed, spacing=cfg.spacing)
    return LessonData(cases, cases[:-1], cases[-1], [], False)


def prepare_synthetic(n: int, seed: int = 0, spacing: float = 2.0, **kwargs: Any) -> list[PreparedCase]:
    """``n`` synthetic cases (:func:`~course_utils.mri.synthetic.make_synthetic_case`, seeds
    ``seed, seed + 1, ...``) generated directly at ``spacing`` mm, which is also their native grid."""
    out = []
    for case in make_synthetic_cases(n, seed=seed, spacing=spacing, **kwargs):
        case.extras = {}
        out.append(prepare_case(case, None, "synthetic"))
    return out


# ----- model and training --------------------------------------------------------------------------
def build_lesion_model(in_channels: int = 2, base_width: int = 8, depth: int = 3, out_channels: int = 1):
    """The course U-Net in 3D: ``(B, in_channels, X, Y, Z) -> (B, out_channels, X, Y, Z)`` logits, BatchNorm.

    Patch sizes must be multiples of ``2 ** (depth - 1)``.
    """
    return UNet(in_channels=in_channels, out_channels=out_channels, dims=3, depth=depth, base_width=base_width)


def lesion_patches(
    cases: Sequence[PreparedCase | MRICase],
    *,
    patch_size: int,
    samples_per_epoch: int,
    lesion_fraction: float = 0.5,
    modalities: Sequence[str] | None = None,
    flips: bool = True,
    seed: int = 0,
    per_lesion: float = 0.0,
    intensity_jitter: float = 0.0,
) -> LesionPatchDataset:
    """A :class:`LesionPatchDataset` over the working-grid cases (left-right flips if ``flips``).

    ``per_lesion``: share of the lesion-centred patches that pick a lesion uniformly, then a voxel in it.
    ``intensity_jitter``: random per-channel contrast (``1 +- j``) and offset (``+- j``) in the brain.
    """
    mri = [c.case if isinstance(c, PreparedCase) else c for c in cases]
    return LesionPatchDataset(
        mri,
        patch_size=patch_size,
        samples_per_epoch=samples_per_epoch,
        lesion_fraction=lesion_fraction,
        modalities=modalities,
        flip_axes=(0,) if flips else (),
        seed=seed,
        per_lesion=per_lesion,
        intensity_jitter=intensity_jitter,
    )


def train_lesion_network(
    cases: Sequence[PreparedCase],
    cfg: Any,
    seed: int,
    device: torch.device | str | None = None,
    show_progress: bool = True,
) -> tuple[UNet, Any, float]:
    """``(model, history, seconds)``: a lesion U-Net trained on ``cases`` with the profile ``cfg``'s recipe
    (input images ``cfg.modalities``, patches, loss, schedule, EMA), torch and the patch sampler seeded with
    ``seed``; seconds of the training loop.

    The benchmark's fold networks and its out-of-fold networks are trained by this one function.
    """
    seed_everything(seed)
    modalities = modalities_of(cfg)
    model = build_lesion_model(len(modalities), cfg.base_width, cfg.depth)
    dataset = lesion_patches(
        cases,
        patch_size=cfg.patch_size,
        samples_per_epoch=cfg.samples_per_epoch,
        lesion_fraction=cfg.lesion_fraction,
        per_lesion=cfg.per_lesion,
        intensity_jitter=cfg.intensity_jitter,
        modalities=tuple(modalities),
        seed=seed,
    )
    start = time.perf_counter()
    history = train_model(
        model,
        patch_batches(dataset, cfg.batch_size),
        lr=cfg.lr,
        epochs=cfg.epochs,
        max_seconds=cfg.max_train_seconds,
        bce_weight=cfg.bce_weight,
        fn_weight=cfg.fn_weight,
        device=device,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        ema_decay=cfg.ema_decay,
        show_progress=show_progress,
        verbose=False,
    )
    return model, history, time.perf_counter() - start


def inference_kwargs(cfg: Any) -> dict[str, Any]:
    """The :func:`predict_case` keyword arguments of the profile ``cfg`` (input images, window, overlap, flips,
    rim...)."""
    return dict(
        patch_size=cfg.infer_patch_size,
        overlap=cfg.overlap,
        batch_size=2 * cfg.batch_size,
        tta=cfg.tta,
        modalities=modalities_of(cfg),
        amp=cfg.amp,
        rim_mm=cfg.rim_mm,
    )


def patch_batches(dataset: Dataset, batch_size: int) -> DataLoader:
    """Batches of ``batch_size`` patches in the dataset's order (it draws them at random), the last
    incomplete batch dropped; the dataset's ``set_epoch`` is called by ``fit`` before each epoch."""
    loader = DataLoader(dataset, batch_size=int(batch_size), shuffle=False, num_workers=0, drop_last=True)
    if len(loader) == 0:
        raise ValueError(f"samples_per_epoch ({len(dataset)}) is smaller than batch_size ({batch_size}).")
    return loader


# ----- inference -----------------------------------------------------------------------------------
def predict_working(
    model: torch.nn.Module,
    case: MRICase,
    *,
    patch_size: int,
    overlap: float = 0.5,
    batch_size: int = 8,
    tta: str = "none",
    modalities: Sequence[str] | None = None,
    progress: bool = False,
    amp: bool | str = False,
    crop_to_brain: bool = True,
) -> np.ndarray:
    """Lesion probability ``(X, Y, Z)`` float32 on ``case``'s (working) grid, 0 outside its brain mask.

    Sliding windows of ``patch_size`` voxels (the network is fully convolutional: it may be larger
    than the training patches) with ``overlap`` and Gaussian blending. ``tta``: ``"none"``,
    ``"lr"`` (also the left-right mirror image, the flip the training patches saw: 2 passes) or
    ``"flips"`` (all 8 flips). ``crop_to_brain``: slide only over the brain mask's bounding box
    (plus a margin of ``patch_size // 4``): the images are 0 outside the brain anyway, and half of
    an MNI volume is background.
    """
    brain = case.brain_mask.astype(bool)
    box = (
        bounding_box(brain, margin=max(patch_shape(patch_size)) // 4)
        if crop_to_brain
        else tuple(slice(None) for _ in brain.shape)
    )
    image = case.stack(list(modalities) if modalities is not None else case.modalities)
    image = torch.from_numpy(np.ascontiguousarray(image[(slice(None),) + box]))
    inside = sliding_window_inference(
        model,
        image,
        patch_shape(patch_size),
        overlap=overlap,
        batch_size=batch_size,
        activation="sigmoid",
        progress=progress,
        tta_flips=tta,
        amp=amp,
    )
    prob = np.zeros(brain.shape, np.float32)
    prob[box] = inside[0].cpu().numpy()
    prob[~brain] = 0.0
    return prob


def brain_depth_mm(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Euclidean distance in mm (float32, ``mask.shape``) from each voxel of ``mask`` to the nearest voxel
    outside it, with voxel size ``spacing`` (mm); 0 outside the mask. Voxels on the mask's edge get one voxel."""
    mask = np.asarray(mask, bool)
    if mask.all():  # no outside voxel: pad so that the array's border counts as outside
        return ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[(slice(1, -1),) * mask.ndim].astype(
            np.float32
        )
    return ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)


def to_native(prob: np.ndarray, prepared: PreparedCase, rim_mm: float = 0.0) -> np.ndarray:
    """A working-grid probability on the native grid (linear interpolation), 0 outside the native brain
    and, if ``rim_mm > 0``, 0 within ``rim_mm`` mm of the brain mask's edge (see :func:`predict_case`)."""
    if rim_mm < 0:
        raise ValueError(f"rim_mm is a distance in mm and cannot be negative, got {rim_mm}.")
    case = prepared.case
    vol = resample_to_grid(
        Volume(np.asarray(prob, np.float32), case.affine), prepared.native_shape, prepared.native_affine, "image"
    )
    out = np.clip(vol.data, 0.0, 1.0).astype(np.float32)
    out[~prepared.native_mask] = 0.0
    if rim_mm > 0:
        out[prepared.native_depth_mm() <= rim_mm] = 0.0
    return out


def predict_case(
    model: torch.nn.Module, prepared: PreparedCase, rim_mm: float = 0.0, **kwargs: Any
) -> tuple[np.ndarray, float]:
    """``(probability on the native grid, seconds)``: :func:`predict_working` then :func:`to_native`.

    ``rim_mm``: also set the probability to 0 within that many mm of the brain mask's edge. White-matter
    lesions lie inside the brain, while a skull-stripped FLAIR is often bright at its edge (left-over
    meninges, partial volume with the CSF): in a cpu benchmark run, a third to two thirds of the false
    lesions of each patient sat within 3 mm of the edge, and fewer than 0.2 % of the real lesion voxels do.
    """
    start = time.perf_counter()
    prob = to_native(predict_working(model, prepared.case, **kwargs), prepared, rim_mm=rim_mm)
    return prob, time.perf_counter() - start


# ----- threshold and metrics -----------------------------------------------------------------------
def choose_case_threshold(
    probs: Sequence[np.ndarray],
    cases: Sequence[PreparedCase],
    criterion: str = "dice",
    tolerance: float = 0.0,
    candidates: Sequence[float] | None = None,
) -> float:
    """The threshold with the best mean per-case ``criterion`` over ``cases`` (native grids, ignore left out):
    :func:`course_utils.metrics.choose_threshold` with ``average="per_case"``.

    ``criterion``: ``"dice"`` (voxel Dice) or ``"dice+lesion_f1"`` (the mean of Dice and lesion-wise
    F1: a threshold that also counts how many lesions are found, not only how many voxels).
    The mean over cases, as the benchmark reports it: a pooled score would let the patient with the
    largest lesion load decide alone. Use training volumes only: choosing it on the test volumes
    would be tuning on the answer. ``tolerance > 0`` picks the lowest threshold whose mean score is
    within ``tolerance`` of the best: Dice is flat near its best threshold, and a lower threshold finds
    more of the small lesions for a little Dice.
    """
    if len(probs) != len(cases) or not cases:
        raise ValueError(f"need one probability map per case, got {len(probs)} maps for {len(cases)} cases.")
    for prob, pc in zip(probs, cases):
        if prob.shape != pc.native_shape:
            raise ValueError(
                f"probability of shape {prob.shape} for case {pc.name!r} with native shape "
                f"{pc.native_shape}; bring it to the native grid first (to_native)."
            )
    keep = [pc.native_mask if pc.native_ignore is None else pc.native_mask & ~pc.native_ignore for pc in cases]
    return choose_threshold(
        list(probs),
        [pc.native_label > 0 for pc in cases],
        keep,
        criterion=criterion,
        average="per_case",
        candidates=candidates,
        tolerance=tolerance,
    )


def training_threshold(model: UNet, cases: Sequence[PreparedCase], cfg: Any) -> tuple[float, list[np.ndarray]]:
    """``(threshold, probs)``: the maps of ``model`` on its training ``cases`` (native grids, ``cfg``'s
    inference) and the threshold with the best mean ``cfg.threshold_criterion`` over them
    (:func:`choose_case_threshold`). The one way a lesion network of this lesson gets its threshold."""
    kw = inference_kwargs(cfg)
    probs = [predict_case(model, c, **kw)[0] for c in cases]
    threshold = choose_case_threshold(
        probs, cases, criterion=cfg.threshold_criterion, tolerance=cfg.threshold_tolerance
    )
    return threshold, probs


def evaluate_case(prob: np.ndarray, prepared: PreparedCase, threshold: float) -> dict[str, float]:
    """The five WMH metrics (and lesion counts) of ``prob >= threshold`` against the native label.

    Keys: see :func:`~course_utils.metrics.lesions.lesion_metrics`; spacing is the native voxel size.
    """
    if prob.shape != prepared.native_shape:
        raise ValueError(
            f"probability of shape {prob.shape} differs from the native grid {prepared.native_shape} "
            f"of {prepared.name!r}; use to_native first."
        )
    pred = (prob >= threshold) & prepared.native_mask
    return lesion_metrics(
        pred, prepared.native_label > 0, spacing=prepared.native_spacing, ignore=prepared.native_ignore
    )


def mean_metrics(rows: Sequence[dict[str, float]], keys: Sequence[str] = METRIC_KEYS) -> dict[str, float]:
    """Means over rows of each key; NaN or infinite values (HD95 is NaN for an empty prediction) and rows
    without the key are left out, with a :class:`~course_utils.errors.MetricWarning` saying how many of
    which metric. A metric with no finite value at all has a NaN mean, and the warning says so.

    Raises :class:`ValueError` for no rows and :class:`KeyError` for a key that no row has (a typo).
    """
    import difflib
    import warnings

    from ...errors import MetricWarning

    if not rows:
        raise ValueError("mean_metrics got no rows: there is nothing to average (did the evaluation run?).")
    out = {}
    for k in keys:
        if not any(k in r for r in rows):
            present = sorted({name for r in rows for name in r})
            close = difflib.get_close_matches(k, present, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"no row has {k!r}{hint}; the rows have: {', '.join(present)}.")
        values = np.array([float(r[k]) if k in r else np.nan for r in rows], dtype=float)
        finite = values[np.isfinite(values)]
        out[k] = float(finite.mean()) if finite.size else float("nan")
        left = len(values) - finite.size
        if left:
            missing = sum(k not in r for r in rows)
            counts = {"NaN": int(np.isnan(values).sum()) - missing, "Inf": int(np.isinf(values).sum())}
            counts["missing"] = missing
            parts = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            if not finite.size:
                what = "NaN" if counts["NaN"] == left else f"NaN, Inf or missing ({parts})"
                message = f"{k}: all {left} values are {what}; its mean is NaN, not a number to report."
            else:
                message = f"{k}: {left} of {len(values)} values ({parts}) left out; the mean is over {finite.size}."
            warnings.warn(message, MetricWarning, stacklevel=2)
    return out


# ----- false lesions: segment, then classify --------------------------------------------------------
@dataclass
class Candidates:
    """The candidate lesions of one case: ``labels`` (native grid, int32, candidates ``1..n``) of
    ``prob >= threshold`` inside the brain, ``features (n, F)`` (:func:`course_utils.mri.candidates.feature_names`
    of ``modalities``) and ``is_lesion (n,)`` (touches the case's label)."""

    case: PreparedCase
    labels: np.ndarray
    n: int
    features: np.ndarray
    is_lesion: np.ndarray
    threshold: float
    modalities: tuple[str, ...]


def zscored_native(prepared: PreparedCase, modality: str) -> np.ndarray:
    """``modality`` on the native grid, clipped and z-scored inside the native brain mask (cached on the case)."""
    cache = prepared.__dict__.setdefault("_zscored", {})
    if modality not in cache:
        cache[modality] = zscore_in_mask(native_image(prepared, modality), prepared.native_mask)
    return cache[modality]


def case_candidates(
    prob: np.ndarray, prepared: PreparedCase, threshold: float, modalities: Sequence[str]
) -> Candidates:
    """The candidates of ``prob`` (native grid) at ``threshold``: the components that :func:`evaluate_case`
    would count as predicted lesions, with their features from the images ``modalities`` (the network's inputs,
    :func:`~course_utils.lessons.lesson04.settings.modalities_of`)."""
    if prob.shape != prepared.native_shape:
        raise ValueError(
            f"probability of shape {prob.shape} for case {prepared.name!r} with native shape "
            f"{prepared.native_shape}; bring it to the native grid first (to_native)."
        )
    labels, n = label_candidates(prob, threshold, prepared.native_mask)
    images = {m: zscored_native(prepared, m) for m in modalities}
    features = candidate_features(
        labels, n, prob, prepared.native_depth_mm(), images, prepared.native_mask, prepared.native_spacing
    )
    truth = candidate_is_lesion(labels, n, prepared.native_label > 0)
    return Candidates(prepared, labels, n, features, truth, float(threshold), tuple(modalities))


@dataclass
class OutOfFoldMap:
    """A training case's probability map (native grid) from a network that did not train on it: the network
    trained on ``trained_on`` alone (plus the synthetic volumes), and that network's ``threshold``."""

    case: PreparedCase
    prob: np.ndarray
    threshold: float
    trained_on: str


def out_of_fold_maps(
    train: Sequence[PreparedCase],
    extra: Sequence[PreparedCase],
    cfg: Any,
    seeds: Mapping[str, int],
    device: torch.device | str | None = None,
    networks: dict[str, tuple[UNet, float, float]] | None = None,
    show_progress: bool = True,
) -> list[OutOfFoldMap]:
    """Out-of-fold maps of the ``train`` cases, for the false-lesion filter (nested inside the training cases).

    The map of ``train[i]`` comes from a network trained with ``cfg``'s recipe on ``train[(i + 1) % n]`` alone
    (plus ``extra``, the synthetic volumes), seeded with ``seeds[name of that case]``; its threshold is chosen on
    its own training case (:func:`choose_case_threshold`, ``cfg.threshold_criterion``). No test case enters.
    ``networks`` (``{case name: (model, threshold, training seconds)}``) caches the networks between calls: the
    benchmark's folds share them.
    """
    if len(train) < 2:
        raise ValueError(
            f"out-of-fold maps need at least two training cases (one to train on, one to predict), got {len(train)}."
        )
    networks = {} if networks is None else networks
    kw = inference_kwargs(cfg)
    maps = []
    for i, case in enumerate(train):
        partner = train[(i + 1) % len(train)]
        if partner.name not in networks:
            if partner.name not in seeds:
                raise KeyError(f"no seed for the out-of-fold network of {partner.name!r}; seeds has {sorted(seeds)}.")
            model, _, seconds = train_lesion_network(
                [partner, *extra], cfg, seeds[partner.name], device, show_progress=show_progress
            )
            threshold, _ = training_threshold(model, [partner], cfg)
            networks[partner.name] = (model, threshold, seconds)
        model, threshold, _ = networks[partner.name]
        maps.append(OutOfFoldMap(case, predict_case(model, case, **kw)[0], threshold, partner.name))
    return maps


def fit_false_lesion_filter(training: Sequence[Candidates]) -> tuple[CandidateClassifier, float]:
    """``(classifier, cut)`` from the candidates of training volumes.

    Use candidates of **out-of-fold** maps (each map from a network that did not train on that volume): on a
    network's own training volumes the false candidates are fewer and look different. The classifier learns
    from all their candidates; ``cut`` is the lesion probability whose kept candidates give the best mean
    lesion F1 over these volumes (:func:`choose_case_threshold`, criterion ``"lesion_f1"``).
    """
    if not training:
        raise ValueError("need the candidates of at least one training volume.")
    modalities = {c.modalities for c in training}
    if len(modalities) > 1:
        raise ValueError(f"the training candidates were described with different modalities: {sorted(modalities)}.")
    names = feature_names(training[0].modalities)
    classifier = CandidateClassifier(names).fit(
        np.concatenate([c.features for c in training]), np.concatenate([c.is_lesion for c in training])
    )
    maps = [paint(c.labels, classifier.lesion_probability(c.features)) for c in training]
    cut = choose_case_threshold(maps, [c.case for c in training], criterion="lesion_f1")
    return classifier, cut


def filter_candidates(
    candidates: Candidates, classifier: CandidateClassifier, cut: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(segmentation, kept)``: the native-grid bool map of the candidates whose lesion probability reaches
    ``cut``, and ``kept (n,)`` bool per candidate."""
    if feature_names(candidates.modalities) != classifier.names:
        raise ValueError(
            f"the classifier was trained on features of {classifier.names}; these candidates have "
            f"modalities {candidates.modalities}."
        )
    kept = classifier.lesion_probability(candidates.features) >= cut
    return np.concatenate([[False], kept])[candidates.labels], kept


def evaluate_segmentation(pred: np.ndarray, prepared: PreparedCase) -> dict[str, float]:
    """:func:`evaluate_case` for a binary segmentation ``pred`` (native grid) instead of a probability map."""
    return evaluate_case(np.asarray(pred, np.float32), prepared, 0.5)


def pooled_dice(probs: Sequence[np.ndarray], cases: Sequence[PreparedCase], threshold: float) -> float:
    """Dice over all voxels of all cases pooled (native grids)."""
    pred = np.concatenate([(p >= threshold).ravel() for p in probs])
    truth = np.concatenate([(c.native_label > 0).ravel() for c in cases])
    return dice(pred.reshape(1, 1, -1), truth.reshape(1, 1, -1))


# ----- bonus: synthesis ----------------------------------------------------------------------------
class SynthesisPatches(Dataset):
    """Patches of one modality as input and another as target, e.g. T1 -> FLAIR.

    Wraps a :class:`LesionPatchDataset` (same sampling, flips and ``set_epoch``): item
    ``(image[source] (1, ...), image[target] (1, ...), valid (1, ...))``.
    """

    def __init__(self, patches: LesionPatchDataset, source: str = "T1", target: str = "FLAIR"):
        for name in (source, target):
            if name not in patches.modalities:
                raise ValueError(f"modality {name!r} is not among the dataset's {patches.modalities}.")
        self.patches = patches
        self.source, self.target = patches.modalities.index(source), patches.modalities.index(target)

    def __len__(self) -> int:
        return len(self.patches)

    def set_epoch(self, epoch: int) -> None:
        self.patches.set_epoch(epoch)

    def __getitem__(self, index: int):
        image, _, valid = self.patches[index]
        return image[self.source : self.source + 1], image[self.target : self.target + 1], valid


# ----- display and files ---------------------------------------------------------------------------
def native_image(prepared: PreparedCase, modality: str = "FLAIR") -> np.ndarray:
    """The raw ``modality`` on the native grid (for figures at full resolution).

    Read again from its file (reoriented to RAS) when the case came from one; a case built
    in memory (synthetic) has its working grid as native grid and returns that image.
    """
    path = prepared.case.paths.get(modality)
    if path is not None:
        vol = to_canonical(load_volume(path))
        if vol.shape != prepared.native_shape:
            raise DataError(f"{path} has shape {vol.shape}, the native label {prepared.native_shape}.")
        return vol.data
    if prepared.case.shape != prepared.native_shape:
        raise DataError(
            f"case {prepared.name!r} has no file for {modality!r} and its working grid differs from "
            "the native one; show the working-grid image (prepared.case.images) instead."
        )
    return prepared.case.images[modality]


# ----- checkpoint contract -------------------------------------------------------------------------
def model_record(
    model: UNet,
    cfg: Any,
    *,
    spacing_mm: Sequence[float],
    threshold: float,
    threshold_source: str,
    train_cases: Sequence[str],
    data_source: str,
    seconds: float,
    epochs: int,
    reference: dict[str, Any] | None = None,
) -> ModelRecord:
    """The :class:`~course_utils.checkpoint.ModelRecord` of a lesson 04 lesion U-Net trained with ``cfg`` (its
    inputs: ``cfg.modalities``, one per input channel of ``model``)."""
    modalities = modalities_of(cfg)
    if model.config.get("in_channels") != len(modalities):
        raise ConfigError(
            f"modalities={cfg.modalities!r} names {len(modalities)} input image(s), but the model has "
            f"{model.config.get('in_channels')} input channel(s): build it with build_lesion_model(cfg) or set "
            "modalities to the images it was trained on."
        )
    return ModelRecord(
        lesson=LESSON,
        kind=CHECKPOINT_KIND,
        profile=cfg.profile,
        builder="UNet",
        model_config=dict(model.config),
        inputs=list(modalities),
        normalisation={
            "method": "zscore",
            "where": "brain mask (skull-stripped images)",
            "clip_percentiles": [0.5, 99.5],
            "after": "reorienting to RAS and resampling to spacing_mm",
            "orientation": "RAS",
            "outside_brain": 0.0,
        },
        spacing_mm=[float(v) for v in spacing_mm],
        inference={
            "mode": "sliding window",
            "function": "course_utils.lessons.lesson04.pipeline.predict_case (native grid, rim applied)",
            "patch_size": int(cfg.infer_patch_size),
            "overlap": float(cfg.overlap),
            "tta": cfg.tta,
            "rim_mm": float(cfg.rim_mm),
            "amp": cfg.amp,
            "crop_to_brain": True,
            "channels_last": cfg.channels_last,
            "batch_size": 2 * int(cfg.batch_size),
            "training_patch_size": int(cfg.patch_size),
        },
        threshold=float(threshold),
        threshold_source=threshold_source,
        training={
            "data": data_source,
            "cases": list(train_cases),
            "epochs": int(epochs),
            "seconds": float(seconds),
            "seed": cfg.seed,
        },
        reference=reference,
    )
