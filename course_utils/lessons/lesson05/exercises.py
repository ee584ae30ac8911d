"""Self-checks for lesson 05 (transfer learning with an ImageNet encoder)."""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import torch
from torch import nn

from ...selfcheck import CheckResult, correct, not_attempted, pending, returned_nothing, wrong


def _encoder(model: nn.Module) -> nn.Module:
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError("the model has no `.encoder`")
    return encoder


def check_trainable_after_freezing(answer: Any, model: nn.Module) -> CheckResult:
    """Exercise 1: how many scalar parameters of ``model`` (an smp U-Net) still train once its encoder is frozen."""
    if not_attempted(answer):
        return pending("`trainable_after_freezing`")
    if isinstance(answer, bool) or not isinstance(answer, numbers.Integral):
        return wrong(f"Give one whole number of parameters (an int), got {answer!r}.")
    value = int(answer)
    encoder_ids = {id(p) for p in _encoder(model).parameters()}
    total = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.parameters() if id(p) in encoder_ids)
    expected = total - encoder
    head = sum(p.numel() for p in getattr(model, "segmentation_head", nn.Module()).parameters())
    if value == expected:
        return correct(
            f"Correct: {expected:,} of {total:,} ({100 * expected / total:.0f} %): the decoder and the "
            f"segmentation head. The {encoder:,} encoder parameters get no gradient, so a training step "
            "costs one backward pass through the decoder only (and nothing needs to be stored for the "
            "encoder's backward)."
        )
    if value == total:
        return wrong("That is every parameter: freezing sets requires_grad=False on the encoder's parameters.")
    if value == encoder:
        return wrong("That is the encoder, the part that no longer trains; count the others.")
    if head and value == expected - head:
        return wrong("Almost: the segmentation head (the last 1x1 convolution) trains too.")
    return wrong(
        "Sum p.numel() over model.parameters() that are not in model.encoder.parameters() "
        "(or, after freeze_encoder(model), over those with p.requires_grad)."
    )


class _TinyEncoderDecoder(nn.Module):
    """A small stand-in with ``.encoder`` and ``.decoder``, each with a BatchNorm layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def check_freeze_function(fn: Any) -> CheckResult:
    """Exercise 2: ``fn(model)`` freezes ``model.encoder``: no gradients, BatchNorm statistics fixed.

    Called on a model in training mode; then one training step must leave every encoder weight and
    running statistic unchanged, and still train the decoder (weights and BatchNorm statistics).
    """
    if not_attempted(fn):
        return pending("`freeze`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. freeze (without calling it).")
    model = _TinyEncoderDecoder().train()
    before = copy.deepcopy(model.state_dict())
    try:
        fn(model)
    except Exception as err:
        return wrong(f"Calling fn(model) failed: {type(err).__name__}: {err}")
    if "requires_grad" in vars(model.encoder) or "requires_grad" in vars(model):
        return wrong(
            "You set an attribute `requires_grad` on a module: that reaches none of its parameters. Call "
            "model.encoder.requires_grad_(False) (with the underscore), or set p.requires_grad_(False) for p in "
            "model.encoder.parameters()."
        )
    untouched = all(p.requires_grad for p in model.parameters()) and all(m.training for m in model.modules())
    if untouched:
        return CheckResult(
            False,
            "Not attempted yet: `freeze(model)` changed nothing in the model (is its body still `...`?). Write "
            "the body and re-run the cell.",
            attempted=False,
        )
    try:
        x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 + 1
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            return wrong("Nothing trains any more: freeze the encoder only, the decoder must keep learning.")
        optimizer = torch.optim.SGD(trainable, lr=0.1)
        model(x).mean().backward()
        optimizer.step()
    except Exception as err:
        return wrong(f"Calling fn(model) and then a training step failed: {type(err).__name__}: {err}")
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    enc_grads = [k for k, p in model.encoder.named_parameters() if p.requires_grad]
    if enc_grads:
        return wrong(
            f"Encoder parameters still have requires_grad=True ({enc_grads}): set "
            "p.requires_grad_(False) for p in model.encoder.parameters()."
        )
    if any(k.startswith("encoder.") and "running" in k for k in changed):
        return wrong(
            "The encoder's weights are fixed, but its BatchNorm running mean and variance still change in "
            "training mode: put the encoder's BatchNorm layers in eval mode (module.eval())."
        )
    if not any(k.startswith("decoder.") and "running" in k for k in changed):
        return wrong(
            "The decoder's BatchNorm stopped updating its statistics: put only the encoder in eval mode, "
            "not the whole model (model.eval() would freeze the decoder's statistics too)."
        )
    if not any(k.startswith("decoder.") and "weight" in k for k in changed):
        return wrong("The decoder did not learn: keep requires_grad=True on model.decoder's parameters.")
    return correct(
        "Correct: no gradients for the encoder, and its BatchNorm layers use the ImageNet statistics "
        "instead of re-estimating them from a few fundus patches, while the decoder learns (weights and "
        "statistics). Exercise 4 puts your function to work in a real training run."
    )


def check_discriminative_optimizer(
    fn: Any, model: nn.Module, lr: float = 1e-3, encoder_lr: float = 1e-4
) -> CheckResult:
    """Exercise 3: ``fn(model, lr, encoder_lr)`` returns an AdamW with the encoder's parameters at ``encoder_lr``
    and all others at ``lr`` (called on a copy of ``model``, an smp U-Net)."""
    if not_attempted(fn):
        return pending("`discriminative_adamw`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. discriminative_adamw (without calling it).")
    model = copy.deepcopy(model)
    try:
        optimizer = fn(model, lr, encoder_lr)
    except Exception as err:
        return wrong(f"discriminative_adamw(model, {lr:g}, {encoder_lr:g}) failed: {type(err).__name__}: {err}")
    if returned_nothing(optimizer):
        return pending("the body of `discriminative_adamw`")
    if not isinstance(optimizer, torch.optim.Optimizer):
        return wrong(
            f"Return a torch.optim optimiser (torch.optim.AdamW([...groups...])), got {type(optimizer).__name__}."
        )
    if not isinstance(optimizer, torch.optim.AdamW):
        return wrong(
            f"That is {type(optimizer).__name__}; the course's training recipe uses torch.optim.AdamW (Adam with "
            "decoupled weight decay): build that one, with the same two groups."
        )
    encoder_ids = {id(p) for p in _encoder(model).parameters()}
    lr_of: dict[int, float] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            lr_of[id(p)] = float(group["lr"])
    if len(optimizer.param_groups) < 2:
        return wrong(
            "One parameter group gives every parameter the same learning rate: pass a list of two dicts, "
            "[{'params': encoder_params, 'lr': encoder_lr}, {'params': other_params, 'lr': lr}]."
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    missing = [p for p in trainable if id(p) not in lr_of]
    if missing:
        head_ids = {id(p) for p in getattr(model, "segmentation_head", nn.Module()).parameters()}
        if all(id(p) in head_ids for p in missing):
            return wrong(
                "The segmentation head's parameters are in no group: everything that is not the encoder "
                "belongs to the decoder group (model.decoder and model.segmentation_head)."
            )
        return wrong(
            f"{len(missing)} trainable parameter tensors of the model are in no group: the optimiser would "
            "never update them. Take the encoder's parameters, and every other parameter of the model."
        )
    if len(lr_of) < sum(len(g["params"]) for g in optimizer.param_groups):
        return wrong("Some parameters are in two groups (PyTorch refuses that): put each in exactly one.")
    enc_lrs = {lr_of[id(p)] for p in trainable if id(p) in encoder_ids}
    dec_lrs = {lr_of[id(p)] for p in trainable if id(p) not in encoder_ids}
    if enc_lrs == {lr} and dec_lrs == {encoder_lr} and lr != encoder_lr:
        return wrong("Swapped: the pretrained encoder gets the small learning rate, the new decoder the large one.")
    if all(math.isclose(v, encoder_lr) for v in enc_lrs) and all(math.isclose(v, lr) for v in dec_lrs):
        return correct(
            f"Correct: the encoder at {encoder_lr:g}, the decoder and head at {lr:g}. The encoder "
            "starts from features that already work, so it moves carefully; the decoder starts from "
            "random weights and needs large steps."
        )
    return wrong(
        f"Encoder parameters got learning rate(s) {sorted(enc_lrs)}, the others {sorted(dec_lrs)}; "
        f"expected {encoder_lr:g} for every encoder parameter and {lr:g} for the rest."
    )


FROZEN_ANSWERS = ("weights", "statistics", "both", "neither")
_ALIASES = {
    "runningstatistics": "statistics",
    "runningstats": "statistics",
    "stats": "statistics",
    "batchnorm": "statistics",
    "batchnormstatistics": "statistics",
    "runningmean": "statistics",
    "weight": "weights",
    "parameters": "weights",
    "nothing": "neither",
    "none": "neither",
}


def check_frozen_training(answer: Any, weights_change: Any, statistics_change: Any) -> CheckResult:
    """Exercise 4: an encoder frozen with your ``freeze`` is trained for a few steps by the course's recipe;
    what changed in it: its ``"weights"``, its BatchNorm running ``"statistics"``, ``"both"`` or ``"neither"``?

    ``weights_change`` / ``statistics_change``: the largest absolute change of an encoder weight and of a
    BatchNorm running mean or variance in that run. Judged by those numbers, and explained.
    """
    if not_attempted(answer):
        return pending("`what_changed`")
    word = _ALIASES.get(str(answer).strip().lower().replace(" ", "").replace("_", ""), None)
    word = word or str(answer).strip().lower()
    if word not in FROZEN_ANSWERS:
        return wrong(f"Answer with one of {', '.join(map(repr, FROZEN_ANSWERS))}, got {answer!r}.")
    try:
        weights, stats = float(weights_change), float(statistics_change)
    except (TypeError, ValueError):
        return wrong("Pass the two measured changes as numbers: check_frozen_training(answer, weights, statistics).")
    truth = {(False, True): "statistics", (True, True): "both", (True, False): "weights", (False, False): "neither"}[
        (weights > 0, stats > 0)
    ]
    numbers = f"largest change of an encoder weight {weights:.3g}, of a running mean or variance {stats:.3g}"
    why = {
        "statistics": "requires_grad=False kept every weight where it was: no gradient, no step (AdamW skips "
        "parameters without a gradient, weight decay included). But the course's training loop, like every "
        "training loop, starts with model.train(), and that sets every submodule back to training mode, the "
        "BatchNorm layers you had put in eval mode included. In training mode BatchNorm normalises with the "
        "batch's own statistics and moves its running mean and variance towards them: after a few steps the "
        "frozen encoder no longer computes what ImageNet taught it, and at test time (eval mode) it uses "
        "statistics of a handful of fundus patches. A freeze must survive model.train(): the course's "
        "freeze_encoder puts the encoder's BatchNorm layers back in eval mode before each of its forward passes "
        "(a forward pre-hook), and smp's own model.freeze_encoder() overrides train().",
        "neither": "The freeze used here survives model.train() (the course's freeze_encoder, which this cell uses "
        "while your freeze does not pass its check yet, or a freeze of yours that keeps eval mode through "
        "train()): the encoder's BatchNorm layers stayed in eval mode "
        "during training, so neither its weights (no gradient) nor its running statistics moved. That is what "
        "the course's freeze_encoder does with a forward pre-hook (smp's model.freeze_encoder() overrides "
        "train()). A freeze that only calls .eval() on the layers once would not survive: every training loop "
        "starts with model.train().",
        "weights": "The encoder's weights moved: some encoder parameters still had requires_grad=True, so the "
        "optimiser stepped them.",
        "both": "The encoder's weights moved (some encoder parameters still had requires_grad=True), and so did "
        "its running statistics (its BatchNorm layers were in training mode during the steps).",
    }[truth]
    if word == truth:
        return correct(f"Yes: {numbers}. {why}")
    return wrong(f"Look at the measured changes: {numbers}, so '{truth}'. {why}")


__all__ = [
    "check_trainable_after_freezing",
    "check_freeze_function",
    "check_discriminative_optimizer",
    "check_frozen_training",
    "FROZEN_ANSWERS",
]
