"""Receptive fields: how many input pixels along one axis can influence one output pixel.

* :func:`conv_receptive_field`: the textbook recurrence for a chain of layers.
* :func:`unet_receptive_field`: exact for the course U-Net (interval arithmetic through
  pooling and upsampling; :func:`unet_layers` gives the textbook chain for comparison).
* :func:`empirical_receptive_field`: measured by back-propagating from one output pixel.

Sizes are in input pixels (voxels) along one spatial axis; every axis is the same for
the course models (square/cubic kernels).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Sequence
from fractions import Fraction

import torch
from torch import nn

from ..validate import check_choice, check_int
from .blocks import UPSAMPLING_KINDS

Layer = Sequence  # (kernel, stride) or (kernel, stride, dilation)


def conv_receptive_field(layers: Iterable[Layer]) -> int:
    """Receptive field of a chain of layers, each ``(kernel, stride)`` or ``(kernel, stride, dilation)``.

    Recurrence, starting from ``r = 1`` and ``jump = 1`` (the distance, in input pixels,
    between neighbouring units of the current layer)::

        k_eff = dilation * (kernel - 1) + 1
        r    += (k_eff - 1) * jump
        jump *= stride

    A x2 upsampling is a layer with ``stride=1/2`` (use ``fractions.Fraction(1, 2)`` or 0.5):
    kernel 1 for a transposed conv k=2 s=2 or nearest neighbour (each output sees one input),
    kernel 2 for (bi/tri)linear interpolation (each output sees two inputs per axis).
    Padding does not change the size (it only shifts the window).
    """
    r, jump = Fraction(1), Fraction(1)
    for i, layer in enumerate(layers):
        if len(layer) not in (2, 3):
            raise ValueError(f"layer {i} is {layer!r}; give (kernel, stride) or (kernel, stride, dilation).")
        kernel, stride = layer[0], Fraction(layer[1]).limit_denominator(1 << 16)
        dilation = layer[2] if len(layer) == 3 else 1
        check_int(f"kernel of layer {i}", kernel, 1)
        check_int(f"dilation of layer {i}", dilation, 1)
        if stride <= 0:
            raise ValueError(f"stride of layer {i} must be > 0, got {layer[1]!r}.")
        r += (dilation * (kernel - 1)) * jump
        jump *= stride
    if r.denominator != 1:
        raise ValueError(
            f"the chain upsamples beyond the input resolution (receptive field {r} input pixels); check the strides."
        )
    return int(r)


def unet_layers(
    depth: int, convs_per_block: int = 2, kernel_size: int = 3, upsampling: str = "transpose"
) -> list[tuple[int, Fraction]]:
    """The ``(kernel, stride)`` chain of the deepest path through the course U-Net.

    That path goes input -> every encoder level (``convs_per_block`` convs, then 2x2 max
    pooling) -> bottleneck -> every decoder level (x2 upsampling, ``convs_per_block`` convs)
    -> 1x1 head. ``conv_receptive_field(unet_layers(...))`` is the textbook estimate; it
    ignores where a pixel falls in the pooling grid, which :func:`unet_receptive_field`
    accounts for (they agree for ``depth <= 3`` with ``"transpose"``).
    """
    _check_unet_args(depth, convs_per_block, kernel_size, upsampling)
    conv = (kernel_size, Fraction(1))
    pool = (2, Fraction(2))
    up = (1 if upsampling == "transpose" else 2, Fraction(1, 2))
    layers: list[tuple[int, Fraction]] = []
    for _ in range(depth - 1):
        layers += [conv] * convs_per_block + [pool]
    layers += [conv] * convs_per_block  # bottleneck
    for _ in range(depth - 1):
        layers += [up] + [conv] * convs_per_block
    return layers


def _check_unet_args(depth: int, convs_per_block: int, kernel_size: int, upsampling: str) -> None:
    check_int("depth", depth, 1)
    check_int("convs_per_block", convs_per_block, 1)
    check_int("kernel_size", kernel_size, 1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size={kernel_size}: the course U-Net uses odd kernels ('same' padding).")
    check_choice("upsampling", upsampling, UPSAMPLING_KINDS)


def unet_receptive_window(
    depth: int, position: int, convs_per_block: int = 2, kernel_size: int = 3, upsampling: str = "transpose"
) -> tuple[int, int]:
    """Input positions ``(first, last)`` (one axis) that output pixel ``position`` can see.

    Exact interval arithmetic on the course U-Net, going backwards from the output:
    a same-padded conv widens ``[a, b]`` to ``[a - r, b + r]`` (``r = (kernel_size - 1) // 2``);
    max pooling 2x2 maps coarse ``[a, b]`` to fine ``[2a, 2b + 1]``; a transposed conv k=2 s=2
    maps fine ``[a, b]`` to coarse ``[a // 2, b // 2]``; (bi/tri)linear x2 interpolation
    (``align_corners=False``) to ``[(a - 1) // 2, (b + 1) // 2]``. The window is the hull of
    every path (the skip paths lie inside the one through the bottleneck). Image borders
    are ignored (the input is taken as unbounded).
    """
    _check_unet_args(depth, convs_per_block, kernel_size, upsampling)
    reach = convs_per_block * (kernel_size - 1) // 2

    def block(i: tuple[int, int]) -> tuple[int, int]:
        return i[0] - reach, i[1] + reach

    def unpool(i: tuple[int, int]) -> tuple[int, int]:
        return 2 * i[0], 2 * i[1] + 1

    def downsample_back(i: tuple[int, int]) -> tuple[int, int]:  # through an x2 upsampling
        if upsampling == "transpose":
            return i[0] // 2, i[1] // 2
        return (i[0] - 1) // 2, (i[1] + 1) // 2

    def encoder_window(level: int, i: tuple[int, int]) -> tuple[int, int]:
        i = block(i)
        return i if level == 0 else encoder_window(level - 1, unpool(i))

    def decoder_window(level: int, i: tuple[int, int]) -> tuple[int, int]:
        i = block(i)
        coarse = downsample_back(i)
        if level + 1 == depth - 1:
            deep = encoder_window(depth - 1, coarse)  # the bottleneck
        else:
            deep = decoder_window(level + 1, coarse)
        skip = encoder_window(level, i)
        return min(deep[0], skip[0]), max(deep[1], skip[1])

    position = check_int("position", position, 0)
    if depth == 1:
        return encoder_window(0, (position, position))
    return decoder_window(0, (position, position))


def unet_receptive_field(
    depth: int,
    convs_per_block: int = 2,
    kernel_size: int = 3,
    upsampling: str = "transpose",
    position: int | None = None,
) -> int:
    """Analytic receptive field (input pixels per axis) of the course U-Net.

    The deepest path, through the bottleneck, determines it (see :func:`unet_receptive_window`
    for the exact rules). Because pooling works on a fixed 2x2 grid, the size depends on where
    the output pixel sits in that grid: ``position`` (an output index, away from the borders)
    gives that pixel's field; ``None`` gives the largest over all positions.
    ``convs_per_block``: 2 for ``"double_conv"`` and ``"residual"``; ``2 * (recurrence + 1)``
    for ``"recurrent_residual"`` (each of its two units applies its conv ``recurrence + 1`` times).
    For ``depth=1`` (no pooling) it is ``1 + convs_per_block * (kernel_size - 1)``.
    """
    positions = range(2 ** (depth - 1)) if position is None else [position]
    sizes = []
    for p in positions:
        first, last = unet_receptive_window(depth, p, convs_per_block, kernel_size, upsampling)
        sizes.append(last - first + 1)
    return max(sizes)


# ---------------------------------------------------------------- empirical
_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)
_MAX_POOLS = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}


def _structural_probe(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` in which every connection of the graph passes a positive gradient.

    * normalisation layers -> identity (their statistics would couple all pixels),
    * max pooling -> average pooling (max pooling routes the gradient to one input only),
    * weights -> positive constants ``1 / weight[0].numel()``, biases -> 0,
    * eval mode (no dropout).
    With an all-ones input every pre-activation is then positive, so no ReLU blocks a path
    and no two paths cancel: the input gradient is non-zero exactly where a path exists.
    """
    probe = copy.deepcopy(model).double().eval()
    for name, module in list(probe.named_modules()):
        if not name:  # the model itself
            continue
        replacement = None
        if isinstance(module, _NORM_TYPES):
            replacement = nn.Identity()
        elif type(module) in _MAX_POOLS:
            replacement = _MAX_POOLS[type(module)](
                module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode
            )
        if replacement is not None:
            parent_name, _, child = name.rpartition(".")
            setattr(probe.get_submodule(parent_name) if parent_name else probe, child, replacement)
    if type(probe) in _MAX_POOLS or isinstance(probe, _NORM_TYPES):
        raise ValueError("give a network, not a single pooling or normalisation layer")
    with torch.no_grad():
        for name, param in probe.named_parameters():
            if name.endswith("weight") and param.ndim > 1:
                param.fill_(1.0 / param[0].numel())
            elif name.endswith("weight"):
                param.fill_(1.0)
            else:
                param.zero_()
    for param in probe.parameters():
        param.requires_grad_(False)
    return probe


def empirical_receptive_field(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Measured receptive field of the centre output pixel, per spatial axis, in input pixels.

    ``input_shape`` is the full input shape ``(B, C, *spatial)`` (B may be 1). The centre
    output pixel (index ``size // 2`` on every axis), summed over output channels, is
    back-propagated to an all-ones input through a structural copy of the model
    (see :func:`_structural_probe`; ``model`` itself is not changed). The result is, for
    each spatial axis, the extent (last - first + 1) of input positions with non-zero gradient.
    It measures which inputs are *connected* to the pixel; normalisation statistics (which
    couple every pixel in instance/group norm) are deliberately left out.
    Warns if the field touches the input border (then it is clipped: use a larger input).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be the full shape (B, C, *spatial), got {tuple(input_shape)}.")
    probe = _structural_probe(model)
    x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        y = probe(x)
        if y.ndim != x.ndim:
            raise ValueError(
                f"the model maps {shape} to {tuple(y.shape)}; empirical_receptive_field "
                "needs an output (B, C, *spatial) with the same number of axes."
            )
        centre = tuple(s // 2 for s in y.shape[2:])
        y[(slice(None), slice(None)) + centre].sum().backward()
    grad = x.grad.abs().sum(dim=(0, 1))
    extents = []
    for axis in range(grad.ndim):
        others = tuple(a for a in range(grad.ndim) if a != axis)
        profile = grad.sum(dim=others) if others else grad
        hits = torch.nonzero(profile > 0).flatten()
        if hits.numel() == 0:
            raise ValueError("no input pixel influences the centre output pixel; is the output connected to the input?")
        first, last = int(hits.min()), int(hits.max())
        if first == 0 or last == shape[2 + axis] - 1:
            warnings.warn(
                f"the receptive field reaches the border of spatial axis {axis} "
                f"(size {shape[2 + axis]}), so the measured extent is clipped; "
                "use a larger input_shape.",
                stacklevel=2,
            )
        extents.append(last - first + 1)
    return tuple(extents)
