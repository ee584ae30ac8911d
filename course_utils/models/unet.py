"""The course U-Net (Ronneberger et al. 2015), 2D or 3D, the one model every lesson imports.

Layout for ``depth=4`` (3 poolings); level ``i`` works at ``1 / 2**i`` of the input size
with ``widths[i]`` channels::

    x -> encoders[0] ------------------------------------ skip ---> decoders[0] -> head -> logits
           | pool                                                     ^ up
           encoders[1] ------------------------- skip ---> decoders[1]
             | pool                                         ^ up
             encoders[2] ------------ skip ---> decoders[2]
               | pool                            ^ up
               bottleneck -----------------------+

``decoders[i]`` works at the resolution of ``encoders[i]`` and receives its skip; it is
applied after ``decoders[i + 1]`` (the forward pass walks the decoders from deep to
shallow). Each decoder has ``.up`` (x2 upsampling to ``widths[i]`` channels) and
``.block``. Names are stable so that hooks (``model.encoders[0]``, ``model.bottleneck``,
``model.decoders[1].block``, ``model.head``) work in every lesson.

With ``block="multires"`` (MultiResUNet, Ibtehaz & Rahman 2020) the skip of level ``i`` first
goes through ``res_paths[i]``, a :class:`~.blocks.ResPath` of ``depth - 1 - i`` residual units:
the shallowest skip, the furthest in meaning from its decoder, gets the longest path, the
deepest skip a single unit (4, 3, 2, 1 for the paper's 5 levels). For the other blocks
``res_paths`` is an empty ``nn.ModuleList`` and the skips go straight to the decoders.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, ConfigTypeError
from .blocks import (
    BLOCK_KINDS,
    NORM_KINDS,
    UPSAMPLING_KINDS,
    BlockSpec,
    ResPath,
    block_name,
    check_choice,
    check_dims,
    check_dropout,
    check_int,
    conv_class,
    make_block,
    make_upsampling,
    max_pool_class,
)


def level_widths(base_width: int, width_multiplier: float, depth: int) -> tuple[int, ...]:
    """Channels per resolution level: ``int(base_width * width_multiplier**i)`` for ``i < depth``."""
    widths = tuple(int(math.floor(base_width * width_multiplier**i + 1e-9)) for i in range(depth))
    if min(widths) < 1:
        raise ConfigError(
            f"base_width={base_width} with width_multiplier={width_multiplier} gives "
            f"widths {widths}; every level needs at least 1 channel "
            "(use width_multiplier >= 1 or a larger base_width)."
        )
    return widths


class DecoderStage(nn.Module):
    """``block(cat([skip, up(x)]))``, or ``block(up(x))`` without skip connection.

    ``x``: ``(B, in_channels, *S)``; ``skip``: ``(B, out_channels, *2S)`` (for ``block="multires"``
    already through the level's ResPath, see :class:`UNet`); returns ``(B, out_channels, *2S)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dims: int,
        upsampling: str,
        block: BlockSpec,
        norm: str | None,
        recurrence: int,
        dropout: float,
        skip_connection: bool = True,
    ):
        super().__init__()
        self.uses_skip = bool(skip_connection)
        self.up = make_upsampling(upsampling, in_channels, out_channels, dims=dims)
        block_in = 2 * out_channels if self.uses_skip else out_channels
        self.block = make_block(
            block, block_in, out_channels, dims=dims, norm=norm, recurrence=recurrence, dropout=dropout
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        if self.uses_skip:
            if skip is None:
                raise ValueError("this decoder stage was built with a skip connection; pass skip=")
            x = torch.cat([skip, x], dim=1)
        elif skip is not None:
            raise ValueError("this decoder stage was built without skip connection; pass skip=None")
        return self.block(x)

    def extra_repr(self) -> str:
        return f"uses_skip={self.uses_skip}"


class UNet(nn.Module):
    """U-Net for binary or multi-class segmentation; returns logits (no sigmoid/softmax).

    Args:
        in_channels: channels of the input (3 for RGB fundus images, 2 for FLAIR+T1 MRI).
        out_channels: output channels (1 for a binary mask with ``BCEWithLogitsLoss``).
        dims: 2 for images ``(B, C, H, W)``, 3 for volumes ``(B, C, D, H, W)``.
        depth: number of resolution levels; ``depth - 1`` poolings (depth 1 = no pooling).
        base_width: channels at level 0.
        width_multiplier: channels at level ``i`` are ``int(base_width * width_multiplier**i)``.
        norm: ``"batch"``, ``"instance"``, ``"group"`` or ``None``.
        upsampling: ``"transpose"`` (ConvTranspose k=2 s=2) or ``"interpolate"``
            ((bi/tri)linear x2 then 1x1 conv).
        block: ``"double_conv"``, ``"residual"``, ``"recurrent_residual"`` (R2U-Net) or
            ``"multires"`` (MultiResUNet: MultiRes blocks and ResPaths on the skips; needs
            at least 3 channels per level); or a block of your own, a callable
            ``block(in_channels, out_channels) -> nn.Module`` (your class, or
            ``functools.partial(MyBlock, norm="group")``) that builds every encoder, bottleneck
            and decoder block. ``norm``, ``recurrence`` and ``dropout`` configure the course's
            blocks only: bind your block's options yourself (``dropout > 0`` is refused). Such a
            model has no :attr:`config` (a checkpoint could not rebuild it).
        recurrence: ``t`` of the recurrent block (ignored by the other blocks).
        skip_connections: ``False`` gives each decoder only the upsampled path (ablation).
        dropout: channel-dropout probability inside every block (0 = off).

    ``forward(x)`` needs every spatial size divisible by :attr:`size_divisor`
    (``2**(depth-1)``) and returns ``(B, out_channels, *spatial)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        dims: int = 2,
        depth: int = 4,
        base_width: int = 16,
        width_multiplier: float = 2.0,
        norm: str | None = "batch",
        upsampling: str = "transpose",
        block: BlockSpec = "double_conv",
        recurrence: int = 2,
        skip_connections: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)):
            raise ConfigTypeError(f"width_multiplier must be a number, got {width_multiplier!r}.")
        if not width_multiplier > 0:
            raise ConfigError(f"width_multiplier must be > 0, got {width_multiplier}.")
        if not isinstance(skip_connections, bool):
            raise ConfigTypeError(f"skip_connections must be True or False, got {skip_connections!r}.")
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.out_channels = check_int("out_channels", out_channels, 1)
        self.dims = check_dims(dims)
        self.depth = check_int("depth", depth, 1)
        self.base_width = check_int("base_width", base_width, 1)
        self.width_multiplier = float(width_multiplier)
        self.norm = None if norm == "none" else check_choice("norm", norm, NORM_KINDS + ("none",))
        self.upsampling = check_choice("upsampling", upsampling, UPSAMPLING_KINDS)
        self.block = block if callable(block) else check_choice("block", block, BLOCK_KINDS)
        self.recurrence = check_int("recurrence", recurrence, 1)
        self.skip_connections = skip_connections
        self.dropout = check_dropout(dropout)
        if self.custom_block and self.dropout:
            raise ConfigError(
                f"dropout={self.dropout} acts inside the course's blocks; block={block_name(block)} is your own "
                "block, so put the dropout in it (and leave the UNet's dropout at 0)."
            )
        self.widths = level_widths(self.base_width, self.width_multiplier, self.depth)

        block_args = dict(dims=self.dims, norm=self.norm, recurrence=self.recurrence, dropout=self.dropout)
        ins = (self.in_channels,) + self.widths[:-1]
        self.encoders = nn.ModuleList(
            make_block(self.block, ins[i], self.widths[i], **block_args) for i in range(self.depth - 1)
        )
        self.pool = max_pool_class(self.dims)(kernel_size=2, stride=2)
        self.bottleneck = make_block(self.block, ins[-1], self.widths[-1], **block_args)
        # Empty (no parameters, no state_dict keys) unless there are MultiResUNet skips to process.
        uses_res_paths = self.block == "multires" and self.skip_connections
        self.res_paths = nn.ModuleList(
            ResPath(self.widths[i], self.depth - 1 - i, dims=self.dims, norm=self.norm)
            for i in range(self.depth - 1 if uses_res_paths else 0)
        )
        self.decoders = nn.ModuleList(
            DecoderStage(
                self.widths[i + 1],
                self.widths[i],
                upsampling=self.upsampling,
                block=self.block,
                skip_connection=self.skip_connections,
                **block_args,
            )
            for i in range(self.depth - 1)
        )
        self.head = conv_class(self.dims)(self.widths[0], self.out_channels, kernel_size=1)

    # ------------------------------------------------------------ configuration
    @property
    def size_divisor(self) -> int:
        """Every spatial size of the input must be a multiple of this (``2**(depth-1)``)."""
        return 2 ** (self.depth - 1)

    @property
    def custom_block(self) -> bool:
        """True when the blocks come from a class of your own rather than one of :data:`BLOCK_KINDS`."""
        return not isinstance(self.block, str)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable); ``UNet.from_config(cfg)`` rebuilds the model.

        Raises :class:`ConfigError` for a model built with a block of your own (code, not a setting).
        """
        if self.custom_block:
            raise ConfigError(
                f"this UNet uses block={block_name(self.block)}, a block of your own: a config (and a checkpoint "
                f"that rebuilds the model from it) can only name one of {', '.join(BLOCK_KINDS)}. Rebuild it "
                "yourself with the same block, then load_state_dict."
            )
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            dims=self.dims,
            depth=self.depth,
            base_width=self.base_width,
            width_multiplier=self.width_multiplier,
            norm=self.norm,
            upsampling=self.upsampling,
            block=self.block,
            recurrence=self.recurrence,
            skip_connections=self.skip_connections,
            dropout=self.dropout,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "UNet":
        """A fresh (randomly initialised) model with the architecture described by ``config``.

        Missing keys take their defaults; unknown keys raise :class:`ConfigError`.
        Load the weights afterwards with ``model.load_state_dict(state)``.
        """
        if not isinstance(config, Mapping):
            raise ConfigTypeError(f"config must be a dict like model.config, got {type(config).__name__}.")
        known = (
            "in_channels",
            "out_channels",
            "dims",
            "depth",
            "base_width",
            "width_multiplier",
            "norm",
            "upsampling",
            "block",
            "recurrence",
            "skip_connections",
            "dropout",
        )
        for key in config:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"Unknown UNet config key {key!r}.{hint} Known: {', '.join(known)}.")
        return cls(**dict(config))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, dims={self.dims}, "
            f"depth={self.depth}, widths={self.widths}, norm={self.norm!r}, block={block_name(self.block)!r}, "
            f"upsampling={self.upsampling!r}, skip_connections={self.skip_connections}"
        )

    # ------------------------------------------------------------ forward
    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` that says what to do if ``x`` cannot go through the network."""
        layout = "(B, C, H, W)" if self.dims == 2 else "(B, C, D, H, W)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"UNet expects a torch.Tensor {layout}, got {type(x).__name__}; "
                "convert with torch.as_tensor(x, dtype=torch.float32)."
            )
        shape = tuple(x.shape)
        if x.ndim != self.dims + 2:
            if x.ndim == self.dims + 1:
                fix = "for a single sample add the batch axis with x.unsqueeze(0)"
            else:
                fix = (
                    f"this model was built with dims={self.dims}; build UNet(dims="
                    f"{x.ndim - 2}, ...) for {x.ndim}-D input"
                    if x.ndim in (4, 5)
                    else "reshape the input"
                )
            raise ValueError(
                f"UNet(dims={self.dims}) expects a {self.dims + 2}-D tensor {layout}, "
                f"got shape {shape} ({x.ndim}-D); {fix}."
            )
        if not x.is_floating_point():
            raise ValueError(
                f"UNet expects a floating point tensor, got {x.dtype}; "
                "convert with x.float() (and scale intensities, e.g. uint8 / 255)."
            )
        if shape[1] != self.in_channels:
            raise ValueError(
                f"UNet(in_channels={self.in_channels}) got {shape[1]} channel(s) in x of shape "
                f"{shape}; channels are axis 1 {layout}. Put the channels on axis 1 (a channels-last "
                f"array needs x.movedim(-1, 1)) or build the model with in_channels={shape[1]}."
            )
        spatial = shape[2:]
        d = self.size_divisor
        if any(s % d for s in spatial):
            target = tuple(-(-s // d) * d for s in spatial)
            raise ValueError(
                f"spatial size {spatial} is not divisible by {d} = 2**(depth-1) for depth={self.depth} "
                f"({self.depth - 1} poolings halve it each time); pad to {target} with "
                f"course_utils.models.pad_to_multiple(x, {d}) and crop the output back with the "
                f"returned slices, or crop the input to a multiple of {d}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *spatial)`` -> logits ``(B, out_channels, *spatial)``."""
        self.check_input(x)
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        if self.res_paths:
            skips = [res_path(skip) for res_path, skip in zip(self.res_paths, skips)]
        for level in reversed(range(len(self.decoders))):
            x = self.decoders[level](x, skips[level] if self.skip_connections else None)
        return self.head(x)
