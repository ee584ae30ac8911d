"""Saving and safely loading model checkpoints.

A checkpoint is a plain dict of tensors and simple Python values, so that it loads
with ``torch.load(weights_only=True)`` (no arbitrary code runs on load). A save
never silently replaces an existing file: ``on_exists`` says what to do.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

FORMAT = "course_utils.checkpoint/1"


def _free_path(path: Path) -> Path:
    for i in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{i:03d}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"too many numbered copies of {path}")


def save_checkpoint(path: str | Path, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                    history: Any = None, meta: Mapping[str, Any] | None = None,
                    model_config: Mapping[str, Any] | None = None, on_exists: str = "error") -> Path:
    """Write ``model`` (and optionally optimizer state, history, metadata) to ``path``.

    ``on_exists``: ``"error"`` (default) refuses to replace an existing file,
    ``"rename"`` saves next to it as ``name-001.pt`` and says so, ``"overwrite"``
    replaces it. The write is atomic (temporary file, then rename). Returns the
    path actually written. ``model_config`` defaults to ``model.config`` when the
    model has one, so that :func:`load_checkpoint` callers can rebuild it.
    """
    if on_exists not in ("error", "rename", "overwrite"):
        raise ValueError(f"on_exists must be 'error', 'rename' or 'overwrite', got {on_exists!r}")
    path = Path(path)
    if path.exists():
        if on_exists == "error":
            raise FileExistsError(f"{path} already exists. Choose another file name, or pass "
                                  "on_exists='rename' (keep both) or on_exists='overwrite' (replace it).")
        if on_exists == "rename":
            new = _free_path(path)
            print(f"{path.name} exists; saving this checkpoint as {new.name} instead")
            path = new
    path.parent.mkdir(parents=True, exist_ok=True)
    if model_config is None:
        model_config = getattr(model, "config", None)
    records = history.to_list() if hasattr(history, "to_list") else history
    payload = {
        "format": FORMAT,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_class": type(model).__name__,
        "model_config": dict(model_config) if model_config else None,
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "history": records,
        "meta": dict(meta or {}),
        "torch_version": str(torch.__version__),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu", strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    If ``model`` is given its weights are restored (and the optimizer's state when
    both are given). Returns the checkpoint dict (``meta``, ``history``, ``model_config``...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}. Run the lesson that trains this model first, "
                                "or check the file name.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors differ across torch versions
        raise ValueError(f"{path} is not a checkpoint that loads safely (weights_only=True): {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} was not written by course_utils.save_checkpoint; for a plain state dict use "
                         "model.load_state_dict(torch.load(path, weights_only=True)).")
    if model is not None:
        try:
            result = model.load_state_dict(ckpt["model_state"], strict=strict)
        except RuntimeError as err:
            raise RuntimeError(
                f"the weights in {path} do not fit this model (saved from a {ckpt.get('model_class')} with "
                f"config {ckpt.get('model_config')}). Build the model with that configuration.\n{err}"
            ) from err
        if not strict and (result.missing_keys or result.unexpected_keys):
            print(f"partial load: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
        if optimizer is not None and ckpt.get("optimizer_state") is not None:
            optimizer.load_state_dict(ckpt["optimizer_state"])
    return ckpt
