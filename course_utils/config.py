"""Profiles and knobs: the one place that says how big each lesson runs.

Every notebook starts with a papermill ``parameters`` cell holding ``profile`` and
the knobs a learner may turn, then calls :func:`get_config`::

    cfg = get_config("01_pytorch_basics", profile, epochs=epochs)  # None = default
    cfg.epochs, cfg.batch_size

Profiles:

* ``smoke``: seconds; CI executes every notebook this way. Numbers are not meaningful.
* ``cpu``: a laptop or this course's 2-core CI machine; the time each lesson states.
* ``gpu``: Colab or a workstation with CUDA; full-size runs.
* ``auto``: ``gpu`` when CUDA is available, else ``cpu``.

A knob left at ``None`` takes the profile's value; any other value must have the
knob's type (ints are accepted where floats are expected).
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Iterator, Sequence

from .errors import ConfigError, ConfigTypeError

PROFILES = ("smoke", "cpu", "gpu")
PROFILE_CHOICES = PROFILES + ("auto",)

# lesson -> profile -> knob -> value. Every profile of a lesson has the same knobs.
LESSON_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "01_pytorch_basics": {
        "smoke": dict(n_train=64, n_val=16, image_size=32, epochs=2, batch_size=16,
                      lr=3e-3, width=8, seed=0),
        "cpu": dict(n_train=512, n_val=128, image_size=48, epochs=8, batch_size=32,
                    lr=3e-3, width=16, seed=0),
        "gpu": dict(n_train=2048, n_val=256, image_size=64, epochs=15, batch_size=64,
                    lr=3e-3, width=32, seed=0),
    },
    "02_unet_from_scratch": {
        "smoke": dict(n_train=32, n_val=16, image_size=32, epochs=1, batch_size=16,
                      lr=2e-3, base_width=4, depth=2, seed=0),
        "cpu": dict(n_train=512, n_val=128, image_size=64, epochs=10, batch_size=32,
                    lr=2e-3, base_width=8, depth=3, seed=0),
        "gpu": dict(n_train=4096, n_val=512, image_size=96, epochs=20, batch_size=64,
                    lr=2e-3, base_width=16, depth=4, seed=0),
    },
    "03_drive_vessels": {
        "smoke": dict(max_train=6, max_test=4, n_val=2, channel="green", patch_size=64, vessel_bias=0.5,
                      augment=1.0, num_workers=0, batch_size=8, samples_per_epoch=96, epochs=5,
                      train_seconds=15.0, lr=3e-3, bce_weight=0.5, base_width=4, depth=3, tta="none", amp="auto",
                      channels_last=True, ema_decay=0.9, seed=0),
        "cpu": dict(max_train=20, max_test=20, n_val=0, channel="green", patch_size=96, vessel_bias=0.5,
                    augment=1.0, num_workers=0, batch_size=16, samples_per_epoch=2048, epochs=200,
                    train_seconds=585.0, lr=4e-3, bce_weight=1.0, base_width=8, depth=4, tta="flips", amp="auto",
                    channels_last=True, ema_decay=0.998, seed=0),
        "gpu": dict(max_train=20, max_test=20, n_val=0, channel="green", patch_size=128, vessel_bias=0.5,
                    augment=1.0, num_workers=4, batch_size=32, samples_per_epoch=4096, epochs=400,
                    train_seconds=540.0, lr=3e-3, bce_weight=1.0, base_width=16, depth=4, tta="flips", amp="auto",
                    channels_last=True, ema_decay=0.999, seed=0),
    },
    "06_activation_maximization": {
        "smoke": dict(checkpoint_profiles="smoke", train_seconds=2.0, n_images=2, image_size=32, mri_size=16,
                      encoder_size=64, steps=12, mri_steps=12, lr=0.05, n_filters=2, tv=2.0, l2=4.0, jitter=2, seed=0),
        "cpu": dict(checkpoint_profiles="cpu,gpu,smoke", train_seconds=45.0, n_images=6, image_size=96, mri_size=24,
                    encoder_size=96, steps=160, mri_steps=80, lr=0.05, n_filters=4, tv=2.0, l2=4.0, jitter=4, seed=0),
        "gpu": dict(checkpoint_profiles="gpu,cpu,smoke", train_seconds=60.0, n_images=10, image_size=128,
                    mri_size=48, encoder_size=224, steps=256, mri_steps=256, lr=0.05, n_filters=6, tv=2.0, l2=4.0, jitter=6,
                    seed=0),
    },
    "04_mri_lesions": {
        "smoke": dict(spacing=4.0, n_synthetic=0, n_synthetic_cases=3, patch_size=16, lesion_fraction=0.5,
                      per_lesion=0.0, intensity_jitter=0.1, batch_size=4, samples_per_epoch=32, epochs=2,
                      train_seconds=10.0, lr=3e-3, bce_weight=0.5, fn_weight=0.5, base_width=4, depth=3,
                      infer_patch_size=32, overlap=0.25, tta="lr", synthesis_seconds=5.0, amp="auto",
                      channels_last=True, ema_decay=0.9, threshold_criterion="dice", rim_mm=3.0,
                      threshold_tolerance=0.0, seed=0),
        "cpu": dict(spacing=1.0, n_synthetic=6, n_synthetic_cases=4, patch_size=32, lesion_fraction=0.6,
                    per_lesion=0.3, intensity_jitter=0.1, batch_size=4, samples_per_epoch=128, epochs=200,
                    train_seconds=255.0, lr=3e-3, bce_weight=0.5, fn_weight=0.5, base_width=8, depth=3,
                    infer_patch_size=64, overlap=0.25, tta="lr", synthesis_seconds=60.0, amp="auto",
                    channels_last=True, ema_decay=0.998, threshold_criterion="dice", rim_mm=3.0,
                    threshold_tolerance=0.0, seed=0),
        "gpu": dict(spacing=1.0, n_synthetic=8, n_synthetic_cases=6, patch_size=64, lesion_fraction=0.6,
                    per_lesion=0.3, intensity_jitter=0.1, batch_size=4, samples_per_epoch=512, epochs=400,
                    train_seconds=1200.0, lr=3e-3, bce_weight=0.5, fn_weight=0.5, base_width=16, depth=4,
                    infer_patch_size=128, overlap=0.25, tta="lr", synthesis_seconds=300.0, amp="auto",
                    channels_last=True, ema_decay=0.999, threshold_criterion="dice", rim_mm=3.0,
                    threshold_tolerance=0.0, seed=0),
    },
    "05_transfer_learning": {
        "smoke": dict(weights="auto", sizes="1,2", max_test=1, steps=4, log_every=2, patch_size=64, batch_size=4,
                      lr=3e-3, encoder_lr_ratio=0.1, bce_weight=1.0, vessel_bias=0.5, augment=1.0, base_width=8,
                      depth=4, threshold_images=1, smp_input="rgb", seed=0),
        "cpu": dict(weights="auto", sizes="2,5,20", max_test=20, steps=100, log_every=10, patch_size=96, batch_size=8,
                    lr=3e-3, encoder_lr_ratio=0.1, bce_weight=1.0, vessel_bias=0.5, augment=1.0, base_width=8,
                    depth=4, threshold_images=5, smp_input="rgb", seed=0),
        "gpu": dict(weights="auto", sizes="2,5,20", max_test=20, steps=1000, log_every=50, patch_size=128,
                    batch_size=16, lr=3e-3, encoder_lr_ratio=0.1, bce_weight=1.0, vessel_bias=0.5, augment=1.0,
                    base_width=16, depth=4, threshold_images=20, smp_input="rgb", seed=0),
    },
}


class Config(Mapping):
    """Read-only settings of one lesson run; use attributes (``cfg.epochs``) or keys."""

    def __init__(self, lesson: str, profile: str, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", {"lesson": lesson, "profile": profile, **values})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(_unknown_msg(name, self._values, self._values["lesson"])) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only: pass the knob to get_config(...) instead.")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Config({body})"

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in self._values.items())
        return f"| knob | value |\n|---|---|\n{rows}"


def resolve_profile(profile: str) -> str:
    """Validate ``profile`` and turn ``auto`` into ``gpu`` or ``cpu``."""
    if not isinstance(profile, str) or profile.strip().lower() not in PROFILE_CHOICES:
        raise ConfigError(
            f"Unknown profile {profile!r}. Choose one of {', '.join(PROFILE_CHOICES)}: "
            "'smoke' (seconds, for CI), 'cpu' (a laptop), 'gpu' (Colab/CUDA), "
            "'auto' (gpu if CUDA is available, else cpu)."
        )
    profile = profile.strip().lower()
    if profile == "auto":
        import torch

        profile = "gpu" if torch.cuda.is_available() else "cpu"
    return profile


def lesson_defaults(lesson: str, profile: str) -> dict[str, Any]:
    """The profile's knob values for ``lesson`` (a copy)."""
    if lesson not in LESSON_SETTINGS:
        raise ConfigError(_unknown_msg(lesson, LESSON_SETTINGS, None, what="lesson"))
    return dict(LESSON_SETTINGS[lesson][resolve_profile(profile)])


def parse_overrides(lesson: str, profile: str, pairs: Sequence[str]) -> dict[str, Any]:
    """Command-line ``["knob=value", ...]`` -> ``{knob: value}``, each value parsed as the type of
    the profile's default (``"1"``/``"true"``/``"yes"`` for booleans); the benchmarks' ``--set``.

    Raises :class:`ConfigError` for a pair without ``=`` or an unknown knob.
    """
    defaults = lesson_defaults(lesson, "cpu" if profile == "auto" else profile)
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in defaults:
            raise ConfigError(f"{pair!r}: expected knob=value with a knob of {lesson}: {sorted(defaults)}.")
        kind = type(defaults[name])
        out[name] = text.lower() in ("1", "true", "yes") if kind is bool else kind(text)
    return out


def get_config(lesson: str, profile: str = "cpu", **overrides: Any) -> Config:
    """Settings for ``lesson`` under ``profile``, with single knobs overridden.

    ``None`` overrides are ignored (so a parameters cell can say ``epochs = None``).
    Raises :class:`ConfigError` for an unknown profile, lesson or knob and
    :class:`ConfigTypeError` for a value of the wrong type.
    """
    resolved = resolve_profile(profile)
    values = lesson_defaults(lesson, resolved)
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in values:
            raise ConfigError(_unknown_msg(name, values, lesson))
        values[name] = _coerce(name, value, values[name])
    return Config(lesson, resolved, values)


def _coerce(name: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        raise ConfigTypeError(
            f"Knob {name!r} must be of type {expected.__name__} (like its default "
            f"{default!r}), got {value!r} of type {type(value).__name__}."
        )
    if expected in (int, float) and value < 0:
        raise ConfigError(f"Knob {name!r} must not be negative, got {value!r}.")
    return value


def _unknown_msg(name: str, known: Mapping, lesson: str | None, what: str = "knob") -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f" for lesson {lesson!r}" if lesson else ""
    return f"Unknown {what} {name!r}{where}.{hint} Known: {', '.join(sorted(known))}."
