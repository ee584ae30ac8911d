"""Bounding boxes of objects in images: one annotated image, Pascal VOC reading, COCO conversion.

Boxes are ``(x_min, y_min, x_max, y_max)`` in pixels, measured on pixel *edges* from the
image's top-left corner: a box over pixel columns 0..9 has ``x_min = 0`` and ``x_max = 10``,
so its width is ``x_max - x_min``. The two file conventions differ:

* Pascal VOC XML counts pixels from 1 with both corners inclusive (columns 1..10 for the box
  above): :func:`read_voc` converts, ``x_min = xmin - 1``, ``x_max = xmax``.
* COCO stores ``[x, y, width, height]`` on the same pixel edges as here, ``area = width * height``
  for a box annotation, and numbers its categories from 1.

Readers never change data silently: a box that reaches outside the image is clipped to it and a
box too small to be an object is dropped, each with a :class:`~course_utils.errors.DataWarning`
that names the file, the object and its class; a file that cannot be understood raises
:class:`~course_utils.errors.DataError` naming the file.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError, DataWarning
from .images import read_rgb_uint8

MIN_BOX_SIZE = 2.0  # pixels: a narrower or shorter box is a stray click, not an object


@dataclass
class AnnotatedImage:
    """One image file and the boxes of its objects.

    ``path``: the image file (read it with :func:`load_image`); ``width``, ``height``: its size
    in pixels; ``boxes``: ``(N, 4)`` float32 ``x_min, y_min, x_max, y_max`` in pixels (edges,
    see the module doc), inside the image; ``labels``: ``(N,)`` int64 indices into ``classes``,
    the class names.
    """

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.width, self.height = int(self.width), int(self.height)
        self.classes = tuple(self.classes)
        self.boxes = np.asarray(self.boxes, dtype=np.float32)
        if self.boxes.size == 0:
            self.boxes = self.boxes.reshape(0, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        where = f"annotated image {self.path}"
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"{where}: width and height must be positive, got {self.width}x{self.height}.")
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"{where}: boxes must have shape (N, 4), got {self.boxes.shape}.")
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{where}: {len(self.boxes)} boxes but {len(self.labels)} labels; give one label per box.")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"{where}: labels must be indices into classes {self.classes} (0..{len(self.classes) - 1}), "
                f"got values {sorted(set(self.labels.tolist()))}."
            )
        if not np.isfinite(self.boxes).all():
            raise ValueError(f"{where}: boxes hold NaN or infinite values.")
        x0, y0, x1, y1 = self.boxes.T
        inside = (x0 >= 0) & (y0 >= 0) & (x1 <= self.width) & (y1 <= self.height) & (x0 <= x1) & (y0 <= y1)
        if not inside.all():
            bad = int(np.flatnonzero(~inside)[0])
            raise ValueError(
                f"{where}: box {bad} {self.boxes[bad].tolist()} is not a box (x_min <= x_max, y_min <= y_max) "
                f"inside the {self.width}x{self.height} image; clip it first (read_voc and from_coco do)."
            )

    @property
    def names(self) -> tuple[str, ...]:
        """The class name of each box, ``(N,)``."""
        return tuple(self.classes[i] for i in self.labels.tolist())

    def counts(self) -> dict[str, int]:
        """Number of boxes per class, every class included (0 when absent)."""
        per_class = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, per_class)}


def class_counts(images: Sequence[AnnotatedImage]) -> np.ndarray:
    """Boxes per image and class: ``(n_images, n_classes)`` int64, columns in the images' ``classes`` order."""
    if not images:
        return np.zeros((0, 0), dtype=np.int64)
    classes = images[0].classes
    for image in images:
        if image.classes != classes:
            raise ValueError(
                f"{image.path} has classes {image.classes} but {images[0].path} has {classes}; "
                "count images of one data set (the same class list) together."
            )
    return np.stack([np.bincount(im.labels, minlength=len(classes)) for im in images]).astype(np.int64)


def load_image(image: AnnotatedImage | str | Path) -> np.ndarray:
    """The pixels of an image file as ``(H, W, 3)`` uint8 RGB.

    Given an :class:`AnnotatedImage`, checks that the file has the annotated size.
    """
    path = Path(image.path if isinstance(image, AnnotatedImage) else image)
    rgb = read_rgb_uint8(path, advice="download it again.", missing_advice="its annotation names it. Restore the file.")
    if isinstance(image, AnnotatedImage) and rgb.shape[:2] != (image.height, image.width):
        raise DataError(
            f"Image {path} is {rgb.shape[1]}x{rgb.shape[0]} pixels but its annotation says "
            f"{image.width}x{image.height}; the boxes would land in the wrong place. Use the unmodified image "
            "(not a resized copy) or fix the annotation's size."
        )
    return rgb


# ----- one box --------------------------------------------------------------------------------------
def voc_to_coco_box(box: Sequence[float], one_based: bool = False) -> tuple[float, float, float, float]:
    """Corners ``(x_min, y_min, x_max, y_max)`` to COCO's ``(x, y, width, height)``, in pixels.

    ``one_based=False``: the box is on pixel edges (as in :class:`AnnotatedImage`), so
    ``width = x_max - x_min``. ``one_based=True``: the numbers are as written in a VOC file
    (pixels counted from 1, corners inclusive), so ``x = xmin - 1`` and ``width = xmax - xmin + 1``.
    """
    x0, y0, x1, y1 = _four_numbers(box, "box")
    if one_based:
        x0, y0 = x0 - 1.0, y0 - 1.0
    return (x0, y0, x1 - x0, y1 - y0)


def coco_to_voc_box(bbox: Sequence[float], one_based: bool = False) -> tuple[float, float, float, float]:
    """COCO's ``(x, y, width, height)`` to corners ``(x_min, y_min, x_max, y_max)``, in pixels.

    The inverse of :func:`voc_to_coco_box` (same ``one_based`` meaning).
    """
    x, y, w, h = _four_numbers(bbox, "bbox")
    return (x + 1.0 if one_based else x, y + 1.0 if one_based else y, x + w, y + h)


def _four_numbers(values: Sequence[float], what: str) -> tuple[float, float, float, float]:
    numbers = tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{what} must be 4 finite numbers, got {values!r}.")
    return numbers  # type: ignore[return-value]


# ----- Pascal VOC -------------------------------------------------------------------------------------
def read_voc(
    xml_path: str | Path,
    classes: Sequence[str],
    *,
    image_dir: str | Path | None = None,
    min_size: float = MIN_BOX_SIZE,
    one_based: bool = True,
) -> AnnotatedImage:
    """The boxes of one Pascal VOC annotation file, checked.

    ``classes``: the class names in label order (a name not in it raises :class:`DataError`);
    ``image_dir``: where the image named in ``<filename>`` lies (default: ``../JPEGImages`` beside
    the ``Annotations`` folder, the VOC layout); ``min_size``: boxes narrower or shorter than
    this many pixels after clipping are dropped; ``one_based``: the file counts pixels from 1
    with inclusive corners (VOC's convention); ``False`` takes its numbers as pixel edges.
    ``pose``, ``truncated`` and ``difficult`` are not read.
    """
    xml_path = Path(xml_path)
    classes = _check_classes(classes)
    try:
        root = ET.parse(xml_path).getroot()
    except FileNotFoundError as err:
        raise DataError(f"Annotation file {xml_path} does not exist; restore it from the data set.") from err
    except (OSError, ET.ParseError) as err:
        raise DataError(
            f"Cannot read annotation {xml_path} as XML ({err}); download the data set again or fix the file."
        ) from err
    width = _size(root, "width", xml_path)
    height = _size(root, "height", xml_path)
    offset = 1.0 if one_based else 0.0
    boxes, labels, written = [], [], []
    for index, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        if name not in classes:
            raise DataError(
                f"{xml_path}: object {index} has class {name!r}, which is not one of {list(classes)}. Fix the "
                "<name> in the file, or pass classes that include it."
            )
        values = [_coordinate(obj, tag, xml_path, index, name) for tag in ("xmin", "ymin", "xmax", "ymax")]
        boxes.append([values[0] - offset, values[1] - offset, values[2], values[3]])
        labels.append(classes.index(name))
        written.append("xmin={:g} ymin={:g} xmax={:g} ymax={:g}".format(*values))
    kept_boxes, kept = _clip_and_drop(
        np.array(boxes, dtype=np.float64).reshape(-1, 4),
        width,
        height,
        min_size,
        [classes[i] for i in labels],
        written,
        f"{xml_path}",
    )
    filename = (root.findtext("filename") or "").strip() or f"{xml_path.stem}.jpg"
    folder = Path(image_dir) if image_dir is not None else xml_path.parent.parent / "JPEGImages"
    return AnnotatedImage(
        path=folder / filename,
        width=width,
        height=height,
        boxes=kept_boxes,
        labels=np.array(labels, dtype=np.int64)[kept],
        classes=classes,
    )


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    if not classes or len(set(classes)) != len(classes) or not all(isinstance(c, str) and c for c in classes):
        raise ValueError(f"classes must be distinct, non-empty names, got {classes!r}.")
    return classes


def _size(root: ET.Element, tag: str, xml_path: Path) -> int:
    text = root.findtext(f"size/{tag}")
    if text is None or not text.strip():
        raise DataError(
            f"{xml_path} has no <size><{tag}>; add the image's {tag} in pixels (the reader needs it to "
            "check the boxes)."
        )
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value != int(value) or value <= 0:
        raise DataError(
            f"{xml_path}: <size><{tag}> is {text.strip()!r}, not a positive whole number of pixels; write the "
            f"image's {tag} there (open the image to read it)."
        )
    return int(value)


def _coordinate(obj: ET.Element, tag: str, xml_path: Path, index: int, name: str) -> float:
    text = obj.findtext(f"bndbox/{tag}")
    try:
        value = float(text) if text is not None else float("nan")
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        shown = "missing" if text is None else f"{text.strip()!r}"
        raise DataError(
            f"{xml_path}: object {index} ({name}) has <bndbox><{tag}> {shown}, not a number of pixels; fix the box "
            "in the file or delete the object."
        )
    return value


def _clip_and_drop(
    boxes: np.ndarray,
    width: int,
    height: int,
    min_size: float,
    names: Sequence[str],
    written: Sequence[str],
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes clipped to the image, bool mask of the boxes kept)``: each clip and drop gets a warning."""
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    sizes = np.stack([clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]], axis=1)
    keep = (sizes > 0).all(axis=1) & (sizes >= min_size).all(axis=1)
    for i in range(len(boxes)):
        what = f"{source}: object {i} ({names[i]}) with box {written[i]}"
        corners = "({:g}, {:g}, {:g}, {:g})".format(*boxes[i])
        if not keep[i]:
            reason = "zero or negative area" if not (sizes[i] > 0).all() else f"under min_size={min_size:g} pixels"
            warnings.warn(
                f"{what}, i.e. (x_min, y_min, x_max, y_max) = {corners} in the {width}x{height} image, is "
                f"{sizes[i, 0]:g}x{sizes[i, 1]:g} pixels{' after clipping' if (clipped[i] != boxes[i]).any() else ''}"
                f" ({reason}): dropped. A box this small is a slip of the annotation tool, not an object; fix or "
                "delete it in the file to silence this note.",
                DataWarning,
                stacklevel=3,
            )
        elif (clipped[i] != boxes[i]).any():
            warnings.warn(
                f"{what}, i.e. (x_min, y_min, x_max, y_max) = {corners}, reaches outside the {width}x{height} "
                "image: clipped to ({:g}, {:g}, {:g}, {:g}). Fix the box in the file to silence this note.".format(
                    *clipped[i]
                ),
                DataWarning,
                stacklevel=3,
            )
    return clipped[keep].astype(np.float32), keep


# ----- COCO -----------------------------------------------------------------------------------------
def to_coco(
    images: Sequence[AnnotatedImage], classes: Sequence[str], image_dir: str | Path | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The images' boxes in the COCO detection format (a dict ready for ``json.dump``).

    ``images``: ``id`` (from 1), ``file_name``, ``width``, ``height``; ``annotations``: ``id`` (from
    1), ``image_id``, ``category_id``, ``bbox = [x, y, width, height]`` in pixels, ``area = width *
    height``, ``iscrowd = 0``; ``categories``: ``id`` (``classes[i]`` gets ``i + 1``) and ``name``.
    ``file_name`` is the path relative to ``image_dir`` when given, else the file's name.
    """
    classes = _check_classes(classes)
    out: dict[str, list[dict[str, Any]]] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(classes)],
    }
    seen: dict[str, Path] = {}
    for image_id, image in enumerate(images, start=1):
        file_name = _file_name(image.path, image_dir)
        if file_name in seen:
            raise ValueError(
                f"{image.path} and {seen[file_name]} would both be file_name {file_name!r} in the COCO dict; "
                "pass image_dir (their common folder) so that file names keep their sub-folders."
            )
        seen[file_name] = image.path
        out["images"].append({"id": image_id, "file_name": file_name, "width": image.width, "height": image.height})
        for box, name in zip(image.boxes, image.names):
            if name not in classes:
                raise ValueError(f"{image.path} has a box of class {name!r}, not one of {list(classes)}.")
            x, y, w, h = voc_to_coco_box(box)
            out["annotations"].append(
                {
                    "id": len(out["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": classes.index(name) + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    return out


def _file_name(path: Path, image_dir: str | Path | None) -> str:
    if image_dir is None:
        return path.name
    try:
        return path.relative_to(Path(image_dir)).as_posix()
    except ValueError:
        raise ValueError(
            f"image {path} is not inside image_dir={str(image_dir)!r}; pass their common folder."
        ) from None


def from_coco(
    coco: Mapping[str, Any],
    image_dir: str | Path | None = None,
    *,
    min_size: float = MIN_BOX_SIZE,
    source: str = "COCO dict",
) -> list[AnnotatedImage]:
    """The annotated images of a COCO detection dict, in its ``images`` order; inverse of :func:`to_coco`.

    Class names come from ``categories`` sorted by id (label ``i`` is the ``i``-th). Boxes are
    clipped and dropped as in :func:`read_voc`, with warnings; crowd regions (``iscrowd = 1``)
    are left out with a warning. ``image_dir`` is prefixed to each ``file_name``; ``source``
    names the dict in messages (e.g. the JSON file it came from).
    """
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise DataError(f"{source} has no {key!r} list; a COCO detection file has images, annotations, categories.")
    try:
        categories = sorted(((int(c["id"]), str(c["name"])) for c in coco["categories"]), key=lambda c: c[0])
        images = [(int(im["id"]), str(im["file_name"]), int(im["width"]), int(im["height"])) for im in coco["images"]]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"{source}: a category lacks id/name or an image lacks id/file_name/width/height ({err!r}); fix the file."
        ) from err
    category_ids = [c[0] for c in categories]
    if len(set(category_ids)) != len(category_ids):
        raise DataError(f"{source}: category ids {category_ids} repeat; each class needs its own id.")
    classes = _check_classes([c[1] for c in categories])
    label_of = {cid: i for i, cid in enumerate(category_ids)}
    per_image: dict[int, list[Mapping[str, Any]]] = {im[0]: [] for im in images}
    for n, ann in enumerate(coco["annotations"]):
        image_id = ann.get("image_id")
        if image_id not in per_image:
            raise DataError(f"{source}: annotation {n} (id {ann.get('id')}) has image_id {image_id!r}, no such image.")
        if ann.get("category_id") not in label_of:
            raise DataError(
                f"{source}: annotation {n} (id {ann.get('id')}) has category_id {ann.get('category_id')!r}, not one "
                f"of the categories {category_ids}."
            )
        if ann.get("iscrowd", 0):
            warnings.warn(
                f"{source}: annotation {n} (id {ann.get('id')}) is a crowd region (iscrowd=1), not one object: "
                "left out.",
                DataWarning,
                stacklevel=2,
            )
            continue
        per_image[image_id].append(ann)
    folder = Path(image_dir) if image_dir is not None else None
    result = []
    for image_id, file_name, width, height in images:
        anns = per_image[image_id]
        corners, written = [], []
        for ann in anns:
            try:
                bbox = _four_numbers(ann["bbox"], "bbox")
                corners.append(coco_to_voc_box(bbox))
                written.append("bbox=[{:g}, {:g}, {:g}, {:g}] (annotation id {})".format(*bbox, ann.get("id")))
            except (KeyError, ValueError, TypeError) as err:
                raise DataError(
                    f"{source}: annotation id {ann.get('id')} of image {file_name} has bbox {ann.get('bbox')!r}; it "
                    "must be [x, y, width, height], 4 finite numbers."
                ) from err
        labels = np.array([label_of[ann["category_id"]] for ann in anns], dtype=np.int64)
        names = [classes[i] for i in labels.tolist()]
        boxes, kept = _clip_and_drop(
            np.array(corners, dtype=np.float64).reshape(-1, 4),
            width,
            height,
            min_size,
            names,
            written,
            f"{source} image {file_name}",
        )
        path = folder / file_name if folder is not None else Path(file_name)
        result.append(AnnotatedImage(path, width, height, boxes, labels[kept], classes))
    return result
