"""The DRIVE retinal vessel data set (Staal et al., IEEE TMI 2004), read from the data root.

DRIVE's terms forbid redistribution, so the course never ships it: each learner
registers at https://drive.grand-challenge.org/ and unpacks the archive under the
data root (``$COURSE_DATA_DIR``, else ``<repo>/data``)::

    <data root>/DRIVE/training/images/21_training.tif      (RGB, 565x584)
    <data root>/DRIVE/training/1st_manual/21_manual1.gif   (vessel labels)
    <data root>/DRIVE/training/mask/21_training_mask.gif   (field of view)
    <data root>/DRIVE/test/images/01_test.tif               (``testing/`` works too)
    <data root>/DRIVE/test/1st_manual/01_manual1.gif
    <data root>/DRIVE/test/2nd_manual/01_manual2.gif        (a second observer)
    <data root>/DRIVE/test/mask/01_test_mask.gif

Standard protocol: train on ``training``, report on ``test`` against
``1st_manual``, counting only pixels inside the field-of-view (FOV) mask.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, DataWarning
from ..paths import DATA_ENV, data_root
from ..validate import check_choice
from .images import read_rgb_uint8

DRIVE_URL = "https://drive.grand-challenge.org/"
SPLITS = ("training", "test")
_SPLIT_FOLDERS = {"training": ("training",), "test": ("test", "testing")}
_IMAGE_SUFFIXES = (".tif", ".tiff")
_MASK_SUFFIXES = (".gif", ".png", ".tif", ".tiff")
_IMAGE_NAME = re.compile(r"^\d+_(training|test)$", re.IGNORECASE)  # 21_training, 01_test
# sanity ranges (DRIVE: the FOV covers 68-69 % of each image; vessels 9-17 % of the FOV)
FOV_FRACTION_RANGE = (0.5, 0.8)
MIN_VESSEL_FRACTION = 0.01


@dataclass
class FundusCase:
    """One fundus photograph with its labels.

    ``image``: ``(H, W, 3)`` float32 RGB in [0, 1]; ``vessels``: ``(H, W)`` bool
    vessel label; ``fov``: ``(H, W)`` bool field-of-view mask (the camera's circle).
    """

    name: str
    image: np.ndarray
    vessels: np.ndarray
    fov: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return tuple(self.image.shape[:2])

    def vessel_fraction(self) -> float:
        """Fraction of FOV pixels that are vessel (about 0.12-0.13 on DRIVE)."""
        return float(self.vessels[self.fov].mean())


def find_drive_root(root: str | Path | None = None) -> Path | None:
    """The ``DRIVE/`` folder under ``root`` (default: the data root), or None when absent.

    ``root`` may also be the ``DRIVE`` folder itself. A folder spelt otherwise (``drive/``,
    ``Drive/``) is used too, with a :class:`~course_utils.errors.DataWarning` asking to rename it.
    """
    base = Path(root).expanduser() if root is not None else data_root()
    if (base / "DRIVE").is_dir():
        return base / "DRIVE"
    if base.name == "DRIVE" and base.is_dir():
        return base
    if base.name.lower() == "drive" and any((base / s).is_dir() for s in ("training", "test", "testing")):
        return base
    other = _other_case(base, "DRIVE")
    if other is not None:
        warnings.warn(
            f"Using {other} as the DRIVE data set: the course looks for a folder named DRIVE/ (upper case), "
            f"found {other.name}/. Rename it to {base / 'DRIVE'} to silence this note (on Linux the names differ).",
            DataWarning,
            stacklevel=2,
        )
    return other


def _other_case(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` named ``name`` up to upper/lower case (not ``name`` itself), else None."""
    try:
        folders = sorted(p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower())
    except OSError:
        return None
    return next((p for p in folders if p.name != name), None)


def _sub_folder(parent: Path, name: str) -> Path:
    """``parent / name``, or its differently capitalised twin (``Training``, ``Images``) with a note."""
    exact = parent / name
    if exact.is_dir():
        return exact
    other = _other_case(parent, name)
    if other is None:
        return exact
    warnings.warn(
        f"Using {other} for DRIVE's {name}/ folder (the official archive spells it {name}); rename it to "
        f"{exact} to silence this note.",
        DataWarning,
        stacklevel=3,
    )
    return other


def missing_drive_message(root: str | Path | None = None) -> str:
    """What to tell a learner who has no DRIVE copy: where to get it and where to put it."""
    base = Path(root).expanduser() if root is not None else data_root(must_exist=False)
    return (
        f"The DRIVE data set was not found under {base}. DRIVE may not be redistributed, so "
        f"register for the official download at {DRIVE_URL} and unpack it so that "
        f"{base / 'DRIVE' / 'training' / 'images'} and {base / 'DRIVE' / 'test' / 'images'} exist "
        f"(i.e. <data root>/DRIVE/training/... and <data root>/DRIVE/test/...). The environment "
        f"variable {DATA_ENV} selects the data root. Without DRIVE, use the synthetic fundus images "
        "from course_utils.data.synthetic_fundus."
    )


def load_drive(split: str, root: str | Path | None = None, *, observer: int = 1) -> list[FundusCase]:
    """All cases of one DRIVE split, sorted by name.

    ``split``: ``"training"`` or ``"test"``; ``observer``: 1 (``1st_manual``, the
    reference) or 2 (``2nd_manual``, test split only). ``root`` is the data root
    (default :func:`course_utils.paths.data_root`) or the ``DRIVE`` folder itself.
    Raises :class:`DataError` naming the file or folder when something is missing
    or malformed.
    """
    check_choice("split", split, SPLITS)
    if observer not in (1, 2):
        raise ValueError(f"observer must be 1 or 2, got {observer!r}.")
    if observer == 2 and split != "test":
        raise ValueError(
            "DRIVE has a second observer (2nd_manual) for the test split only; use observer=1 for 'training'."
        )
    drive = find_drive_root(root)
    if drive is None:
        raise DataError(missing_drive_message(root))
    split_dir = _split_folder(drive, split)
    image_dir = _sub_folder(split_dir, "images")
    found = sorted(image_dir.iterdir()) if image_dir.is_dir() else []
    # macOS leaves "._name" AppleDouble files and ".DS_Store" in archives and copies: hidden files never count
    found = [p for p in found if not p.name.startswith(".") and p.suffix.lower() in _IMAGE_SUFFIXES]
    images = [p for p in found if _IMAGE_NAME.match(p.stem)]
    for stray in sorted(set(found) - set(images)):
        warnings.warn(
            f"Ignoring {stray}: it is not named like a DRIVE image (NN_training.tif or NN_test.tif), e.g. a copy "
            "made by hand. Move it out of the DRIVE folder to silence this note.",
            DataWarning,
            stacklevel=2,
        )
    if not images:
        raise DataError(
            f"No DRIVE images (*.tif) found in {image_dir}. Unpack the official archive "
            f"so that it holds files like 21_training.tif or 01_test.tif ({DRIVE_URL})."
        )
    return [_load_case(path, split_dir, observer) for path in images]


def split_train_val(
    cases: Sequence[FundusCase], n_val: int = 4, seed: int = 0
) -> tuple[list[FundusCase], list[FundusCase]]:
    """Split ``cases`` into ``(train, val)`` with ``n_val`` validation cases, the same for the same seed.

    Both lists keep the input order.
    """
    n = len(cases)
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be between 1 and {n - 1} for {n} cases, got {n_val}.")
    val_idx = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    train = [c for i, c in enumerate(cases) if i not in val_idx]
    val = [c for i, c in enumerate(cases) if i in val_idx]
    return train, val


def _split_folder(drive: Path, split: str) -> Path:
    for name in _SPLIT_FOLDERS[split]:
        if (drive / name).is_dir():
            return drive / name
    for name in _SPLIT_FOLDERS[split]:
        folder = _sub_folder(drive, name)
        if folder.is_dir():
            return folder
    names = " or ".join(f"{drive / name}" for name in _SPLIT_FOLDERS[split])
    raise DataError(
        f"DRIVE split folder {names} is missing. Unpack the official archive "
        f"({DRIVE_URL}) so that {drive}/{split}/images, 1st_manual and mask exist."
    )


def _load_case(image_path: Path, split_dir: Path, observer: int) -> FundusCase:
    stem = image_path.stem  # "21_training"
    number = stem.split("_")[0]  # "21"
    label_path = _find(
        _sub_folder(split_dir, f"{observer}{'st' if observer == 1 else 'nd'}_manual"),
        f"{number}_manual{observer}",
        image_path,
        "vessel label",
    )
    fov_path = _find(_sub_folder(split_dir, "mask"), f"{stem}_mask", image_path, "field-of-view mask")
    image = _read_rgb(image_path)
    vessels = _read_binary(label_path)
    fov = _read_binary(fov_path)
    for what, path, mask in (("vessel label", label_path, vessels), ("FOV mask", fov_path, fov)):
        if mask.shape != image.shape[:2]:
            raise DataError(
                f"{what} {path} is {mask.shape[1]}x{mask.shape[0]} pixels but image "
                f"{image_path} is {image.shape[1]}x{image.shape[0]}; they must match. "
                "Re-extract both from the official archive."
            )
    if not fov.any():
        raise DataError(f"FOV mask {fov_path} is empty (all zero); re-extract it from the official archive.")
    _check_fractions(fov, vessels, fov_path, label_path)
    return FundusCase(name=stem, image=image, vessels=vessels, fov=fov)


def _check_fractions(fov: np.ndarray, vessels: np.ndarray, fov_path: Path, label_path: Path) -> None:
    """Warn when the FOV mask or the vessel label is legal but implausible for a fundus photograph."""
    lo, hi = FOV_FRACTION_RANGE
    fov_fraction = float(fov.mean())
    if not lo <= fov_fraction <= hi:
        h, w = fov.shape
        inverted = bool(fov[0, 0] and fov[-1, -1] and not fov[h // 2, w // 2])  # corners in, centre out
        hint = " It looks inverted (the corners marked as inside)." if inverted else ""
        warnings.warn(
            f"FOV mask {fov_path} covers {fov_fraction:.0%} of the image; a fundus camera's circle covers "
            f"{lo:.0%}-{hi:.0%} (DRIVE: 68-69 %).{hint} Metrics count only pixels inside the FOV, so check that it "
            "is the unmodified mask of this image (re-extract it from the official archive).",
            DataWarning,
            stacklevel=4,
        )
    vessel_fraction = float(vessels[fov].mean())
    if vessel_fraction < MIN_VESSEL_FRACTION:
        warnings.warn(
            f"vessel label {label_path} marks {vessel_fraction:.2%} of the field of view as vessel (DRIVE: 9-17 %"
            f"; under {MIN_VESSEL_FRACTION:.0%} means an empty or wrong label). Training on it teaches 'no "
            "vessel anywhere': re-extract it from the official archive.",
            DataWarning,
            stacklevel=4,
        )


def _find(folder: Path, stem: str, image_path: Path, what: str) -> Path:
    if folder.is_dir():
        for suffix in _MASK_SUFFIXES:
            for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                if candidate.is_file():
                    return candidate
    raise DataError(
        f"Image {image_path} has no {what}: expected {folder / (stem + '.gif')}. "
        "Unpack the complete official archive (images, 1st_manual, mask) "
        f"from {DRIVE_URL}."
    )


def _read_rgb(path: Path) -> np.ndarray:
    rgb = read_rgb_uint8(path, advice="re-extract it from the official archive.")
    return rgb.astype(np.float32) / 255.0


def _read_binary(path: Path) -> np.ndarray:
    """A single-channel {0, 255} or {0, 1} mask as bool.

    Palette GIFs are read through their palette; their colours may be a few grey
    levels off black and white (the official ``2nd_manual`` files use (4, 2, 4) and
    (252, 254, 252)), so palette greys within 8 levels of 0 or 255 count as 0 or 255.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            palette = im.mode in ("P", "PA")
            values = np.asarray(im if im.mode in ("L", "1", "I", "I;16") else im.convert("L"))
    except OSError as err:
        raise DataError(f"Cannot read mask {path} ({err}); re-extract it from the official archive.") from err
    present = set(np.unique(values).tolist())
    if palette and not present <= {0, 1}:
        snapped = np.where(values <= 8, 0, np.where(values >= 247, 255, values))
        if set(np.unique(snapped).tolist()) <= {0, 255}:
            values, present = snapped, {0, 255}
    if present <= {0, 1}:
        return values == 1
    if present <= {0, 255}:
        return values == 255
    shown = sorted(present)[:8]
    raise DataError(
        f"Mask {path} is not binary: it holds values {shown}{'...' if len(present) > 8 else ''} "
        "but must hold only {0, 255} or {0, 1}. Use the unmodified GIF from the official "
        "archive (a resized or JPEG-saved mask gets grey edges)."
    )
