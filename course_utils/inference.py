"""Inference for 2D images and 3D volumes: whole-image or sliding-window (tiled), with flip TTA.

Test-time augmentation (TTA) has one vocabulary everywhere (:data:`TTA_CHOICES`): ``"none"``,
``"lr"`` (also the left-right mirror image) or ``"flips"`` (every flip); or a sequence of spatial
axes to flip. :func:`predict_image` runs a whole image in one pass (padded to the network's size
divisor); :func:`sliding_window_inference` window by window. Both average the flipped predictions
the same way (:func:`flip_sets`).

A network trained on patches predicts a whole image window by window: windows of
``patch_size`` overlap by ``overlap``, every pixel is covered, and overlapping
predictions are blended with weights (a Gaussian favours window centres, where the
network saw the most context). The blended sum is divided by the summed weights,
which are positive everywhere, so no pixel divides by zero.
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .layout import as_layout, memory_layout
from .models.utils import crop_to, pad_to_multiple
from .precision import autocast
from .progress import progress as progress_bar
from .validate import check_choice

ACTIVATIONS = (None, "sigmoid", "softmax")
BLENDS = ("gaussian", "constant")
TTA_CHOICES = ("none", "lr", "flips")
TtaFlips = Union[bool, str, Sequence[int]]


def lr_axis(n_spatial: int) -> int:
    """The left-right spatial axis: the last (width) axis of a 2D image ``(H, W)``, the first axis of a
    3D volume in RAS orientation ``(X, Y, Z)`` (X runs from the patient's left to right)."""
    return n_spatial - 1 if n_spatial == 2 else 0


def tta_axes(tta: TtaFlips, n_spatial: int) -> tuple[int, ...]:
    """The spatial axes (0-based) that test-time augmentation flips: ``"none"`` / ``False``: none;
    ``"lr"``: the left-right axis (:func:`lr_axis`); ``"flips"`` / ``True``: every axis; or the axes given."""
    if isinstance(tta, str):
        tta = check_choice("tta", tta, TTA_CHOICES)
        return {"none": (), "lr": (lr_axis(n_spatial),), "flips": tuple(range(n_spatial))}[tta]
    if isinstance(tta, bool):
        return tuple(range(n_spatial)) if tta else ()
    axes = tuple(sorted({int(a) for a in tta}))
    if any(not 0 <= a < n_spatial for a in axes):
        raise ValueError(f"tta axes must be spatial axes 0..{n_spatial - 1} of the image, got {tuple(tta)}.")
    return axes


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets of windows of length ``patch`` along an axis of length ``size >= patch``.

    Step ``round(patch * (1 - overlap))`` (at least 1); the last window ends at ``size``.
    """
    if size <= patch:
        return [0]
    step = max(1, int(round(patch * (1.0 - overlap))))
    starts = list(range(0, size - patch + 1, step))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def blend_weights(
    patch_size: Sequence[int], blend: str = "gaussian", sigma_scale: float = 0.125, min_weight: float = 1e-4
) -> torch.Tensor:
    """Per-voxel weights of one window, shape ``patch_size``, maximum 1, all ``>= min_weight``.

    ``gaussian``: product of 1D Gaussians with ``sigma = sigma_scale * patch`` centred on
    the window (as in nnU-Net); ``constant``: all ones.
    """
    check_choice("blend", blend, BLENDS)
    weights = torch.ones(tuple(patch_size), dtype=torch.float32)
    if blend == "constant":
        return weights
    for axis, n in enumerate(patch_size):
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2.0
        g = torch.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2)
        shape = [1] * len(patch_size)
        shape[axis] = n
        weights = weights * (g / g.max()).reshape(shape)
    return weights.clamp_min(min_weight)


def sliding_window_inference(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor | np.ndarray,
    patch_size: int | Sequence[int],
    overlap: float = 0.5,
    batch_size: int = 8,
    blend: str = "gaussian",
    device: str | torch.device | None = None,
    progress: bool = False,
    activation: str | None = None,
    tta_flips: TtaFlips = False,
    amp: bool | str = False,
) -> torch.Tensor:
    """Predict a whole ``image (C, *spatial)`` (2D ``(C, H, W)`` or 3D ``(C, D, H, W)``) window by window.

    ``model`` maps ``(B, C, *patch_size)`` to ``(B, out_channels, *patch_size)``.
    Images smaller than the patch are zero-padded (at the end of each axis) and the
    result cropped back. ``activation``: ``None`` (blend raw logits), ``"sigmoid"``
    or ``"softmax"`` (over channels, applied per window before blending).
    ``tta_flips``: also predict flipped copies, flip back and average (:func:`tta_axes`):
    ``"flips"``/``True`` every flip (4 in 2D, 8 in 3D); ``"lr"`` the left-right mirror image;
    a sequence of spatial axes (0 = the first spatial axis), every flip over those axes only
    (``(0,)``: 2 passes), e.g. only the flips the network saw as augmentation.
    Runs under :func:`torch.inference_mode` with ``model.eval()`` and
    restores the model's training mode afterwards. ``device``: where the model runs
    (default: where its parameters are). ``amp``: run the model in mixed precision
    (:mod:`course_utils.precision`); blending stays float32. Returns float32
    ``(out_channels, *spatial)`` on the device of ``image``.
    """
    image = torch.as_tensor(image)
    spatial = tuple(image.shape[1:])
    if image.ndim not in (3, 4):
        raise ValueError(
            f"image must be (C, H, W) or (C, D, H, W), got shape {tuple(image.shape)}; "
            "for a single-channel image add the channel axis with image[None]."
        )
    patch = _patch_tuple(patch_size, len(spatial))
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}.")
    check_choice("activation", activation, ACTIVATIONS)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    device = _model_device(model, image) if device is None else torch.device(device)

    padded = _pad_to(image.float(), patch)
    full = tuple(padded.shape[1:])
    grid = list(itertools.product(*(window_starts(s, p, overlap) for s, p in zip(full, patch))))
    weights = blend_weights(patch, blend).to(device)
    flips = flip_sets(len(spatial), tta_flips)

    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    out = norm = None
    try:
        with torch.inference_mode(), autocast(device, amp):
            batches = range(0, len(grid), int(batch_size))
            for b in progress_bar(batches, enabled=progress, desc="windows", unit="batch"):
                starts = grid[b : b + int(batch_size)]
                slices = [tuple(slice(s, s + p) for s, p in zip(st, patch)) for st in starts]
                batch = torch.stack([padded[(slice(None),) + sl] for sl in slices]).to(device)
                pred = predict_flips(model, batch, flips, activation)
                if out is None:
                    out = torch.zeros((pred.shape[1],) + full, dtype=torch.float32, device=device)
                    norm = torch.zeros(full, dtype=torch.float32, device=device)
                for k, sl in enumerate(slices):
                    out[(slice(None),) + sl] += pred[k] * weights
                    norm[sl] += weights
    finally:
        if was_training is not None and hasattr(model, "train"):
            model.train(was_training)
    result = out / norm.clamp_min(1e-8)
    crop = (slice(None),) + tuple(slice(0, s) for s in spatial)
    return result[crop].to(image.device)


def predict_image(
    model: torch.nn.Module,
    image: torch.Tensor | np.ndarray,
    *,
    tta: TtaFlips = "none",
    activation: str | None = "sigmoid",
    pad_mode: str = "reflect",
    amp: bool | str = False,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Predict a whole ``image (C, *spatial)`` (2D ``(C, H, W)`` or 3D ``(C, D, H, W)``) in one pass.

    A U-Net is fully convolutional, so it takes any size that is a multiple of its ``size_divisor``:
    the image is padded to one (``pad_mode``, see :func:`~course_utils.models.pad_to_multiple`) and
    the output cropped back. ``tta``: as in :func:`sliding_window_inference`. ``activation``: applied
    to each pass before averaging. Runs under :func:`torch.inference_mode` in eval mode and restores
    the model's mode. Returns float32 ``(out_channels, *spatial)`` on the device of ``image``.
    """
    image = torch.as_tensor(image)
    if image.ndim not in (3, 4):
        raise ValueError(
            f"image must be (C, H, W) or (C, D, H, W), got shape {tuple(image.shape)}; "
            "for a single-channel image add the channel axis with image[None]."
        )
    check_choice("activation", activation, ACTIVATIONS)
    device = _model_device(model, image) if device is None else torch.device(device)
    flips = flip_sets(image.ndim - 1, tta)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device, amp):
            padded, crop = pad_to_multiple(
                image.float()[None].to(device), getattr(model, "size_divisor", 1), mode=pad_mode
            )
            out = crop_to(predict_flips(model, padded, flips, activation), crop)[0]
    finally:
        model.train(was_training)
    return out.to(image.device)


def predict_flips(
    model: Callable[[torch.Tensor], torch.Tensor],
    batch: torch.Tensor,
    flips: Sequence[tuple[int, ...]],
    activation: str | None = None,
) -> torch.Tensor:
    """The mean over ``flips`` (tensor dims, from :func:`flip_sets`) of ``activation(model(flipped batch))``
    flipped back: float32 ``(B, out_channels, *spatial)`` for a batch ``(B, C, *spatial)``."""
    layout = memory_layout(model) if isinstance(model, torch.nn.Module) else None
    total = None
    for dims in flips:
        x = as_layout(batch.flip(dims) if dims else batch, layout)
        y = model(x)
        if (
            not isinstance(y, torch.Tensor)
            or y.ndim != batch.ndim
            or y.shape[2:] != batch.shape[2:]
            or y.shape[0] != batch.shape[0]
        ):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(
                f"model must map (B, C, *spatial) = {tuple(batch.shape)} to (B, out_channels, "
                f"*spatial); it returned {got}. Use a model that keeps the spatial size "
                "(padding='same' convolutions) or a patch size it supports."
            )
        y = y.float()
        if activation == "sigmoid":
            y = torch.sigmoid(y)
        elif activation == "softmax":
            y = torch.softmax(y, dim=1)
        y = y.flip(dims) if dims else y
        total = y if total is None else total + y
    return total / len(flips)


def flip_sets(n_spatial: int, tta: TtaFlips = True) -> list[tuple[int, ...]]:
    """Every subset of the flipped axes (:func:`tta_axes`) as dims of a ``(B, C, *spatial)`` batch,
    the empty one (no flip) first."""
    axes = [2 + a for a in tta_axes(tta, n_spatial)]
    return [combo for r in range(len(axes) + 1) for combo in itertools.combinations(axes, r)]


def _patch_tuple(patch_size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    patch = (int(patch_size),) * ndim if np.isscalar(patch_size) else tuple(int(p) for p in patch_size)
    if len(patch) != ndim or min(patch) < 1:
        raise ValueError(
            f"patch_size must be a positive int or {ndim} positive ints for a {ndim}D image, got {patch_size!r}."
        )
    return patch


def _pad_to(image: torch.Tensor, patch: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad the end of each spatial axis shorter than the patch."""
    pad = []
    for size, p in zip(reversed(image.shape[1:]), reversed(patch)):
        pad += [0, max(p - size, 0)]
    return F.pad(image, pad) if any(pad) else image


def _model_device(model, image: torch.Tensor) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return image.device


__all__ = [
    "TTA_CHOICES",
    "lr_axis",
    "tta_axes",
    "flip_sets",
    "window_starts",
    "blend_weights",
    "sliding_window_inference",
    "predict_image",
    "predict_flips",
]
