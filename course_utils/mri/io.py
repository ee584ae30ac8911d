"""NIfTI volumes with nibabel: load, check, reorient, resample, normalise and save.

A :class:`Volume` is a voxel array together with what places it in the scanner's
world: the 4x4 ``affine`` (voxel index ``(i, j, k)`` to millimetres ``(x, y, z)``) and
the NIfTI header it came with. Everything here keeps the two together, because an
array alone cannot say where left is or how big a voxel is.

* orientation: ``orientation(affine)`` gives nibabel's axis codes, e.g. ``"RAS"``
  (axis 0 runs to the patient's Right, axis 1 Anterior, axis 2 Superior) or ``"LAS"``
  (the open_ms_data files). :func:`to_canonical` reorients to RAS with
  :func:`nibabel.as_closest_canonical` (flips / axis swaps only, no interpolation).
* grids: two volumes share a grid when their shapes are equal and their affines agree
  within ``AFFINE_ATOL`` mm (float noise from registration tools is tolerated).
* resampling: :func:`resample_to_grid` maps a volume onto any target grid through world
  coordinates; :func:`resample_to_voxel_size` makes a coarser grid for the CPU profiles.
  Downsampled images average what each coarse voxel covers (exact block means for
  integer factors, else Gaussian smoothing then linear interpolation); label maps give
  each coarse voxel the value covering the largest fraction of it (ties go to the
  non-zero value), so a lesion survives when it fills at least half a coarse voxel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence, Union

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..errors import DataError
from ..files import check_target
from ..validate import check_choice

AFFINE_ATOL = 1e-3  # mm: affines that differ by less are "the same grid"
PathLike = Union[str, Path]
KINDS = ("image", "label", "mask")
NORMALISATIONS = ("zscore", "minmax")


@dataclass
class Volume:
    """A 3D array ``data (X, Y, Z)`` on the grid given by ``affine`` (4x4, mm).

    ``header``: the NIfTI header it was read with (copied into files saved from it);
    ``path``: where it was read from (named in error messages), ``None`` if built in memory.
    """

    data: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header | None = None
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three array axes."""
        return voxel_size(self.affine)

    @property
    def orientation(self) -> str:
        return orientation(self.affine)

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "<in-memory volume>"

    def with_data(self, data: np.ndarray) -> "Volume":
        """The same grid, header and path with other voxel values (same shape)."""
        data = np.asarray(data)
        if data.shape != self.data.shape:
            raise ValueError(
                f"new data has shape {data.shape}, the volume {self.shape}; use resample_to_grid to change grids."
            )
        return replace(self, data=data)

    def to_nifti(self, dtype: np.dtype | str | None = None) -> nib.Nifti1Image:
        """A :class:`nibabel.Nifti1Image` with this affine and a copy of the header."""
        return _make_image(self.data, self.affine, self.header, dtype)


def voxel_size(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis: the lengths of the affine's first three columns."""
    a = np.asarray(affine, dtype=float)
    return tuple(float(v) for v in np.sqrt((a[:3, :3] ** 2).sum(axis=0)))


def orientation(affine: np.ndarray) -> str:
    """nibabel's axis codes of ``affine`` as one string, e.g. ``"RAS"`` or ``"LAS"``."""
    return "".join(nib.aff2axcodes(np.asarray(affine)))


# ----- reading and writing ---------------------------------------------------------------------
def load_volume(path: PathLike, *, dtype: np.dtype | str | None = np.float32, canonical: bool = False) -> Volume:
    """Read a 3D NIfTI file (``.nii`` or ``.nii.gz``) into a :class:`Volume`.

    ``dtype``: the array type (default float32; ``None``: the array as nibabel gives it,
    the stored type unless the header has a scale factor). ``canonical``: reorient to RAS
    (see :func:`to_canonical`). A 4D file with a single volume (``(X, Y, Z, 1)``) is accepted and squeezed. Raises
    :class:`DataError` naming the file when it is missing, unreadable or not 3D.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise DataError(
            f"{path} is a symbolic link to nothing (its target is missing, or the link points to itself): "
            "replace the link with the file, or point it at an existing file."
        )
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a NIfTI file; name the .nii or .nii.gz file inside it.")
    if not path.is_file():
        raise DataError(
            f"NIfTI file not found: {path}. Check the folder and the file name "
            "(a case layout's modality and label names must match the files)."
        )
    try:
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises several types for damaged files
        raise DataError(
            f"cannot read {path} as NIfTI ({type(err).__name__}: {err}); check that the "
            "file is a complete .nii or .nii.gz (re-download or re-export it)."
        ) from err
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        image = image.slicer[..., 0]
    if len(image.shape) != 3:
        raise DataError(
            f"{path} has shape {shape}; expected a 3D volume (X, Y, Z). Split a 4D "
            "series into one file per volume first."
        )
    if min(image.shape) < 1:
        raise DataError(f"{path} has shape {shape}: it holds no voxel. Re-export it.")
    stored = np.dtype(image.get_data_dtype())
    if stored.fields is not None or stored.kind not in "biuf":
        raise DataError(
            f"{path} stores {stored} voxels (e.g. RGB or complex); the course reads one grey value per "
            "voxel. Convert it to a single-channel (grey) volume first."
        )
    _check_affine(image.affine, path)
    try:
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            image = nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine)
        if canonical:
            image = nib.as_closest_canonical(image)
        data = np.asanyarray(image.dataobj) if dtype is None else image.get_fdata(dtype=np.float32)
    except Exception as err:  # EOFError / zlib.error of a truncated .gz, OSError, ValueError of short files
        raise DataError(
            f"{path} is corrupt or incomplete: its header was read but its voxels could not be "
            f"({type(err).__name__}: {err}). This is typical of an interrupted download or copy: "
            "download (or copy) the file again."
        ) from err
    _check_finite(np.asarray(data), path)
    if dtype is not None and np.dtype(dtype) != np.float32:
        data = data.astype(dtype)
    header = image.header.copy()
    return Volume(np.asarray(data), np.array(image.affine, dtype=float), header, path)


def _check_affine(affine: np.ndarray, path: Path) -> None:
    """DataError naming ``path`` when its affine is not finite or has a zero-size (or degenerate) voxel axis."""
    a = np.asarray(affine, dtype=float)
    sizes = np.sqrt((a[:3, :3] ** 2).sum(axis=0)) if np.isfinite(a).all() else None
    if sizes is None or sizes.min() <= 1e-6 or abs(np.linalg.det(a[:3, :3])) <= 1e-9 * float(np.prod(sizes)):
        shown = "non-finite" if sizes is None else ", ".join(f"{v:g}" for v in sizes)
        raise DataError(
            f"{path} has an unusable affine (voxel size {shown} mm): every voxel axis must have a size > 0 "
            "and the axes must be independent. The header is damaged; re-export the file (or repair its "
            "sform/qform, e.g. with nibabel's set_sform) before using it."
        )


def _check_finite(data: np.ndarray, path: Path | str) -> None:
    """DataError naming ``path`` and how many voxels are NaN or infinite (one would turn training into NaN)."""
    if not np.issubdtype(data.dtype, np.floating):
        return
    finite = np.isfinite(data)
    if finite.all():
        return
    n_nan = int(np.isnan(data).sum())
    n_bad = int(finite.size - finite.sum())
    raise DataError(
        f"{path} has {n_bad} non-finite voxel{'s' if n_bad != 1 else ''} ({n_nan} NaN, {n_bad - n_nan} "
        f"infinite) out of {data.size}. One such voxel makes the normalisation, and then the loss, NaN. "
        "Re-export the file, or replace them before saving (e.g. numpy.nan_to_num(data, nan=0, posinf=0, "
        "neginf=0)) if they lie outside the brain."
    )


def save_volume(
    volume_or_data: Volume | np.ndarray,
    path: PathLike,
    *,
    like: Volume | None = None,
    affine: np.ndarray | None = None,
    dtype: np.dtype | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a volume (or an array placed on ``like``'s grid) as NIfTI and return the path.

    * ``Volume``: saved with its own affine and header.
    * array: needs ``like`` (a volume on the same grid: its affine and header are used,
      e.g. the FLAIR the prediction was made from) or an explicit ``affine``.

    ``dtype``: stored type (default: the array's; bool is stored as uint8). The header's
    voxel sizes follow the affine. Never overwrites an existing file unless
    ``overwrite=True``; raises :class:`FileExistsError` instead.
    """
    path = Path(path)
    if isinstance(volume_or_data, Volume):
        vol = volume_or_data
    else:
        data = np.asarray(volume_or_data)
        if like is None and affine is None:
            raise ValueError(
                "saving a bare array needs like=<Volume on the same grid> or affine=<4x4>; "
                "without them the file would not say where its voxels are."
            )
        if like is not None and data.shape != like.shape:
            raise ValueError(
                f"array shape {data.shape} differs from like={like.name} shape {like.shape}; "
                "resample it onto that grid first (resample_to_grid)."
            )
        vol = Volume(
            data,
            np.asarray(affine if affine is not None else like.affine, dtype=float),
            like.header if like is not None else None,
            None,
        )
    if vol.data.ndim != 3:
        raise ValueError(f"expected a 3D volume (X, Y, Z), got shape {vol.data.shape}.")
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ValueError(f"{path}: NIfTI file names end in .nii or .nii.gz.")
    check_target(path, overwrite=overwrite, example="prediction.nii.gz")  # a user's file, a folder, read-only
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(vol.to_nifti(dtype), str(path))
    return path


def _make_image(
    data: np.ndarray, affine: np.ndarray, header: nib.Nifti1Header | None, dtype: np.dtype | str | None
) -> nib.Nifti1Image:
    data = np.asarray(data)
    dtype = np.dtype(dtype) if dtype is not None else (np.dtype(np.uint8) if data.dtype == bool else data.dtype)
    header = header.copy() if header is not None else None
    if isinstance(header, nib.Nifti2Header):
        header = None
    image = nib.Nifti1Image(data.astype(dtype, copy=False), np.asarray(affine, dtype=float), header)
    image.set_data_dtype(dtype)
    image.header.set_zooms(voxel_size(affine))
    image.header["scl_slope"], image.header["scl_inter"] = np.nan, np.nan  # store values as they are
    qcode = int(header["qform_code"]) if header is not None and int(header["qform_code"]) > 0 else 1
    scode = int(header["sform_code"]) if header is not None and int(header["sform_code"]) > 0 else 1
    image.set_qform(affine, code=qcode)
    image.set_sform(affine, code=scode)
    return image


# ----- checks ----------------------------------------------------------------------------------
def same_grid(a: Volume, b: Volume, atol: float = AFFINE_ATOL) -> bool:
    """Whether ``a`` and ``b`` have one shape and affines equal within ``atol`` mm."""
    return a.shape == b.shape and np.allclose(a.affine, b.affine, atol=atol, rtol=0)


def check_same_grid(volumes: Mapping[str, Volume], atol: float = AFFINE_ATOL) -> None:
    """Raise :class:`DataError` unless all volumes share the first one's grid.

    ``volumes``: role -> volume, e.g. ``{"FLAIR": ..., "T1": ..., "label": ...}``. The
    message names both files, the shapes or the largest affine difference, and, when
    the orientations differ, says how to reorient.
    """
    items = list(volumes.items())
    if not items:
        return
    ref_role, ref = items[0]
    for role, vol in items[1:]:
        if vol.shape != ref.shape:
            raise DataError(
                f"{role} {vol.name} has shape {vol.shape} but {ref_role} {ref.name} has {ref.shape}: the "
                "modalities and the label must share one voxel grid. Resample them onto one grid "
                "(e.g. nilearn.image.resample_to_img, or register them again) and save them again."
            )
        if not np.allclose(vol.affine, ref.affine, atol=atol, rtol=0):
            diff = float(np.abs(vol.affine - ref.affine).max())
            hint = ""
            if orientation(vol.affine) != orientation(ref.affine):
                hint = (
                    f" Their orientations differ ({role} {orientation(vol.affine)}, {ref_role} "
                    f"{orientation(ref.affine)}): load both with canonical=True (nibabel."
                    "as_closest_canonical reorients to RAS) and compare again."
                )
            raise DataError(
                f"{role} {vol.name} and {ref_role} {ref.name} have the same shape {vol.shape} but different "
                f"affines (largest difference {diff:.4g} mm, tolerance {atol} mm): their voxels are not at "
                f"the same place in space.{hint} Otherwise resample one onto the other "
                "(resample_to_grid) or fix the registration."
            )


def check_orientation(volume: Volume, expected: str = "RAS") -> None:
    """Raise :class:`DataError` if ``volume`` is not stored in the ``expected`` orientation."""
    got = volume.orientation
    if got != expected:
        raise DataError(
            f"{volume.name} is stored in {got} orientation, expected {expected}. Reorient it with "
            "to_canonical(volume) (nibabel.as_closest_canonical: axis flips and swaps, no "
            "interpolation), or load it with canonical=True."
        )


def check_label_values(volume: Volume, allowed: Sequence[int]) -> np.ndarray:
    """The label map of ``volume`` as uint8; :class:`DataError` if a value is not in ``allowed``."""
    data = np.asarray(volume.data)
    allowed = sorted({int(v) for v in allowed})
    if data.size == 0:
        raise DataError(f"label {volume.name} is empty (shape {data.shape}).")
    if np.issubdtype(data.dtype, np.floating):
        if not np.isfinite(data).all():
            raise DataError(f"label {volume.name} contains NaN or infinite values; re-export it.")
        rounded = np.rint(data)
        if np.abs(data - rounded).max() > 1e-3:
            raise DataError(
                f"label {volume.name} has non-integer values (e.g. {data[data != rounded][:3].tolist()}): it "
                "looks like a probability or an interpolated mask. Threshold it (mask >= 0.5) or resample "
                "labels with nearest-neighbour interpolation."
            )
        data = rounded
    values = np.unique(data)
    bad = [v for v in values.tolist() if int(v) not in allowed]
    if bad:
        hint = ""
        if [int(v) for v in bad] == [255] and 1 not in values.tolist():
            hint = " It looks like a 0/255 mask (as image editors save them): store it as 0/1 (mask > 0)."
        raise DataError(
            f"label {volume.name} has values {sorted(int(v) for v in bad)[:10]} besides the allowed "
            f"{allowed}.{hint} Check the label file, or describe its values in the case layout "
            "(lesion_values=..., ignore_values=...)."
        )
    return data.astype(np.uint8)


# ----- orientation and resampling -----------------------------------------------------------------
def to_canonical(volume: Volume) -> Volume:
    """``volume`` reoriented to RAS with :func:`nibabel.as_closest_canonical` (exact, no interpolation)."""
    if volume.orientation == "RAS":
        return volume
    image = nib.as_closest_canonical(nib.Nifti1Image(volume.data, volume.affine))
    header = volume.header.copy() if volume.header is not None else None
    return Volume(np.asanyarray(image.dataobj), np.array(image.affine, dtype=float), header, volume.path)


def coarse_grid(
    shape: Sequence[int], affine: np.ndarray, spacing: float | Sequence[float]
) -> tuple[tuple[int, int, int], np.ndarray]:
    """The grid covering the same box as ``(shape, affine)`` with voxels of ``spacing`` mm.

    Axis directions are kept; the first new voxel's centre sits at the centre of the old
    voxels it covers, so a factor-2 grid averages 2x2x2 blocks exactly.
    """
    spacing = _three(spacing, "spacing")
    old = np.array(voxel_size(affine))
    factor = np.array(spacing) / old
    new_shape = tuple(int(np.ceil(s / f - 1e-6)) for s, f in zip(shape, factor))
    new_affine = np.array(affine, dtype=float).copy()
    new_affine[:3, :3] = new_affine[:3, :3] * factor[None, :]
    new_affine[:3, 3] = np.asarray(affine, dtype=float)[:3, :3] @ ((factor - 1) / 2) + affine[:3, 3]
    return new_shape, new_affine


def resample_to_grid(volume: Volume, shape: Sequence[int], affine: np.ndarray, kind: str = "image") -> Volume:
    """``volume`` interpolated onto the grid ``(shape, affine)`` through world coordinates.

    ``kind``: ``"image"`` (linear; averaged over each target voxel when it is coarser),
    ``"label"`` (integer map: each target voxel takes the value covering most of it,
    ties to the non-zero value) or ``"mask"`` (bool: covered fraction >= 0.5). Target
    voxels whose centre lies outside the source volume are 0; those inside take the nearest
    values at its edge. Returns float32 (image), uint8 (label) or bool (mask).
    """
    check_choice("kind", kind, KINDS)
    shape = tuple(int(s) for s in shape)
    affine = np.asarray(affine, dtype=float)
    if shape == volume.shape and np.allclose(affine, volume.affine, atol=AFFINE_ATOL, rtol=0):
        data = volume.data
        out = {
            "image": lambda: data.astype(np.float32),
            "label": lambda: data.astype(np.uint8),
            "mask": lambda: data.astype(bool),
        }[kind]()
        return Volume(out, affine, volume.header, volume.path)
    # target index -> source index
    matrix = np.linalg.solve(volume.affine, affine)
    lin, offset = matrix[:3, :3], matrix[:3, 3]
    # how many source voxels one target step spans along each source axis
    factors = np.abs(lin).max(axis=1)
    sigma = np.maximum((factors - 1.0) / 2.0, 0.0)

    block = _integer_block(lin, offset)

    def interpolate(values: np.ndarray) -> np.ndarray:
        values = values.astype(np.float32, copy=False)
        if block is not None:
            return _block_mean(values, block[0], block[1], shape)
        if sigma.max() > 0:
            values = ndimage.gaussian_filter(values, sigma=sigma, mode="constant")
        out = ndimage.affine_transform(
            values, lin, offset=offset, output_shape=shape, order=1, mode="nearest", prefilter=False
        )
        return out * _inside(lin, offset, shape, volume.shape)

    data = np.asarray(volume.data)
    if kind == "image":
        out = interpolate(data)
    elif kind == "mask":
        out = interpolate(data.astype(bool)) >= 0.5 - 1e-6
    else:
        values = [int(v) for v in np.unique(data) if v != 0]
        out = np.zeros(shape, dtype=np.uint8)
        if values:
            fractions = np.stack([interpolate(data == v) for v in reversed(values)])
            background = 1.0 - fractions.sum(axis=0)
            best = fractions.max(axis=0)
            winner = np.array(list(reversed(values)), dtype=np.uint8)[fractions.argmax(axis=0)]
            out = np.where(best >= background - 1e-6, winner, 0).astype(np.uint8)
    return Volume(out, affine, volume.header, volume.path)


def _inside(lin: np.ndarray, offset: np.ndarray, shape: tuple[int, ...], source_shape: tuple[int, ...]) -> np.ndarray:
    """Target voxels whose centre falls inside the source volume's extent (half a voxel beyond its edge centres)."""
    idx = [np.arange(n, dtype=np.float32).reshape([-1 if a == b else 1 for b in range(3)]) for a, n in enumerate(shape)]
    inside = np.ones(shape, dtype=bool)
    for axis in range(3):
        coord = offset[axis] + sum(lin[axis, j] * idx[j] for j in range(3))
        inside &= (coord >= -0.5 - 1e-6) & (coord <= source_shape[axis] - 0.5 + 1e-6)
    return inside


def _integer_block(lin: np.ndarray, offset: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``(block sizes, start)`` if target voxel ``j`` is exactly the mean of source voxels
    ``start + j * f ... start + j * f + f - 1`` on each axis (integer factors, same axis directions)."""
    diag = np.diag(lin)
    if not np.allclose(lin, np.diag(diag), atol=1e-6) or (diag < 1 - 1e-6).any():
        return None
    factors = np.rint(diag)
    start = offset - (factors - 1) / 2
    if not np.allclose(diag, factors, atol=1e-6) or not np.allclose(start, np.rint(start), atol=1e-6):
        return None
    return tuple(int(f) for f in factors), tuple(int(s) for s in np.rint(start))


def _block_mean(
    values: np.ndarray, block: tuple[int, ...], start: tuple[int, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """Mean of each ``block`` of ``values`` from ``start`` on (zero outside ``values``), shape ``shape``."""
    padded = np.zeros(tuple(n * b for n, b in zip(shape, block)), dtype=np.float32)
    src, dst = [], []
    for n, b, s0, size in zip(shape, block, start, values.shape):
        lo, hi = max(s0, 0), min(s0 + n * b, size)
        if hi <= lo:
            return np.zeros(shape, dtype=np.float32)
        src.append(slice(lo, hi))
        dst.append(slice(lo - s0, hi - s0))
    padded[tuple(dst)] = values[tuple(src)]
    (x, y, z), (bx, by, bz) = shape, block
    return padded.reshape(x, bx, y, by, z, bz).mean(axis=(1, 3, 5), dtype=np.float32)


def resample_to_voxel_size(volume: Volume, spacing: float | Sequence[float], kind: str = "image") -> Volume:
    """``volume`` on a grid of ``spacing`` mm voxels over the same box (see :func:`coarse_grid`)."""
    shape, affine = coarse_grid(volume.shape, volume.affine, spacing)
    return resample_to_grid(volume, shape, affine, kind)


# ----- intensities ---------------------------------------------------------------------------------
def brain_mask_from(images: Sequence[np.ndarray] | np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Voxels where any image has ``|value| > threshold``: the brain of skull-stripped images.

    ``images``: one ``(X, Y, Z)`` array or a sequence of them. Returns bool ``(X, Y, Z)``.
    """
    arrays = [np.asarray(images)] if isinstance(images, np.ndarray) else [np.asarray(a) for a in images]
    if not arrays:
        raise ValueError("brain_mask_from needs at least one image.")
    mask = np.zeros(arrays[0].shape, dtype=bool)
    for a in arrays:
        if a.shape != mask.shape:
            raise ValueError(f"images of shapes {mask.shape} and {a.shape} cannot share one brain mask.")
        mask |= np.abs(a) > threshold
    return mask


def normalise_intensity(
    data: np.ndarray,
    mask: np.ndarray,
    method: str = "zscore",
    percentiles: tuple[float, float] = (0.5, 99.5),
    name: str | None = None,
) -> np.ndarray:
    """Intensities rescaled from statistics inside ``mask`` only; 0 outside the mask.

    First clips to the ``percentiles`` of the masked values (MRI has no absolute scale
    and a few very bright voxels), then ``"zscore"``: mean 0, standard deviation 1 in
    the mask; ``"minmax"``: the clipped range mapped to [0, 1]. Returns float32.
    ``name``: what the image is (e.g. ``"FLAIR of patient07 (<file>)"``), named in errors.
    """
    check_choice("method", method, NORMALISATIONS)
    data = np.asarray(data, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    what = name or "the image"
    if mask.shape != data.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {data.shape} ({what}).")
    if not mask.any():
        raise DataError(
            f"the brain mask is empty: nothing to normalise in {what}. Check that the mask belongs "
            "to this image (and is not inverted)."
        )
    values = data[mask]
    _check_finite(values, what)
    lo, hi = np.percentile(values, percentiles)
    clipped = np.clip(values, lo, hi)
    if method == "zscore":
        std = float(clipped.std())
        if std == 0:
            raise DataError(
                f"{what} is constant ({float(values[0]):g}) inside the brain mask; z-scoring would divide "
                "by zero. Check that the right file was loaded (an all-zero modality is a failed export)."
            )
        scaled = (clipped - clipped.mean()) / std
    else:
        scaled = (clipped - lo) / (hi - lo) if hi > lo else np.zeros_like(clipped)
    out = np.zeros(data.shape, dtype=np.float32)
    out[mask] = scaled
    return out


def _three(value: float | Sequence[float], what: str) -> tuple[float, float, float]:
    values = (float(value),) * 3 if np.isscalar(value) else tuple(float(v) for v in value)
    if len(values) != 3 or min(values) <= 0:
        raise ValueError(f"{what} must be a positive number or three positive numbers (mm), got {value!r}.")
    return values
