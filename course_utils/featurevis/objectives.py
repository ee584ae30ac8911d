"""What activation maximisation maximises: a channel, a single neuron, or a region of the output.

Each objective names a ``layer`` (``""`` = the model output, e.g. segmentation logits) and maps
that layer's output ``(B, C, *spatial)`` to one number (averaged over the batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch


class Objective(Protocol):
    """What :func:`~.activation_max.maximize_activation` needs: a ``layer`` name, a scalar of its output."""

    layer: str

    def __call__(self, activation: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> str: ...


def _check_activation(activation: object, layer: str, channel: int) -> torch.Tensor:
    if not isinstance(activation, torch.Tensor):
        raise TypeError(
            f"layer {layer!r} returns {type(activation).__name__}, not a tensor; pick one of "
            "its sublayers (see course_utils.featurevis.layer_names)."
        )
    if activation.ndim < 3:
        raise ValueError(
            f"layer {layer!r} gives shape {tuple(activation.shape)}; objectives need feature maps (B, C, *spatial)."
        )
    if not -activation.shape[1] <= channel < activation.shape[1]:
        raise ValueError(
            f"channel {channel} does not exist: layer {layer!r} has "
            f"{activation.shape[1]} channels (0 to {activation.shape[1] - 1})."
        )
    return activation


@dataclass(frozen=True)
class ChannelObjective:
    """Mean activation of one channel (a whole feature map): "what does this filter respond to?"."""

    layer: str
    channel: int

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        activation = _check_activation(activation, self.layer, self.channel)
        return activation[:, self.channel].mean()

    def describe(self) -> str:
        return f"{self.layer or 'output'}[{self.channel}]"


@dataclass(frozen=True)
class NeuronObjective:
    """Activation of one channel at one position (``None`` = the centre of the feature map)."""

    layer: str
    channel: int
    position: tuple[int, ...] | None = None

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        activation = _check_activation(activation, self.layer, self.channel)
        spatial = tuple(activation.shape[2:])
        position = tuple(s // 2 for s in spatial) if self.position is None else tuple(self.position)
        if len(position) != len(spatial) or any(not 0 <= p < s for p, s in zip(position, spatial)):
            raise ValueError(
                f"position {position} is outside the feature map of layer {self.layer!r} (spatial size {spatial})."
            )
        return activation[(slice(None), self.channel, *position)].mean()

    def describe(self) -> str:
        return f"{self.layer or 'output'}[{self.channel}] at {self.position or 'centre'}"


@dataclass(frozen=True, eq=False)
class RegionObjective:
    """Mean of one output channel over a region ``mask`` (bool, ``spatial`` of the layer).

    With ``layer=""`` and a segmentation network this asks: "what input makes the network say
    *vessel* here?". Build a disk around a pixel with :meth:`disk`.
    """

    mask: torch.Tensor
    channel: int = 0
    layer: str = ""

    def __post_init__(self):
        if not isinstance(self.mask, torch.Tensor) or self.mask.dtype != torch.bool:
            raise TypeError(
                "mask must be a bool tensor of the layer's spatial size, e.g. "
                "RegionObjective.disk(spatial, centre, radius)."
            )
        if not self.mask.any():
            raise ValueError("mask is empty: the region must contain at least one pixel.")

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        activation = _check_activation(activation, self.layer, self.channel)
        if tuple(activation.shape[2:]) != tuple(self.mask.shape):
            raise ValueError(
                f"mask has shape {tuple(self.mask.shape)} but layer {self.layer!r} gives "
                f"spatial size {tuple(activation.shape[2:])}."
            )
        return activation[:, self.channel][:, self.mask.to(activation.device)].mean()

    def describe(self) -> str:
        return f"{self.layer or 'output'}[{self.channel}] over {int(self.mask.sum())} pixels"

    @classmethod
    def disk(
        cls, spatial: Sequence[int], centre: Sequence[int], radius: float, channel: int = 0, layer: str = ""
    ) -> "RegionObjective":
        """A disk (ball in 3D) of ``radius`` pixels around ``centre`` on a grid of size ``spatial``."""
        grids = torch.meshgrid(*[torch.arange(s) for s in spatial], indexing="ij")
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
        return cls(mask=dist2 <= radius**2, channel=channel, layer=layer)
