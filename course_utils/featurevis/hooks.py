"""Feature maps of named layers, captured with forward hooks that are always removed.

Layer names are those of ``model.named_modules()``: ``"encoders.0"``, ``"bottleneck"``,
``"decoders.1.block"`` for the course :class:`~course_utils.models.UNet`;
``"encoder.model.blocks.2"`` for an smp model with a timm encoder. ``""`` is the model itself
(its output, e.g. segmentation logits).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (``""`` = ``model``); a ``KeyError`` with close names otherwise."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}.")
    if not isinstance(name, str):
        raise TypeError(f"layer names are strings such as 'encoders.0', got {name!r}.")
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    close = difflib.get_close_matches(name, list(modules), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise KeyError(
        f"{type(model).__name__} has no layer {name!r}.{hint} List them with "
        "course_utils.featurevis.layer_names(model)."
    )


def layer_names(model: nn.Module, kinds: tuple[type[nn.Module], ...] | None = None) -> list[str]:
    """Names of the submodules (only those of the types in ``kinds``, if given), in order of definition."""
    return [name for name, m in model.named_modules() if name and (kinds is None or isinstance(m, kinds))]


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the convolution layers of ``model``, shallow to deep (order of definition)."""
    return layer_names(model, CONV_TYPES)


def count_forward_hooks(model: nn.Module) -> int:
    """Forward and forward-pre hooks registered on ``model`` and all its submodules."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _detached(output):
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (list, tuple)):  # e.g. an smp encoder returns a list of feature maps
        return type(output)(o.detach() if isinstance(o, torch.Tensor) else o for o in output)
    return output


@contextmanager
def capture_features(
    model: nn.Module, layers: str | Sequence[str], detach: bool = True
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named layers during the forward passes inside the ``with`` block.

    Yields a dict ``name -> output`` (the last forward pass wins); ``detach=False`` keeps the
    graph (for gradient ascent). The hooks are removed when the block ends, also when it ends
    with an exception.

    >>> with capture_features(model, ["encoders.0", "bottleneck"]) as feats:
    ...     model(x)
    >>> feats["bottleneck"].shape    # (B, C, *spatial)
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("give at least one layer name, e.g. capture_features(model, ['encoders.0']).")
    modules = [resolve_layer(model, n) for n in names]  # fail before registering anything
    store: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output):
            store[name] = _detached(output) if detach else output

        return hook

    try:
        for name, module in zip(names, modules):
            handles.append(module.register_forward_hook(make_hook(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model.eval()`` inside the block; every submodule's ``training`` flag is restored afterwards."""
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield model
    finally:
        for m, flag in flags.items():
            m.training = flag


def feature_maps(model: nn.Module, x: torch.Tensor, layers: str | Sequence[str]) -> dict[str, torch.Tensor]:
    """Outputs of the named layers for input ``x`` ``(B, C, *spatial)``, computed in eval mode without gradients.

    Returns ``name -> (B, C_layer, *spatial_layer)`` (whatever the layer returns).
    """
    with evaluation_mode(model), torch.no_grad(), capture_features(model, layers) as store:
        model(x)
    names = [layers] if isinstance(layers, str) else list(layers)
    missing = [n for n in names if n not in store]
    if missing:
        raise RuntimeError(
            f"layer(s) {missing} did not run during the forward pass; pick layers that the model's forward() calls."
        )
    return {n: store[n] for n in names}
