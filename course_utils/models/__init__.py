"""The course U-Net and the tools around it.

* :mod:`.blocks`: convolution blocks (double conv, residual, recurrent residual, MultiRes and its ResPath), norms,
  upsampling.
* :mod:`.unet`: :class:`UNet`, 2D or 3D, the model every lesson imports.
* :mod:`.receptive_field`: analytic and measured receptive fields.
* :mod:`.utils`: :func:`count_parameters`, :func:`pad_to_multiple`, :func:`crop_to`.
"""

from .blocks import (
    ConvNormAct,
    DoubleConv,
    InterpolateUp,
    MultiResBlock,
    RecurrentConv,
    RecurrentResidualBlock,
    ResidualBlock,
    ResPath,
    make_block,
    make_norm,
    make_upsampling,
)
from .receptive_field import (
    conv_receptive_field,
    empirical_receptive_field,
    unet_layers,
    unet_receptive_field,
    unet_receptive_window,
)
from .unet import DecoderStage, UNet
from .utils import count_parameters, crop_to, pad_to_multiple

__all__ = [
    "UNet",
    "DecoderStage",
    "ConvNormAct",
    "DoubleConv",
    "ResidualBlock",
    "RecurrentConv",
    "RecurrentResidualBlock",
    "MultiResBlock",
    "ResPath",
    "InterpolateUp",
    "make_block",
    "make_norm",
    "make_upsampling",
    "conv_receptive_field",
    "unet_layers",
    "unet_receptive_field",
    "unet_receptive_window",
    "empirical_receptive_field",
    "count_parameters",
    "pad_to_multiple",
    "crop_to",
]
