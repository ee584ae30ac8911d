"""The BCCD blood-cell detection data set (Pascal VOC layout), read from the data root.

364 light-microscope images of stained blood smears, 640x480 RGB, with boxes around red
blood cells (``RBC``), white blood cells (``WBC``) and ``Platelets``. MIT licence; get it with
``git clone https://github.com/Shenggan/BCCD_Dataset`` and point ``$COURSE_DATA_DIR`` at the clone
(the folder that holds ``BCCD/``)::

    <data root>/BCCD/JPEGImages/BloodImage_00000.jpg
    <data root>/BCCD/Annotations/BloodImage_00000.xml        (Pascal VOC boxes)
    <data root>/BCCD/ImageSets/Main/{train,val,trainval,test}.txt   (one image id per line)

Known label noise: two red-cell boxes one pixel wide and high (``BloodImage_00338.xml`` and
``BloodImage_00343.xml``): the reader drops them with a warning. Not every cell is boxed, so
box counts are annotation counts, not blood counts.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, DataWarning
from ..paths import DATA_ENV, data_root
from ..validate import check_choice
from .boxes import MIN_BOX_SIZE, AnnotatedImage, class_counts, read_voc

BCCD_URL = "https://github.com/Shenggan/BCCD_Dataset"
BCCD_DIRNAME = "BCCD"
BCCD_CLASSES = ("RBC", "WBC", "Platelets")
BCCD_SPLITS = ("train", "val", "trainval", "test")
BCCD_SIZE = (480, 640)  # (H, W) of every image
_SHOWN = 5  # missing files named in a message


def bccd_dir(root: str | Path | None = None) -> Path | None:
    """The ``BCCD/`` folder under ``root`` (default: the data root), or None when there is none.

    ``root`` may also be the ``BCCD`` folder itself. A ``BCCD`` folder without its annotations,
    images or split lists raises :class:`DataError` naming the missing part.
    """
    base = Path(root).expanduser() if root is not None else data_root()
    folder = base if base.name == BCCD_DIRNAME and not (base / BCCD_DIRNAME).is_dir() else base / BCCD_DIRNAME
    if not folder.is_dir():
        return None
    missing = []
    for part, pattern in (("Annotations", "*.xml"), ("JPEGImages", "*.jpg")):
        if not (folder / part).is_dir():
            missing.append(f"{folder / part}/ (folder missing)")
        elif not any((folder / part).glob(pattern)):
            missing.append(f"{folder / part}/ (holds no {pattern} file)")
    missing += [f"{folder / 'ImageSets' / 'Main' / s}.txt" for s in BCCD_SPLITS if not _split_file(folder, s).is_file()]
    if missing:
        raise DataError(
            f"The BCCD folder {folder} is incomplete: missing {'; '.join(missing)}. Get the complete data set with "
            f"`git clone {BCCD_URL}` and set {DATA_ENV} to the clone (the folder that holds BCCD/), or move "
            f"{folder} away to use the synthetic smears of course_utils.data.synthetic_smear."
        )
    return folder


def missing_bccd_message(root: str | Path | None = None) -> str:
    """What to tell a learner who has no BCCD copy: where to get it and where to put it."""
    base = Path(root).expanduser() if root is not None else data_root(must_exist=False)
    return (
        f"The BCCD data set was not found under {base} (expected {base / BCCD_DIRNAME / 'Annotations'}). Get it "
        f"(MIT licence) with `git clone {BCCD_URL}` and set {DATA_ENV} to the clone, the folder that holds BCCD/. "
        "Without it, use the synthetic smears of course_utils.data.synthetic_smear."
    )


def bccd_split(name: str, root: str | Path | None = None, *, on_missing: str = "error") -> list[str]:
    """The image ids (``"BloodImage_00001"``...) of one of the data set's own splits, in list order.

    ``name``: ``"train"``, ``"val"``, ``"trainval"`` or ``"test"``. An id whose image or annotation
    file is missing raises :class:`DataError` naming them (``on_missing="error"``), or is left out
    with a :class:`DataWarning` (``on_missing="warn"``). A repeated id is kept once, with a warning.
    """
    check_choice("split", name, BCCD_SPLITS)
    check_choice("on_missing", on_missing, ("error", "warn"))
    folder = _require_bccd(root)
    list_file = _split_file(folder, name)
    ids: list[str] = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            ids.append(line.split()[0])
    if len(set(ids)) != len(ids):
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        warnings.warn(
            f"{list_file} lists {repeated[:_SHOWN]}{'...' if len(repeated) > _SHOWN else ''} more than once; each is "
            "used once.",
            DataWarning,
            stacklevel=2,
        )
        ids = list(dict.fromkeys(ids))
    absent = [i for i in ids if not (_xml(folder, i).is_file() and _jpg(folder, i).is_file())]
    if absent:
        files = [str(p) for i in absent[:_SHOWN] for p in (_xml(folder, i), _jpg(folder, i)) if not p.is_file()]
        more = f" and {len(absent) - _SHOWN} more" if len(absent) > _SHOWN else ""
        message = (
            f"{list_file} lists {len(absent)} of its {len(ids)} images without their files: missing "
            f"{', '.join(files)}{more}."
        )
        if on_missing == "error":
            raise DataError(
                f"{message} Restore them from {BCCD_URL}, or pass on_missing='warn' to leave those images out."
            )
        warnings.warn(f"{message} They are left out of split {name!r}.", DataWarning, stacklevel=2)
        left_out = set(absent)
        ids = [i for i in ids if i not in left_out]
    if not ids:
        raise DataError(f"{list_file} lists no usable image; restore the data set from {BCCD_URL}.")
    return ids


def load_bccd(
    split: str, root: str | Path | None = None, *, min_size: float = MIN_BOX_SIZE, on_missing: str = "error"
) -> list[AnnotatedImage]:
    """The annotated images of one split (boxes read and checked; pixels read later by :func:`~.boxes.load_image`).

    Boxes are checked as in :func:`~course_utils.data.boxes.read_voc`: the two one-pixel boxes of the
    data set are dropped with a :class:`DataWarning` each. ``on_missing`` as in :func:`bccd_split`.
    """
    ids = bccd_split(split, root, on_missing=on_missing)
    folder = _require_bccd(root)
    images = []
    for image_id in ids:
        image = read_voc(_xml(folder, image_id), BCCD_CLASSES, image_dir=folder / "JPEGImages", min_size=min_size)
        if image.path != _jpg(folder, image_id):
            warnings.warn(
                f"{_xml(folder, image_id)} names image {image.path.name} but the split lists {image_id}; using "
                f"{_jpg(folder, image_id)} (the Pascal VOC pairing by id). Fix <filename> to silence this note.",
                DataWarning,
                stacklevel=2,
            )
            image = replace(image, path=_jpg(folder, image_id))
        images.append(image)
    return images


def blood_counts(images: Sequence[AnnotatedImage]) -> dict[str, np.ndarray]:
    """Boxes per image of each class: ``{"RBC": (N,) int64, "WBC": ..., "Platelets": ...}`` in image order."""
    counts = class_counts(images)
    if not len(images):
        return {name: np.zeros(0, dtype=np.int64) for name in BCCD_CLASSES}
    if images[0].classes != BCCD_CLASSES:
        raise ValueError(f"blood_counts needs images with classes {BCCD_CLASSES}, got {images[0].classes}.")
    return {name: counts[:, i] for i, name in enumerate(BCCD_CLASSES)}


def _require_bccd(root: str | Path | None) -> Path:
    folder = bccd_dir(root)
    if folder is None:
        raise DataError(missing_bccd_message(root))
    return folder


def _split_file(folder: Path, name: str) -> Path:
    return folder / "ImageSets" / "Main" / f"{name}.txt"


def _xml(folder: Path, image_id: str) -> Path:
    return folder / "Annotations" / f"{image_id}.xml"


def _jpg(folder: Path, image_id: str) -> Path:
    return folder / "JPEGImages" / f"{image_id}.jpg"
