"""The training loop of lesson 01, packaged for the later lessons.

:func:`fit` is exactly the loop written out by hand in lesson 01 (forward, loss,
``zero_grad``, ``backward``, ``step``; then a validation pass under ``no_grad``),
plus what a real run needs: progress bars, per-epoch history, an optional time cap,
optional mixed precision (float16 on CUDA, bfloat16 on CPUs that have it; see
:mod:`course_utils.precision`), the channels-last memory layout, an exponential
moving average (EMA) of the weights, gradient clipping, and a checkpoint of the
best epoch. :func:`training_step` is that loop's step on its own; ``step_fn`` lets a
lesson run its learner's own step inside the same loop (lesson 04).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from .device import pick_device
from .errors import TimeCapWarning
from .layout import as_layout, memory_layout, to_channels_last
from .precision import amp_dtype, autocast, needs_grad_scaler
from .progress import progress
from .validate import check_int

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]
StepFn = Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor], Any, Callable], float]
"""``step_fn(model, (inputs, targets), optimizer, loss_fn) -> loss``: one optimisation step on one batch."""


@dataclass
class History:
    """One dict per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``, ``seconds``.

    ``planned_epochs``: the work asked for; ``time_capped``: ``True`` when the optional time cap stopped
    training before it (then the run is not the profile's run, and :meth:`describe` says so).
    """

    records: list[dict[str, float]] = field(default_factory=list)
    planned_epochs: int = 0
    time_capped: bool = False

    def append(self, record: Mapping[str, float]) -> None:
        self.records.append(dict(record))

    def __getitem__(self, key: str) -> list[float]:
        if not self.records or key not in self.records[-1]:
            known = sorted(self.records[-1]) if self.records else []
            raise KeyError(f"no {key!r} in history; recorded: {known}")
        return [r.get(key, math.nan) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        return list(self.records[-1]) if self.records else []

    def last(self, key: str) -> float:
        return self[key][-1]

    @property
    def seconds(self) -> float:
        """Training seconds, summed over the epochs (measured, never a stopping rule unless capped)."""
        return float(sum(r.get("seconds", 0.0) for r in self.records))

    def describe(self) -> str:
        """One line for the learner: epochs done of planned, seconds, and a loud note when the cap cut it."""
        text = f"{len(self)} of {self.planned_epochs or len(self)} planned epochs in {self.seconds:.0f} s"
        if self.time_capped:
            text += (
                " - STOPPED BY THE TIME CAP before the planned work (and before the end of any learning-rate"
                " schedule), so this run's numbers will fall short of the lesson's reference (leave the cap at"
                " None to train the profile's full work)"
            )
        return text

    def best(self, key: str, mode: str = "max") -> tuple[int, float]:
        """``(epoch, value)`` of the best epoch for ``key`` (``mode`` ``"max"`` or ``"min"``)."""
        values = self[key]
        pick = max if mode == "max" else min
        value = pick(v for v in values if not math.isnan(v))
        return self.records[values.index(value)]["epoch"], value

    def to_list(self) -> list[dict[str, float]]:
        return [dict(r) for r in self.records]

    @classmethod
    def from_list(cls, records: Iterable[Mapping[str, float]]) -> "History":
        return cls([dict(r) for r in records])


def _unpack(
    batch: Any, device: torch.device, layout: torch.memory_format | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, Mapping):
        x, y = batch["image"], batch["target"]
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise TypeError("each batch must be (inputs, targets, ...) or a dict with 'image' and 'target'")
    return as_layout(x.to(device, non_blocking=True), layout), y.to(device, non_blocking=True)


def weight_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights and BatchNorm statistics.

    After each optimiser step call ``ema.update_parameters(model)``; ``ema.module`` is
    then the averaged network: ``w_ema <- decay * w_ema + (1 - decay) * w``, so it
    averages over about ``1 / (1 - decay)`` of the last steps (``decay=0.998``: 500).
    PyTorch's :class:`torch.optim.swa_utils.AveragedModel` does the work.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema decay must be in (0, 1), e.g. 0.998, got {decay}.")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def training_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
) -> float:
    """One optimisation step on one batch, as in lesson 01: forward, loss, ``zero_grad``, ``backward``, ``step``.

    ``batch``: ``(inputs, targets)`` on the model's device, e.g. 3-D patches ``(B, C, X, Y, Z)`` and their masks
    ``(B, 1, X, Y, Z)``. Returns the batch's loss as a Python float (``loss.item()``: no graph kept alive).
    The same step as :func:`train_one_epoch`'s own; as ``step_fn`` of :func:`fit` it trains the same network.
    """
    inputs, targets = batch
    loss = loss_fn(model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


class _AutocastForward(nn.Module):
    """``model`` seen by a ``step_fn`` under mixed precision: its forward runs under autocast and returns float32,
    as the default step's ``logits.float()``; the parameters are ``model``'s own."""

    def __init__(self, model: nn.Module, device: torch.device, amp: bool | str):
        super().__init__()
        self.model, self.device, self.amp = model, device, amp

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with autocast(self.device, self.amp):
            out = self.model(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) else out


class _StepOptimizer:
    """``optimizer`` seen by a ``step_fn`` with gradient scaling or clipping: ``step()`` also does what the default
    step does between ``backward`` and the update (unscale float16 gradients, clip them, update the scaler)."""

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, scaler: Any, grad_clip: float | None):
        self.optimizer, self.model, self.scaler, self.grad_clip = optimizer, model, scaler, grad_clip

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Any = None) -> None:
        if closure is not None:
            raise ValueError("a step_fn's optimizer.step() takes no closure inside fit.")
        if self.scaler is not None:
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


def _run_step_fn(
    step_fn: StepFn,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    device: torch.device,
    *,
    scaler: Any,
    amp: bool | str,
    grad_clip: float | None,
) -> float:
    """One batch through ``step_fn``, with the default step's mixed precision, loss check, scaling and clipping
    around it; returns the batch's (unscaled) loss."""
    scale = [1.0]

    def step_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(logits.float(), targets)  # the loss always in float32
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()}; lower the learning rate or check the inputs")
        if scaler is None:
            return loss
        scale[0] = float(scaler.get_scale())
        return scaler.scale(loss)

    seen_model = _AutocastForward(model, device, amp) if amp_dtype(device, amp) is not None else model
    wrap = scaler is not None or bool(grad_clip)
    seen_optimizer = _StepOptimizer(optimizer, model, scaler, grad_clip) if wrap else optimizer
    value = step_fn(seen_model, (x, y), seen_optimizer, step_loss)
    if value is None or value is Ellipsis:
        raise TypeError("step_fn returned nothing: it must return the batch's loss as a number (loss.item()).")
    if isinstance(value, torch.Tensor):
        value = value.detach()
    return float(value) / scale[0]


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    scheduler: Any = None,
    scaler: Any = None,
    amp: bool | str = False,
    grad_clip: float | None = None,
    ema: Any = None,
    show_progress: bool = True,
    desc: str = "train",
    step_fn: StepFn | None = None,
) -> float:
    """One pass over ``loader``; returns the mean loss per sample.

    ``scheduler`` (if given) steps after every batch (e.g. OneCycleLR); ``ema`` (from
    :func:`weight_ema`, if given) is updated after every step. ``step_fn``: see :func:`fit`.
    """
    model.train()
    layout = memory_layout(model)
    total, count = 0.0, 0
    for batch in progress(loader, enabled=show_progress, desc=desc, leave=False):
        x, y = _unpack(batch, device, layout)
        if step_fn is not None:
            value = _run_step_fn(
                step_fn, model, x, y, optimizer, loss_fn, device, scaler=scaler, amp=amp, grad_clip=grad_clip
            )
            if ema is not None:
                ema.update_parameters(model)
            if scheduler is not None:
                scheduler.step()
            total += value * x.shape[0]
            count += x.shape[0]
            continue
        with autocast(device, amp):
            logits = model(x)
        loss = loss_fn(logits.float(), y)  # the loss always in float32
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()}; lower the learning rate or check the inputs")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * x.shape[0]
        count += x.shape[0]
    return total / max(count, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable | None,
    device: torch.device,
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    amp: bool | str = False,
) -> dict[str, float]:
    """Mean loss and metrics over ``loader`` (sample-weighted means of per-batch values)."""
    model.eval()
    layout = memory_layout(model)
    sums: dict[str, float] = {}
    count = 0
    for batch in loader:
        x, y = _unpack(batch, device, layout)
        with autocast(device, amp):
            logits = model(x)
        n = x.shape[0]
        values = {name: fn(logits.float(), y) for name, fn in (metrics or {}).items()}
        if loss_fn is not None:
            values["loss"] = loss_fn(logits.float(), y).item()
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
        count += n
    if count == 0:
        raise ValueError("the validation loader yielded no batches")
    return {name: s / count for name, s in sums.items()}


def fit(
    model: nn.Module,
    train_loader: Iterable,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    val_loader: Iterable | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    device: torch.device | str | None = None,
    scheduler: Any = None,
    amp: bool | str = False,
    grad_clip: float | None = None,
    max_seconds: float | None = None,
    channels_last: bool = False,
    ema_decay: float | None = None,
    checkpoint_path: str | Path | None = None,
    overwrite_checkpoint: bool = False,
    monitor: str = "val_loss",
    mode: str = "min",
    show_progress: bool = True,
    verbose: bool = True,
    step_fn: StepFn | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    The work is fixed by ``epochs`` (and the loader's length): the same seed gives the same network on a
    busy machine as on an idle one. ``max_seconds`` is an optional cap: when the training time passes it,
    training stops at the end of that epoch, with a :class:`~course_utils.errors.TimeCapWarning` and a
    printed note (epochs done of planned), and ``History.time_capped`` is set.

    ``metrics`` map a name to ``fn(logits, target) -> float``; they are computed on
    ``val_loader`` and recorded as ``val_<name>``. ``scheduler`` steps once per batch.
    With ``checkpoint_path`` the epoch with the best ``monitor`` value is saved
    there (the file is replaced during the run; it is this run's own file). An existing file there is
    refused before training starts, unless ``overwrite_checkpoint=True``.
    ``amp``: mixed precision (:mod:`course_utils.precision`): ``True`` = float16 with gradient
    scaling on CUDA, bfloat16 on a CPU with native bfloat16, float32 elsewhere.
    ``channels_last=True`` stores a 2-D or 3-D network and its input batches channels-last
    (``(B, H, W, C)`` or ``(B, D, H, W, C)`` in memory), which makes convolutions faster on
    CPUs and recent GPUs; the numbers do not change. ``ema_decay`` (e.g. 0.998): keep an exponential moving
    average of the weights (:func:`weight_ema`), validate it, and copy it into ``model``
    at the end, so the returned network is the averaged one.
    If the training loader's dataset has ``set_epoch`` (random-patch datasets),
    it is called with the epoch number (1, 2, ...) before each epoch.

    ``step_fn(model, (inputs, targets), optimizer, loss_fn) -> float`` (e.g. :func:`training_step`, or a learner's
    own) replaces the default step on every batch; ``None`` (default) is the default step. Everything around the step
    stays: the batch arrives on ``device`` (channels-last when the model is), and the EMA and the scheduler are updated
    after it. With ``amp``, the ``model`` it gets runs its forward under autocast and returns float32; with a
    float16 gradient scaler (CUDA), the ``loss_fn`` it gets returns the scaled loss (the loop divides the returned
    value by the scale); with ``grad_clip`` or a scaler, its ``optimizer.step()`` unscales, clips and updates the
    scaler first. ``loss_fn`` raises :class:`FloatingPointError` on a non-finite loss, before any update. So a step
    written for plain float32 trains as the default one does under every option.
    """
    check_int("epochs", epochs, 1)
    if step_fn is not None and not callable(step_fn):
        raise TypeError(f"step_fn must be a function step_fn(model, batch, optimizer, loss_fn), got {step_fn!r}.")
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and 0 < max_seconds < math.inf):
        raise ValueError(f"max_seconds (the optional time cap) must be a positive number or None, got {max_seconds!r}.")
    if checkpoint_path is not None:  # refuse a user's file, a folder, a read-only place before training
        from .files import check_target

        if monitor.startswith("val_") and val_loader is None:
            raise ValueError(
                f"checkpoint_path needs val_loader: the best epoch is judged by {monitor!r}, a validation value "
                "(or pass monitor='train_loss')."
            )

        checkpoint_path = check_target(
            checkpoint_path, overwrite=overwrite_checkpoint, how_to_replace="pass overwrite_checkpoint=True"
        )
    device = pick_device(device if isinstance(device, str) or device is None else str(device))
    model.to(device)
    if channels_last:
        to_channels_last(model)
    ema = weight_ema(model, ema_decay) if ema_decay else None
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(device, amp) else None
    history = History(planned_epochs=epochs)
    start = time.perf_counter()
    deadline = start + max_seconds if max_seconds else None
    best = math.inf if mode == "min" else -math.inf
    bar = progress(range(1, epochs + 1), enabled=show_progress, desc="epochs")
    dataset = getattr(train_loader, "dataset", None)
    for epoch in bar:
        t0 = time.perf_counter()
        if hasattr(dataset, "set_epoch"):  # random-patch datasets draw fresh patches each epoch
            dataset.set_epoch(epoch)
        train_loss = train_one_epoch(
            model,
            train_loader,
            loss_fn,
            optimizer,
            device,
            scheduler=scheduler,
            scaler=scaler,
            amp=amp,
            grad_clip=grad_clip,
            ema=ema,
            show_progress=show_progress,
            desc=f"epoch {epoch}",
            step_fn=step_fn,
        )
        record: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            judged = ema.module if ema is not None else model
            for name, value in evaluate(judged, val_loader, loss_fn, device, metrics=metrics, amp=amp).items():
                record[f"val_{name}"] = value
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if show_progress and hasattr(bar, "set_postfix"):
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_", "val_"))})
        if checkpoint_path is not None and monitor in record:
            value = record[monitor]
            if (value < best) if mode == "min" else (value > best):
                best = value
                from .checkpoint import save_checkpoint

                save_checkpoint(
                    checkpoint_path,
                    ema.module if ema is not None else model,
                    optimizer=optimizer,
                    history=history,
                    meta={"epoch": epoch, monitor: value},
                    on_exists="overwrite",
                )
        if deadline is not None and time.perf_counter() > deadline and epoch < epochs:
            history.time_capped = True
            note = f"time cap of {max_seconds:g} s reached: " + history.describe()
            print("WARNING: " + note, flush=True)
            warnings.warn(note, TimeCapWarning, stacklevel=2)
            break
    if ema is not None:  # the averaged weights (and BatchNorm statistics) become the model's
        model.load_state_dict(ema.module.state_dict())
    if verbose and history.records:
        last = history.records[-1]
        summary = ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("train_", "val_")))
        print(f"trained {history.describe()}: {summary}")
    return history
