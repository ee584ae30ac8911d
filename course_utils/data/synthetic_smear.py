"""Procedural blood smears with exact boxes and instance masks: the offline stand-in for BCCD.

Each image has a pale, slightly uneven background and three kinds of cells, told apart by
size, colour and texture as in a stained smear:

* red cells (``RBC``): pinkish discs about 100 px across with a paler centre and a darker rim,
  many of them, often touching or overlapping in clumps;
* white cells (``WBC``): larger (about 160 px), pale lilac cytoplasm around a lobed, grainy
  purple nucleus;
* platelets: small (about 20 px) irregular purple dots.

Sizes are for a 640x480 image (as BCCD) and scale with the shorter side. Cells are painted in
the order white, red, platelets: a later cell hides what it covers, but every cell keeps at least
60 % of its pixels in view. Each box is tight around its cell's whole disc (hidden parts
included, as an annotator draws it), clipped to the image; the instance mask shows the visible
pixels. Labels are exact, so detectors score higher here than on BCCD: these images teach the
workflow, not the difficulty.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import DataWarning
from ..validate import check_int
from .bccd import BCCD_CLASSES, BCCD_SIZE
from .boxes import AnnotatedImage

RBC, WBC, PLATELET = (BCCD_CLASSES.index(name) for name in ("RBC", "WBC", "Platelets"))
_REFERENCE_SIDE = 480.0  # the radii below are for an image whose shorter side is this long
_RADIUS = {RBC: (42.0, 54.0), WBC: (70.0, 88.0), PLATELET: (7.0, 12.0)}  # pixels at the reference side
_ASPECT = {RBC: (0.82, 1.0), WBC: (0.85, 1.0), PLATELET: (0.6, 1.0)}  # minor / major axis
_MAX_ON_CELLS = {RBC: 0.35, WBC: 0.2, PLATELET: 0.5}  # fraction of a new cell that may lie on earlier cells
_CLUMP_PROBABILITY = 0.5  # a red cell is placed against an earlier one (touching or overlapping)
MIN_VISIBLE = 0.6  # every cell keeps this fraction of its in-image pixels visible
_MAX_TRIES = 400
_BACKGROUND = np.array([200.0, 206.0, 198.0], dtype=np.float32)  # RGB 0..255: BCCD's pale grey-green
_RBC_COLOUR = np.array([198.0, 146.0, 166.0], dtype=np.float32)
_CYTOPLASM = np.array([214.0, 196.0, 224.0], dtype=np.float32)
_NUCLEUS = np.array([110.0, 64.0, 182.0], dtype=np.float32)
_PLATELET_COLOUR = np.array([142.0, 98.0, 176.0], dtype=np.float32)


def synthetic_smear(
    seed: int = 0,
    size: tuple[int, int] = BCCD_SIZE,
    *,
    n_rbc: int = 24,
    n_wbc: int = 2,
    n_platelets: int = 5,
) -> tuple[np.ndarray, AnnotatedImage, np.ndarray]:
    """One synthetic smear of ``size = (H, W)`` pixels, the same for the same seed.

    Returns ``(image, annotated, instances)``: ``image`` ``(H, W, 3)`` uint8 RGB; ``annotated`` an
    :class:`~course_utils.data.boxes.AnnotatedImage` with one box and label per cell (BCCD's
    classes; its ``path`` names no file on disk); ``instances`` ``(H, W)`` int32, 0 for background
    and ``k`` where cell ``k - 1`` (the ``k``-th box) is visible. A cell that finds no room after
    many tries is left out with a :class:`DataWarning` (only with far more cells than fit).
    """
    check_int("seed", int(seed) if isinstance(seed, np.integer) else seed, 0)
    for name, value in (("n_rbc", n_rbc), ("n_wbc", n_wbc), ("n_platelets", n_platelets)):
        check_int(name, value, 0)
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 64:
        raise ValueError(f"size must be (H, W) with both at least 64 pixels, got {size!r}.")
    h, w = int(size[0]), int(size[1])
    rng = np.random.default_rng(int(seed))
    scale = min(h, w) / _REFERENCE_SIDE
    canvas = _background(rng, h, w)
    instances = np.zeros((h, w), dtype=np.int32)
    cells: list[_Cell] = []
    for label, wanted in ((WBC, n_wbc), (RBC, n_rbc), (PLATELET, n_platelets)):
        placed = 0
        for _ in range(wanted):
            cell = _place(rng, label, scale, instances, cells)
            if cell is None:
                break
            cell.paint(rng, canvas, instances, len(cells) + 1, scale)
            cells.append(cell)
            placed += 1
        if placed < wanted:
            warnings.warn(
                f"synthetic_smear(seed={seed}, size={size}): room for only {placed} of {wanted} "
                f"{BCCD_CLASSES[label]} cells; ask for fewer cells or a larger image.",
                DataWarning,
                stacklevel=2,
            )
    canvas = ndimage.gaussian_filter(canvas, sigma=(0.8 * scale, 0.8 * scale, 0))  # the microscope's blur
    canvas += rng.normal(0.0, 2.0, size=canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    annotated = AnnotatedImage(
        path=Path(f"synthetic_smear_seed{seed}.png"),
        width=w,
        height=h,
        boxes=np.array([c.box for c in cells], dtype=np.float32).reshape(-1, 4),
        labels=np.array([c.label for c in cells], dtype=np.int64),
        classes=BCCD_CLASSES,
    )
    return image, annotated, instances


class _Cell:
    """One cell's ellipse on the pixel grid: ``disc`` marks its pixels inside ``window`` of the image."""

    def __init__(self, label: int, centre: tuple[float, float], radius: float, aspect: float, angle: float, shape):
        self.label, self.centre, self.radius = label, centre, radius
        h, w = shape
        cy, cx = centre
        r0, r1 = max(0, math.floor(cy - radius) - 1), min(h, math.ceil(cy + radius) + 2)
        c0, c1 = max(0, math.floor(cx - radius) - 1), min(w, math.ceil(cx + radius) + 2)
        self.window = (slice(r0, r1), slice(c0, c1))
        yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        dy, dx = yy + 0.5 - cy, xx + 0.5 - cx  # pixel centres
        cos, sin = math.cos(angle), math.sin(angle)
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        self.rho = np.sqrt((u / radius) ** 2 + (v / (aspect * radius)) ** 2)  # 1 on the outline
        self.theta = np.arctan2(v, u)
        if label == PLATELET:  # irregular outline
            self.rho = self.rho * (1.0 + 0.12 * np.sin(3.0 * self.theta + 6.0 * aspect))
        self.disc = self.rho <= 1.0
        self.area = int(self.disc.sum())

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` on pixel edges, tight around the disc (inside the image)."""
        rows, cols = np.nonzero(self.disc)
        r0, c0 = self.window[0].start, self.window[1].start
        return (c0 + cols.min(), r0 + rows.min(), c0 + cols.max() + 1.0, r0 + rows.max() + 1.0)

    def paint(self, rng: np.random.Generator, canvas: np.ndarray, instances: np.ndarray, k: int, scale: float) -> None:
        colour = {RBC: _red_cell, WBC: _white_cell, PLATELET: _platelet}[self.label](rng, self, scale)
        canvas[self.window][self.disc] = colour[self.disc]
        instances[self.window][self.disc] = k


def _place(
    rng: np.random.Generator, label: int, scale: float, instances: np.ndarray, cells: list[_Cell]
) -> _Cell | None:
    """A new cell that hides no earlier cell beyond :data:`MIN_VISIBLE` and sits mostly on free space, or None."""
    h, w = instances.shape
    red = [c for c in cells if c.label == RBC]
    visible = np.bincount(instances.ravel(), minlength=len(cells) + 1)
    for _ in range(_MAX_TRIES):
        radius = rng.uniform(*_RADIUS[label]) * scale
        aspect, angle = rng.uniform(*_ASPECT[label]), rng.uniform(0.0, math.pi)
        if label == RBC and red and rng.random() < _CLUMP_PROBABILITY:
            other = red[rng.integers(len(red))]
            distance, direction = rng.uniform(0.75, 1.0) * (radius + other.radius), rng.uniform(0.0, 2 * math.pi)
            centre = (
                other.centre[0] + distance * math.sin(direction),
                other.centre[1] + distance * math.cos(direction),
            )
            if not (0 <= centre[0] < h and 0 <= centre[1] < w):
                continue
        else:
            centre = (rng.uniform(0, h), rng.uniform(0, w))
        cell = _Cell(label, centre, radius, aspect, angle, (h, w))
        if cell.area < 0.3 * math.pi * aspect * radius**2:  # mostly outside the image
            continue
        covered = np.bincount(instances[cell.window][cell.disc], minlength=len(cells) + 1)
        if covered[1:].sum() > _MAX_ON_CELLS[label] * cell.area:
            continue
        hit = np.flatnonzero(covered[1:]) + 1
        if all(visible[k] - covered[k] >= MIN_VISIBLE * cells[k - 1].area for k in hit):
            return cell
    return None


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """``(H, W, 3)`` float32: the pale background with a gentle large-scale unevenness of about 5 levels."""
    step = 32
    coarse = ndimage.gaussian_filter(rng.normal(size=(h // step + 3, w // step + 3)), 1.0)
    smooth = ndimage.zoom(coarse / (coarse.std() + 1e-6), step, order=1)[:h, :w]
    shade = _BACKGROUND + rng.normal(0.0, 3.0, size=3).astype(np.float32)
    return (shade[None, None, :] + 5.0 * smooth[..., None]).astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth noise of unit standard deviation, grains about ``sigma`` pixels across."""
    noise = ndimage.gaussian_filter(rng.normal(size=shape), max(sigma, 0.5))
    return (noise / (noise.std() + 1e-6)).astype(np.float32)


def _red_cell(rng: np.random.Generator, cell: _Cell, scale: float) -> np.ndarray:
    """Pink disc with a paler centre (the central pallor) and a slightly darker rim."""
    base = _RBC_COLOUR + rng.normal(0.0, 6.0, size=3).astype(np.float32)
    pallor = rng.uniform(0.5, 0.85) * np.exp(-((cell.rho / rng.uniform(0.3, 0.45)) ** 2))
    colour = base + (_BACKGROUND + 10.0 - base) * pallor[..., None]
    rim = 1.0 - 0.16 * np.clip((cell.rho - 0.75) / 0.25, 0.0, 1.0)
    colour = colour * rim[..., None] + 2.0 * _texture(rng, cell.rho.shape, 2.0 * scale)[..., None]
    return colour.astype(np.float32)


def _white_cell(rng: np.random.Generator, cell: _Cell, scale: float) -> np.ndarray:
    """Pale lilac cytoplasm around a lobed purple nucleus with coarse dark chromatin grains."""
    colour = _CYTOPLASM + rng.normal(0.0, 4.0, size=3).astype(np.float32)
    colour = colour + 5.0 * _texture(rng, cell.rho.shape, 1.5 * scale)[..., None]
    nucleus = np.zeros_like(cell.disc)
    for _ in range(int(rng.integers(2, 5))):  # lobes
        at, turn = rng.uniform(0.0, 0.35), rng.uniform(0.0, 2 * math.pi)
        size = rng.uniform(0.28, 0.45)
        lobe_x, lobe_y = at * math.cos(turn), at * math.sin(turn)
        x, y = cell.rho * np.cos(cell.theta), cell.rho * np.sin(cell.theta)
        nucleus |= np.hypot(x - lobe_x, y - lobe_y) <= size
    nucleus &= cell.rho <= 0.85
    grains = 1.0 - 0.15 * _texture(rng, cell.rho.shape, 2.0 * scale)
    dark = (_NUCLEUS + rng.normal(0.0, 6.0, size=3).astype(np.float32)) * grains[..., None]
    return np.where(nucleus[..., None], dark, colour).astype(np.float32)


def _platelet(rng: np.random.Generator, cell: _Cell, scale: float) -> np.ndarray:
    """Small purple dot, darker grains inside."""
    base = _PLATELET_COLOUR + rng.normal(0.0, 8.0, size=3).astype(np.float32)
    grains = 1.0 - 0.12 * _texture(rng, cell.rho.shape, 1.0 * scale)
    return (base * grains[..., None]).astype(np.float32)
