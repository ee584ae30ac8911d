"""Lesson 01 (PyTorch basics) has no training pipeline of its own: the learner writes the training loop in the
notebook, on :func:`course_utils.data.make_shapes` data; :func:`course_utils.training.fit` is that loop,
packaged for the later lessons. Here: the gradient of the line fit that the learner derives by hand (section 2),
computed by autograd, which the lesson falls back on while the learner's does not pass its check."""

from __future__ import annotations

import torch

from .settings import LESSON

CHECKPOINT_KIND = "tinysegnet"


def line_fit_gradient(
    w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dw, dL/db)`` of ``L = mean((w * x + b - y) ** 2)`` by autograd; ``w``, ``b``: scalars, ``x``, ``y``: (N,).

    The inputs are not changed (the gradient is taken on detached copies)."""
    w, b = (torch.as_tensor(v, dtype=torch.float32).detach().requires_grad_(True) for v in (w, b))
    loss = ((w * x + b - y) ** 2).mean()
    dw, db = torch.autograd.grad(loss, (w, b))
    return dw, db


__all__ = ["LESSON", "CHECKPOINT_KIND", "line_fit_gradient"]
