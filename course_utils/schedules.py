"""Learning-rate schedules, built on :class:`torch.optim.lr_scheduler.LRScheduler` (so they have a ``state_dict``)."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from .validate import check_int


class WarmupCosine(LRScheduler):
    """Linear warm-up to each group's initial learning rate, then cosine decay to ``final_ratio`` of it.

    Every parameter group follows the same factor, so groups keep their ratio (an encoder at a tenth of
    the decoder's rate stays at a tenth). Progress is ``steps / total_steps``: the schedule counts work,
    never seconds, so a busy or slow machine follows exactly the same learning rates as a fast one.
    Call :meth:`step` once per batch, as :func:`course_utils.training.fit` does.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        warmup: float = 0.05,
        final_ratio: float = 0.01,
        last_epoch: int = -1,
    ):
        check_int("total_steps", total_steps, 1)
        if not 0 <= warmup < 1 or not 0 <= final_ratio <= 1:
            raise ValueError(f"need 0 <= warmup < 1 and 0 <= final_ratio <= 1, got {warmup}, {final_ratio}.")
        self.total_steps = total_steps
        self.warmup, self.final_ratio = float(warmup), float(final_ratio)
        super().__init__(optimizer, last_epoch)

    def factor_at(self, progress: float) -> float:
        """The multiplier of the initial learning rate at ``progress`` in [0, 1] of the planned steps."""
        p = min(max(progress, 0.0), 1.0)
        if self.warmup and p < self.warmup:
            return max(p / self.warmup, 0.01)
        q = (p - self.warmup) / (1.0 - self.warmup)
        return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + math.cos(math.pi * q))

    def lr_at(self, progress: float, group: int = 0) -> float:
        """The learning rate of parameter group ``group`` at ``progress`` in [0, 1] of the planned steps."""
        return self.base_lrs[group] * self.factor_at(progress)

    def progress(self) -> float:
        """Fraction of the planned steps done so far, in [0, 1]."""
        return min(max(self.last_epoch, 0) / self.total_steps, 1.0)

    def get_lr(self) -> list[float]:
        factor = self.factor_at(self.progress())
        return [base * factor for base in self.base_lrs]


__all__ = ["WarmupCosine"]
