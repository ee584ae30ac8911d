"""The dataset patches that most activate a filter (Zeiler & Fergus 2014): real inputs, not synthetic ones.

For every image the layer's channel map is computed; its strongest positions are mapped back to
input coordinates (feature position ``p`` at stride ``s`` covers input around ``(p + 0.5) * s``)
and a patch of ``patch_size`` around it is cut out of the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .activation_max import Normalization, make_normalizer
from .hooks import capture_features, evaluation_mode


@dataclass
class PatchHit:
    """One strongly activating place: ``image_index`` in the dataset, ``centre`` in input pixels
    ``(y, x)`` or ``(z, y, x)``, the ``activation`` there, and the input ``patch`` ``(C, *patch_size)``."""

    image_index: int
    centre: tuple[int, ...]
    activation: float
    patch: torch.Tensor


def _batches(images: torch.Tensor | Iterable) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.ndim not in (4, 5):
            raise ValueError(f"images must be (N, C, H, W) or (N, C, D, H, W), got {tuple(images.shape)}.")
        yield images
        return
    for batch in images:  # a DataLoader: (images, masks, ...) tuples or plain tensors
        yield batch[0] if isinstance(batch, (list, tuple)) else batch


def _crop(image: torch.Tensor, centre: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """``image[:, window]`` of ``size`` around ``centre``, shifted inside the image at its borders."""
    slices = [slice(None)]
    for c, s, n in zip(centre, size, image.shape[1:]):
        s = min(s, n)
        start = min(max(c - s // 2, 0), n - s)
        slices.append(slice(start, start + s))
    return image[tuple(slices)]


def top_activating_patches(
    model: nn.Module,
    images: torch.Tensor | Iterable,
    layer: str,
    channel: int,
    *,
    patch_size: int | Sequence[int] = 32,
    k: int = 8,
    one_per_image: bool = True,
    normalize: Normalization = None,
) -> list[PatchHit]:
    """The ``k`` input patches where ``layer``'s ``channel`` is most active, strongest first.

    Args:
        images: ``(N, C, *spatial)`` in image space, or an iterable of such batches (e.g. a
            DataLoader; tuples give their first element). Normalised with ``normalize`` before
            the model (see :func:`~.activation_max.maximize_activation`); patches are cut from
            the un-normalised images.
        one_per_image: keep only the strongest place of each image (more variety), else the
            ``k`` strongest positions anywhere (neighbouring positions can repeat a patch).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")
    hits: list[PatchHit] = []
    offset = 0
    with evaluation_mode(model), torch.no_grad(), capture_features(model, layer) as store:
        for batch in _batches(images):
            dims = batch.ndim - 2
            sizes = (patch_size,) * dims if isinstance(patch_size, int) else tuple(patch_size)
            if len(sizes) != dims:
                raise ValueError(f"patch_size {patch_size} does not match {dims} spatial axes.")
            device = next(iter(model.parameters()), torch.empty(0)).device
            model(make_normalizer(normalize, batch.shape[1])(batch.to(device)))
            fmap = store[layer]
            if not isinstance(fmap, torch.Tensor) or fmap.ndim != batch.ndim:
                raise ValueError(f"layer {layer!r} does not give feature maps (B, C, *spatial) like the input.")
            if not 0 <= channel < fmap.shape[1]:
                raise ValueError(f"channel {channel} does not exist: layer {layer!r} has {fmap.shape[1]}.")
            maps = fmap[:, channel].cpu()
            strides = [i / f for i, f in zip(batch.shape[2:], maps.shape[1:])]
            flat = maps.reshape(maps.shape[0], -1)
            per_image = 1 if one_per_image else min(k, flat.shape[1])
            values, indices = flat.topk(per_image, dim=1)
            for b in range(flat.shape[0]):
                for value, index in zip(values[b].tolist(), indices[b].tolist()):
                    position = torch.unravel_index(torch.tensor(index), maps.shape[1:])
                    centre = tuple(int((int(p) + 0.5) * s) for p, s in zip(position, strides))
                    hits.append(PatchHit(offset + b, centre, value, _crop(batch[b].cpu(), centre, sizes)))
            hits = sorted(hits, key=lambda h: -h.activation)[:k]
            offset += batch.shape[0]
    if offset == 0:
        raise ValueError("images is empty.")
    return hits
