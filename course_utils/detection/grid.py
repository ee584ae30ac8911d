"""A single-pass grid detector's output, in the spirit of YOLO: its layout, its training targets, its decoding.

The image is cut into a grid of cells ``stride`` pixels wide. Each cell predicts ``B`` boxes, and each box
``5 + C`` numbers: ``tx, ty`` (where the box centre lies inside the cell), ``tw, th`` (its width and height
against the slot's *prior*), ``to`` (objectness: is a box centred here?) and ``C`` class logits. The network
returns them as one tensor ``(N, B * (5 + C), rows, cols)``; :func:`cells_view` shows it as the slides' shape
``(N, rows, cols, B, 5 + C)``. YOLOv1 (Redmon et al. 2016) instead predicts ``5B + C`` numbers per cell: its
``C`` class probabilities are shared by the cell's ``B`` boxes, so one cell cannot hold a red cell and a
platelet; here every box carries its own classes, as in YOLOv2 and later.

Decoding box ``b`` of the cell in row ``i``, column ``j`` (pixels of the network input)::

    centre x = (j + sigmoid(tx)) * stride      width  = prior_w[b] * exp(tw)
    centre y = (i + sigmoid(ty)) * stride      height = prior_h[b] * exp(th)
    score of class c = sigmoid(to) * softmax(class logits)[c]

Priors (YOLOv2's "anchors", here one per slot) are typical box sizes of the training set, so a slot starts
near the right size; a ground-truth box is assigned to the cell that holds its centre and to the free slot
whose prior has the most similar shape (:func:`encode_targets`). When two boxes want the same cell and no slot
is free, the later one is dropped: the grid's capacity, counted and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torchvision

from ..errors import ConfigError

TARGET_FIELDS = ("tx", "ty", "tw", "th", "object", "class")
"""The 6 numbers per slot of an encoded target: centre offsets in the cell (0..1), log size over the prior,
1 where the slot is responsible for a box (else 0), and the box's class index (-1 where none)."""


@dataclass(frozen=True)
class GridSpec:
    """The layout of a grid detector's output for inputs of ``image_size = (H, W)`` pixels.

    ``stride``: pixels per grid cell (``H`` and ``W`` must be multiples); ``priors``: ``B`` box sizes
    ``(w, h)`` in pixels of the network input, one per slot; ``classes``: the ``C`` class names.
    """

    image_size: tuple[int, int]
    stride: int
    priors: tuple[tuple[float, float], ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.image_size)
        if self.stride < 1 or h % self.stride or w % self.stride or h < self.stride or w < self.stride:
            raise ConfigError(
                f"image_size {self.image_size} must be positive multiples of the stride {self.stride} "
                f"(e.g. {(max(1, h // self.stride) * self.stride, max(1, w // self.stride) * self.stride)})."
            )
        if not self.priors or any(len(p) != 2 or min(p) <= 0 for p in self.priors):
            raise ConfigError(f"priors must be one or more positive (w, h) pairs in pixels, got {self.priors}.")
        if not self.classes:
            raise ConfigError("a grid detector needs at least one class name.")
        object.__setattr__(self, "image_size", (h, w))
        object.__setattr__(self, "priors", tuple((float(a), float(b)) for a, b in self.priors))
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def rows(self) -> int:
        return self.image_size[0] // self.stride

    @property
    def cols(self) -> int:
        return self.image_size[1] // self.stride

    @property
    def boxes_per_cell(self) -> int:
        """``B``."""
        return len(self.priors)

    @property
    def numbers_per_box(self) -> int:
        """``5 + C``."""
        return 5 + len(self.classes)

    @property
    def out_channels(self) -> int:
        """``B * (5 + C)``: the channels of the network's output."""
        return self.boxes_per_cell * self.numbers_per_box

    def to_dict(self) -> dict:
        """JSON-friendly, for checkpoints; :meth:`from_dict` reads it back."""
        return {
            "image_size": list(self.image_size),
            "stride": self.stride,
            "priors": [list(p) for p in self.priors],
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> GridSpec:
        return cls(tuple(d["image_size"]), int(d["stride"]), tuple(tuple(p) for p in d["priors"]), tuple(d["classes"]))


def cells_view(raw: torch.Tensor, spec: GridSpec) -> torch.Tensor:
    """The network's output ``(N, B * (5 + C), rows, cols)`` as ``(N, rows, cols, B, 5 + C)``."""
    n, ch, rows, cols = raw.shape
    if (ch, rows, cols) != (spec.out_channels, spec.rows, spec.cols):
        raise ValueError(
            f"output of shape {tuple(raw.shape)} does not fit the grid: expected (N, {spec.out_channels}, "
            f"{spec.rows}, {spec.cols}) for B={spec.boxes_per_cell}, C={len(spec.classes)}."
        )
    return raw.view(n, spec.boxes_per_cell, spec.numbers_per_box, rows, cols).permute(0, 3, 4, 1, 2)


def shape_iou(sizes: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """``(N, B)`` IoU of boxes of ``sizes (N, 2)`` (w, h) with boxes of ``priors (B, 2)``, all centred at one point."""
    inter = np.minimum(sizes[:, None, 0], priors[None, :, 0]) * np.minimum(sizes[:, None, 1], priors[None, :, 1])
    union = sizes[:, None].prod(-1) + priors[None].prod(-1) - inter
    return inter / np.maximum(union, 1e-12)


def encode_targets(boxes: np.ndarray, labels: np.ndarray, spec: GridSpec) -> tuple[torch.Tensor, int]:
    """``(target, dropped)``: the training target ``(rows, cols, B, 6)`` of one image (fields
    :data:`TARGET_FIELDS`) and how many boxes found no free slot.

    ``boxes (N, 4)``: ``x_min, y_min, x_max, y_max`` in pixels of the network input; ``labels (N,)``: class
    indices. Larger boxes are placed first, so a collision drops the smaller box.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels.")
    target = torch.zeros(spec.rows, spec.cols, spec.boxes_per_cell, len(TARGET_FIELDS))
    target[..., 5] = -1
    if not len(boxes):
        return target, 0
    h, w = spec.image_size
    sizes = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1).clip(1e-3)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    priors = np.asarray(spec.priors)
    preference = np.argsort(-shape_iou(sizes, priors), axis=1)
    dropped = 0
    for k in np.argsort(-sizes.prod(1), kind="stable"):
        cx, cy = np.clip(centres[k], 0, [w - 1e-6, h - 1e-6]) / spec.stride
        col, row = int(cx), int(cy)
        free = [b for b in preference[k] if target[row, col, b, 4] == 0]
        if not free:
            dropped += 1
            continue
        b = free[0]
        target[row, col, b] = torch.tensor(
            [cx - col, cy - row, np.log(sizes[k, 0] / priors[b, 0]), np.log(sizes[k, 1] / priors[b, 1]), 1.0, labels[k]]
        )
    return target, dropped


@dataclass
class Detections:
    """The boxes found in one image: ``boxes (K, 4)`` ``x_min, y_min, x_max, y_max`` in pixels, ``scores (K,)``
    in [0, 1], ``labels (K,)`` class indices; sorted by decreasing score."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, sx: float, sy: float) -> Detections:
        """The same detections with x multiplied by ``sx`` and y by ``sy`` (to the original image's pixels)."""
        return Detections(self.boxes * np.array([sx, sy, sx, sy], dtype=np.float32), self.scores, self.labels)


def decode_boxes(raw: torch.Tensor, spec: GridSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(boxes, objectness, class_probs)`` of every slot: ``(N, rows, cols, B, 4)`` corners in pixels of the
    network input, ``(N, rows, cols, B)`` and ``(N, rows, cols, B, C)``, from the output ``raw``."""
    cells = cells_view(raw.float(), spec)
    rows = torch.arange(spec.rows, dtype=cells.dtype, device=cells.device).view(1, -1, 1, 1)
    cols = torch.arange(spec.cols, dtype=cells.dtype, device=cells.device).view(1, 1, -1, 1)
    priors = torch.tensor(spec.priors, dtype=cells.dtype, device=cells.device)
    cx = (cols + torch.sigmoid(cells[..., 0])) * spec.stride
    cy = (rows + torch.sigmoid(cells[..., 1])) * spec.stride
    bw = priors[:, 0] * torch.exp(cells[..., 2].clamp(max=8.0))
    bh = priors[:, 1] * torch.exp(cells[..., 3].clamp(max=8.0))
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
    h, w = spec.image_size
    boxes = torch.stack(
        [boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h), boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1
    )
    return boxes, torch.sigmoid(cells[..., 4]), torch.softmax(cells[..., 5:], -1)


def decode(
    raw: torch.Tensor,
    spec: GridSpec,
    *,
    score_threshold: float = 0.05,
    iou_threshold: float | None = 0.5,
    max_detections: int = 100,
    nms_fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None,
) -> list[Detections]:
    """The detections of each image of the output ``raw (N, B * (5 + C), rows, cols)``.

    Every slot gives one candidate per class with score ``objectness * class probability``; candidates under
    ``score_threshold`` are dropped, then greedy NMS per class at ``iou_threshold`` (``None``: no NMS), then the
    ``max_detections`` best are kept. ``nms_fn(boxes (K, 4), scores (K,), iou_threshold) -> kept indices`` on
    numpy arrays does the NMS of each class (e.g. your own, lesson 07); ``None``: ``torchvision.ops.batched_nms``.
    """
    if not 0 <= score_threshold < 1:
        raise ValueError(f"score_threshold must be in [0, 1), got {score_threshold}.")
    boxes, objectness, probs = decode_boxes(raw.detach(), spec)
    n, c = boxes.shape[0], probs.shape[-1]
    scores = (objectness[..., None] * probs).reshape(n, -1, c)
    boxes = boxes.reshape(n, -1, 4)
    out = []
    for i in range(n):
        slot, label = torch.nonzero(scores[i] > score_threshold, as_tuple=True)
        b, s = boxes[i][slot], scores[i][slot, label]
        if iou_threshold is not None and len(s) and nms_fn is not None:
            keep = _nms_per_class(b, s, label, float(iou_threshold), nms_fn)
        elif iou_threshold is not None and len(s):
            keep = torchvision.ops.batched_nms(b, s, label, float(iou_threshold))
        else:
            keep = torch.argsort(s, descending=True)
        keep = keep[:max_detections]
        out.append(Detections(b[keep].cpu().numpy(), s[keep].cpu().numpy(), label[keep].cpu().numpy()))
    return out


def _nms_per_class(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    iou_threshold: float,
    nms_fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
) -> torch.Tensor:
    """What ``torchvision.ops.batched_nms`` returns (indices kept, by decreasing score), with ``nms_fn`` run on the
    numpy boxes and scores of each class."""
    b, s, lab = boxes.cpu().numpy(), scores.cpu().numpy(), labels.cpu().numpy()
    kept = []
    for c in np.unique(lab):
        members = np.flatnonzero(lab == c)
        chosen = np.asarray(nms_fn(b[members], s[members], iou_threshold), dtype=np.int64).reshape(-1)
        kept.append(members[chosen])
    order = np.concatenate(kept)
    order = order[np.argsort(-s[order], kind="stable")]
    return torch.from_numpy(order).to(boxes.device)


def kmeans_priors(sizes: np.ndarray, k: int, *, seed: int = 0, iterations: int = 100, restarts: int = 5) -> np.ndarray:
    """``(k, 2)`` box sizes ``(w, h)`` that summarise ``sizes (N, 2)``: k-means with ``1 - shape IoU`` as the
    distance (YOLOv2's way of choosing its priors), k-means++ starts, the best of ``restarts`` runs (highest
    mean IoU of each box with its nearest prior); sorted by area. Deterministic for a given ``seed``."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if len(sizes) < k:
        raise ValueError(f"need at least k={k} boxes to choose {k} priors, got {len(sizes)}.")
    rng = np.random.default_rng(seed)
    best, best_fit = None, -1.0
    for _ in range(restarts):
        centres = sizes[rng.integers(len(sizes))][None]
        while len(centres) < k:  # k-means++: the next start far (in 1 - IoU) from the chosen ones
            far = (1 - shape_iou(sizes, centres).max(1)) ** 2
            centres = np.vstack([centres, sizes[rng.choice(len(sizes), p=far / far.sum())]])
        for _ in range(iterations):
            nearest = np.argmax(shape_iou(sizes, centres), axis=1)
            new = np.array(
                [np.median(sizes[nearest == j], 0) if (nearest == j).any() else centres[j] for j in range(k)]
            )
            if np.allclose(new, centres):
                break
            centres = new
        fit = float(shape_iou(sizes, centres).max(1).mean())
        if fit > best_fit:
            best, best_fit = centres, fit
    return best[np.argsort(best.prod(1))]
