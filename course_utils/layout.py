"""Memory layout of convolution networks: channels-last (``(B, H, W, C)`` / ``(B, D, H, W, C)`` in memory).

The numbers do not change; convolutions get faster on CPUs and recent GPUs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}  # tensor rank -> layout


def memory_layout(model: nn.Module) -> torch.memory_format | None:
    """``torch.channels_last`` / ``torch.channels_last_3d`` if ``model``'s convolution weights are stored
    channels-last, else ``None``.

    Judged on the first 4-D or 5-D weight whose layout is unambiguous (more than one input
    channel and a kernel larger than 1); ``None`` for models without one.
    """
    for p in model.parameters():
        if p.ndim in CHANNELS_LAST and p.shape[1] > 1 and int(np.prod(p.shape[2:])) > 1:
            layout = CHANNELS_LAST[p.ndim]
            return layout if p.is_contiguous(memory_format=layout) and not p.is_contiguous() else None
    return None


def uses_channels_last(model: nn.Module) -> bool:
    """Whether ``model``'s 2-D or 3-D convolution weights are stored channels-last (:func:`memory_layout`)."""
    return memory_layout(model) is not None


def to_channels_last(model: nn.Module) -> nn.Module:
    """``model`` with its convolution weights stored channels-last (in place; 2-D or 3-D networks)."""
    ranks = {p.ndim for p in model.parameters() if p.ndim in CHANNELS_LAST}
    if len(ranks) == 1:
        model.to(memory_format=CHANNELS_LAST[ranks.pop()])
    return model


def as_layout(x: torch.Tensor, layout: torch.memory_format | None) -> torch.Tensor:
    """``x`` in ``layout`` when it has the rank of that layout (``None``: unchanged)."""
    if layout is not None and CHANNELS_LAST.get(x.ndim) == layout:
        return x.contiguous(memory_format=layout)
    return x


__all__ = ["CHANNELS_LAST", "memory_layout", "uses_channels_last", "to_channels_last", "as_layout"]
