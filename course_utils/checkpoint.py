"""Saving and safely loading model checkpoints, and the contract that makes a lesson's model reusable.

A checkpoint is a plain dict of tensors and simple Python values, so that it loads
with ``torch.load(weights_only=True)`` (no arbitrary code runs on load). A save
never silently replaces an existing file: ``on_exists`` says what to do.

The contract (as in nnU-Net, the checkpoint carries everything prediction needs):

* :func:`checkpoint_path` is the one place that names a lesson's checkpoint
  (``<outputs>/<lesson>/<kind>-<profile>.pt``); :func:`find_checkpoint` finds the newest one.
* :class:`ModelRecord` is the typed, versioned metadata saved with the weights: the model's
  builder and config, its inputs and their normalisation, the pixel or voxel size it works at,
  the window, overlap, TTA and rim of its inference, its threshold and how that was chosen, the
  profile, training data and seconds, and the course version.
* :func:`load_model` rebuilds the network from a checkpoint alone and returns it with its record.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .config import PROFILES, parse_profiles
from .errors import ConfigError, CorruptFileError
from .files import check_target, default_file_mode, free_path
from .paths import output_dir
from .validate import check_choice

FORMAT = "course_utils.checkpoint/1"
RECORD_VERSION = 1
BUILDERS = ("UNet", "pretrained_unet", "GridDetector")


def course_version() -> str:
    """The course package's version (``course_utils.__version__``)."""
    from . import __version__

    return __version__


@dataclass(frozen=True)
class ModelRecord:
    """Everything needed to use a lesson's model again without its notebook (saved with the weights).

    * ``lesson``, ``kind``, ``profile``: which run made it (see :func:`checkpoint_path`);
    * ``builder``, ``model_config``: how to rebuild the network (``"UNet"``: ``UNet.from_config``;
      ``"pretrained_unet"``: :func:`~course_utils.models.pretrained.pretrained_unet` with
      ``encoder_name``, ``in_channels``, ``classes``);
    * ``inputs``: the input channels in order (``["green"]``, ``["FLAIR", "T1"]``, ``["red", "green", "blue"]``);
      ``normalisation``: how each input was scaled (``{"method": ...}`` plus its parameters);
    * ``spacing_mm``: the voxel size (mm) the model works at, per axis, or ``None`` for photographs;
      ``scale``: other size facts of the input (e.g. ``{"fov_diameter_px": 540.0}`` for fundus photographs);
    * ``inference``: ``{"patch_size", "overlap", "tta", "rim_mm", ...}`` as the lesson predicted
      (``tta``: :data:`course_utils.inference.TTA_CHOICES`);
    * ``threshold`` and ``threshold_source`` (on which images, by which criterion it was chosen);
    * ``training``: data source, images or cases, epochs, seconds...;
    * ``reference``: optional fingerprint of one prediction (case name, SHA-256 and mean of its
      float32 probability map), so a fresh process can prove it predicts exactly as the lesson did;
    * ``course_version`` and ``version`` (of this record's layout).
    """

    lesson: str
    kind: str
    profile: str
    builder: str
    model_config: dict[str, Any]
    inputs: list[str]
    normalisation: dict[str, Any]
    spacing_mm: list[float] | None
    inference: dict[str, Any]
    threshold: float
    threshold_source: str
    training: dict[str, Any]
    scale: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] | None = None
    course_version: str = field(default_factory=course_version)
    version: int = RECORD_VERSION

    def __post_init__(self) -> None:
        check_choice("builder", self.builder, BUILDERS)
        check_choice("profile", self.profile, PROFILES)
        if not self.inputs:
            raise ConfigError("a model record needs its input channels (inputs=[...]).")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"threshold must be a probability in [0, 1], got {self.threshold!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (loads with ``weights_only=True``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "the checkpoint") -> "ModelRecord":
        """The record in ``values``; a :class:`ConfigError` that names every missing field otherwise."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source} holds no model record (got {type(values).__name__}).")
        version = values.get("version")
        if version != RECORD_VERSION:
            raise ConfigError(
                f"{source} has a model record of version {version!r}; this course reads version "
                f"{RECORD_VERSION}. Re-run the lesson that made it, or update the course."
            )
        required = [f.name for f in fields(cls) if f.default is f.default_factory is MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise ConfigError(
                f"{source} has an incomplete model record: missing {', '.join(missing)}. "
                "Re-run the lesson that made it."
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def prediction_fingerprint(case: str, prob: Any, source: str) -> dict[str, Any]:
    """A :attr:`ModelRecord.reference`: case name, data source, shape, SHA-256 and mean of the float32
    probability map ``prob`` that the lesson predicted for ``case``."""
    import hashlib

    import numpy as np

    values = np.ascontiguousarray(np.asarray(prob, dtype=np.float32))
    return {
        "case": str(case),
        "source": str(source),
        "shape": list(values.shape),
        "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
        "mean": float(values.mean()),
    }


def checkpoint_path(lesson: str, kind: str, profile: str, *, create: bool = True) -> Path:
    """Where ``lesson`` saves its ``kind`` of model for ``profile``: ``<outputs>/<lesson>/<kind>-<profile>.pt``.

    ``<outputs>`` is :func:`course_utils.paths.output_dir` (``$COURSE_OUTPUT_DIR`` or ``outputs/``).
    """
    check_choice("profile", profile, PROFILES)
    if not re.fullmatch(r"[A-Za-z0-9_.]+", kind):
        raise ConfigError(f"checkpoint kind must be a plain name like 'unet', got {kind!r}.")
    return output_dir(lesson, create=create) / f"{kind}-{profile}.pt"


def find_checkpoint(lesson: str, kind: str, profiles: str | Sequence[str]) -> Path | None:
    """The newest checkpoint of ``lesson``'s ``kind`` for the first of ``profiles`` that has one.

    Copies written by ``save_checkpoint(on_exists="rename")`` (``<kind>-<profile>-001.pt``...) count;
    within one profile the most recently written file wins (ties: the highest number). ``profiles``:
    ``"cpu,gpu,smoke"`` or a list. ``None`` when there is none (the lesson was not run).
    """
    items = parse_profiles(profiles)
    folder = output_dir(lesson, create=False)
    if not folder.is_dir():
        return None
    for profile in items:
        stem = checkpoint_path(lesson, kind, profile, create=False).stem
        pattern = re.compile(rf"^{re.escape(stem)}(?:-(\d+))?\.pt$")
        found = [
            (path.stat().st_mtime, int(m.group(1) or 0), path)
            for path in folder.iterdir()
            if (m := pattern.match(path.name)) and path.is_file()
        ]
        if found:
            return max(found)[2]
    return None


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    history: Any = None,
    meta: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    record: ModelRecord | None = None,
    on_exists: str = "error",
) -> Path:
    """Write ``model`` (and optionally optimizer state, history, metadata) to ``path``.

    ``on_exists``: ``"error"`` (default) refuses to replace an existing file,
    ``"rename"`` saves next to it as ``name-001.pt`` and says so, ``"overwrite"``
    replaces it (keeping the replaced file's mode). The write is atomic (temporary file, then rename); a new
    file gets the usual mode under the umask (``0o644`` for umask ``022``). A folder as ``path`` is refused. Returns the
    path actually written. ``model_config`` defaults to ``model.config`` when the
    model has one, so that :func:`load_checkpoint` callers can rebuild it; with a ``record``
    (:class:`ModelRecord`) it is the record's, and :func:`load_model` can use the file alone.
    """
    check_choice("on_exists", on_exists, ("error", "rename", "overwrite"))
    path = check_target(path, overwrite=True)  # a folder, a file as parent, read-only
    if path.exists():
        if on_exists == "error":
            raise FileExistsError(
                f"{path} already exists. Choose another file name, or pass "
                "on_exists='rename' (keep both) or on_exists='overwrite' (replace it)."
            )
        if on_exists == "rename":
            new = free_path(path)
            print(f"{path.name} exists; saving this checkpoint as {new.name} instead")
            path = new
    path.parent.mkdir(parents=True, exist_ok=True)
    if record is not None:
        model_config = record.model_config
    elif model_config is None:
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
        "record": record.to_dict() if record is not None else None,
        "torch_version": str(torch.__version__),
    }
    if hasattr(history, "planned_epochs"):  # the work asked for, and whether a time cap cut it short
        payload["meta"].setdefault("planned_epochs", history.planned_epochs)
        payload["meta"].setdefault("time_capped", history.time_capped)
    mode = path.stat().st_mode & 0o777 if path.exists() else default_file_mode()  # overwriting keeps the mode
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, mode)  # mkstemp makes 0o600 whatever the umask
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _format_number(text: str) -> int:
    """``"course_utils.checkpoint/2"`` -> 2 (0 when the part after the slash is not a number)."""
    tail = text.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    If ``model`` is given its weights are restored (and the optimizer's state when
    both are given). Returns the checkpoint dict (``meta``, ``history``, ``model_config``...).
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.pt"))
        raise IsADirectoryError(
            f"{path} is a folder, not a checkpoint file; give the file inside it"
            + (f": {', '.join(inside)}." if inside else " (it holds no .pt file).")
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}. Run the lesson that trains this model first, or check the file name."
        )
    corrupt = (
        f"{path} is corrupt or incomplete ({{}}): it was probably cut short while being written, copied or "
        "downloaded. Re-create it (re-run the lesson that saves it) or re-download it."
    )
    if path.stat().st_size == 0:
        raise CorruptFileError(corrupt.format("it is empty, 0 bytes"))
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # the weights-only unpickler refused what the file asks to run
        raise ValueError(f"{path} is not a checkpoint that loads safely (weights_only=True): {err}") from err
    except Exception as err:  # a broken zip (truncated: no central directory), an early end of file...
        reason = str(err).split(". ", 1)[0].strip() or type(err).__name__
        raise CorruptFileError(corrupt.format(f"{type(err).__name__}: {reason}")) from err
    found = ckpt.get("format") if isinstance(ckpt, dict) else None
    if isinstance(found, str) and found.startswith(FORMAT.split("/")[0] + "/") and found != FORMAT:
        newer = _format_number(found) > _format_number(FORMAT)
        advice = (
            "update the course (git pull, then pip install -e .), or re-run the lesson with this version."
            if newer
            else "re-run the lesson that saves it with this version of the course."
        )
        raise ValueError(
            f"{path} was written by {'a newer' if newer else 'an older'} version of the course "
            f"(format {found!r}; this one reads {FORMAT!r}): {advice}"
        )
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path} was not written by course_utils.save_checkpoint; for a plain state dict use "
            "model.load_state_dict(torch.load(path, weights_only=True))."
        )
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


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, ModelRecord]:
    """The network saved at ``path`` (in eval mode, in the memory layout it predicted in) and its
    :class:`ModelRecord`, from the file alone.

    The network takes its input as ``record.normalisation`` describes it. A ``pretrained_unet`` (lesson 05)
    does not normalise by itself: wrap it as ``NormalizedInput(model, record.normalisation["mean"],
    record.normalisation["std"])`` (:mod:`course_utils.models.pretrained`) before predicting.

    Raises :class:`ConfigError` when the checkpoint has no (or an incomplete) record, naming what is missing.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    if not ckpt.get("record"):
        raise ConfigError(
            f"{path} has no model record (it was saved without the checkpoint contract: by lesson 01, by an "
            "older course version or by hand). Build the model yourself and load the weights with "
            "load_checkpoint(path, model), or re-run the lesson that made it."
        )
    record = ModelRecord.from_dict(ckpt["record"], source=str(path))
    model = build_model(record)
    state = ckpt["model_state"]
    if record.builder == "pretrained_unet" and state and all(k.startswith("net.") for k in state):
        state = {k[len("net.") :]: v for k, v in state.items()}  # saved with its normalisation wrapper
    model.load_state_dict(state, strict=True)
    if record.builder == "pretrained_unet" and hasattr(model, "encoder_info"):  # not the random start it was built from
        from dataclasses import replace

        started = record.normalisation.get("encoder_weights", "unknown")
        model.encoder_info = replace(model.encoder_info, weights="file", source=f"{path} (trained from {started})")
    if record.inference.get("channels_last"):  # the memory layout it predicted in: the same numbers, bit for bit
        from .layout import to_channels_last

        to_channels_last(model)
    return model.eval(), record


def build_model(record: ModelRecord) -> nn.Module:
    """A fresh (untrained) network as ``record`` describes it."""
    config = dict(record.model_config)
    if record.builder == "UNet":
        from .models import UNet

        return UNet.from_config(config)
    if record.builder == "GridDetector":  # lesson 07; the weights come from the file, not from ImageNet
        from .detection import GridDetector, GridSpec

        if "spec" not in config:
            raise ConfigError("a GridDetector record needs model_config['spec'] (its GridSpec.to_dict()).")
        return GridDetector(
            GridSpec.from_dict(config["spec"]),
            backbone=config.get("backbone", "lite1"),
            weights=None,
            width=int(config.get("width", 96)),
        )
    from .models.pretrained import pretrained_unet

    if "encoder_name" not in config:
        raise ConfigError("a pretrained_unet record needs model_config['encoder_name'].")
    return pretrained_unet(
        None,
        encoder_name=config["encoder_name"],
        in_channels=int(config.get("in_channels", 3)),
        classes=int(config.get("classes", 1)),
    )


__all__ = [
    "ModelRecord",
    "RECORD_VERSION",
    "course_version",
    "prediction_fingerprint",
    "checkpoint_path",
    "find_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "build_model",
]
