"""Procedural fundus-like photographs with exact vessel labels: the offline stand-in for DRIVE.

Each image has a circular field of view (black outside), an orange-red textured
background that darkens towards the rim, a bright optic disc, a darker fovea and
vessel trees that branch recursively from the optic disc, tapering from about
8 px to 1 px. Vessels are darker than the background, mostly in the green channel
as in real fundus photographs. Labels are exact, so scores on these images are
higher than on DRIVE: they teach the workflow, not the difficulty.

Sizes scale with the image. From about 256 px the vessels cover 8-20 % of the
field of view, like DRIVE (12-13 %); smaller images keep only the vessels wider
than half a pixel (at 128 px about 6 %).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .drive import FundusCase

DRIVE_SIZE = (584, 565)  # (H, W) of DRIVE images
# How much vessels darken each channel (R, G, B): strongest in green.
_VESSEL_CHANNEL_WEIGHTS = np.array([0.35, 1.0, 0.7], dtype=np.float32)


def make_synthetic_fundus(n: int, size: tuple[int, int] = DRIVE_SIZE, seed: int = 0) -> list[FundusCase]:
    """``n`` synthetic fundus cases of ``size = (H, W)`` pixels, the same for the same seed.

    Case ``i`` depends only on ``(seed, i)``, so ``n`` does not change earlier cases.
    Each case has ``image (H, W, 3)`` float32 in [0, 1], ``vessels (H, W)`` bool and
    ``fov (H, W)`` bool, like :func:`course_utils.data.drive.load_drive`.
    """
    return _make_cases(n, size, seed, stream=0, prefix="synthetic")


def synthetic_drive(
    n_train: int = 20, n_test: int = 20, size: tuple[int, int] = DRIVE_SIZE, seed: int = 0
) -> tuple[list[FundusCase], list[FundusCase]]:
    """A DRIVE-shaped synthetic data set: ``(training cases, test cases)``, disjoint random streams."""
    train = _make_cases(n_train, size, seed, stream=1, prefix="synthetic_training")
    test = _make_cases(n_test, size, seed, stream=2, prefix="synthetic_test")
    return train, test


def _make_cases(n: int, size: tuple[int, int], seed: int, stream: int, prefix: str) -> list[FundusCase]:
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}.")
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 32:
        raise ValueError(f"size must be (H, W) with both at least 32 pixels, got {size!r}.")
    h, w = int(size[0]), int(size[1])
    return [_make_case(np.random.default_rng([seed, stream, i]), (h, w), f"{prefix}_{i:02d}") for i in range(n)]


def _make_case(rng: np.random.Generator, size: tuple[int, int], name: str) -> FundusCase:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2 + rng.normal(0, 0.01 * h), (w - 1) / 2 + rng.normal(0, 0.01 * w)
    radius = 0.475 * min(h, w) * rng.uniform(0.97, 1.0)
    r = np.hypot(yy - cy, xx - cx) / radius
    fov = r <= 1.0

    side = rng.choice([-1.0, 1.0])  # left or right eye
    disc = (cy + rng.normal(0, 0.04) * radius, cx + side * rng.uniform(0.5, 0.62) * radius)
    fovea = (cy + rng.normal(0, 0.04) * radius, cx - side * rng.uniform(0.05, 0.15) * radius)
    disc_radius = rng.uniform(0.13, 0.16) * radius

    background = _background(rng, yy, xx, r, disc, disc_radius, fovea, radius)
    vessels, darkness = _vessel_trees(rng, size, disc, disc_radius, fovea, radius)
    vessels &= fov
    image = background * (1.0 - darkness[..., None] * _VESSEL_CHANNEL_WEIGHTS)
    image += rng.normal(0.0, 0.012, size=image.shape).astype(np.float32)
    image *= _soft_edge(r)[..., None]  # dark outside the FOV, slightly soft rim
    image += 0.01 * rng.random(size=image.shape, dtype=np.float32) * (~fov)[..., None]
    np.clip(image, 0.0, 1.0, out=image)
    return FundusCase(name=name, image=image.astype(np.float32), vessels=vessels, fov=fov)


def _background(rng, yy, xx, r, disc, disc_radius, fovea, radius) -> np.ndarray:
    """Orange-red retina: texture, illumination falloff, bright disc, darker fovea. ``(H, W, 3)``."""
    base = np.array([rng.uniform(0.75, 0.9), rng.uniform(0.36, 0.46), rng.uniform(0.12, 0.22)], dtype=np.float32)
    illumination = np.clip(1.0 - rng.uniform(0.3, 0.45) * r**2, 0.2, 1.0)
    texture = _smooth_noise(rng, r.shape, cell=32) * 0.05 + _smooth_noise(rng, r.shape, cell=6) * 0.02
    fovea_sigma = rng.uniform(0.12, 0.16) * radius
    d_fovea = ((yy - fovea[0]) ** 2 + (xx - fovea[1]) ** 2) / (2 * fovea_sigma**2)
    fovea_dip = np.exp(-d_fovea) * rng.uniform(0.2, 0.3)
    shade = (illumination * (1.0 + texture) * (1.0 - fovea_dip))[..., None]
    d_disc = np.hypot(yy - disc[0], xx - disc[1]) / disc_radius
    disc_weight = (
        np.clip((1.15 - d_disc) / 0.3, 0.0, 1.0) * rng.uniform(0.55, 0.7) + 0.25 * np.exp(-(d_disc**2) / 2.0)
    )[..., None]
    disc_colour = np.array([1.0, 0.85, 0.5], dtype=np.float32)
    image = base * shade * (1.0 - disc_weight) + disc_colour * np.minimum(disc_weight, 1.0)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """Zero-mean noise with features about ``cell`` pixels wide, roughly in [-1, 1]. ``(H, W)``."""
    h, w = size
    coarse = rng.normal(0.0, 1.0, size=(h // cell + 3, w // cell + 3)).astype(np.float32)
    fine = ndimage.zoom(coarse, cell, order=3, mode="nearest", grid_mode=False)
    return np.clip(fine[:h, :w] / 1.5, -1.5, 1.5)


def _soft_edge(r: np.ndarray) -> np.ndarray:
    return np.clip((1.0 - r) * 60.0, 0.0, 1.0).astype(np.float32)


def _vessel_trees(rng, size, disc, disc_radius, fovea, radius) -> tuple[np.ndarray, np.ndarray]:
    """Branching vessel trees from the optic disc: ``(label (H, W) bool, darkness (H, W) in [0, 1])``."""
    scale = min(size) / 565.0  # vessel widths scale with the image
    to_fovea = math.atan2(fovea[0] - disc[0], fovea[1] - disc[1])
    # Temporal arcades leave steeply and curve round the fovea; nasal ones fan out; plus small ones.
    starts = [
        (to_fovea - rng.uniform(1.1, 1.4), +1, True),
        (to_fovea + rng.uniform(1.1, 1.4), -1, True),
        (to_fovea + math.pi - rng.uniform(0.5, 0.9), +1, True),
        (to_fovea + math.pi + rng.uniform(0.5, 0.9), -1, True),
    ]
    starts += [(to_fovea + rng.uniform(-0.6, 0.6), rng.choice([-1, 1]), False) for _ in range(rng.integers(2, 4))]
    tree = _Tree(rng, scale, radius, fovea, ((size[0] - 1) / 2, (size[1] - 1) / 2))
    for angle, bend, main in starts:
        width = (rng.uniform(6.5, 8.5) if main else rng.uniform(2.5, 4.0)) * scale
        y0 = disc[0] + rng.normal(0, 0.2) * disc_radius
        x0 = disc[1] + rng.normal(0, 0.2) * disc_radius
        tree.grow(y0, x0, angle, width, rng.uniform(0.35, 0.55), bend, depth=0)
    return _paint_discs(size, np.array(tree.points, dtype=np.float32).reshape(-1, 4))


class _Tree:
    """Grows vessels: each walks, tapers, curves, avoids the fovea and branches.

    Records one ``(y, x, width, contrast)`` centreline point per step in ``points``.
    """

    def __init__(self, rng, scale, radius, fovea, centre):
        self.rng, self.scale, self.radius, self.fovea, self.centre = rng, scale, radius, fovea, centre
        self.points: list[tuple[float, float, float, float]] = []

    def grow(self, y, x, angle, width, contrast, bend, depth):
        rng, scale, fovea = self.rng, self.scale, self.fovea
        curvature = bend * rng.uniform(0.001, 0.004) / scale
        next_branch = rng.uniform(25, 60) * scale
        travelled = 0.0
        jitter = iter(rng.normal(0, 0.05, size=4096).tolist())
        min_width = max(min(scale, 1.0), 0.5)  # in small images only the larger vessels show
        while width >= min_width:
            self.points.append((y, x, width, contrast * min(1.0, 0.4 + width / (6.0 * scale))))
            step = max(0.8, min(2.5 * scale, 0.5 * width))  # short steps keep thin vessels unbroken
            angle += curvature * step + next(jitter, 0.0)
            fy, fx = y - fovea[0], x - fovea[1]
            closeness = 1.0 - math.hypot(fy, fx) / (0.3 * self.radius)
            if closeness > 0:  # vessels bend away from the fovea, harder the closer they get
                angle += 0.08 * step * closeness * math.remainder(math.atan2(fy, fx) - angle, 2 * math.pi)
            y += step * math.sin(angle)
            x += step * math.cos(angle)
            travelled += step
            width *= 1.0 - 0.0016 * step / scale
            if math.hypot(y - self.centre[0], x - self.centre[1]) > 1.02 * self.radius:
                return
            if travelled >= next_branch and depth < 5 and width > 1.5 * scale:
                travelled = 0.0
                next_branch = rng.uniform(25, 70) * scale
                side = rng.choice([-1.0, 1.0])
                self.grow(
                    y,
                    x,
                    angle + side * rng.uniform(0.5, 1.2),
                    width * rng.uniform(0.5, 0.75),
                    contrast * rng.uniform(0.85, 1.05),
                    side * rng.choice([-1, 1]),
                    depth + 1,
                )
                width *= rng.uniform(0.88, 0.97)
                angle -= side * rng.uniform(0.05, 0.2)


def _paint_discs(size: tuple[int, int], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint a disc of diameter ``width`` at each ``(y, x, width, contrast)`` row of ``points (N, 4)``.

    Returns ``(label (H, W) bool, darkness (H, W) float32)``: label where a pixel lies
    within ``max(width / 2, 0.6)`` of a centre; darkness is the largest smooth
    profile ``contrast * (1 - (d / (width / 2 + 0.5))^2)`` over all discs.
    """
    h, w = size
    label = np.zeros(size, dtype=bool)
    darkness = np.zeros(h * w, dtype=np.float32)
    rad = points[:, 2] / 2.0
    reach = np.ceil(rad + 1.0).astype(int)
    for r in np.unique(reach):  # one vectorised pass per window size
        pts, pr = points[reach == r], rad[reach == r]
        off = np.arange(-r, r + 1)
        py = np.rint(pts[:, 0]).astype(int)[:, None, None] + off[None, :, None]
        px = np.rint(pts[:, 1]).astype(int)[:, None, None] + off[None, None, :]
        d = np.hypot(py - pts[:, 0, None, None], px - pts[:, 1, None, None])
        valid = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        py, px = np.broadcast_to(py, d.shape)[valid], np.broadcast_to(px, d.shape)[valid]
        dist = d[valid]
        prad = np.broadcast_to(pr[:, None, None], d.shape)[valid]
        contrast = np.broadcast_to(pts[:, 3, None, None], d.shape)[valid]
        inside = dist <= np.maximum(prad, 0.6)
        label[py[inside], px[inside]] = True
        profile = contrast * np.clip(1.0 - (dist / (prad + 0.5)) ** 2, 0.0, 1.0)
        np.maximum.at(darkness, py * w + px, profile.astype(np.float32))
    return label, darkness.reshape(h, w)
