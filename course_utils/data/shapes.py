"""A tiny offline segmentation task: bright shapes and thin curves on a noisy background.

Born in lesson 01 (a first training loop) and reused in lesson 02 (the U-Net). The
foreground is discs, rectangles and thin one-to-two-pixel curves; thin curves make
fine spatial detail matter, which is what skip connections are for. Optional
distractors (hollow squares) are bright but are *not* foreground, so a network has
to look at shape, not only at brightness.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


def _smooth_noise(rng: np.random.Generator, size: int, scale: int = 8) -> np.ndarray:
    """Low-frequency background texture in [0, 1], ``(size, size)``."""
    coarse = rng.random((size // scale + 2, size // scale + 2))
    idx = np.linspace(0, coarse.shape[0] - 1.001, size)
    i0 = idx.astype(int)
    f = idx - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def _draw_sample(
    rng: np.random.Generator, size: int, noise: float, distractors: bool, yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((size, size), dtype=bool)
    bright = np.zeros((size, size), dtype=np.float32)
    for _ in range(rng.integers(1, 4)):
        kind = rng.choice(["disc", "rect", "curve"], p=[0.4, 0.3, 0.3])
        level = rng.uniform(0.5, 1.0)
        if kind == "disc":
            r = rng.uniform(0.06, 0.16) * size
            cy, cx = rng.uniform(r, size - r, 2)
            shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        elif kind == "rect":
            h, w = rng.uniform(0.1, 0.3, 2) * size
            y0, x0 = rng.uniform(0, size - h), rng.uniform(0, size - w)
            shape = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
        else:
            # a thin sinusoidal curve across the image, 1-2 px wide
            a, f, ph = rng.uniform(0.05, 0.2) * size, rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
            c = rng.uniform(0.25, 0.75) * size
            width = rng.uniform(0.6, 1.1)
            if rng.random() < 0.5:
                shape = np.abs(yy - (c + a * np.sin(2 * np.pi * f * xx / size + ph))) <= width
            else:
                shape = np.abs(xx - (c + a * np.sin(2 * np.pi * f * yy / size + ph))) <= width
        mask |= shape
        bright[shape] = np.maximum(bright[shape], level)
    if distractors:
        for _ in range(rng.integers(0, 3)):
            s = rng.uniform(0.12, 0.22) * size
            y0, x0 = rng.uniform(0, size - s, 2)
            outer = (yy >= y0) & (yy < y0 + s) & (xx >= x0) & (xx < x0 + s)
            inner = (yy >= y0 + 2) & (yy < y0 + s - 2) & (xx >= x0 + 2) & (xx < x0 + s - 2)
            ring = outer & ~inner & ~mask
            bright[ring] = np.maximum(bright[ring], rng.uniform(0.5, 1.0))
    background = 0.35 * _smooth_noise(rng, size)
    image = background + bright + noise * rng.standard_normal((size, size))
    return image.astype(np.float32), mask


def make_shapes(
    n: int, size: int = 64, *, seed: int = 0, noise: float = 0.2, distractors: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, 1, size, size)`` float32 and masks ``(n, 1, size, size)`` uint8 (0/1).

    Deterministic for a given ``seed``. ``noise`` is the standard deviation of the
    additive Gaussian noise (shape intensities lie in [0.5, 1]).
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    masks = np.empty((n, 1, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(n):
        images[i, 0], m = _draw_sample(rng, size, noise, distractors, yy, xx)
        masks[i, 0] = m
    return images, masks


class ShapesDataset(Dataset):
    """``(image (1, H, W) float32, mask (1, H, W) float32)`` pairs from :func:`make_shapes`.

    ``flip=True`` adds random horizontal/vertical flips (the same for image and mask).
    """

    def __init__(
        self,
        n: int,
        size: int = 64,
        *,
        seed: int = 0,
        noise: float = 0.2,
        distractors: bool = False,
        flip: bool = False,
    ):
        images, masks = make_shapes(n, size, seed=seed, noise=noise, distractors=distractors)
        self.images = torch.from_numpy(images)
        self.masks = torch.from_numpy(masks).float()
        self.flip = flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.images[i], self.masks[i]
        if self.flip:
            dims = [d for d, flip in ((-1, torch.rand(()) < 0.5), (-2, torch.rand(()) < 0.5)) if flip]
            if dims:
                x, y = x.flip(dims), y.flip(dims)
        return x, y
