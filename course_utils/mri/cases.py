"""Find and load MRI cases: named modality files and a label file per case folder.

A *case layout* says which file in a case folder is which modality and which is the
label, with glob patterns (several alternatives allowed) relative to the folder:

* :data:`OPEN_MS_LAYOUT`: ``open_ms_data/cross_sectional/MNI/patientNN/`` with
  ``FLAIR_*.nii.gz``, ``T1_*.nii.gz``, ``T1POST_*.nii.gz``, ``T2_*.nii.gz`` and the
  expert consensus ``GOLD_STANDARD_*.nii.gz`` (1 = lesion). Only patients 07, 19 and 26
  have images in the course's copy; the other 27 have only their lesion mask
  (:func:`open_ms_lesion_masks`).
* :data:`WMH2017_LAYOUT`: MICCAI 2017 WMH challenge cases, ``FLAIR.nii.gz``,
  ``T1.nii.gz`` (directly in the case folder or in its ``pre/`` folder) and ``wmh.nii.gz``
  where 1 = white-matter hyperintensity and 2 = other pathology, which is *ignored*:
  neither counted as lesion nor as background (as the challenge evaluates).
* your own: ``CaseLayout(modalities={"FLAIR": "flair.nii.gz", ...}, label="mask.nii.gz")``.

:func:`load_case` checks that every file shares one grid, that the label holds only
the expected values, reorients to RAS and optionally resamples to a coarser grid and
normalises intensities in the brain mask. Every error names the file and says what to do.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence, Union

import nibabel as nib
import numpy as np

from ..errors import DataError, DataWarning
from ..paths import data_root
from ..validate import check_choice
from .io import (
    Volume,
    brain_mask_from,
    check_label_values,
    check_same_grid,
    load_volume,
    normalise_intensity,
    resample_to_grid,
    resample_to_voxel_size,
    save_volume,
    to_canonical,
    voxel_size,
)

Patterns = Union[str, Sequence[str]]
OPEN_MS_DIRNAME = "open_ms_data"
OPEN_MS_COMPLETE = ("patient07", "patient19", "patient26")
OPEN_MS_CITATION = (
    'Lesjak, Ž., Pernuš, F., Likar, B., Špiclin, Ž. "A Novel Public MR Image Dataset of Multiple Sclerosis '
    'Patients With Lesion Segmentations Based on Multi-rater Consensus", Neuroinformatics (2017), '
    "DOI: 10.1007/s12021-017-9348-7. Released under the Creative Commons Attribution (CC-BY) licence, "
    "http://lit.fe.uni-lj.si/tools.php?lang=eng"
)


@dataclass(frozen=True)
class CaseLayout:
    """Which files of a case folder hold which modality and the label.

    ``modalities``: modality name -> glob pattern (or a sequence of alternatives, tried
    in order) relative to the case folder. ``label``: the label's pattern(s), ``None``
    for unlabelled cases. ``lesion_values``: label values meaning lesion;
    ``ignore_values``: values to leave out of training and evaluation; every other
    non-zero value is an error. ``brain_mask``: optional pattern of a brain mask file
    (else the brain is where any modality is non-zero, as in skull-stripped images).
    """

    modalities: Mapping[str, Patterns]
    label: Patterns | None = None
    lesion_values: tuple[int, ...] = (1,)
    ignore_values: tuple[int, ...] = ()
    brain_mask: Patterns | None = None
    name: str = "custom"

    def __post_init__(self):
        if not self.modalities:
            raise ValueError("a CaseLayout needs at least one modality, e.g. modalities={'FLAIR': 'FLAIR.nii.gz'}.")
        overlap = set(self.lesion_values) & set(self.ignore_values)
        if overlap or 0 in self.lesion_values or 0 in self.ignore_values:
            raise ValueError(
                f"lesion_values {self.lesion_values} and ignore_values {self.ignore_values} must be "
                "disjoint and non-zero (0 is background)."
            )

    @property
    def allowed_label_values(self) -> tuple[int, ...]:
        return tuple(sorted({0, *self.lesion_values, *self.ignore_values}))


OPEN_MS_LAYOUT = CaseLayout(
    name="open_ms_data",
    modalities={"FLAIR": "FLAIR_*.nii.gz", "T1": "T1_*.nii.gz", "T1POST": "T1POST_*.nii.gz", "T2": "T2_*.nii.gz"},
    label="GOLD_STANDARD_*.nii.gz",
)

WMH2017_LAYOUT = CaseLayout(
    name="wmh2017",
    modalities={"FLAIR": ("pre/FLAIR.nii.gz", "FLAIR.nii.gz"), "T1": ("pre/T1.nii.gz", "T1.nii.gz")},
    label="wmh.nii.gz",
    lesion_values=(1,),
    ignore_values=(2,),
)


@dataclass
class CaseFiles:
    """The files of one case: ``modalities`` (name -> path), ``label`` and ``brain_mask`` paths or ``None``."""

    name: str
    folder: Path
    modalities: dict[str, Path]
    label: Path | None = None
    brain_mask: Path | None = None


@dataclass
class MRICase:
    """One loaded case on one voxel grid ``(X, Y, Z)`` given by ``affine`` (mm).

    ``images``: modality -> float32 ``(X, Y, Z)``; ``label``: uint8 0/1 lesion map or
    ``None``; ``brain_mask``: bool; ``ignore``: bool voxels to leave out (e.g. WMH label
    2) or ``None``. ``source_shape``/``source_affine``/``header``: the grid and header of
    the first modality as stored on disk, so that predictions can be saved back onto it
    (:func:`save_prediction`). ``extras``: anything else (e.g. tissue maps of synthetic cases).
    """

    name: str
    images: dict[str, np.ndarray]
    label: np.ndarray | None
    brain_mask: np.ndarray
    affine: np.ndarray
    ignore: np.ndarray | None = None
    header: nib.Nifti1Header | None = None
    source_shape: tuple[int, ...] | None = None
    source_affine: np.ndarray | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.images)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.brain_mask.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three array axes."""
        return voxel_size(self.affine)

    def stack(self, modalities: Sequence[str] | None = None) -> np.ndarray:
        """The modalities as one float32 array ``(C, X, Y, Z)``, in the order asked (default: all)."""
        names = list(modalities) if modalities is not None else self.modalities
        missing = [m for m in names if m not in self.images]
        if missing:
            raise DataError(
                f"case {self.name!r} has no modality {missing}; it has {self.modalities}. "
                "Load it with those modalities (load_case(..., modalities=[...]))."
            )
        return np.stack([self.images[m] for m in names]).astype(np.float32, copy=False)

    def volume(self, what: str) -> Volume:
        """A modality, ``"label"``, ``"brain_mask"`` or ``"ignore"`` as a :class:`Volume` on the case's grid."""
        arrays = {**self.images, "label": self.label, "brain_mask": self.brain_mask, "ignore": self.ignore}
        if what not in arrays or arrays[what] is None:
            raise KeyError(
                f"case {self.name!r} has no {what!r}; choose one of {[k for k, v in arrays.items() if v is not None]}."
            )
        return Volume(arrays[what], self.affine, self.header, self.paths.get(what))

    def summary(self) -> dict:
        """Name, shape, voxel size, modalities, brain and lesion volumes in millilitres."""
        ml = float(np.prod(self.spacing)) / 1000.0
        out = {
            "name": self.name,
            "shape": self.shape,
            "spacing_mm": tuple(round(s, 3) for s in self.spacing),
            "modalities": self.modalities,
            "brain_ml": round(float(self.brain_mask.sum()) * ml, 1),
        }
        if self.label is not None:
            out["lesion_ml"] = round(float((self.label > 0).sum()) * ml, 2)
        return out


# ----- finding cases -----------------------------------------------------------------------------
def find_cases(
    root: str | Path,
    layout: CaseLayout,
    modalities: Sequence[str] | None = None,
    require_label: bool = True,
    on_incomplete: str = "error",
) -> list[CaseFiles]:
    """The case folders under ``root`` (searched recursively) with their files, sorted by name.

    A folder is a case when any file of ``layout`` is found in it. ``modalities``: the
    ones needed (default: all of the layout's). ``on_incomplete``: ``"error"`` raises
    :class:`DataError` naming the folder and the missing file; ``"skip"`` leaves such
    cases out (as the open_ms_data patients that have a lesion mask only); ``"warn"`` leaves
    them out too, but a folder that holds some of the wanted images and lacks others gets a
    :class:`~course_utils.errors.DataWarning` naming the missing file (a folder with no image
    at all, only a label, is left out quietly).
    """
    root = Path(root)
    check_choice("on_incomplete", on_incomplete, ("error", "skip", "warn"))
    if not root.is_dir():
        raise DataError(
            f"case folder {root} does not exist; point it at the folder that holds one sub-folder per case."
        )
    wanted = _wanted(layout, modalities, require_label)
    names = [role for role in wanted if role != "label"]
    candidates: set[Path] = set()
    for patterns in wanted.values():
        for pattern in _alternatives(patterns):
            depth = len(Path(pattern).parts)
            for match in root.rglob(pattern):
                if match.name.startswith("."):  # macOS "._FLAIR.nii.gz" AppleDouble files are not images
                    continue
                candidates.add(match.parents[depth - 1])
    # a pattern like "FLAIR.nii.gz" also matches inside a case's "pre/" folder: keep the outermost folder
    candidates = {c for c in candidates if not any(o != c and o in c.parents for o in candidates)}
    cases = []
    for folder in sorted(candidates, key=lambda p: _natural_key(str(p.relative_to(root)))):
        found = {role: path for role, path in ((r, _resolve(folder, p)) for r, p in wanted.items()) if path}
        missing = _missing(folder, wanted)
        if missing:
            if on_incomplete == "warn" and any(m in found for m in names):
                warnings.warn(
                    f"case folder {folder} is left out: it has no file for {', '.join(missing)}. Add the "
                    "missing file (it may have been lost while unpacking) or ask for fewer modalities.",
                    DataWarning,
                    stacklevel=2,
                )
            if on_incomplete in ("skip", "warn"):
                continue
            raise DataError(
                f"case folder {folder} has no file for {', '.join(missing)}. Add or rename the "
                "file, describe your names with CaseLayout(modalities=..., label=...), ask for "
                "fewer modalities, or pass on_incomplete='skip' to leave such cases out."
            )
        label = found.pop("label", None)
        mask = _resolve(folder, layout.brain_mask) if layout.brain_mask is not None else None
        rel = folder.relative_to(root)
        cases.append(
            CaseFiles(
                name=str(rel) if str(rel) != "." else folder.name,
                folder=folder,
                modalities=found,
                label=label,
                brain_mask=mask,
            )
        )
    return cases


def missing_files(
    folder: str | Path, layout: CaseLayout, modalities: Sequence[str] | None = None, require_label: bool = True
) -> list[str]:
    """What ``folder`` lacks to be a complete case of ``layout``, e.g. ``["T1 (T1_*.nii.gz)"]`` (empty: complete)."""
    return _missing(Path(folder), _wanted(layout, modalities, require_label))


def _wanted(layout: CaseLayout, modalities: Sequence[str] | None, require_label: bool) -> dict[str, Patterns]:
    """Role (a modality or ``"label"``) -> file patterns that a complete case of ``layout`` has."""
    names = list(modalities) if modalities is not None else list(layout.modalities)
    unknown = [m for m in names if m not in layout.modalities]
    if unknown:
        raise ValueError(
            f"modalities {unknown} are not in layout {layout.name!r}, which has {list(layout.modalities)}."
        )
    wanted: dict[str, Patterns] = {m: layout.modalities[m] for m in names}
    if layout.label is not None and require_label:
        wanted["label"] = layout.label
    return wanted


def _missing(folder: Path, wanted: dict[str, Patterns]) -> list[str]:
    """``"T1 (T1_*.nii.gz)"`` for each role of ``wanted`` that ``folder`` has no file for."""
    return [
        f"{role} ({' or '.join(_alternatives(patterns))})"
        for role, patterns in wanted.items()
        if not folder.is_dir() or _resolve(folder, patterns) is None
    ]


def _alternatives(patterns: Patterns) -> list[str]:
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _resolve(folder: Path, patterns: Patterns) -> Path | None:
    """The one file in ``folder`` matching the first pattern that matches; DataError if ambiguous."""
    for pattern in _alternatives(patterns):
        matches = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))
        if len(matches) > 1:
            raise DataError(
                f"{folder}: pattern {pattern!r} matches {len(matches)} files "
                f"({[m.name for m in matches[:4]]}); make the pattern specific to one file."
            )
        if matches:
            return matches[0]
    return None


def _natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


# ----- loading -------------------------------------------------------------------------------------
def load_case(
    files: CaseFiles,
    layout: CaseLayout,
    modalities: Sequence[str] | None = None,
    *,
    canonical: bool = True,
    spacing: float | Sequence[float] | None = None,
    normalise: str | None = None,
) -> MRICase:
    """Load one case: check grids and label values, reorient, resample, normalise.

    ``modalities``: which to load, in this order (default: all in ``files``).
    ``canonical``: reorient every file to RAS first (exact axis flips and swaps), so files
    stored in different orientations still line up. ``spacing``: voxel size in mm for a
    coarser grid (e.g. 2.0 for the CPU profile), ``None`` keeps the stored grid.
    ``normalise``: ``"zscore"`` or ``"minmax"`` inside the brain mask
    (:func:`~course_utils.mri.io.normalise_intensity`), ``None`` keeps raw values.
    """
    names = list(modalities) if modalities is not None else list(files.modalities)
    missing = [m for m in names if m not in files.modalities]
    if missing:
        raise DataError(
            f"case {files.name!r} ({files.folder}) has no file for modality {missing}; it has "
            f"{list(files.modalities)}. Add the file or load fewer modalities."
        )
    volumes: dict[str, Volume] = {m: load_volume(files.modalities[m]) for m in names}
    first = volumes[names[0]]
    source_shape, source_affine, header = first.shape, first.affine.copy(), first.header
    if files.label is not None:
        volumes["label"] = load_volume(files.label, dtype=None)
    if files.brain_mask is not None:
        volumes["brain_mask"] = load_volume(files.brain_mask, dtype=None)
    if canonical:
        volumes = {k: to_canonical(v) for k, v in volumes.items()}
    check_same_grid(volumes)

    label_map = None
    if "label" in volumes:
        label_map = check_label_values(volumes["label"], layout.allowed_label_values)
    ref = volumes[names[0]]
    if "brain_mask" in volumes:
        mask_vol = volumes["brain_mask"]
        mask = np.asarray(mask_vol.data) > 0.5
        if not mask.any():
            raise DataError(
                f"brain mask {mask_vol.name} is empty; check the file or leave brain_mask out of "
                "the layout to use the non-zero voxels of the images."
            )
    else:
        mask = brain_mask_from([volumes[m].data for m in names])
        if not mask.any():
            raise DataError(f"the images of case {files.name!r} ({files.folder}) are zero everywhere; check the files.")
    for m in names:
        inside = np.asarray(volumes[m].data)[mask]
        if inside.min() == inside.max():
            raise DataError(
                f"modality {image_name(files.name, m, files.modalities[m])} is constant ({float(inside[0]):g}) "
                "inside the brain: it holds no image (an all-zero file is a failed export or conversion). "
                f"Replace the file, or load the case without {m} (modalities=[...])."
            )
    if label_map is not None and not np.isin(label_map, layout.lesion_values).any():
        warnings.warn(
            f"case {files.name!r}: its label {files.label} marks no voxel as lesion (values "
            f"{list(layout.lesion_values)}), a labelled case with no lesion. Patches from it never show a "
            "lesion; check that it is the right (and an unmodified) label file.",
            DataWarning,
            stacklevel=2,
        )

    images = {m: np.asarray(volumes[m].data, dtype=np.float32) for m in names}
    affine = ref.affine
    if spacing is not None:
        grid = resample_to_voxel_size(ref, spacing)
        shape, affine = grid.shape, grid.affine
        images = {m: resample_to_grid(volumes[m], shape, affine, "image").data for m in names}
        mask = resample_to_grid(Volume(mask, ref.affine), shape, affine, "mask").data
        if label_map is not None:
            label_map = resample_to_grid(Volume(label_map, ref.affine), shape, affine, "label").data
    if normalise is not None:
        images = {
            m: normalise_intensity(v, mask, normalise, name=image_name(files.name, m, files.modalities[m]))
            for m, v in images.items()
        }

    label = ignore = None
    if label_map is not None:
        label = np.isin(label_map, layout.lesion_values).astype(np.uint8)
        ignore = np.isin(label_map, layout.ignore_values) if layout.ignore_values else None
    paths = {**files.modalities}
    if files.label is not None:
        paths["label"] = files.label
    if files.brain_mask is not None:
        paths["brain_mask"] = files.brain_mask
    return MRICase(
        name=files.name,
        images=images,
        label=label,
        brain_mask=mask,
        affine=affine,
        ignore=ignore,
        header=header,
        source_shape=source_shape,
        source_affine=source_affine,
        paths=paths,
    )


def load_cases(
    root: str | Path,
    layout: CaseLayout,
    modalities: Sequence[str] | None = None,
    on_incomplete: str = "error",
    **load_kwargs,
) -> list[MRICase]:
    """:func:`find_cases` then :func:`load_case` on each (``load_kwargs``: ``spacing``, ``normalise``...)."""
    files = find_cases(root, layout, modalities, on_incomplete=on_incomplete)
    if not files:
        raise DataError(
            f"no case found under {root} with layout {layout.name!r} "
            f"({dict(layout.modalities)}, label {layout.label!r}); check the folder and the names."
        )
    return [load_case(f, layout, modalities, **load_kwargs) for f in files]


def normalise_case(case: MRICase, method: str = "zscore") -> MRICase:
    """A copy of ``case`` with every modality normalised inside its brain mask."""
    return replace(
        case,
        images={
            m: normalise_intensity(v, case.brain_mask, method, name=image_name(case.name, m, case.paths.get(m)))
            for m, v in case.images.items()
        },
    )


def image_name(case: str, modality: str, path: str | Path | None = None) -> str:
    """``"FLAIR of case 'patient07' (<file>)"``: how errors and warnings name one image of a case."""
    return f"{modality} of case {case!r}" + (f" ({path})" if path is not None else "")


# ----- open_ms_data --------------------------------------------------------------------------------
def open_ms_dir(root: str | Path | None = None) -> Path | None:
    """``<data root>/open_ms_data/cross_sectional/MNI`` if it exists, else ``None``."""
    base = Path(root) if root is not None else data_root()
    if base.name == OPEN_MS_DIRNAME:
        base = base.parent
    folder = base / OPEN_MS_DIRNAME / "cross_sectional" / "MNI"
    return folder if folder.is_dir() else None


def open_ms_cases(
    modalities: Sequence[str] = ("FLAIR", "T1"), root: str | Path | None = None, **load_kwargs
) -> list[MRICase]:
    """The open_ms_data patients that have images (07, 19, 26), loaded with :func:`load_case`.

    Cite the data set (:data:`OPEN_MS_CITATION`, CC-BY) wherever you show it.
    """
    folder = _require_open_ms(root)
    files = find_cases(folder, OPEN_MS_LAYOUT, modalities, on_incomplete="warn")
    if not files:
        raise DataError(f"{folder} holds no patient with {list(modalities)} and a GOLD_STANDARD mask.")
    return [load_case(f, OPEN_MS_LAYOUT, modalities, **load_kwargs) for f in files]


def open_ms_lesion_masks(root: str | Path | None = None, exclude: Sequence[str] = OPEN_MS_COMPLETE) -> list[Path]:
    """Paths of the open_ms_data consensus lesion masks, without the ``exclude`` patients.

    By default the three patients with images are left out, so lesion shapes drawn from
    these masks never leak the test patients of the benchmark into training.
    """
    folder = _require_open_ms(root)
    masks = sorted(folder.glob("patient*/GOLD_STANDARD_*.nii.gz"), key=lambda p: _natural_key(p.parent.name))
    return [m for m in masks if m.parent.name not in set(exclude)]


def _require_open_ms(root: str | Path | None) -> Path:
    folder = open_ms_dir(root)
    if folder is None:
        where = Path(root) if root is not None else data_root()
        raise DataError(
            f"open_ms_data not found under {where}. Set COURSE_DATA_DIR to the folder that holds "
            "open_ms_data/ (download: https://github.com/muschellij2/open_ms_data), or use the "
            "synthetic volumes (course_utils.mri.make_synthetic_case)."
        )
    return folder


# ----- writing -------------------------------------------------------------------------------------
def write_case(case: MRICase, folder: str | Path, layout: CaseLayout, overwrite: bool = False) -> CaseFiles:
    """Save ``case`` as NIfTI files named by ``layout`` (first alternative of each name) in ``folder``.

    The label file gets the layout's first lesion value for lesions and its first ignore
    value for ignored voxels. Patterns with wildcards cannot name a file: use a layout
    with plain names. Returns the written :class:`CaseFiles`.
    """
    folder = Path(folder)

    def filename(patterns: Patterns, role: str) -> Path:
        name = _alternatives(patterns)[0]
        if any(ch in name for ch in "*?["):
            raise ValueError(
                f"layout {layout.name!r} names {role} with the pattern {name!r}; write_case needs "
                "plain file names, e.g. CaseLayout(modalities={'FLAIR': 'FLAIR.nii.gz'}, ...)."
            )
        return folder / name

    names = {m: filename(patterns, m) for m, patterns in layout.modalities.items()}
    missing = [m for m in layout.modalities if m not in case.images]
    if missing:
        raise ValueError(f"case {case.name!r} has no {missing} for layout {layout.name!r}; it has {case.modalities}.")
    written = {}
    for m in layout.modalities:
        written[m] = save_volume(case.images[m].astype(np.float32), names[m], affine=case.affine, overwrite=overwrite)
    label_path = None
    if case.label is not None and layout.label is not None:
        label = np.where(case.label > 0, layout.lesion_values[0], 0).astype(np.uint8)
        if case.ignore is not None and layout.ignore_values:
            label[case.ignore] = layout.ignore_values[0]
        label_path = save_volume(label, filename(layout.label, "label"), affine=case.affine, overwrite=overwrite)
    return CaseFiles(name=case.name, folder=folder, modalities=written, label=label_path)


def save_prediction(case: MRICase, prediction: np.ndarray, path: str | Path, overwrite: bool = False) -> Path:
    """Save ``prediction (X, Y, Z)`` (on the case's grid) on the grid and header the case was stored with.

    A bool or integer prediction is saved as a uint8 label map (resampled as labels if
    the case was reoriented or resampled); a float one (probabilities) as float32.
    Never overwrites unless ``overwrite=True``.
    """
    prediction = np.asarray(prediction)
    if prediction.shape != case.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from case {case.name!r} shape {case.shape}.")
    is_label = prediction.dtype == bool or np.issubdtype(prediction.dtype, np.integer)
    vol = Volume(prediction.astype(np.uint8) if is_label else prediction.astype(np.float32), case.affine)
    if case.source_shape is not None and case.source_affine is not None:
        vol = resample_to_grid(vol, case.source_shape, case.source_affine, "label" if is_label else "image")
    return save_volume(
        vol.data,
        path,
        affine=vol.affine,
        like=Volume(vol.data, vol.affine, case.header) if case.header is not None else None,
        overwrite=overwrite,
    )
