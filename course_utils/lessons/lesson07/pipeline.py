"""Lesson 07's steps, shared by the notebook and ``benchmarks/bench_cells.py``: the blood-cell images, the grid
detector (train, detect, score the COCO way), blood counts from detections.

Images are resized to ``(cfg.input_height, cfg.input_width)`` for the networks; boxes, counts and scores are
always in the original photograph's pixels.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from torch.utils.data import DataLoader, Dataset

from ...checkpoint import ModelRecord
from ...data.bccd import BCCD_CLASSES, bccd_dir, load_bccd
from ...data.boxes import AnnotatedImage, load_image
from ...data.synthetic_smear import synthetic_smear
from ...detection import (
    DETECTOR_STRIDE,
    Detections,
    GridDetectionLoss,
    GridDetector,
    GridSpec,
    decode,
    encode_targets,
    kmeans_priors,
)
from ...errors import MetricWarning
from ...metrics.boxes import box_iou, match_detections
from ...metrics.coco import CocoScores, coco_evaluate
from ...metrics.lesions import dice
from ...models import UNet
from ...objects import OBJECT_FEATURES, feature_classifier, object_boxes, object_features, split_touching
from ...recipe import train_model
from ...seeding import seed_everything
from .settings import LESSON

CLASS_COLORS = ("#D55E00", "#0072B2", "#009E73")
"""Box colour of each of BCCD's classes (red cells vermillion, white cells blue, platelets green; colour-blind safe)."""


# ----- data ----------------------------------------------------------------------------------------
@dataclass
class CellImage:
    """One photograph: ``pixels (H, W, 3)`` uint8 RGB at the network's input size, and ``truth``, its boxes in
    the original photograph's pixels (``truth.width x truth.height``)."""

    pixels: np.ndarray
    truth: AnnotatedImage

    @property
    def name(self) -> str:
        return self.truth.path.stem

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: input pixels per original pixel."""
        h, w = self.pixels.shape[:2]
        return w / self.truth.width, h / self.truth.height

    def input_boxes(self) -> np.ndarray:
        """``(N, 4)`` boxes in the input's pixels."""
        sx, sy = self.scale
        return self.truth.boxes * np.array([sx, sy, sx, sy], dtype=np.float32)


@dataclass
class CellData:
    """The lesson's images: ``train``, ``val``, ``test`` lists of :class:`CellImage`; ``real``: BCCD (its own
    split: 205 / 87 / 72) or synthetic smears."""

    train: list[CellImage]
    val: list[CellImage]
    test: list[CellImage]
    real: bool

    @property
    def classes(self) -> tuple[str, ...]:
        return BCCD_CLASSES


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(height, width, 3)`` uint8, bilinear with antialiasing (Pillow)."""
    return np.array(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def lesson_data(cfg: Any) -> CellData:
    """BCCD's train / val / test split when it is under the data root, else ``cfg.n_synthetic_train`` synthetic
    smears to train on (a quarter of them, at least one, held out for validation) and ``cfg.n_synthetic_test``
    to test on; pixels resized to the profile's input size."""
    h, w = cfg.input_height, cfg.input_width
    if bccd_dir() is not None:
        splits = [
            [CellImage(resize_rgb(load_image(t), h, w), t) for t in load_bccd(s)] for s in ("train", "val", "test")
        ]
        return CellData(*splits, real=True)
    smears = [synthetic_smear(seed=cfg.seed * 10_000 + i) for i in range(cfg.n_synthetic_train + cfg.n_synthetic_test)]
    items = [CellImage(resize_rgb(image, h, w), truth) for image, truth, _ in smears]
    n_val = max(1, cfg.n_synthetic_train // 4)
    train, val = items[: cfg.n_synthetic_train - n_val], items[cfg.n_synthetic_train - n_val : cfg.n_synthetic_train]
    return CellData(train, val, items[cfg.n_synthetic_train :], real=False)


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div_(255.0)


# ----- detector ------------------------------------------------------------------------------------
def detector_spec(cfg: Any, train: Sequence[CellImage]) -> GridSpec:
    """The grid of the profile ``cfg``: stride 16, ``cfg.boxes_per_cell`` priors from k-means of the training
    boxes (input pixels), BCCD's classes."""
    sizes = np.concatenate([np.diff(c.input_boxes().reshape(-1, 2, 2), axis=1)[:, 0] for c in train])
    priors = kmeans_priors(sizes, cfg.boxes_per_cell, seed=cfg.seed)
    return GridSpec((cfg.input_height, cfg.input_width), DETECTOR_STRIDE, tuple(map(tuple, priors)), BCCD_CLASSES)


class DetectionDataset(Dataset):
    """``(image (3, H, W) in [0, 1], target (rows, cols, B, 6))`` per image (:func:`~course_utils.detection.
    encode_targets`); with ``flips``, each epoch flips each image left-right and/or up-down at random (seeded by
    ``seed`` and the epoch; boxes flipped with it). ``dropped``: boxes that found no free slot, unflipped."""

    def __init__(self, items: Sequence[CellImage], spec: GridSpec, *, flips: bool = True, seed: int = 0):
        self.items, self.spec, self.flips, self.seed, self.epoch = list(items), spec, flips, seed, 0
        self.dropped = sum(encode_targets(c.input_boxes(), c.truth.labels, spec)[1] for c in self.items)
        self.boxes = sum(len(c.truth.boxes) for c in self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[i]
        pixels, boxes = item.pixels, item.input_boxes()
        if self.flips:
            h, w = pixels.shape[:2]
            lr, ud = np.random.default_rng([self.seed, self.epoch, i]).random(2) < 0.5
            if lr:
                pixels, boxes = (
                    pixels[:, ::-1],
                    np.column_stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]]),
                )
            if ud:
                pixels, boxes = (
                    pixels[::-1],
                    np.column_stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]]),
                )
        target, _ = encode_targets(boxes, item.truth.labels, self.spec)
        return to_tensor(pixels), target


def shuffled_batches(dataset: Dataset, cfg: Any) -> DataLoader:
    """Batches of ``cfg.batch_size`` in an order shuffled by ``cfg.seed`` (the last incomplete batch dropped when
    there is more than one), for both of the lesson's networks."""
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(dataset) > cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def build_detector(cfg: Any, spec: GridSpec) -> GridDetector:
    """The profile's :class:`~course_utils.detection.GridDetector` (backbone, ImageNet weights or none, neck)."""
    weights = None if cfg.weights == "none" else cfg.weights
    return GridDetector(spec, backbone=cfg.detector_backbone, weights=weights, width=cfg.neck_width)


def train_detector(
    cfg: Any, data: CellData, device: torch.device | str | None = None, show_progress: bool = True
) -> tuple[GridDetector, Any, float, DetectionDataset]:
    """``(model, history, seconds, dataset)``: the grid detector trained on ``data.train`` with the course recipe
    (:func:`~course_utils.recipe.train_model`: AdamW, warm-up + cosine over ``cfg.epochs``, the loss
    :class:`~course_utils.detection.GridDetectionLoss`), torch seeded with ``cfg.seed``; seconds of training."""
    seed_everything(cfg.seed)
    spec = detector_spec(cfg, data.train)
    model = build_detector(cfg, spec)
    dataset = DetectionDataset(data.train, spec, seed=cfg.seed)
    loader = shuffled_batches(dataset, cfg)
    start = time.perf_counter()
    history = train_model(
        model,
        loader,
        lr=cfg.lr,
        epochs=cfg.epochs,
        loss_fn=GridDetectionLoss(spec),
        device=device,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        show_progress=show_progress,
        verbose=False,
    )
    return model, history, time.perf_counter() - start, dataset


@torch.no_grad()
def detect(
    model: GridDetector,
    items: Sequence[CellImage],
    cfg: Any,
    *,
    nms: bool = True,
    nms_fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None,
    max_detections: int = 100,
    batch_size: int = 8,
) -> tuple[list[Detections], float]:
    """``(detections, seconds per image)``: the boxes ``model`` finds in each image, in the original
    photograph's pixels (decoded with ``cfg.score_threshold`` and, if ``nms``, ``cfg.nms_iou``; at most
    ``max_detections`` per image, the best). ``nms_fn``: the NMS of each class (e.g. the learner's,
    ``(boxes, scores, iou_threshold) -> kept indices``); ``None``: torchvision's."""
    model.eval()
    device = next(model.parameters()).device
    out: list[Detections] = []
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        raw = model(torch.stack([to_tensor(c.pixels) for c in chunk]).to(device))
        found = decode(
            raw,
            model.spec,
            score_threshold=cfg.score_threshold,
            iou_threshold=cfg.nms_iou if nms else None,
            max_detections=max_detections,
            nms_fn=nms_fn,
        )
        out += [d.scaled(1 / c.scale[0], 1 / c.scale[1]) for d, c in zip(found, chunk)]
    return out, (time.perf_counter() - start) / max(len(items), 1)


def score_detections(items: Sequence[CellImage], detections: Sequence[Detections]) -> CocoScores:
    """COCO scores (``pycocotools``) of ``detections`` against the images' boxes."""
    return coco_evaluate([c.truth for c in items], detections, BCCD_CLASSES)


def tally_detections(
    items: Sequence[CellImage],
    detections: Sequence[Detections],
    iou_threshold: float = 0.5,
    iou: Callable[[np.ndarray, np.ndarray], np.ndarray] = box_iou,
) -> dict[str, float]:
    """How many of ``detections`` find an annotated cell of their class (COCO's greedy matching at
    ``iou_threshold``, every detection counted, :func:`~course_utils.metrics.boxes.match_detections`).

    Returns ``detections``, ``found`` (annotated boxes matched), ``annotated``, ``recall`` (found / annotated) and
    ``precision`` (found / detections; 0 without detections), pooled over images and classes.
    """
    n_found = n_detections = n_annotated = 0
    for item, found in zip(items, detections, strict=True):
        truth = item.truth
        n_detections += len(found)
        n_annotated += len(truth.labels)
        for c in range(len(truth.classes)):
            mine = found.labels == c
            matched = match_detections(
                found.boxes[mine], found.scores[mine], truth.boxes[truth.labels == c], iou_threshold, iou
            )
            n_found += int((matched >= 0).sum())
    return {
        "detections": n_detections,
        "found": n_found,
        "annotated": n_annotated,
        "recall": n_found / max(n_annotated, 1),
        "precision": n_found / n_detections if n_detections else 0.0,
    }


# ----- counts --------------------------------------------------------------------------------------
def detection_counts(detections: Sequence[Detections], thresholds: Sequence[float]) -> np.ndarray:
    """``(N, C)`` detections per image and class whose score reaches that class's ``thresholds[c]``."""
    thresholds = np.asarray(thresholds, dtype=float)
    out = np.zeros((len(detections), len(thresholds)), dtype=np.int64)
    for i, d in enumerate(detections):
        keep = d.scores >= thresholds[d.labels]
        out[i] = np.bincount(d.labels[keep], minlength=len(thresholds))
    return out


def annotated_counts(items: Sequence[CellImage]) -> np.ndarray:
    """``(N, C)`` annotated boxes per image and class."""
    return np.stack([np.bincount(c.truth.labels, minlength=len(BCCD_CLASSES)) for c in items]).astype(np.int64)


def count_thresholds(detections: Sequence[Detections], items: Sequence[CellImage]) -> np.ndarray:
    """``(C,)`` score thresholds, one per class, with the smallest mean absolute count error on ``items`` (use
    the validation images: choosing it on the test images would tune on the answer). Grid 0.05 ... 0.95."""
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    truth = annotated_counts(items)
    errors = np.stack([np.abs(detection_counts(detections, [t] * truth.shape[1]) - truth).mean(0) for t in grid])
    return grid[np.argmin(errors, axis=0)]


def count_errors(predicted: np.ndarray, items: Sequence[CellImage]) -> dict[str, float]:
    """Mean absolute error of ``predicted (N, C)`` counts against the annotated ones, per class name."""
    err = np.abs(np.asarray(predicted) - annotated_counts(items)).mean(0)
    return {name: float(e) for name, e in zip(BCCD_CLASSES, err)}


# ----- segment, then classify ------------------------------------------------------------------------
NOT_A_CELL = "none"
OBJECT_CLASSES = (*BCCD_CLASSES, NOT_A_CELL)
"""What the object classifier answers: a blood-cell class, or ``"none"`` (a fragment, a clump that did not
split, a cell nobody boxed)."""


def cell_masks(item: CellImage) -> np.ndarray:
    """``(H, W)`` uint8 weak label at the input size: the ellipse inscribed in each box is 1, the rest 0.

    What the boxes cost as labels: corners of a box are not cell (hence the ellipse), overlapping cells merge
    into one blob, and a cell nobody boxed is taught as background."""
    h, w = item.pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
    mask = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in item.input_boxes():
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
        r0, r1 = int(max(y0 - 1, 0)), int(min(y1 + 1, h))
        c0, c1 = int(max(x0 - 1, 0)), int(min(x1 + 1, w))
        inside = ((xx[r0:r1, c0:c1] - cx) / rx) ** 2 + ((yy[r0:r1, c0:c1] - cy) / ry) ** 2 <= 1
        mask[r0:r1, c0:c1] |= inside.astype(np.uint8)
    return mask


class SegmentationDataset(Dataset):
    """``(image (3, crop, crop) in [0, 1], mask (1, crop, crop))``: a random square crop of each training image
    and its weak label (:func:`cell_masks`), flipped at random; seeded by ``seed``, the epoch and the index."""

    def __init__(self, items: Sequence[CellImage], crop: int, *, seed: int = 0):
        self.items, self.crop, self.seed, self.epoch = list(items), int(crop), seed, 0
        self.masks = [cell_masks(c) for c in self.items]
        h, w = self.items[0].pixels.shape[:2]
        if self.crop > min(h, w):
            raise ValueError(f"seg_crop={crop} is larger than the images ({h} x {w}); lower it.")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        pixels, mask = self.items[i].pixels, self.masks[i]
        h, w = mask.shape
        y, x = rng.integers(0, h - self.crop + 1), rng.integers(0, w - self.crop + 1)
        pixels, mask = pixels[y : y + self.crop, x : x + self.crop], mask[y : y + self.crop, x : x + self.crop]
        if rng.random() < 0.5:
            pixels, mask = pixels[:, ::-1], mask[:, ::-1]
        if rng.random() < 0.5:
            pixels, mask = pixels[::-1], mask[::-1]
        return to_tensor(pixels), torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None]


def build_cell_unet(cfg: Any) -> UNet:
    """The course U-Net for cells: RGB in, one foreground logit out, ``cfg.block`` blocks (``"multires"``:
    MultiResUNet), ``cfg.base_width``, ``cfg.depth``."""
    return UNet(in_channels=3, out_channels=1, base_width=cfg.base_width, depth=cfg.depth, block=cfg.block)


def train_cell_unet(
    cfg: Any, data: CellData, device: torch.device | str | None = None, show_progress: bool = True
) -> tuple[UNet, Any, float]:
    """``(model, history, seconds)``: the cell U-Net trained on crops of ``data.train`` for ``cfg.seg_epochs``
    epochs with the course recipe (BCE + soft Dice), torch seeded with ``cfg.seed``."""
    seed_everything(cfg.seed)
    model = build_cell_unet(cfg)
    dataset = SegmentationDataset(data.train, cfg.seg_crop, seed=cfg.seed)
    loader = shuffled_batches(dataset, cfg)
    start = time.perf_counter()
    history = train_model(
        model,
        loader,
        lr=cfg.lr,
        epochs=cfg.seg_epochs,
        device=device,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        show_progress=show_progress,
        verbose=False,
    )
    return model, history, time.perf_counter() - start


@torch.no_grad()
def segment(model: UNet, items: Sequence[CellImage], batch_size: int = 4) -> tuple[np.ndarray, float]:
    """``(probs (N, H, W) float32, seconds per image)``: the foreground probability of each whole image."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        x = torch.stack([to_tensor(c.pixels) for c in items[i : i + batch_size]]).to(device)
        out.append(torch.sigmoid(model(x))[:, 0].float().cpu().numpy())
    return np.concatenate(out), (time.perf_counter() - start) / max(len(items), 1)


@dataclass
class CellObjects:
    """The objects found in one image: ``labels (H, W)`` (1..n, input size), ``boxes (n, 4)`` in the original
    photograph's pixels, ``features (n, F)`` (:data:`~course_utils.objects.OBJECT_FEATURES`), ``truth (n,)``:
    index into :data:`OBJECT_CLASSES` of the annotated box each object matches (IoU >= ``match_iou``), else
    ``"none"``."""

    item: CellImage
    labels: np.ndarray
    boxes: np.ndarray
    features: np.ndarray
    truth: np.ndarray

    @property
    def n(self) -> int:
        return len(self.boxes)


def cell_objects(prob: np.ndarray, item: CellImage, cfg: Any, match_iou: float = 0.5) -> CellObjects:
    """Split the foreground ``prob >= 0.5`` of one image into objects (:func:`~course_utils.objects.
    split_touching` with ``cfg.split_distance`` pixels between centres, objects under ``cfg.min_object_area``
    pixels dropped), box, describe and match them to the annotated boxes."""
    labels, n = split_touching(prob >= 0.5, min_distance=cfg.split_distance, min_area=cfg.min_object_area)
    sx, sy = item.scale
    boxes = object_boxes(labels, n) / np.array([sx, sy, sx, sy], dtype=np.float32)
    features = object_features(labels, n, item.pixels, prob)
    truth = np.full(n, OBJECT_CLASSES.index(NOT_A_CELL), np.int64)
    if n and len(item.truth.boxes):
        iou = box_iou(boxes, item.truth.boxes)
        best = iou.argmax(1)
        matched = iou[np.arange(n), best] >= match_iou
        truth[matched] = item.truth.labels[best[matched]]
    return CellObjects(item, labels, boxes, features, truth)


def fit_object_classifier(training: Sequence[CellObjects]) -> Pipeline | DummyClassifier:
    """The classifier (:func:`~course_utils.objects.feature_classifier`) of these objects (use images the U-Net did
    not train on: the validation images; on its own training images its objects are cleaner than on new ones).

    When they are all of one kind (a segmentation trained too little finds no object that matches a box) there is
    nothing to learn: a constant answer of that kind (``"none"`` when there are no objects), with a
    :class:`~course_utils.errors.MetricWarning`."""
    x = np.concatenate([o.features for o in training] + [np.zeros((0, len(OBJECT_FEATURES)))])
    y = np.concatenate([o.truth for o in training] + [np.zeros(0, np.int64)])
    if len(np.unique(y)) < 2:
        kind = OBJECT_CLASSES[int(y[0])] if len(y) else NOT_A_CELL
        warnings.warn(
            f"the {len(y)} training objects are all {kind!r}: the object classifier learns nothing and calls every "
            f"object {kind!r}. Train the segmentation longer (seg_epochs) or check the images.",
            MetricWarning,
            stacklevel=2,
        )
        if not len(y):
            x, y = np.zeros((1, len(OBJECT_FEATURES))), np.array([OBJECT_CLASSES.index(NOT_A_CELL)])
        return DummyClassifier(strategy="most_frequent").fit(x, y)
    return feature_classifier().fit(x, y)


def classify_objects(objects: CellObjects, classifier: Pipeline | DummyClassifier) -> Detections:
    """The objects of one image as detections: box, class (the most probable of :data:`OBJECT_CLASSES`;
    ``"none"`` objects left out) and score (that class's probability)."""
    if objects.n == 0:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, np.int64))
    probs = np.zeros((objects.n, len(OBJECT_CLASSES)))
    probs[:, classifier.classes_] = classifier.predict_proba(objects.features)
    label = probs.argmax(1)
    keep = label != OBJECT_CLASSES.index(NOT_A_CELL)
    order = np.argsort(-probs[keep, label[keep]], kind="stable")
    return Detections(objects.boxes[keep][order], probs[keep, label[keep]][order], label[keep][order])


def mask_dice(probs: np.ndarray, items: Sequence[CellImage]) -> float:
    """Dice of ``probs >= 0.5`` against the weak masks (:func:`cell_masks`), pooled over the images."""
    pred = np.asarray(probs) >= 0.5
    truth = np.stack([cell_masks(c) > 0 for c in items])
    return dice(pred, truth)


@dataclass
class SegmentThenClassify:
    """The whole segment-then-classify run of :func:`segment_then_classify`: the U-Net (``model``, ``history``,
    training ``seconds``), the object ``classifier``, the ``test`` objects and their ``detections``, the test
    images' foreground Dice against the weak masks, and seconds per test image (network, split, features,
    classifier)."""

    model: UNet
    history: Any
    seconds: float
    classifier: Pipeline | DummyClassifier
    test_objects: list[CellObjects]
    detections: list[Detections]
    test_dice: float
    infer_seconds_per_image: float


def segment_then_classify(
    cfg: Any, data: CellData, device: torch.device | str | None = None, show_progress: bool = True
) -> SegmentThenClassify:
    """Train the cell U-Net on the training images, split and describe the objects of the **validation** images
    (the U-Net never trained on them, so their objects look like a new image's) and fit the object classifier on
    them, then find and classify the objects of the test images. No test image enters any choice."""
    model, history, seconds = train_cell_unet(cfg, data, device, show_progress)
    val_probs, _ = segment(model, data.val)
    classifier = fit_object_classifier([cell_objects(p, c, cfg) for p, c in zip(val_probs, data.val)])
    start = time.perf_counter()
    test_probs, _ = segment(model, data.test)
    objects = [cell_objects(p, c, cfg) for p, c in zip(test_probs, data.test)]
    detections = [classify_objects(o, classifier) for o in objects]
    per_image = (time.perf_counter() - start) / max(len(data.test), 1)
    return SegmentThenClassify(
        model, history, seconds, classifier, objects, detections, mask_dice(test_probs, data.test), per_image
    )


def class_counts_of(detections: Sequence[Detections]) -> np.ndarray:
    """``(N, C)`` detections per image and class, every detection counted (no score threshold)."""
    return detection_counts(detections, [0.0] * len(BCCD_CLASSES))


# ----- checkpoint ----------------------------------------------------------------------------------
CHECKPOINT_KIND = "detector"


def detector_record(
    model: GridDetector,
    cfg: Any,
    *,
    count_thresholds: Sequence[float],
    data_source: str,
    train_images: Sequence[str],
    seconds: float,
    epochs: int,
    reference: dict[str, Any] | None = None,
) -> ModelRecord:
    """The :class:`~course_utils.checkpoint.ModelRecord` of a lesson 07 grid detector trained with ``cfg``:
    everything :func:`detect` needs (input size, decoding, NMS) and the per-class count thresholds chosen on the
    validation images (:func:`count_thresholds`)."""
    if len(count_thresholds) != len(model.spec.classes):
        raise ValueError(f"one count threshold per class {model.spec.classes}, got {list(count_thresholds)}.")
    return ModelRecord(
        lesson=LESSON,
        kind=CHECKPOINT_KIND,
        profile=cfg.profile,
        builder="GridDetector",
        model_config=dict(model.config),
        inputs=["red", "green", "blue"],
        normalisation={
            "method": "resize to input_size (bilinear, Pillow), values / 255; ImageNet mean/std inside the model",
            "input_size": list(model.spec.image_size),
            "function": "course_utils.lessons.lesson07.pipeline.resize_rgb",
        },
        spacing_mm=None,
        inference={
            "function": "course_utils.lessons.lesson07.pipeline.detect (boxes in the original image's pixels)",
            "score_threshold": float(cfg.score_threshold),
            "nms_iou": float(cfg.nms_iou),
            "count_thresholds": [float(t) for t in count_thresholds],
            "classes": list(model.spec.classes),
        },
        threshold=float(cfg.score_threshold),
        threshold_source="the profile's score_threshold (COCO scoring keeps every box above it); counts use "
        "inference['count_thresholds'], chosen on the validation images",
        training={
            "data": data_source,
            "images": list(train_images),
            "epochs": int(epochs),
            "seconds": float(seconds),
            "seed": cfg.seed,
        },
        reference=reference,
    )


def unlabelled_image(pixels: np.ndarray, path: str | Path, input_size: Sequence[int]) -> CellImage:
    """A :class:`CellImage` of a photograph ``(H, W, 3)`` uint8 with no boxes, resized to ``input_size``."""
    h, w = pixels.shape[:2]
    truth = AnnotatedImage(Path(path), w, h, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), BCCD_CLASSES)
    return CellImage(resize_rgb(pixels, int(input_size[0]), int(input_size[1])), truth)


__all__ = [
    "CHECKPOINT_KIND",
    "detector_record",
    "unlabelled_image",
    "LESSON",
    "CLASS_COLORS",
    "NOT_A_CELL",
    "OBJECT_CLASSES",
    "CellData",
    "CellImage",
    "CellObjects",
    "DetectionDataset",
    "SegmentThenClassify",
    "SegmentationDataset",
    "annotated_counts",
    "build_cell_unet",
    "build_detector",
    "cell_masks",
    "cell_objects",
    "class_counts_of",
    "classify_objects",
    "count_errors",
    "count_thresholds",
    "detect",
    "detection_counts",
    "detector_spec",
    "fit_object_classifier",
    "lesson_data",
    "mask_dice",
    "resize_rgb",
    "score_detections",
    "segment",
    "segment_then_classify",
    "shuffled_batches",
    "tally_detections",
    "to_tensor",
    "train_cell_unet",
    "train_detector",
]
