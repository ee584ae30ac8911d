"""Activation maximisation: gradient ascent on the input image (Erhan et al. 2009; Simonyan et al. 2013).

Each step: image (:mod:`.parameterization`) -> random jitter / rotation / scaling
(:mod:`.regularizers`) -> the model's own input normalisation -> model; the hooked layer's
output goes into the objective (:mod:`.objectives`); the loss is
``-objective + l2 * mean(input**2) + tv * total_variation(image, reduction="mean")``. Only the
image changes: the model's weights and its train/eval state are left as they were (it runs in
eval mode). Everything random is drawn from one generator seeded with ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

import torch
from torch import nn

from .hooks import capture_features, evaluation_mode
from .objectives import Objective
from .parameterization import make_image
from .regularizers import jitter as jitter_image
from .regularizers import l2_penalty, random_rotate_scale, total_variation

# The model's input normalisation: a callable, (mean, std) per channel, or None.
Normalization = Optional[Union[Callable[[torch.Tensor], torch.Tensor], Tuple[Sequence[float], Sequence[float]]]]


@dataclass
class ActivationMaxResult:
    """What :func:`maximize_activation` found.

    ``image``: ``(1, C, *spatial)`` in image space (``value_range``); ``model_input``: the same
    after normalisation; ``start_activation`` / ``final_activation``: the objective on the
    untransformed start and final images; ``history``: the objective at every step.
    """

    image: torch.Tensor
    model_input: torch.Tensor
    start_activation: float
    final_activation: float
    history: list[float] = field(default_factory=list)

    @property
    def gain(self) -> float:
        """``final / start`` (``inf`` if the start was not positive)."""
        return self.final_activation / self.start_activation if self.start_activation > 0 else float("inf")


def make_normalizer(normalize: Normalization, channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function image -> model input: identity, ``(x - mean) / std`` per channel, or the callable given."""
    if normalize is None:
        return lambda x: x
    if callable(normalize):
        return normalize
    mean, std = (tuple(float(v) for v in seq) for seq in normalize)
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(f"normalize=(mean, std) needs {channels} values each (std > 0), got {normalize}.")

    def apply(x: torch.Tensor) -> torch.Tensor:
        shape = (1, channels) + (1,) * (x.ndim - 2)
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
        return (x - m) / s

    return apply


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def maximize_activation(
    model: nn.Module,
    objective: Objective,
    input_shape: Sequence[int],
    *,
    steps: int = 128,
    lr: float = 0.05,
    parameterization: str = "pixel",
    l2: float = 0.0,
    tv: float = 0.0,
    jitter: int = 0,
    rotate_degrees: float = 0.0,
    scale_range: tuple[float, float] = (1.0, 1.0),
    normalize: Normalization = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    init_std: float = 0.5,
    decay_power: float = 1.0,
    seed: int = 0,
) -> ActivationMaxResult:
    """Optimise an input image so that ``objective`` (on its ``layer``) becomes large.

    Args:
        model: any ``nn.Module`` (course UNet 2D/3D, smp model...).
        objective: :class:`~.objectives.ChannelObjective`, :class:`~.objectives.NeuronObjective`
            or :class:`~.objectives.RegionObjective`.
        input_shape: ``(C, H, W)`` or ``(C, D, H, W)`` of one input (any number of channels);
            spatial sizes must suit the model (multiples of ``model.size_divisor`` for the UNet).
        steps, lr: Adam steps and learning rate on the image parameters.
        parameterization: ``"pixel"`` or ``"fourier"`` (:mod:`.parameterization`).
        l2, tv: weights of the L2 and total-variation penalties (0 = off).
        jitter: largest random shift in pixels; rotate_degrees, scale_range: random rotation and zoom.
        normalize: the model's input normalisation: ``(mean, std)`` per channel, a callable
            (e.g. ``model.encoder_info.normalize``) or ``None`` (the image goes in as it is).
        value_range: range of image values (sigmoid-squashed), ``None`` for unbounded.
        seed: seeds the start image and the random transformations (same seed, same result).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"input_shape must be (C, H, W) or (C, D, H, W), got {input_shape}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}.")
    device = _model_device(model)
    generator = torch.Generator().manual_seed(seed)
    image_param = make_image(
        parameterization,
        shape[0],
        shape[1:],
        init_std=init_std,
        value_range=value_range,
        decay_power=decay_power,
        generator=generator,
    ).to(device)
    normalizer = make_normalizer(normalize, shape[0])
    params = list(image_param.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    layer = objective.layer

    def evaluate(store: dict, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model_input = normalizer(image)
        model(model_input)
        if layer not in store:
            raise RuntimeError(f"layer {layer!r} did not run in the forward pass.")
        return objective(store[layer]), model_input

    history: list[float] = []
    with evaluation_mode(model), capture_features(model, layer, detach=False) as store:
        with torch.no_grad():
            start = float(evaluate(store, image_param())[0])
        for _ in range(steps):
            image = image_param()
            moved = jitter_image(image, jitter, generator=generator)
            moved = random_rotate_scale(moved, rotate_degrees, scale_range, generator=generator)
            value, model_input = evaluate(store, moved)
            loss = -value
            if l2:
                loss = loss + l2 * l2_penalty(model_input)
            if tv:
                loss = loss + tv * total_variation(image, reduction="mean")
            grads = torch.autograd.grad(loss, params)  # the model's weights get no gradient
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()
            history.append(float(value.detach()))
        with torch.no_grad():
            image = image_param()
            final, model_input = evaluate(store, image)
    return ActivationMaxResult(
        image=image.detach().cpu(),
        model_input=model_input.detach().cpu(),
        start_activation=start,
        final_activation=float(final),
        history=history,
    )


def activation_table(
    model: nn.Module, baseline: nn.Module, objectives: Sequence[Objective], input_shape: Sequence[int], **kwargs
) -> list[dict[str, float | str]]:
    """One row per objective: activation at the random start, reached by the trained model, and
    reached by ``baseline`` (e.g. :func:`~.baseline.random_weight_copy`) with the same settings.

    ``kwargs`` go to :func:`maximize_activation`. Rows: ``filter``, ``start``, ``reached``,
    ``gain`` (reached / start), ``baseline_reached``.
    """
    rows = []
    for objective in objectives:
        trained = maximize_activation(model, objective, input_shape, **kwargs)
        random_net = maximize_activation(baseline, objective, input_shape, **kwargs)
        rows.append(
            {
                "filter": objective.describe(),
                "start": trained.start_activation,
                "reached": trained.final_activation,
                "gain": trained.gain,
                "baseline_reached": random_net.final_activation,
            }
        )
    return rows
