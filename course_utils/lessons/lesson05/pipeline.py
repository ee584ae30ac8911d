"""Lesson 05's comparison: a U-Net from scratch against U-Nets with a random, frozen or fine-tuned encoder.

The four variants (:data:`VARIANTS`), trained on the same patches with the same seed and the
same number of optimiser steps, then scored the same way (DRIVE protocol, lesson 03):

* ``scratch_unet``: the course U-Net of lesson 03, on its own input (green channel + CLAHE);
* ``random_encoder``: the smp U-Net with the pretrained variants' encoder, randomly initialised;
* ``frozen_pretrained``: ImageNet encoder kept fixed (weights and BatchNorm statistics), only the
  decoder learns (feature extraction);
* ``finetuned_pretrained``: ImageNet encoder trained too, at a lower learning rate than the decoder
  (discriminative learning rates).

The three smp variants share architecture, input (the RGB photograph scaled by the encoder's own
normalisation, see :class:`NormalizedInput`) and decoder initialisation: only the encoder differs.

Steps: :func:`select_training_images`, :func:`prepare_inputs`, :func:`build_variant`,
:func:`make_optimizer`, :func:`train_variant`, :func:`evaluate_variant`; :func:`run_variant` chains
them into one results row, :func:`run_comparison` loops over variants and training-set sizes.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...checkpoint import ModelRecord
from ...data.drive import FundusCase
from ...data.fundus import preprocess_cases
from ...data.patches import patch_loader
from ...errors import ConfigError
from ...metrics import choose_threshold
from ...models import UNet
from ...models.pretrained import (
    LITE1_ENCODER,
    NormalizedInput,
    encoder_decoder_optimizer,
    freeze_encoder,
    parameter_counts,
    pretrained_unet,
)
from ...recipe import train_model
from ...seeding import seed_everything
from ...training import History
from ...validate import check_choice
from ..lesson03.pipeline import evaluate_vessels, predict_cases
from .settings import LESSON

CHECKPOINT_KIND = "finetuned"

VARIANTS = ("scratch_unet", "random_encoder", "frozen_pretrained", "finetuned_pretrained")
VARIANT_LABELS = {
    "scratch_unet": "course U-Net from scratch",
    "random_encoder": "smp U-Net, random encoder",
    "frozen_pretrained": "smp U-Net, ImageNet encoder frozen",
    "finetuned_pretrained": "smp U-Net, ImageNet encoder fine-tuned",
}
INPUTS = ("green_clahe", "rgb", "rgb_clahe")


# --------------------------------------------------------------------------- data
def parse_sizes(sizes: str | Sequence[int]) -> list[int]:
    """Training-set sizes from ``"2,5,20"`` (the config's form) or a sequence; sorted, distinct, positive."""
    items = sizes.replace(" ", "").split(",") if isinstance(sizes, str) else list(sizes)
    try:
        values = sorted({int(v) for v in items if v != ""})
    except (TypeError, ValueError):
        raise ConfigError(f'sizes must be whole numbers like "2,5,20", got {sizes!r}.') from None
    if not values or values[0] < 1:
        raise ConfigError(f'sizes must be positive numbers of training images like "2,5,20", got {sizes!r}.')
    return values


def select_training_images(cases: Sequence[FundusCase], n: int, seed: int = 0) -> list[FundusCase]:
    """``n`` training cases, nested across ``n`` (the 2 are among the 5, the 5 among the 20).

    A fixed permutation (``seed``) of ``cases`` is cut after ``n``; ``n`` larger than the set takes all.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive number of training images, got {n!r}.")
    if not cases:
        raise ConfigError("no training cases to choose from; load them with load_vessel_data(...).")
    order = np.random.default_rng([seed, 5]).permutation(len(cases))
    return [cases[i] for i in order[:n]]


def prepare_inputs(cases: Sequence[FundusCase], kind: str) -> list[FundusCase]:
    """Copies of ``cases`` whose ``image`` ``(H, W, C)`` in [0, 1] is the network input of ``kind``.

    ``"green_clahe"``: lesson 03's input (1 channel); ``"rgb"``: the photograph itself, as ImageNet
    encoders saw photographs (3 channels); ``"rgb_clahe"``: CLAHE on each colour channel.
    Pixels outside the field of view are 0. Normalisation for an encoder happens in the model.
    """
    check_choice("input kind", kind, INPUTS)
    if kind == "green_clahe":
        return preprocess_cases(cases, "green", clahe=True)
    return preprocess_cases(cases, "rgb", clahe=kind == "rgb_clahe")


def input_kind(variant: str, smp_input: str = "rgb") -> str:
    """The input of ``variant``: lesson 03's ``"green_clahe"`` for the scratch U-Net, ``smp_input`` otherwise."""
    _check_variant(variant)
    check_choice("smp_input", smp_input, ("rgb", "rgb_clahe"))
    return "green_clahe" if variant == "scratch_unet" else smp_input


# --------------------------------------------------------------------------- models
@dataclass
class Variant:
    """One contender: ``model`` takes the prepared input in [0, 1]; ``net`` is the network inside it.

    ``encoder_weights``: ``"imagenet"``, ``"imagenet-lite1"``, ``"random"`` or ``"none"`` (course U-Net).
    """

    name: str
    model: nn.Module
    net: nn.Module
    input_kind: str
    encoder_weights: str
    encoder_name: str | None = None

    @property
    def label(self) -> str:
        return VARIANT_LABELS[self.name]

    def counts(self) -> dict[str, int]:
        """``{"total": ..., "trainable": ...}`` scalar parameters of the network."""
        return parameter_counts(self.net)


def load_pretrained(weights: Any = "auto") -> nn.Module:
    """The pretrained smp U-Net every pretrained variant copies (``pretrained_unet(weights)``, 3 channels)."""
    return pretrained_unet(weights)


@functools.lru_cache(maxsize=4)
def _random_unet_cached(encoder_name: str, seed: int) -> nn.Module:
    seed_everything(seed)
    return pretrained_unet(None, encoder_name=encoder_name)


def random_unet(encoder_name: str, seed: int = 0) -> nn.Module:
    """A fresh smp U-Net with a randomly initialised ``encoder_name`` encoder, the same for the same seed.

    Building an EfficientNet takes seconds, so the initialisation is made once per ``(encoder_name, seed)``
    and copied.
    """
    return copy.deepcopy(_random_unet_cached(encoder_name, int(seed)))


def reset_decoder(net: nn.Module, seed: int) -> None:
    """Re-initialise an smp U-Net's decoder and head the way smp does, from ``seed`` (same seed, same decoder)."""
    from segmentation_models_pytorch.base import initialization as init

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.decoder.modules():
            if hasattr(module, "reset_parameters") and module is not net.decoder:
                module.reset_parameters()
        init.initialize_decoder(net.decoder)
        init.initialize_head(net.segmentation_head)


def build_variant(
    name: str,
    pretrained: nn.Module | None = None,
    *,
    base_width: int = 8,
    depth: int = 4,
    seed: int = 0,
    smp_input: str = "rgb",
) -> Variant:
    """A fresh model for variant ``name``.

    ``pretrained``: the smp U-Net from :func:`load_pretrained` (copied, never changed); its encoder
    name and normalisation are used by ``random_encoder`` too. ``base_width``, ``depth``: the
    course U-Net (``scratch_unet``). ``seed``: the initialisation of everything random.
    """
    _check_variant(name)
    kind = input_kind(name, smp_input)
    if name == "scratch_unet":
        seed_everything(seed)
        net = UNet(in_channels=1, out_channels=1, depth=depth, base_width=base_width)
        return Variant(name, net, net, kind, "none")
    if pretrained is None or not hasattr(pretrained, "encoder_info"):
        raise ConfigError(f"variant {name!r} needs the pretrained model: pass pretrained=load_pretrained().")
    info = pretrained.encoder_info
    if name == "random_encoder":
        net = random_unet(info.encoder_name or LITE1_ENCODER, seed)
        weights = "random"
    else:
        net = copy.deepcopy(pretrained)
        weights = info.weights
    reset_decoder(net, seed)
    if name == "frozen_pretrained":
        freeze_encoder(net)
    return Variant(name, NormalizedInput(net, info.mean, info.std), net, kind, weights, info.encoder_name)


OptimizerFn = Callable[[nn.Module, float, float], torch.optim.Optimizer]
"""``fn(model, lr, encoder_lr) -> optimizer``: the encoder's parameters at ``encoder_lr``, all others at ``lr``."""


def encoder_decoder_adamw(model: nn.Module, lr: float, encoder_lr: float) -> torch.optim.AdamW:
    """AdamW with parameter groups ``"encoder"`` (at ``encoder_lr``) and ``"decoder"`` (decoder and head, at ``lr``):
    :func:`~course_utils.models.pretrained.encoder_decoder_optimizer` with AdamW (trainable parameters only)."""
    return encoder_decoder_optimizer(model, lr=lr, encoder_lr=encoder_lr, optimizer=torch.optim.AdamW)


def make_optimizer(
    variant: Variant,
    lr: float,
    encoder_lr_ratio: float = 0.1,
    weight_decay: float = 1e-4,
    optimizer_fn: OptimizerFn | None = None,
) -> torch.optim.Optimizer:
    """AdamW for ``variant``: two parameter groups, encoder and decoder, for the smp U-Nets.

    ``finetuned_pretrained``: encoder at ``lr * encoder_lr_ratio`` (it starts from good features;
    large steps would destroy them), decoder at ``lr``. ``random_encoder`` and ``frozen_pretrained``: both at
    ``lr`` (a frozen encoder gets no gradient, so it does not move). ``scratch_unet``: one group at ``lr``.
    ``optimizer_fn`` builds the two groups (default :func:`encoder_decoder_adamw`; lesson 05's learner writes
    one); every group then gets ``weight_decay``.
    """
    if not lr > 0 or not encoder_lr_ratio > 0:
        raise ValueError(f"need lr > 0 and encoder_lr_ratio > 0, got {lr} and {encoder_lr_ratio}.")
    if variant.name == "scratch_unet":
        return torch.optim.AdamW(variant.net.parameters(), lr=lr, weight_decay=weight_decay)
    ratio = encoder_lr_ratio if variant.name == "finetuned_pretrained" else 1.0
    optimizer = (optimizer_fn or encoder_decoder_adamw)(variant.net, lr, lr * ratio)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer_fn must return a torch.optim optimiser, got {type(optimizer).__name__}.")
    for group in optimizer.param_groups:
        group["weight_decay"] = weight_decay
    return optimizer


# --------------------------------------------------------------------------- training and evaluation
@dataclass
class TrainResult:
    """``history``: one record per ``log_every`` steps (``step``, ``train_loss``, ``elapsed`` seconds)."""

    history: History
    seconds: float
    steps: int


def train_variant(
    variant: Variant,
    cases: Sequence[FundusCase],
    *,
    steps: int,
    patch_size: int = 96,
    batch_size: int = 8,
    lr: float = 3e-3,
    encoder_lr_ratio: float = 0.1,
    bce_weight: float = 1.0,
    vessel_bias: float = 0.5,
    augment: float = 1.0,
    log_every: int = 10,
    seed: int = 0,
    device: torch.device | str | None = None,
    show_progress: bool = False,
    optimizer_fn: OptimizerFn | None = None,
) -> TrainResult:
    """Train ``variant.model`` for ``ceil(steps / log_every) * log_every`` optimiser steps of ``batch_size``
    patches (exactly ``steps`` when ``log_every`` divides it, as in every profile).

    ``cases``: prepared with :func:`prepare_inputs` for ``variant.input_kind``. The patch sequence
    depends only on ``seed`` and the cases' labels, so every variant sees the same patches.
    The course's training recipe (:func:`course_utils.recipe.train_model`): loss BCE + Dice
    (``bce_weight``), AdamW from :func:`make_optimizer` (its parameter groups built by ``optimizer_fn``),
    warm-up + cosine decay over ``steps`` that keeps the encoder/decoder ratio.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}.")
    log_every = max(1, min(int(log_every), steps))
    epochs = math.ceil(steps / log_every)
    seed_everything(seed)
    loader = patch_loader(
        cases,
        patch_size=patch_size,
        batch_size=batch_size,
        samples_per_epoch=log_every * batch_size,
        vessel_bias=vessel_bias,
        augment_strength=augment,
        seed=seed,
    )
    optimizer = make_optimizer(variant, lr, encoder_lr_ratio, optimizer_fn=optimizer_fn)
    start = time.perf_counter()
    history = train_model(
        variant.model,
        loader,
        lr=lr,
        epochs=epochs,
        optimizer=optimizer,
        bce_weight=bce_weight,
        device=device,
        amp=device is not None and torch.device(device).type == "cuda",
        show_progress=show_progress,
        verbose=False,
    )
    seconds = time.perf_counter() - start
    elapsed = 0.0
    for i, record in enumerate(history.records):
        elapsed += record["seconds"]
        record.update(step=(i + 1) * log_every, elapsed=elapsed)
    return TrainResult(history, seconds, epochs * log_every)


def evaluate_variant(
    variant: Variant, threshold_cases: Sequence[FundusCase], test_cases: Sequence[FundusCase]
) -> dict[str, float]:
    """F1 at the threshold that maximises F1 on ``threshold_cases`` (training images), and AUC, on ``test_cases``.

    Both lists prepared for ``variant.input_kind``; pixels inside the FOV only, pooled (DRIVE protocol).
    Returns ``f1, auc, threshold, sensitivity, specificity, infer_seconds`` (per test image).
    """
    choice_probs, _ = predict_cases(variant.model, threshold_cases)
    threshold = choose_threshold(
        choice_probs, [c.vessels for c in threshold_cases], [c.fov for c in threshold_cases], criterion="f1"
    )
    probs, seconds = predict_cases(variant.model, test_cases)
    metrics = evaluate_vessels(probs, test_cases, threshold)
    return {
        "f1": metrics["f1"],
        "auc": metrics["auc"],
        "threshold": threshold,
        "sensitivity": metrics["sensitivity"],
        "specificity": metrics["specificity"],
        "infer_seconds": seconds,
    }


@dataclass
class Run:
    """One trained variant: the results ``row`` and what the notebook plots (``history``, ``variant``)."""

    row: dict[str, Any]
    history: History
    variant: Variant = field(repr=False)


def run_variant(
    name: str,
    train_inputs: dict[str, list[FundusCase]],
    test_inputs: dict[str, list[FundusCase]],
    *,
    pretrained: nn.Module | None,
    steps: int,
    threshold_images: int = 5,
    base_width: int = 8,
    depth: int = 4,
    smp_input: str = "rgb",
    seed: int = 0,
    device: torch.device | str | None = None,
    show_progress: bool = False,
    **train_kwargs,
) -> Run:
    """Build, train and evaluate one variant; the row has ``variant, n_train_images, f1, auc, threshold,
    params, trainable_params, train_seconds, steps, infer_seconds``.

    ``train_inputs`` / ``test_inputs``: input kind -> prepared cases (:func:`prepare_inputs`). The
    threshold is chosen on the first ``threshold_images`` training images.
    """
    variant = build_variant(name, pretrained, base_width=base_width, depth=depth, seed=seed, smp_input=smp_input)
    cases = train_inputs[variant.input_kind]
    counts = variant.counts()
    result = train_variant(
        variant, cases, steps=steps, seed=seed, device=device, show_progress=show_progress, **train_kwargs
    )
    scores = evaluate_variant(variant, cases[: max(1, threshold_images)], test_inputs[variant.input_kind])
    row = {
        "variant": name,
        "n_train_images": len(cases),
        "f1": round(scores["f1"], 4),
        "auc": round(scores["auc"], 4),
        "threshold": round(scores["threshold"], 4),
        "params": counts["total"],
        "trainable_params": counts["trainable"],
        "train_seconds": round(result.seconds, 1),
        "steps": result.steps,
        "infer_seconds": round(scores["infer_seconds"], 3),
        "encoder_weights": variant.encoder_weights,
    }
    return Run(row, result.history, variant)


def run_comparison(
    train: Sequence[FundusCase],
    test: Sequence[FundusCase],
    *,
    sizes: Sequence[int],
    pretrained: nn.Module | None,
    variants: Sequence[str] = VARIANTS,
    smp_input: str = "rgb",
    seed: int = 0,
    on_run: Callable[[Run], None] | None = None,
    **kwargs,
) -> list[Run]:
    """Every variant at every training-set size (nested subsets of ``train``), largest size first.

    ``kwargs`` go to :func:`run_variant` (``steps``, ``threshold_images``, ``patch_size``...).
    ``on_run`` is called after each run (e.g. to print the row).
    """
    for name in variants:
        _check_variant(name)
    kinds = sorted({input_kind(v, smp_input) for v in variants})
    test_inputs = {k: prepare_inputs(test, k) for k in kinds}
    runs = []
    for n in reversed(parse_sizes(sizes)):
        chosen = select_training_images(train, n, seed)
        train_inputs = {k: prepare_inputs(chosen, k) for k in kinds}
        for name in variants:
            run = run_variant(
                name, train_inputs, test_inputs, pretrained=pretrained, smp_input=smp_input, seed=seed, **kwargs
            )
            runs.append(run)
            if on_run is not None:
                on_run(run)
    return runs


def model_record(
    net: nn.Module,
    cfg: Any,
    *,
    threshold: float,
    threshold_source: str,
    n_train_images: int,
    steps: int,
    seconds: float,
    data_source: str,
) -> ModelRecord:
    """The :class:`~course_utils.checkpoint.ModelRecord` of the fine-tuned smp U-Net ``net`` (``pretrained_unet``).

    Its input is the RGB photograph in [0, 1], 0 outside the field of view, then normalised with the
    encoder's own mean and std. The saved network does NOT normalise (the wrapper is not saved): wrap the
    network that :func:`~course_utils.checkpoint.load_model` returns as
    ``NormalizedInput(net, record.normalisation["mean"], record.normalisation["std"])``
    (:class:`course_utils.models.pretrained.NormalizedInput`, which also pads to multiples of 32) before predicting.
    """
    info = net.encoder_info
    return ModelRecord(
        lesson=LESSON,
        kind=CHECKPOINT_KIND,
        profile=cfg.profile,
        builder="pretrained_unet",
        model_config={"builder": "pretrained_unet", "encoder_name": info.encoder_name, "in_channels": 3, "classes": 1},
        inputs=["red", "green", "blue"],
        normalisation={
            "method": "mean_std",
            "mean": list(info.mean),
            "std": list(info.std),
            "range": [0.0, 1.0],
            "input": cfg.smp_input,
            "outside_fov": 0.0,
            "encoder_weights": info.weights,
            "applied_by": "course_utils.models.pretrained.NormalizedInput (not saved with the weights: wrap the net)",
        },
        spacing_mm=None,
        inference={"mode": "whole image", "tta": "none", "amp": False, "size_divisor": 32, "pad": "reflect"},
        threshold=float(threshold),
        threshold_source=threshold_source,
        training={
            "data": data_source,
            "n_train_images": int(n_train_images),
            "steps": int(steps),
            "seconds": float(seconds),
            "seed": cfg.seed,
            "encoder_weights": info.weights,
        },
    )


def _check_variant(name: str) -> None:
    check_choice("variant", name, VARIANTS)


__all__ = [
    "LESSON",
    "CHECKPOINT_KIND",
    "model_record",
    "VARIANTS",
    "VARIANT_LABELS",
    "INPUTS",
    "parse_sizes",
    "select_training_images",
    "prepare_inputs",
    "input_kind",
    "NormalizedInput",
    "Variant",
    "load_pretrained",
    "random_unet",
    "reset_decoder",
    "build_variant",
    "OptimizerFn",
    "encoder_decoder_adamw",
    "make_optimizer",
    "TrainResult",
    "train_variant",
    "evaluate_variant",
    "Run",
    "run_variant",
    "run_comparison",
]
