"""Learning-rate schedules, built on :class:`torch.optim.lr_scheduler.LRScheduler` (so they have a ``state_dict``)."""

from __future__ import annotations

import math
import time

import torch
from torch.optim.lr_scheduler import LRScheduler


class WarmupCosine(LRScheduler):
    """Linear warm-up to each group's initial learning rate, then cosine decay to ``final_ratio`` of it.

    Every parameter group follows the same factor, so groups keep their ratio (an encoder at a tenth of
    the decoder's rate stays at a tenth). Progress is the larger of ``steps / total_steps`` and, when
    ``seconds`` is given, ``elapsed / seconds`` (counted from the first :meth:`step`): the schedule ends
    with whichever budget runs out first. Call :meth:`step` once per batch, as
    :func:`course_utils.training.fit` does.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int | None = None,
        seconds: float | None = None,
        warmup: float = 0.05,
        final_ratio: float = 0.01,
        last_epoch: int = -1,
    ):
        if total_steps is None and seconds is None:
            raise ValueError("give total_steps, seconds or both: the schedule needs a budget.")
        if (total_steps is not None and total_steps < 1) or (seconds is not None and not seconds > 0):
            raise ValueError(f"total_steps must be >= 1 and seconds > 0, got {total_steps}, {seconds}.")
        if not 0 <= warmup < 1 or not 0 <= final_ratio <= 1:
            raise ValueError(f"need 0 <= warmup < 1 and 0 <= final_ratio <= 1, got {warmup}, {final_ratio}.")
        self.total_steps, self.seconds = total_steps, seconds
        self.warmup, self.final_ratio = float(warmup), float(final_ratio)
        self.started_at: float | None = None
        super().__init__(optimizer, last_epoch)

    def factor_at(self, progress: float) -> float:
        """The multiplier of the initial learning rate at ``progress`` in [0, 1] of the budget."""
        p = min(max(progress, 0.0), 1.0)
        if self.warmup and p < self.warmup:
            return max(p / self.warmup, 0.01)
        q = (p - self.warmup) / (1.0 - self.warmup)
        return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + math.cos(math.pi * q))

    def lr_at(self, progress: float, group: int = 0) -> float:
        """The learning rate of parameter group ``group`` at ``progress`` in [0, 1] of the budget."""
        return self.base_lrs[group] * self.factor_at(progress)

    def progress(self) -> float:
        """Fraction of the budget used so far, in [0, 1]."""
        parts = [0.0]
        if self.total_steps:
            parts.append(max(self.last_epoch, 0) / self.total_steps)
        if self.seconds and self.started_at is not None:
            parts.append((time.perf_counter() - self.started_at) / self.seconds)
        return min(max(parts), 1.0)

    def state_dict(self) -> dict:
        """The schedule's state; the time already spent is stored in seconds (a clock reading means nothing
        in another process)."""
        state = super().state_dict()
        started = state.pop("started_at", None)
        state["elapsed_seconds"] = None if started is None else time.perf_counter() - started
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        elapsed = state.pop("elapsed_seconds", None)
        super().load_state_dict(state)
        self.started_at = None if elapsed is None else time.perf_counter() - elapsed

    def get_lr(self) -> list[float]:
        if self.started_at is None and self.last_epoch > 0:  # the clock starts at the first step after __init__
            self.started_at = time.perf_counter()
        factor = self.factor_at(self.progress())
        return [base * factor for base in self.base_lrs]


__all__ = ["WarmupCosine"]
