"""Choosing where tensors live: CUDA, then Apple MPS, then CPU. Never hard-coded."""

from __future__ import annotations

import torch

from .errors import ConfigError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device, or the one asked for.

    ``prefer``: ``None``/``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or ``"mps"``. Asking for a device that is not there raises
    :class:`ConfigError` instead of failing later inside a kernel.
    """
    if prefer in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"{prefer!r} is not a device name; use 'auto', 'cpu', 'cuda' or 'mps'.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "CUDA was asked for but no CUDA GPU is visible; use device='auto' or 'cpu' "
            "(on Colab: Runtime > Change runtime type > GPU)."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{prefer!r}: only {torch.cuda.device_count()} CUDA device(s) are visible.")
    if device.type == "mps" and not _mps_available():
        raise ConfigError("Apple MPS was asked for but is not available; use device='auto' or 'cpu'.")
    return device


def describe_device(device: torch.device) -> str:
    """A one-line human description, e.g. ``'cuda (NVIDIA T4, 15.0 GiB)'`` or ``'cpu (2 threads)'``."""
    device = torch.device(device)
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        return f"cuda:{idx} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
