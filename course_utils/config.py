"""Profiles and knobs: how big each lesson runs.

Each lesson's profiles live with its code, in ``course_utils/lessons/lessonNN/settings.py``;
this module reads them and checks the overrides.

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
import math
from collections.abc import Mapping
from typing import Any, Iterator, Sequence

from .errors import ConfigError, ConfigTypeError

PROFILES = ("smoke", "cpu", "gpu")
PROFILE_CHOICES = PROFILES + ("auto",)
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")

LESSONS = (
    "01_pytorch_basics",
    "02_unet_from_scratch",
    "03_drive_vessels",
    "04_mri_lesions",
    "05_transfer_learning",
    "06_activation_maximization",
)


def lesson_package(lesson: str) -> str:
    """The package that holds ``lesson``'s own code: ``course_utils.lessons.lessonNN``."""
    if lesson not in LESSONS:
        raise ConfigError(_unknown_msg(lesson, LESSONS, None, what="lesson"))
    return f"{__package__}.lessons.lesson{lesson[:2]}"


def lesson_settings(lesson: str) -> dict[str, dict[str, Any]]:
    """``{profile: {knob: value}}`` of ``lesson``, from its ``settings.py``.

    Found by name (the general layers never import lesson code; each lesson registers nothing, its
    ``SETTINGS`` dict is simply read here).
    """
    import importlib

    return importlib.import_module(lesson_package(lesson) + ".settings").SETTINGS


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


def parse_profiles(profiles: str | Sequence[str]) -> list[str]:
    """``"cpu,gpu,smoke"`` or ``["cpu", "gpu"]`` -> a list of known profiles, in order, without repeats."""
    items = [p.strip() for p in profiles.split(",")] if isinstance(profiles, str) else [str(p) for p in profiles]
    items = [p for p in items if p]
    unknown = [p for p in items if p not in PROFILES]
    if not items or unknown:
        raise ConfigError(f"profiles must be among {PROFILES} (e.g. 'cpu,gpu,smoke'), got {profiles!r}.")
    return list(dict.fromkeys(items))


def lesson_defaults(lesson: str, profile: str) -> dict[str, Any]:
    """The profile's knob values for ``lesson`` (a copy)."""
    return dict(lesson_settings(lesson)[resolve_profile(profile)])


def parse_overrides(lesson: str, profile: str, pairs: Sequence[str]) -> dict[str, Any]:
    """Command-line ``["knob=value", ...]`` -> ``{knob: value}``, each value parsed as the type of
    the profile's default (booleans: ``true``/``yes``/``1`` or ``false``/``no``/``0``); the benchmarks' ``--set``.

    Raises :class:`ConfigError` for a pair without ``=``, an unknown knob or a value that is not of the
    knob's type (``channels_last=ture`` is an error, not ``False``).
    """
    defaults = lesson_defaults(lesson, "cpu" if profile == "auto" else profile)
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in defaults:
            raise ConfigError(f"{pair!r}: expected knob=value with a knob of {lesson}: {sorted(defaults)}.")
        kind = type(defaults[name])
        if kind is bool:
            word = text.strip().lower()
            if word not in TRUE_WORDS + FALSE_WORDS:
                raise ConfigError(
                    f"{pair!r}: {name} is true or false; write one of {', '.join(TRUE_WORDS + FALSE_WORDS)}."
                )
            out[name] = word in TRUE_WORDS
        else:
            try:
                out[name] = kind(text)
            except ValueError:
                raise ConfigError(
                    f"{pair!r}: {name} takes a value of type {kind.__name__} like its default {defaults[name]!r}."
                ) from None
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
        value = float(value)  # then checked like any float (a negative int must not slip through)
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        raise ConfigTypeError(
            f"Knob {name!r} must be of type {expected.__name__} (like its default "
            f"{default!r}), got {value!r} of type {type(value).__name__}."
        )
    if expected is float and not math.isfinite(value):
        raise ConfigError(f"Knob {name!r} must be a finite number, got {value!r}.")
    if expected in (int, float) and value < 0:
        raise ConfigError(f"Knob {name!r} must not be negative, got {value!r}.")
    return value


def _unknown_msg(name: str, known: Mapping, lesson: str | None, what: str = "knob") -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f" for lesson {lesson!r}" if lesson else ""
    return f"Unknown {what} {name!r}{where}.{hint} Known: {', '.join(sorted(known))}."
