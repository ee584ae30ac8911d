"""The course's one training recipe: AdamW, warm-up + cosine schedule, BCE + soft Dice, :func:`~.training.fit`.

Every lesson trains its networks through :func:`train_model` (lesson 01 writes the loop by hand first,
lesson 02 calls :func:`~.training.fit` directly to show its parts).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from .losses import BCEDiceLoss
from .metrics import dice_score
from .schedules import WarmupCosine
from .training import History, MetricFn, StepFn, fit
from .validate import check_int


def train_model(
    model: nn.Module,
    train_loader: Iterable,
    *,
    lr: float,
    epochs: int,
    max_seconds: float | None = None,
    loss_fn: Callable | None = None,
    bce_weight: float = 0.5,
    fn_weight: float = 0.5,
    weight_decay: float = 1e-4,
    optimizer: torch.optim.Optimizer | None = None,
    val_loader: Iterable | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    device: torch.device | str | None = None,
    amp: bool | str = False,
    channels_last: bool = False,
    ema_decay: float | None = None,
    show_progress: bool = True,
    verbose: bool = True,
    step_fn: StepFn | None = None,
) -> History:
    """Train ``model`` on ``train_loader`` batches ``(inputs, targets, ...)``; returns ``fit``'s :class:`History`.

    * optimiser: AdamW at ``lr`` with ``weight_decay``, or ``optimizer`` when given (e.g. parameter
      groups with their own rates: :class:`~.schedules.WarmupCosine` keeps their ratio);
    * schedule: :class:`~.schedules.WarmupCosine` over ``epochs * len(train_loader)`` steps: the work,
      never the clock, so a busy machine trains the same network, only slower;
    * ``max_seconds``: an optional cap (``None``: none); when hit, training stops early with a loud
      :class:`~.errors.TimeCapWarning` (see :func:`~.training.fit`);
    * loss: ``loss_fn``, by default BCE + soft Dice (:class:`~.losses.BCEDiceLoss` with ``bce_weight``;
      ``fn_weight != 0.5``: soft Tversky);
    * ``val_loader``: each epoch records ``val_loss`` and ``val_<metric>`` (default ``val_dice``);
    * ``amp``, ``channels_last``, ``ema_decay``: see :func:`~.training.fit`;
    * ``step_fn``: a step of one's own, ``step_fn(model, (inputs, targets), optimizer, loss_fn) -> float``, run on
      every batch instead of the default one, with everything above around it (:func:`~.training.fit`; lesson 04
      trains with the learner's step); ``None``: the default step.
    """
    check_int("epochs", epochs, 1)
    if not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}.")
    if not hasattr(train_loader, "__len__") or len(train_loader) < 1:
        raise ValueError("train_loader must have a length >= 1 (the schedule counts its steps).")
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = WarmupCosine(optimizer, total_steps=epochs * len(train_loader))
    if loss_fn is None:
        loss_fn = BCEDiceLoss(bce_weight=bce_weight, fn_weight=fn_weight)
    if val_loader is not None and metrics is None:
        metrics = {"dice": _dice}
    return fit(
        model,
        train_loader,
        loss_fn,
        optimizer,
        epochs=epochs,
        val_loader=val_loader,
        metrics=metrics,
        device=device,
        scheduler=schedule,
        max_seconds=max_seconds,
        amp=amp,
        channels_last=channels_last,
        ema_decay=ema_decay or None,
        show_progress=show_progress,
        verbose=verbose,
        step_fn=step_fn,
    )


def _dice(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float(dice_score(logits, target))


__all__ = ["train_model"]
