"""Use a trained course model on your own images and scans: ``python -m course_utils.predict``.

    python -m course_utils.predict vessels CHECKPOINT PHOTO... --out DIR [--fov MASK...] [--labels LABEL...]
    python -m course_utils.predict lesions CHECKPOINT --flair F.nii.gz [--t1 ..] [--t2 ..] --out DIR [--labels L]

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
from .errors import ConfigError, DataError
from .progress import progress

VESSEL_LESSON, VESSEL_KIND = "03_drive_vessels", "unet"
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
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            image = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot read it as an image ({type(err).__name__}: {err}).") from err
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
