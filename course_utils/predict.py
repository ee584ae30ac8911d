"""Use a trained course model on your own images and scans: ``python -m course_utils.predict``.

    python -m course_utils.predict vessels CHECKPOINT PHOTO... --out DIR [--fov MASK...] [--labels LABEL...]
    python -m course_utils.predict lesions CHECKPOINT --flair F.nii.gz [--t1 ..] [--t2 ..] --out DIR [--labels L]
    python -m course_utils.predict cells CHECKPOINT PHOTO... --out DIR [--labels VOC.xml...]

Everything a prediction needs comes from the checkpoint's model record (the checkpoint contract of
:mod:`course_utils.checkpoint`): the network, its input images and their preprocessing, the scale or voxel size
it was trained at, the inference settings and the threshold. The network is applied by the lesson's own
prediction function (found by the record's lesson name, as :mod:`course_utils.config` finds a lesson's settings),
so that a command-line prediction is the lesson's prediction.

Every output is new: the command stops before any work when one of its output files exists. Bad input (an
unreadable file, a wrong number of dimensions, an empty image, NaN values) stops it with a message that names
the file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import ModelRecord, load_model
from .config import lesson_package
from .data.images import read_rgb_uint8
from .errors import ConfigError, DataError
from .progress import progress

VESSEL_LESSON, VESSEL_KIND = "03_drive_vessels", "unet"
LESION_LESSON, LESION_KIND = "04_mri_lesions", "unet3d"
CELL_LESSON, CELL_KIND = "07_blood_cells", "detector"
GRID_WARNING_RATIO = 1.5  # warn when the input's voxels are this much coarser than the network's grid (or anisotropic)
SCALE_TOLERANCE = 0.05  # photographs whose FOV is within 5 % of the training diameter are not resampled


@dataclass(frozen=True)
class VesselPrediction:
    """One photograph's result: ``prob`` and ``vessels`` ``(H, W)`` at the input's size, the ``fov`` used
    (given or estimated), ``scale`` (working size / input size), the files written and, with a label, metrics."""

    name: str
    prob: np.ndarray
    vessels: np.ndarray
    fov: np.ndarray
    fov_estimated: bool
    scale: float
    files: dict[str, str]
    metrics: dict[str, float] | None = None


def _lesson_pipeline(record: ModelRecord):
    return importlib.import_module(lesson_package(record.lesson) + ".pipeline")


def load_predictor(checkpoint: str | Path, lesson: str, kind: str) -> tuple[Any, ModelRecord]:
    """The network and record of ``checkpoint``; a clear error when it is not a ``lesson`` ``kind`` model."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint. Lessons save theirs under outputs/<lesson>/ (see the lesson).")
    model, record = load_model(path)
    if (record.lesson, record.kind) != (lesson, kind):
        raise ConfigError(
            f"{path} holds a {record.lesson} {record.kind!r} model; this command needs a {lesson} {kind!r} one."
        )
    return model, record


def _check_outputs(paths: Sequence[Path]) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise FileExistsError(
            f"{', '.join(existing)} already exist(s); nothing was written. Choose another --out folder or move them."
        )
    if len(set(paths)) != len(paths):
        raise DataError("two inputs have the same file name, so their outputs would collide; rename one.")


def read_rgb(path: str | Path) -> np.ndarray:
    """An RGB photograph ``(H, W, 3)`` float32 in [0, 1]; :class:`DataError` naming the file when it cannot be."""
    path = Path(path)
    image = read_rgb_uint8(path, advice="give a JPEG, PNG or TIFF photograph.").astype(np.float32) / 255.0
    if image.size == 0 or min(image.shape[:2]) < 16:
        raise DataError(f"{path}: the image is {image.shape[1]} x {image.shape[0]} pixels; too small to predict.")
    if image.max() <= 0:
        raise DataError(f"{path}: the image is entirely black.")
    return image


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A binary mask ``(H, W)`` (any non-zero pixel is inside) that must have ``shape``."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            mask = np.asarray(img.convert("L")) > 0
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot read it as a mask image ({type(err).__name__}: {err}).") from err
    if mask.shape != tuple(shape):
        raise DataError(
            f"{path}: the mask is {mask.shape[1]} x {mask.shape[0]} pixels, its image {shape[1]} x {shape[0]}."
        )
    return mask


def _resize(array: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    from skimage.transform import resize

    if tuple(array.shape[:2]) == tuple(shape):
        return array
    smaller = shape[0] < array.shape[0]
    out = resize(array.astype(np.float32), shape, order=order, anti_aliasing=smaller and order > 0, preserve_range=True)
    return out.astype(np.float32) if order > 0 else out > 0.5


def predict_vessels(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    fovs: Sequence[str | Path] | None = None,
    labels: Sequence[str | Path] | None = None,
    show_progress: bool = True,
) -> list[VesselPrediction]:
    """Vessel maps for fundus photographs of any size with a lesson 03 checkpoint.

    Each photograph is rescaled so that its field of view (``fovs``, or :func:`estimate_fov` when not given) has
    the diameter the network was trained at (``record.scale["fov_diameter_px"]``; not when it is within
    ``SCALE_TOLERANCE``, 5 %), preprocessed as the record
    says, predicted by lesson 03's ``predict_cases`` (0 outside the field of view), and brought back to its own
    size. Writes ``<name>_vessel_prob.png`` (16-bit, probability x 65535) and ``<name>_vessels.png`` (above the record's
    threshold) into ``out``; with ``labels`` (vessel masks), the lesson's metrics inside the FOV, also as
    ``metrics.json``.
    """
    from PIL import Image

    from .data.drive import FundusCase
    from .data.fundus import estimate_fov, fov_diameter, preprocess_fundus

    model, record = load_predictor(checkpoint, VESSEL_LESSON, VESSEL_KIND)
    images = [Path(p) for p in images]
    if not images:
        raise DataError("no input photograph given.")
    for extra, what in ((fovs, "--fov"), (labels, "--labels")):
        if extra is not None and len(extra) != len(images):
            raise DataError(f"{what}: give one file per photograph ({len(images)}), got {len(extra)}.")
    out = Path(out)
    names = [p.name.split(".")[0] for p in images]
    planned = [out / f"{n}_{kind}.png" for n in names for kind in ("vessel_prob", "vessels")]
    _check_outputs(planned + ([out / "metrics.json"] if labels else []))
    target = float(record.scale.get("fov_diameter_px") or 0)
    if target <= 0:
        raise ConfigError(f"{checkpoint}: the record has no scale.fov_diameter_px; re-run lesson 03 to save it again.")
    pipeline = _lesson_pipeline(record)
    norm = record.normalisation
    results, cases, probs = [], [], []
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(progress(images, enabled=show_progress, desc="photographs")):
        image = read_rgb(path)
        if fovs is not None:
            fov, estimated = read_mask(fovs[i], image.shape[:2]), False
        else:
            try:
                fov, estimated = estimate_fov(image), True
            except ValueError as err:
                raise DataError(f"{path}: {err}") from err
        if fov.sum() < 100:
            raise DataError(f"{path}: the field of view has {int(fov.sum())} pixels; give a mask with --fov.")
        scale = target / fov_diameter(fov)
        scale = 1.0 if abs(scale - 1.0) <= SCALE_TOLERANCE else scale  # DRIVE's own images differ by 1-2 %
        shape = (max(16, round(image.shape[0] * scale)), max(16, round(image.shape[1] * scale)))
        small_image, small_fov = _resize(image, shape, 1), _resize(fov, shape, 0)
        x = preprocess_fundus(np.clip(small_image, 0, 1), small_fov, channel=norm.get("channel", "green"))
        case = FundusCase(names[i], x, np.zeros(shape, dtype=bool), small_fov)
        (small_prob,), _ = pipeline.predict_cases(
            model, [case], tta=record.inference.get("tta", "none"), amp=record.inference.get("amp", False)
        )
        prob = np.where(fov, np.clip(_resize(small_prob, image.shape[:2], 1), 0, 1), 0.0).astype(np.float32)
        vessels = prob > record.threshold
        files = {"prob": str(planned[2 * i]), "vessels": str(planned[2 * i + 1])}
        Image.fromarray(np.round(prob * 65535).astype(np.uint16)).save(files["prob"])  # 16 bits: AUC survives
        Image.fromarray(vessels.astype(np.uint8) * 255).save(files["vessels"])
        result = VesselPrediction(names[i], prob, vessels, fov, estimated, shape[0] / image.shape[0], files)
        if labels is not None:
            truth = read_mask(labels[i], image.shape[:2])
            cases.append(FundusCase(names[i], image, truth, fov))
            probs.append(prob)
            metrics = pipeline.evaluate_vessels([prob], [cases[-1]], record.threshold)
            result = VesselPrediction(**{**result.__dict__, "metrics": metrics})
        results.append(result)
    if labels is not None:
        pooled = pipeline.evaluate_vessels(probs, cases, record.threshold)
        table = {"pooled": pooled, "per_image": {r.name: r.metrics for r in results}, "threshold": record.threshold}
        (out / "metrics.json").write_text(json.dumps(table, indent=1))
    return results


@dataclass(frozen=True)
class LesionPrediction:
    """One scan's result: ``prob`` and ``lesions`` (bool) on the RAS-reoriented input grid (the files are on
    the input's own grid), the lesion ``table`` (one row per 26-connected lesion: id, voxels, ml, centre in mm),
    the files written, warnings, and, with a label, the lesson's metrics."""

    name: str
    prob: np.ndarray
    lesions: np.ndarray
    table: list[dict[str, Any]]
    files: dict[str, str]
    warnings: list[str]
    metrics: dict[str, float] | None = None

    @property
    def volume_ml(self) -> float:
        return float(sum(row["volume_ml"] for row in self.table))


def lesion_table(lesions: np.ndarray, affine: np.ndarray) -> list[dict[str, Any]]:
    """One row per 26-connected lesion of ``lesions (X, Y, Z)``: ``id``, ``voxels``, ``volume_ml`` and the centre
    ``x_mm, y_mm, z_mm`` in the scanner's coordinates (``affine``), largest first."""
    from scipy import ndimage

    from .mri.io import voxel_size

    labels, n = ndimage.label(lesions, structure=np.ones((3, 3, 3)))
    if n == 0:
        return []
    ml = float(np.prod(voxel_size(affine))) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    centres = ndimage.center_of_mass(lesions, labels, range(1, n + 1))
    rows = []
    for k in np.argsort(-counts, kind="stable"):
        x, y, z = (affine @ np.array([*centres[k], 1.0]))[:3]
        rows.append(
            {
                "voxels": int(counts[k]),
                "volume_ml": round(float(counts[k]) * ml, 4),
                "x_mm": round(float(x), 1),
                "y_mm": round(float(y), 1),
                "z_mm": round(float(z), 1),
            }
        )
    return [{"id": i + 1, **row} for i, row in enumerate(rows)]


def predict_lesions(
    checkpoint: str | Path,
    images: dict[str, str | Path],
    out: str | Path,
    *,
    label: str | Path | None = None,
    brain_mask: str | Path | None = None,
    hd95: str = "3d",
    name: str | None = None,
    show_progress: bool = True,
) -> LesionPrediction:
    """Lesion maps for one skull-stripped MRI scan with a lesson 04 checkpoint.

    ``images``: modality -> NIfTI path, the ones the checkpoint's record needs (``record.inputs``: FLAIR, and T1
    and T2 if it was trained with them), all on one grid (any orientation and voxel size). They are reoriented
    to RAS, brought to the record's voxel size, z-scored inside the brain (``brain_mask``, else where any image
    is non-zero) and predicted by lesson 04's ``predict_case`` (windows, flips and rim from the record); the
    probability is thresholded at the record's threshold. Writes into ``out``, on the input's own grid and
    affine: ``<name>_lesion_prob.nii.gz`` (float32), ``<name>_lesions.nii.gz`` (uint8 0/1) and
    ``<name>_lesions.csv`` (the lesion table). With ``label``: the lesson's metrics (HD95 with ``hd95="3d"``
    boundaries, or ``"2d"``: in-plane, as the WMH challenge), also as ``<name>_metrics.json``.
    """
    import csv
    import warnings as _warnings

    from .metrics.lesions import lesion_metrics
    from .mri.cases import CaseFiles, CaseLayout, load_case, save_prediction

    model, record = load_predictor(checkpoint, LESION_LESSON, LESION_KIND)
    if hd95 not in ("2d", "3d"):
        raise ConfigError(f"hd95 must be '2d' or '3d', got {hd95!r}.")
    needed = list(record.inputs)
    given = {m.upper() if m.lower() != "flair" else "FLAIR": Path(p) for m, p in images.items() if p is not None}
    missing = [m for m in needed if m not in given]
    if missing:
        flags = ", ".join(f"--{m.lower()}" for m in missing)
        raise DataError(
            f"{checkpoint} was trained on {', '.join(needed)}, so it needs {', '.join(missing)} too ({flags}). "
            "A scan without them needs a model trained without them (lesson 04's knob modalities, e.g. 'FLAIR')."
        )
    unused = sorted(set(given) - set(needed))
    name = name or given["FLAIR"].name.split(".")[0]
    out = Path(out)
    files = {
        "prob": out / f"{name}_lesion_prob.nii.gz",
        "lesions": out / f"{name}_lesions.nii.gz",
        "table": out / f"{name}_lesions.csv",
    }
    if label is not None:
        files["metrics"] = out / f"{name}_metrics.json"
    _check_outputs(list(files.values()))
    layout = CaseLayout(
        modalities={m: str(given[m]) for m in needed},
        label=str(label) if label is not None else None,
        brain_mask=str(brain_mask) if brain_mask is not None else None,
        name="command line",
    )
    case_files = CaseFiles(
        name,
        given["FLAIR"].parent,
        {m: given[m] for m in needed},
        Path(label) if label is not None else None,
        Path(brain_mask) if brain_mask is not None else None,
    )
    for path in [*case_files.modalities.values(), case_files.label, case_files.brain_mask]:
        if path is not None and not path.is_file():
            raise DataError(f"{path}: no such file.")
    native = load_case(case_files, layout, needed, canonical=True)
    if not native.brain_mask.any():
        raise DataError(f"{given['FLAIR']}: the image is empty (no non-zero voxel), so there is no brain to search.")
    spacing = float(max(record.spacing_mm)) if record.spacing_mm else 1.0
    notes = [f"{m} given but not used: the model was trained on {', '.join(needed)}." for m in unused]
    from .mri.io import voxel_size

    sizes = voxel_size(native.affine)
    if max(sizes) > GRID_WARNING_RATIO * spacing or max(sizes) > 2 * min(sizes):  # coarser, or thick slices
        notes.append(
            f"the scan's voxels are {' x '.join(f'{v:.2g}' for v in sizes)} mm, the model learnt at {spacing:g} mm: "
            "it is resampled, but thin lesions between thick slices are lost and partial volume differs, so "
            "expect lower sensitivity than in the lesson."
        )
    for note in notes:
        _warnings.warn(note, stacklevel=2)
    pipeline = _lesson_pipeline(record)
    prepared = pipeline.PreparedCase(
        case=pipeline.to_working_grid(native, spacing),
        native_label=np.zeros(native.shape, np.uint8) if native.label is None else np.asarray(native.label, np.uint8),
        native_mask=np.asarray(native.brain_mask, bool),
        native_affine=np.asarray(native.affine),
        native_ignore=native.ignore,
        source="command line",
    )
    inf = record.inference
    prob, _ = pipeline.predict_case(
        model,
        prepared,
        rim_mm=float(inf.get("rim_mm", 0.0)),
        patch_size=int(inf["patch_size"]),
        overlap=float(inf.get("overlap", 0.5)),
        batch_size=int(inf.get("batch_size", 4)),
        tta=inf.get("tta", "none"),
        modalities=needed,
        amp=inf.get("amp", False),
        progress=show_progress,
    )
    lesions = (prob >= record.threshold) & prepared.native_mask
    out.mkdir(parents=True, exist_ok=True)
    save_prediction(native, prob, files["prob"])
    save_prediction(native, lesions, files["lesions"])
    table = lesion_table(lesions, native.affine)
    with open(files["table"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "voxels", "volume_ml", "x_mm", "y_mm", "z_mm"])
        writer.writeheader()
        writer.writerows(table)
    metrics = None
    if label is not None:
        metrics = lesion_metrics(
            lesions,
            prepared.native_label > 0,
            spacing=prepared.native_spacing,
            ignore=prepared.native_ignore,
            erosion=hd95,
        )
        files["metrics"].write_text(json.dumps({"threshold": record.threshold, "hd95": hd95, **metrics}, indent=1))
    return LesionPrediction(name, prob, lesions, table, {k: str(v) for k, v in files.items()}, notes, metrics)


@dataclass(frozen=True)
class CellPrediction:
    """One photograph's boxes (``detections``: all above the record's score threshold, in the photograph's
    pixels), ``counts`` per class (boxes above that class's count threshold), the drawn PNG and, with a label,
    nothing per image: the COCO scores of a labelled run are over all images (:func:`predict_cells`)."""

    name: str
    detections: Any
    counts: dict[str, int]
    files: dict[str, str]


def predict_cells(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    labels: Sequence[str | Path] | None = None,
    show_progress: bool = True,
) -> tuple[list[CellPrediction], dict[str, Any] | None]:
    """Blood-cell boxes in stained smear photographs of any size with a lesson 07 detector checkpoint.

    Each photograph is resized to the network's input size, detected by lesson 07's ``detect`` (decoding and
    NMS as the record says) and the boxes are brought back to the photograph's pixels. Writes
    ``detections.json`` (COCO format: images, categories, and every box with its score, ``bbox`` as
    ``[x, y, width, height]``) and ``<name>_boxes.png`` (the boxes above each class's count threshold, which the
    lesson chose on its validation images). With ``labels`` (Pascal VOC XML files, one per photograph): the
    lesson's COCO scores, also as ``scores.json``. Returns the per-image results and the scores (or ``None``).
    """
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend is left alone

    from .data.boxes import read_voc
    from .metrics.coco import detections_to_coco
    from .plotting import draw_boxes

    model, record = load_predictor(checkpoint, CELL_LESSON, CELL_KIND)
    images = [Path(p) for p in images]
    if not images:
        raise DataError("no input photograph given.")
    if labels is not None and len(labels) != len(images):
        raise DataError(f"--labels: give one VOC file per photograph ({len(images)}), got {len(labels)}.")
    out = Path(out)
    names = [p.name.split(".")[0] for p in images]
    planned = [out / f"{n}_boxes.png" for n in names] + [out / "detections.json"]
    _check_outputs(planned + ([out / "scores.json"] if labels else []))
    pipeline = _lesson_pipeline(record)
    inf = record.inference
    classes = list(inf.get("classes", ["RBC", "WBC", "Platelets"]))
    thresholds = np.asarray(inf["count_thresholds"], dtype=float)
    decoding = argparse.Namespace(score_threshold=float(inf["score_threshold"]), nms_iou=float(inf["nms_iou"]))
    colors = getattr(pipeline, "CLASS_COLORS", ("#D55E00", "#0072B2", "#009E73"))
    out.mkdir(parents=True, exist_ok=True)
    results, items, coco_images = [], [], []
    for i, path in enumerate(progress(images, enabled=show_progress, desc="photographs")):
        pixels = np.round(read_rgb(path) * 255).astype(np.uint8)
        item = pipeline.unlabelled_image(pixels, path, record.normalisation["input_size"])
        if labels is not None:
            truth = read_voc(labels[i], classes=tuple(classes))
            if (truth.width, truth.height) != (pixels.shape[1], pixels.shape[0]):
                raise DataError(
                    f"{labels[i]}: its size is {truth.width} x {truth.height}, the photograph {path} is "
                    f"{pixels.shape[1]} x {pixels.shape[0]}."
                )
            item = pipeline.CellImage(item.pixels, truth)
        (found,), _ = pipeline.detect(model, [item], decoding)
        items.append(item)
        coco_images.append({"id": i + 1, "file_name": path.name, "width": pixels.shape[1], "height": pixels.shape[0]})
        keep = found.scores >= thresholds[found.labels]
        counts = {c: int((found.labels[keep] == k).sum()) for k, c in enumerate(classes)}
        fig = Figure(figsize=(pixels.shape[1] / 100, pixels.shape[0] / 100), dpi=100)
        ax = fig.subplots()
        ax.imshow(pixels)
        draw_boxes(ax, found.boxes[keep], found.labels[keep], colors)
        ax.set_axis_off()
        ax.set_title(", ".join(f"{c} {n}" for c, n in counts.items()), fontsize=9)
        fig.savefig(planned[i], dpi=100, bbox_inches="tight")
        results.append(CellPrediction(names[i], found, counts, {"boxes": str(planned[i])}))
    coco_boxes = detections_to_coco([r.detections for r in results], classes)
    for k, entry in enumerate(coco_boxes, start=1):
        w, h = entry["bbox"][2:]
        entry.update(id=k, area=w * h, iscrowd=0)
    coco = {
        "images": coco_images,
        "annotations": coco_boxes,
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)],
        "info": {
            "description": f"detections of {checkpoint}",
            "score_threshold": decoding.score_threshold,
            "count_thresholds": dict(zip(classes, thresholds.tolist())),
        },
    }
    (out / "detections.json").write_text(json.dumps(coco, indent=1))
    scores = None
    if labels is not None:
        s = pipeline.score_detections(items, [r.detections for r in results])
        scores = {"map50": s.map50, "map50_95": s.map50_95, "ap50": {k: float(v) for k, v in s.ap50.items()}}
        (out / "scores.json").write_text(json.dumps(scores, indent=1))
    return results, scores


def _cells_command(args: argparse.Namespace) -> None:
    results, scores = predict_cells(args.checkpoint, args.images, args.out, labels=args.labels)
    for r in results:
        counted = ", ".join(f"{c} {n}" for c, n in r.counts.items())
        print(f"{r.name}: {len(r.detections)} boxes above the score threshold; counted {counted} -> {r.files['boxes']}")
    if scores:
        print(f"COCO against the labels: mAP@0.5 {scores['map50']:.3f}, mAP@[.5:.95] {scores['map50_95']:.3f}")


def _lesions_command(args: argparse.Namespace) -> None:
    images = {"FLAIR": args.flair, "T1": args.t1, "T2": args.t2}
    r = predict_lesions(
        args.checkpoint, images, args.out, label=args.labels, brain_mask=args.brain_mask, hd95=args.hd95
    )
    print(
        f"{r.name}: {len(r.table)} lesion(s), {r.volume_ml:.2f} ml in all -> {r.files['lesions']}, {r.files['table']}"
    )
    if r.metrics:
        m = r.metrics
        print(
            f"against {args.labels}: Dice {m['dice']:.3f}, lesion sensitivity {m['lesion_sensitivity']:.3f}, "
            f"precision {m['lesion_precision']:.3f}, F1 {m['lesion_f1']:.3f}, HD95 ({args.hd95}) {m['hd95_mm']:.1f} mm"
        )


def _vessels_command(args: argparse.Namespace) -> None:
    results = predict_vessels(args.checkpoint, args.images, args.out, fovs=args.fov, labels=args.labels)
    for r in results:
        how = "estimated" if r.fov_estimated else "given"
        line = f"{r.name}: scale x{r.scale:.2f}, FOV {how}, {r.vessels.sum() / r.fov.sum():.1%} of the FOV is vessel"
        if r.metrics:
            line += f"; F1 {r.metrics['f1']:.3f}, AUC {r.metrics['auc']:.3f}"
        print(line + f" -> {r.files['vessels']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.predict",
        description="Apply a model trained in the course to your own files. The checkpoint (saved by the lesson, "
        "under outputs/<lesson>/) carries everything the prediction needs. Nothing is overwritten.",
    )
    sub = parser.add_subparsers(dest="task", required=True)
    v = sub.add_parser(
        "vessels",
        help="retinal vessels in fundus photographs (a lesson 03 checkpoint)",
        description="Vessel maps for fundus photographs of any size: each is rescaled to the field-of-view size "
        "the network was trained at, predicted, and brought back to its own size. Writes NAME_vessel_prob.png "
        "(16-bit grey, probability x 65535) and NAME_vessels.png (above the lesson's threshold).",
    )
    v.add_argument("checkpoint", type=Path, help="a lesson 03 checkpoint, e.g. outputs/03_drive_vessels/unet-cpu.pt")
    v.add_argument("images", type=Path, nargs="+", help="photographs (PNG, JPEG, TIFF, ...)")
    v.add_argument("--out", type=Path, required=True, help="folder for the results (created; never overwritten)")
    v.add_argument("--fov", type=Path, nargs="+", help="field-of-view masks, one per photograph (default: estimated)")
    v.add_argument("--labels", type=Path, nargs="+", help="vessel masks, one per photograph (adds the metrics)")
    v.set_defaults(run=_vessels_command)
    les = sub.add_parser(
        "lesions",
        help="white-matter lesions in a skull-stripped MRI scan (a lesson 04 checkpoint)",
        description="Lesion maps for one skull-stripped scan in any orientation and voxel size: reoriented, "
        "resampled to the voxel size the network learnt at, predicted with the lesson's windows and flips, and "
        "written back on the input's own grid: NAME_lesion_prob.nii.gz, NAME_lesions.nii.gz (0/1) and "
        "NAME_lesions.csv (one row per lesion: voxels, ml, centre in mm). Give the images the checkpoint was "
        "trained on (FLAIR, and T1/T2 if it used them).",
    )
    les.add_argument("checkpoint", type=Path, help="a lesson 04 checkpoint, e.g. outputs/04_mri_lesions/unet3d-cpu.pt")
    les.add_argument("--flair", type=Path, required=True, help="FLAIR image (NIfTI)")
    les.add_argument("--t1", type=Path, help="T1 image on the FLAIR's grid (if the model needs it)")
    les.add_argument("--t2", type=Path, help="T2 image on the FLAIR's grid (if the model needs it)")
    les.add_argument("--brain-mask", type=Path, help="brain mask (default: where any image is non-zero)")
    les.add_argument("--out", type=Path, required=True, help="folder for the results (created; never overwritten)")
    les.add_argument("--labels", type=Path, help="lesion mask on the same grid: adds the lesson's metrics")
    les.add_argument(
        "--hd95",
        choices=("3d", "2d"),
        default="3d",
        help="HD95 boundaries: 3d (default), or 2d in-plane as the WMH challenge",
    )
    les.set_defaults(run=_lesions_command)
    cel = sub.add_parser(
        "cells",
        help="blood-cell boxes in stained smear photographs (a lesson 07 detector checkpoint)",
        description="Boxes around red and white blood cells and platelets in photographs of any size: resized to "
        "the network's input, detected, and brought back to the photograph's pixels. Writes detections.json "
        "(COCO format, every box with its score) and NAME_boxes.png (the boxes the lesson counts).",
    )
    cel.add_argument(
        "checkpoint", type=Path, help="a lesson 07 checkpoint, e.g. outputs/07_blood_cells/detector-cpu.pt"
    )
    cel.add_argument("images", type=Path, nargs="+", help="photographs (JPEG, PNG, ...)")
    cel.add_argument("--out", type=Path, required=True, help="folder for the results (created; never overwritten)")
    cel.add_argument("--labels", type=Path, nargs="+", help="Pascal VOC XML files, one per photograph: adds COCO AP")
    cel.set_defaults(run=_cells_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (DataError, ConfigError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
