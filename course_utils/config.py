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

A knob left at ``None`` takes the profile's value; any other value must be one the knob
accepts: each knob declares its type and range or choices (:mod:`course_utils.knobs`: the common
ones there, a lesson's own in its ``settings.KNOBS``), and every value, the profile's included, is
checked against that before anything runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Iterator, Sequence

from .errors import ConfigError
from .knobs import COMMON, Knob

PROFILES = ("smoke", "cpu", "gpu")
PROFILE_CHOICES = PROFILES + ("auto",)

LESSONS = (
    "01_pytorch_basics",
    "02_unet_from_scratch",
    "03_drive_vessels",
    "04_mri_lesions",
    "04b_mri_false_lesions",
    "05_transfer_learning",
    "06_activation_maximization",
    "07_blood_cells",
)


def lesson_number(lesson: str) -> str:
    """``"04b"`` for ``"04b_mri_false_lesions"``: a lesson's name up to its first underscore."""
    return lesson.split("_", 1)[0]


def lesson_package(lesson: str) -> str:
    """The package that holds ``lesson``'s own code: ``course_utils.lessons.lessonNN`` (``lesson04b`` for
    ``04b_...``: the part of the name before its first underscore)."""
    if lesson not in LESSONS:
        raise ConfigError(_unknown_msg(lesson, LESSONS, None, what="lesson"))
    return f"{__package__}.lessons.lesson{lesson_number(lesson)}"


def lesson_settings(lesson: str) -> dict[str, dict[str, Any]]:
    """``{profile: {knob: value}}`` of ``lesson``, from its ``settings.py``.

    Found by name (the general layers never import lesson code; each lesson registers nothing, its
    ``SETTINGS`` dict is simply read here).
    """
    return _settings_module(lesson).SETTINGS


def _settings_module(lesson: str) -> Any:
    import importlib

    return importlib.import_module(lesson_package(lesson) + ".settings")


def lesson_knobs(lesson: str) -> dict[str, Knob]:
    """``{knob: Knob}`` for every knob of ``lesson``: its ``settings.KNOBS``, else :data:`~.knobs.COMMON`.

    Raises :class:`ConfigError` if a knob of the profiles is declared nowhere (a course bug).
    """
    module = _settings_module(lesson)
    own = getattr(module, "KNOBS", {})
    names = {name for values in module.SETTINGS.values() for name in values}
    missing = sorted(n for n in names if n not in own and n not in COMMON)
    if missing:
        raise ConfigError(f"{lesson}: knobs {missing} have no declaration; add them to its settings.KNOBS.")
    return {name: own.get(name) or COMMON[name] for name in sorted(names)}


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
    """Command-line ``["knob=value", ...]`` -> ``{knob: value}``, each value parsed as its knob declares
    (booleans: ``true``/``yes``/``1`` or ``false``/``no``/``0``; ``none`` for a knob that may be off);
    the benchmarks' ``--set``. The values are checked by :func:`get_config`.

    Raises :class:`ConfigError` for a pair without ``=``, an unknown knob (with the closest name) or a value
    that cannot be read as the knob's type (``channels_last=ture`` is an error, not ``False``).
    """
    knobs = lesson_knobs(lesson)
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"{pair!r}: expected knob=value, e.g. epochs=5.")
        if name not in knobs:
            raise ConfigError(_unknown_msg(name, knobs, lesson))
        out[name] = knobs[name].parse(name, text)
    return out


def get_config(lesson: str, profile: str = "cpu", **overrides: Any) -> Config:
    """Settings for ``lesson`` under ``profile``, with single knobs overridden.

    ``None`` overrides take the profile's value (so a parameters cell can say ``epochs = None``); the
    knob's name is checked all the same.
    Raises :class:`ConfigError` for an unknown profile, lesson or knob, or a value outside the knob's
    range or choices (with the closest choice), and :class:`ConfigTypeError` for a value of the wrong type.
    """
    resolved = resolve_profile(profile)
    values = lesson_defaults(lesson, resolved)
    knobs = lesson_knobs(lesson)
    for name, value in overrides.items():
        if name not in values:
            raise ConfigError(_unknown_msg(name, values, lesson))
        if value is not None:
            values[name] = value
    checked = {name: knobs[name].validate(name, value) for name, value in values.items()}
    cross_check = getattr(_settings_module(lesson), "check", None)
    if cross_check is not None:  # knobs that depend on each other (a patch size the U-Net can divide...)
        cross_check(checked)
    return Config(lesson, resolved, checked)


RENAMED = {
    "train_seconds": ("epochs", "fallback_epochs", "max_train_seconds"),
    "synthesis_seconds": ("synthesis_epochs",),
}
"""Knobs of earlier versions of the course -> the knobs that replaced them (named in the unknown-knob message)."""


def _unknown_msg(name: str, known: Mapping, lesson: str | None, what: str = "knob") -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    instead = [repr(r) for r in RENAMED.get(str(name), ()) if r in known]
    if what == "knob" and instead:
        hint = f" It was removed (profiles now fix the work, not the clock): use {' or '.join(instead)}."
    where = f" for lesson {lesson!r}" if lesson else ""
    return f"Unknown {what} {name!r}{where}.{hint} Known: {', '.join(sorted(known))}."
