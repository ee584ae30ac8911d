"""Lesson 07's steps, shared by the notebook and ``benchmarks/bench_cells.py``: the blood-cell images, the grid
detector (train, detect, score the COCO way), blood counts from detections.

Images are resized to ``(cfg.input_height, cfg.input_width)`` for the networks; boxes, counts and scores are
always in the original photograph's pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

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
from ...metrics.coco import CocoScores, coco_evaluate
from ...recipe import train_model
from ...seeding import seed_everything


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
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=len(dataset) > cfg.batch_size,
                        generator=torch.Generator().manual_seed(cfg.seed))  # fmt: skip
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
    batch_size: int = 8,
) -> tuple[list[Detections], float]:
    """``(detections, seconds per image)``: the boxes ``model`` finds in each image, in the original
    photograph's pixels (decoded with ``cfg.score_threshold`` and, if ``nms``, ``cfg.nms_iou``)."""
    model.eval()
    device = next(model.parameters()).device
    out: list[Detections] = []
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        raw = model(torch.stack([to_tensor(c.pixels) for c in chunk]).to(device))
        found = decode(raw, model.spec, score_threshold=cfg.score_threshold, iou_threshold=cfg.nms_iou if nms else None)
        out += [d.scaled(1 / c.scale[0], 1 / c.scale[1]) for d, c in zip(found, chunk)]
    return out, (time.perf_counter() - start) / max(len(items), 1)


def score_detections(items: Sequence[CellImage], detections: Sequence[Detections]) -> CocoScores:
    """COCO scores (``pycocotools``) of ``detections`` against the images' boxes."""
    return coco_evaluate([c.truth for c in items], detections, BCCD_CLASSES)


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
