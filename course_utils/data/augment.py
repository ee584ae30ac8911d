"""Joint augmentation of an image patch and its masks (NumPy + SciPy, no extra dependency).

Every transform is a callable ``t(image, target, fov, rng) -> (image, target, fov)``:

* ``image``: ``(C, H, W)`` float array (intensities in [0, 1] for :class:`RandomIntensity`);
* ``target``, ``fov``: ``(H, W)`` masks (bool or float holding 0/1), moved exactly like the image;
* ``rng``: a :class:`numpy.random.Generator`; the same generator state gives the same result.

Geometric transforms move image and masks together (masks with nearest-neighbour
sampling so they stay binary); intensity transforms touch the image only. Pixels
that a rotation brings in from outside the patch get image 0, target 0 and ``fov`` 0.
The course's loss does not use ``fov``: it trains on every pixel of the patch, and
outside the field of view (and in those brought-in pixels) the label is background.
The ``fov`` patch marks where DRIVE's metrics count.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]
Transform = Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.Generator], Arrays]


def _check(image: np.ndarray, target: np.ndarray, fov: np.ndarray) -> None:
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}.")
    if target.shape != image.shape[1:] or fov.shape != image.shape[1:]:
        raise ValueError(
            f"target {target.shape} and fov {fov.shape} must both be (H, W) = "
            f"{image.shape[1:]}, the spatial shape of image {image.shape}."
        )


class Compose:
    """Apply ``transforms`` in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, image, target, fov, rng: np.random.Generator) -> Arrays:
        for t in self.transforms:
            image, target, fov = t(image, target, fov, rng)
        return image, target, fov

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class RandomFlipRotate90:
    """Random horizontal/vertical flips (each with probability ``p_flip``) and a random
    multiple of 90 degrees (``rotate90=True``; non-square patches only get 0 or 180 so
    that shapes are kept)."""

    def __init__(self, p_flip: float = 0.5, rotate90: bool = True):
        if not 0.0 <= p_flip <= 1.0:
            raise ValueError(f"p_flip must be in [0, 1], got {p_flip}.")
        self.p_flip, self.rotate90 = p_flip, rotate90

    def __call__(self, image, target, fov, rng: np.random.Generator) -> Arrays:
        _check(image, target, fov)
        arrays = [image, target, fov]
        for axis in (-1, -2):
            if rng.random() < self.p_flip:
                arrays = [np.flip(a, axis=axis) for a in arrays]
        if self.rotate90:
            square = image.shape[-1] == image.shape[-2]
            k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
            arrays = [np.rot90(a, k=k, axes=(-2, -1)) for a in arrays]
        return tuple(np.ascontiguousarray(a) for a in arrays)

    def __repr__(self) -> str:
        return f"RandomFlipRotate90(p_flip={self.p_flip}, rotate90={self.rotate90})"


class RandomAffine:
    """Rotate by up to ``max_degrees`` and scale by a factor in ``scale_range`` about the centre.

    Bilinear for the image, nearest for the masks; outside the source: 0. With
    ``max_degrees=0`` and ``scale_range=(1, 1)`` it is the identity.
    """

    def __init__(self, max_degrees: float = 15.0, scale_range: tuple[float, float] = (0.9, 1.1)):
        lo, hi = scale_range
        if max_degrees < 0 or not 0 < lo <= hi:
            raise ValueError(
                f"need max_degrees >= 0 and 0 < scale_range[0] <= scale_range[1], got {max_degrees}, {scale_range}."
            )
        self.max_degrees, self.scale_range = float(max_degrees), (float(lo), float(hi))

    def __call__(self, image, target, fov, rng: np.random.Generator) -> Arrays:
        _check(image, target, fov)
        angle = math.radians(rng.uniform(-self.max_degrees, self.max_degrees))
        zoom = rng.uniform(*self.scale_range)
        if angle == 0.0 and zoom == 1.0:
            return image, target, fov
        h, w = image.shape[1:]
        # Output pixel p samples the source at centre + M @ (p - centre), M = R(-angle) / zoom.
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        matrix = np.array([[cos, sin], [-sin, cos]])
        centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
        offset = centre - matrix @ centre
        warp = dict(matrix=matrix, offset=offset, mode="constant", cval=0.0)
        image = np.stack([ndimage.affine_transform(c, order=1, **warp) for c in image]).astype(image.dtype)
        target = ndimage.affine_transform(target.astype(np.float32), order=0, **warp).astype(target.dtype)
        fov = ndimage.affine_transform(fov.astype(np.float32), order=0, **warp).astype(fov.dtype)
        return image, target, fov

    def __repr__(self) -> str:
        return f"RandomAffine(max_degrees={self.max_degrees}, scale_range={self.scale_range})"


class RandomIntensity:
    """Image only: ``((x - mean) * contrast + mean + brightness) ** gamma``, clipped to [0, 1].

    ``brightness`` is drawn from ``[-b, b]``, ``contrast`` from ``[1 - c, 1 + c]`` and
    ``log(gamma)`` from ``[-g, g]`` (so ``g = 0.2`` gives gammas in about [0.82, 1.22]).
    All zero: the identity. Expects images in [0, 1].
    """

    def __init__(self, brightness: float = 0.1, contrast: float = 0.1, gamma: float = 0.2):
        if min(brightness, contrast, gamma) < 0 or contrast >= 1:
            raise ValueError(
                f"brightness, contrast and gamma must be >= 0 and contrast < 1, got {brightness}, {contrast}, {gamma}."
            )
        self.brightness, self.contrast, self.gamma = brightness, contrast, gamma

    def __call__(self, image, target, fov, rng: np.random.Generator) -> Arrays:
        _check(image, target, fov)
        b = rng.uniform(-self.brightness, self.brightness)
        c = rng.uniform(1 - self.contrast, 1 + self.contrast)
        g = math.exp(rng.uniform(-self.gamma, self.gamma))
        if b == 0.0 and c == 1.0 and g == 1.0:
            return image, target, fov
        mean = image.mean(axis=(-2, -1), keepdims=True)
        out = np.clip((image - mean) * c + mean + b, 0.0, 1.0) ** g
        return out.astype(image.dtype), target, fov

    def __repr__(self) -> str:
        return f"RandomIntensity(brightness={self.brightness}, contrast={self.contrast}, gamma={self.gamma})"


def fundus_augmentation(strength: float = 1.0, flip_rotate: Transform | None = None) -> Compose:
    """The course's default patch augmentation; ``strength`` scales every range, 0 = identity.

    At ``strength=1``: flips and 90-degree turns, up to 15 degrees of rotation,
    scale 0.9-1.1, brightness +-0.1, contrast +-10 %, gamma about 0.82-1.22. Any
    ``strength > 0`` keeps the 90-degree turns (they never distort the anatomy).
    ``flip_rotate``: a joint transform used in place of the flips and turns (:class:`RandomFlipRotate90`),
    e.g. a learner's own in lesson 03; it is not scaled by ``strength``.
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}.")
    if strength == 0:
        return Compose([])
    s = min(float(strength), 5.0)
    if flip_rotate is None:
        flip_rotate = RandomFlipRotate90(p_flip=min(0.5 * s, 0.5), rotate90=True)
    elif not callable(flip_rotate):
        raise TypeError(f"flip_rotate must be a transform f(image, target, fov, rng), got {flip_rotate!r}.")
    return Compose(
        [
            flip_rotate,
            RandomAffine(max_degrees=15.0 * s, scale_range=(max(1 - 0.1 * s, 0.5), 1 + 0.1 * s)),
            RandomIntensity(brightness=0.1 * s, contrast=min(0.1 * s, 0.5), gamma=0.2 * s),
        ]
    )
