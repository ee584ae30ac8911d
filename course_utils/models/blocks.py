"""Building blocks of the course U-Net, each for 2D ``(B, C, H, W)`` and 3D ``(B, C, D, H, W)``.

* :func:`make_norm`: batch / instance / group normalisation or none.
* :class:`ConvNormAct`: ``k x k`` convolution (same padding), normalisation, ReLU.
* :class:`DoubleConv`: two :class:`ConvNormAct` (the original U-Net block).
* :class:`ResidualBlock`: two convolutions plus a shortcut (ResNet-style).
* :class:`RecurrentConv` and :class:`RecurrentResidualBlock`: the R2U-Net units.
* :class:`MultiResBlock` and :class:`ResPath`: the MultiResUNet units (Ibtehaz & Rahman 2020).
* :func:`make_upsampling`: x2 upsampling by transposed convolution or by interpolation.
* :func:`make_block`: a block by name (:data:`BLOCK_KINDS`), or from a class of your own (:data:`BlockFactory`).

Every block keeps the spatial size; only pooling and upsampling change it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ConfigTypeError
from ..validate import check_choice, check_int

NORM_KINDS = ("batch", "instance", "group", None)
BLOCK_KINDS = ("double_conv", "residual", "recurrent_residual", "multires")
UPSAMPLING_KINDS = ("transpose", "interpolate")
GROUP_NORM_MAX_GROUPS = 8

# A block of your own for the course UNet: called as ``factory(in_channels, out_channels)``, returns an nn.Module.
BlockFactory = Callable[[int, int], nn.Module]
BlockSpec = str | BlockFactory


# ---------------------------------------------------------------- argument checks
def check_dims(dims: Any) -> int:
    """``dims`` must be 2 (images) or 3 (volumes)."""
    if isinstance(dims, bool) or dims not in (2, 3):
        raise ConfigError(
            f"dims={dims!r} is not supported: use dims=2 for images (B, C, H, W) or dims=3 for volumes (B, C, D, H, W)."
        )
    return int(dims)


def check_dropout(dropout: Any) -> float:
    """A dropout probability in ``[0, 1)``."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ConfigTypeError(f"dropout must be a float in [0, 1), got {dropout!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}; 0 switches it off.")
    return float(dropout)


# ---------------------------------------------------------------- layer factories
def conv_class(dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return {2: nn.Conv2d, 3: nn.Conv3d}[check_dims(dims)]


def conv_transpose_class(dims: int) -> type[nn.Module]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[check_dims(dims)]


def max_pool_class(dims: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d``."""
    return {2: nn.MaxPool2d, 3: nn.MaxPool3d}[check_dims(dims)]


def make_dropout(p: float, dims: int) -> nn.Module:
    """Channel dropout (``nn.Dropout2d``/``nn.Dropout3d``) with probability ``p``; ``nn.Identity`` if ``p == 0``."""
    p = check_dropout(p)
    if p == 0.0:
        return nn.Identity()
    return {2: nn.Dropout2d, 3: nn.Dropout3d}[check_dims(dims)](p)


def group_count(channels: int, max_groups: int = GROUP_NORM_MAX_GROUPS) -> int:
    """The largest divisor of ``channels`` that is ``<= max_groups`` (GroupNorm needs a divisor)."""
    return max(g for g in range(1, min(channels, max_groups) + 1) if channels % g == 0)


def make_norm(kind: str | None, channels: int, dims: int) -> nn.Module:
    """A normalisation layer for ``channels`` feature maps of a ``dims``-D network.

    ``"batch"``: ``BatchNorm{2,3}d`` (statistics over the batch; needs batch > 1 in training).
    ``"instance"``: ``InstanceNorm{2,3}d(affine=True)`` (per sample and channel).
    ``"group"``: ``GroupNorm`` with up to 8 groups (:func:`group_count`).
    ``None`` (or ``"none"``): ``nn.Identity``.
    """
    if kind == "none":
        kind = None
    check_choice("norm", kind, NORM_KINDS)
    check_int("channels", channels, 1)
    dims = check_dims(dims)
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](channels)
    if kind == "instance":
        return {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims](channels, affine=True)
    return nn.GroupNorm(group_count(channels), channels)


# ---------------------------------------------------------------- blocks
class ConvNormAct(nn.Module):
    """Convolution (``kernel_size``, stride 1, same padding) -> norm -> ReLU.

    The convolution has no bias when a norm follows (the norm's shift replaces it).
    ``activation=False`` leaves out the ReLU (last layer of a residual branch).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dims: int = 2,
        norm: str | None = "batch",
        kernel_size: int = 3,
        activation: bool = True,
    ):
        super().__init__()
        check_int("kernel_size", kernel_size, 1)
        if kernel_size % 2 == 0:
            raise ConfigError(
                f"kernel_size={kernel_size} is even; use an odd size so that 'same' padding keeps the spatial size."
            )
        self.conv = conv_class(dims)(
            check_int("in_channels", in_channels, 1),
            check_int("out_channels", out_channels, 1),
            kernel_size,
            padding=kernel_size // 2,
            bias=norm in (None, "none"),
        )
        self.norm = make_norm(norm, out_channels, dims)
        self.act = nn.ReLU(inplace=False) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class DoubleConv(nn.Module):
    """The U-Net block: ``conv1`` (3x3 conv, norm, ReLU) -> ``dropout`` -> ``conv2`` (same).

    ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, dims: int = 2, norm: str | None = "batch", dropout: float = 0.0
    ):
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, dims=dims, norm=norm)
        self.dropout = make_dropout(dropout, dims)
        self.conv2 = ConvNormAct(out_channels, out_channels, dims=dims, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.dropout(self.conv1(x)))


class ResidualBlock(nn.Module):
    """``ReLU(conv2(dropout(conv1(x))) + shortcut(x))`` (He et al. 2016, basic block).

    ``conv1`` is conv-norm-ReLU, ``conv2`` conv-norm without ReLU. ``shortcut`` is the
    identity when the channel count is kept, else a 1x1 convolution (+ norm).
    ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, dims: int = 2, norm: str | None = "batch", dropout: float = 0.0
    ):
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, dims=dims, norm=norm)
        self.dropout = make_dropout(dropout, dims)
        self.conv2 = ConvNormAct(out_channels, out_channels, dims=dims, norm=norm, activation=False)
        if in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = ConvNormAct(
                in_channels, out_channels, dims=dims, norm=norm, kernel_size=1, activation=False
            )
        self.act = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.dropout(self.conv1(x))) + self.shortcut(x))


class RecurrentConv(nn.Module):
    """Recurrent convolutional unit of R2U-Net (Alom et al. 2018), channel count kept.

    ONE conv-norm-ReLU ``f`` (the attribute ``unit``) is applied ``recurrence + 1`` times
    with shared weights: ``x1 = f(x)``; then ``recurrence`` times ``x1 = f(x + x1)``.
    The parameter count therefore does not depend on ``recurrence`` (the ``t`` of the paper),
    but the receptive field grows by one convolution per step.
    ``(B, channels, *S) -> (B, channels, *S)``.
    """

    def __init__(self, channels: int, *, dims: int = 2, norm: str | None = "batch", recurrence: int = 2):
        super().__init__()
        self.recurrence = check_int("recurrence", recurrence, 1)
        self.unit = ConvNormAct(channels, channels, dims=dims, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.unit(x)
        for _ in range(self.recurrence):
            x1 = self.unit(x + x1)
        return x1

    def extra_repr(self) -> str:
        return f"recurrence={self.recurrence}"


class RecurrentResidualBlock(nn.Module):
    """R2U-Net block: ``p = projection(x)`` (1x1 conv to ``out_channels``), then
    ``p + recurrent2(dropout(recurrent1(p)))`` with two :class:`RecurrentConv` units.

    ``(B, in_channels, *S) -> (B, out_channels, *S)``; parameters independent of ``recurrence``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dims: int = 2,
        norm: str | None = "batch",
        recurrence: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.projection = conv_class(dims)(
            check_int("in_channels", in_channels, 1), check_int("out_channels", out_channels, 1), 1
        )
        self.recurrent1 = RecurrentConv(out_channels, dims=dims, norm=norm, recurrence=recurrence)
        self.dropout = make_dropout(dropout, dims)
        self.recurrent2 = RecurrentConv(out_channels, dims=dims, norm=norm, recurrence=recurrence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.projection(x)
        return p + self.recurrent2(self.dropout(self.recurrent1(p)))


def multires_split(channels: int) -> tuple[int, int, int]:
    """Widths ``(a, b, c)`` of the three chained convolutions of a :class:`MultiResBlock`.

    The paper's W/6, W/3, W/2 with ``a = max(1, channels // 6)``, ``b = max(1, channels // 3)``
    and ``c = channels - a - b``, so that ``a + b + c == channels`` exactly (32 -> (5, 10, 17),
    7 -> (1, 2, 4), 3 -> (1, 1, 1)). Needs ``channels >= 3``.
    """
    check_int("out_channels", channels, 1)
    if channels < 3:
        raise ConfigError(
            f"block='multires' splits out_channels into three parts of at least 1 channel each; "
            f"out_channels={channels} is too small, use at least 3 (for a UNet: base_width >= 3)."
        )
    a, b = max(1, channels // 6), max(1, channels // 3)
    return a, b, channels - a - b


class MultiResBlock(nn.Module):
    """MultiResUNet block (Ibtehaz & Rahman 2020): ``out_norm(ReLU(dropout(norm(cat[y1, y2, y3])) + shortcut(x)))``.

    ``y1 = conv1(x)``, ``y2 = conv2(y1)``, ``y3 = conv3(y2)`` are three successive 3x3 conv-norm-ReLU
    layers, so they see 3x3, 5x5 and 7x7 windows (the cheap stand-in for parallel 3x3/5x5/7x7
    convolutions). Their widths :attr:`split` are the paper's W/6, W/3, W/2 and sum to ``out_channels``
    (:func:`multires_split`). ``shortcut`` is a 1x1 conv + norm (no ReLU) from the input; ``norm`` and
    ``out_norm`` are the norms before the sum and after the final ReLU, as in the paper's code.
    The paper scales the U-Net width by ``alpha = 1.67``; here ``W = out_channels`` (no alpha),
    since the course fixes the width of every level. Dropout acts on the concatenated branch.
    ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, dims: int = 2, norm: str | None = "batch", dropout: float = 0.0
    ):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        self.split = multires_split(out_channels)
        a, b, c = self.split
        self.conv1 = ConvNormAct(in_channels, a, dims=dims, norm=norm)
        self.conv2 = ConvNormAct(a, b, dims=dims, norm=norm)
        self.conv3 = ConvNormAct(b, c, dims=dims, norm=norm)
        self.norm = make_norm(norm, out_channels, dims)
        self.dropout = make_dropout(dropout, dims)
        self.shortcut = ConvNormAct(in_channels, out_channels, dims=dims, norm=norm, kernel_size=1, activation=False)
        self.act = nn.ReLU(inplace=False)
        self.out_norm = make_norm(norm, out_channels, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.conv1(x)
        y2 = self.conv2(y1)
        y3 = self.conv3(y2)
        branch = self.dropout(self.norm(torch.cat([y1, y2, y3], dim=1)))
        return self.out_norm(self.act(branch + self.shortcut(x)))

    def extra_repr(self) -> str:
        return f"split={self.split}"


class ResPath(nn.Module):
    """MultiResUNet skip path: ``length`` residual units ``out_norm(ReLU(conv(x) + shortcut(x)))``.

    In each unit (an entry of ``units``) ``conv`` is a 3x3 conv-norm-ReLU and ``shortcut`` a 1x1
    conv + norm, as in the paper's code. It lets the encoder features go through some extra
    processing before they meet the (deeper, more semantic) decoder features.
    ``(B, channels, *S) -> (B, channels, *S)``.
    """

    def __init__(self, channels: int, length: int, *, dims: int = 2, norm: str | None = "batch"):
        super().__init__()
        check_int("channels", channels, 1)
        self.length = check_int("length", length, 1)
        self.units = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    conv=ConvNormAct(channels, channels, dims=dims, norm=norm),
                    shortcut=ConvNormAct(channels, channels, dims=dims, norm=norm, kernel_size=1, activation=False),
                    out_norm=make_norm(norm, channels, dims),
                )
            )
            for _ in range(self.length)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = unit["out_norm"](torch.relu(unit["conv"](x) + unit["shortcut"](x)))
        return x

    def extra_repr(self) -> str:
        return f"length={self.length}"


def block_name(kind: BlockSpec) -> str:
    """How a block kind reads in messages and reprs: the string itself, or the name of a block factory."""
    if isinstance(kind, str):
        return kind
    inner = getattr(kind, "func", kind)  # functools.partial(MyBlock, ...) reads as MyBlock
    return getattr(inner, "__qualname__", None) or type(inner).__qualname__


def make_block(
    kind: BlockSpec,
    in_channels: int,
    out_channels: int,
    *,
    dims: int = 2,
    norm: str | None = "batch",
    recurrence: int = 2,
    dropout: float = 0.0,
) -> nn.Module:
    """One of :data:`BLOCK_KINDS`: ``"double_conv"``, ``"residual"``, ``"recurrent_residual"`` or ``"multires"``,
    or a block of your own: a callable ``kind(in_channels, out_channels) -> nn.Module`` (a class, or
    ``functools.partial(MyBlock, norm="group")``). A callable gets the two channel counts only: ``dims``, ``norm``,
    ``recurrence`` and ``dropout`` configure the course's blocks, so bind your block's options yourself.

    ``recurrence`` is used by ``"recurrent_residual"`` only.
    """
    if callable(kind):
        block = kind(check_int("in_channels", in_channels, 1), check_int("out_channels", out_channels, 1))
        if not isinstance(block, nn.Module):
            raise ConfigTypeError(
                f"block={block_name(kind)} returned {type(block).__name__}, not an nn.Module: a block of your own "
                "must be called as block(in_channels, out_channels) and return the module."
            )
        return block
    check_choice("block", kind, BLOCK_KINDS)
    if kind == "double_conv":
        return DoubleConv(in_channels, out_channels, dims=dims, norm=norm, dropout=dropout)
    if kind == "residual":
        return ResidualBlock(in_channels, out_channels, dims=dims, norm=norm, dropout=dropout)
    if kind == "multires":
        return MultiResBlock(in_channels, out_channels, dims=dims, norm=norm, dropout=dropout)
    return RecurrentResidualBlock(
        in_channels, out_channels, dims=dims, norm=norm, recurrence=recurrence, dropout=dropout
    )


# ---------------------------------------------------------------- upsampling
class InterpolateUp(nn.Module):
    """x2 upsampling by (bi/tri)linear interpolation (``align_corners=False``), then a 1x1 ``conv``
    that maps ``in_channels`` to ``out_channels``. No learned spatial kernel, hence no
    checkerboard artefacts. ``(B, in_channels, *S) -> (B, out_channels, *2S)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dims: int = 2):
        super().__init__()
        dims = check_dims(dims)
        self.mode = "bilinear" if dims == 2 else "trilinear"
        self.conv = conv_class(dims)(
            check_int("in_channels", in_channels, 1), check_int("out_channels", out_channels, 1), 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode=self.mode, align_corners=False)
        return self.conv(x)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, scale_factor=2"


def make_upsampling(kind: str, in_channels: int, out_channels: int, *, dims: int = 2) -> nn.Module:
    """x2 upsampling from ``in_channels`` to ``out_channels`` channels.

    ``"transpose"``: ``ConvTranspose{2,3}d(kernel_size=2, stride=2)`` (learned; each output
    voxel sees exactly one input voxel). ``"interpolate"``: :class:`InterpolateUp`.
    """
    check_choice("upsampling", kind, UPSAMPLING_KINDS)
    check_int("in_channels", in_channels, 1)
    check_int("out_channels", out_channels, 1)
    if kind == "transpose":
        return conv_transpose_class(dims)(in_channels, out_channels, kernel_size=2, stride=2)
    return InterpolateUp(in_channels, out_channels, dims=dims)
