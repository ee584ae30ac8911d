"""What each knob accepts, declared once: its type, its range or its choices.

:func:`course_utils.config.get_config` checks every knob against its :class:`Knob` before anything runs,
so a typo (``tta="flip"``) or an impossible number (``epochs=0``, ``lr=nan``) fails at the first cell,
naming the knob, what it accepts and (for text) the closest allowed value - not after the training.

The knobs most lessons share are declared here (:data:`COMMON`); each lesson's ``settings.py`` declares
its own in ``KNOBS``, and a lesson's ``KNOBS`` entry wins over a common one of the same name. A lesson's
``settings.check(values)``, when it has one, then checks knobs that depend on each other (a patch size the
U-Net can divide, at least one batch per epoch), with :func:`check_divisible` and :func:`check_at_least`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError, ConfigTypeError
from .inference import TTA_CHOICES
from .precision import AMP_CHOICES
from .validate import check_choice

TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")
NONE_WORDS = ("none", "null")


@dataclass(frozen=True)
class Knob:
    """What one knob accepts.

    ``kind``: ``int``, ``float``, ``bool`` or ``str`` (an int is accepted where a float is expected);
    ``low``/``high``: the range of a number (inclusive; ``low_open``/``high_open`` exclude the end);
    ``choices``: the allowed texts; ``check``: a function that validates (and may normalise) a text,
    raising :class:`ConfigError`; ``optional``: ``None`` is a value of its own (e.g. "no cap").
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    check: Callable[[str], Any] | None = None
    optional: bool = False

    def describe(self) -> str:
        """What the knob accepts, in words: ``"a whole number >= 1"``, ``"one of 'none', 'lr'"``."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is bool:
            text = "True or False"
        elif self.kind is str:
            doc = (self.check.__doc__ or "").strip().splitlines() if self.check else []
            text = "a text" + (": " + doc[0].replace("``", "").rstrip(".") if doc else "")
        else:
            text = "a whole number" if self.kind is int else "a finite number"
            if self.low is not None and self.high is not None:
                left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
                text += f" in {left}{self.low:g}, {self.high:g}{right}"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {self.low:g}"
        return text + (", or None" if self.optional else "")

    def validate(self, name: str, value: Any) -> Any:
        """``value`` if the knob accepts it (ints become floats for a float knob), else :class:`ConfigError`."""
        if value is None and self.optional:
            return None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is str and self.check is not None and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # -p sizes=20 arrives as the number 20
        if isinstance(value, bool) != (self.kind is bool) or not isinstance(value, self.kind):
            raise ConfigTypeError(
                f"Knob {name!r} takes {self.describe()}; got {value!r} of type {type(value).__name__}."
            )
        if self.kind is float and not math.isfinite(value):
            raise ConfigError(f"Knob {name!r} takes {self.describe()}; got {value!r}.")
        if self.kind in (int, float) and not self._in_range(value):
            raise ConfigError(f"Knob {name!r} takes {self.describe()}; got {value!r}.")
        if self.choices:
            check_choice(name, value, self.choices)
        if self.check is not None:
            try:
                value = self.check(value)
            except ConfigError as err:
                raise ConfigError(f"Knob {name!r}: {err}") from None
        return value

    def parse(self, name: str, text: str) -> Any:
        """A command-line word (``--set name=text``) -> a value of the knob's type (not yet validated)."""
        word = text.strip()
        if self.optional and word.lower() in NONE_WORDS:
            return None
        if self.kind is bool:
            if word.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise ConfigError(f"{name}={text!r}: write one of {', '.join(TRUE_WORDS + FALSE_WORDS)}.")
            return word.lower() in TRUE_WORDS
        if self.kind is str:
            return word
        try:
            return self.kind(word)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: {name} takes {self.describe()}.") from None

    def _in_range(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def whole(low: int = 0, high: int | None = None) -> Knob:
    """A whole number in ``[low, high]``."""
    return Knob(int, low=low, high=high)


def positive(high: float | None = None, *, optional: bool = False) -> Knob:
    """A finite number ``> 0`` (``<= high`` when given)."""
    return Knob(float, low=0.0, low_open=True, high=high, optional=optional)


def number(low: float = 0.0, high: float | None = None, *, high_open: bool = False) -> Knob:
    """A finite number in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    return Knob(float, low=low, high=high, high_open=high_open)


def choice(*values: str) -> Knob:
    """One of the texts ``values``."""
    return Knob(str, choices=tuple(values))


def text(check: Callable[[str], Any]) -> Knob:
    """A text that ``check`` validates (and may normalise)."""
    return Knob(str, check=check)


FLAG = Knob(bool)


def _amp(value: str) -> str:
    """Mixed precision: auto, off, bf16 or fp16 (fp16 needs a CUDA GPU)."""
    if value == "fp16":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("amp='fp16' needs a CUDA GPU; on a CPU use amp='bf16' or amp='auto'.")
    return value


def check_divisible(values: dict[str, Any], size_knobs: tuple[str, ...], divisor: int, why: str) -> None:
    """Raise :class:`ConfigError` unless every knob in ``size_knobs`` is a multiple of ``divisor``."""
    for name in size_knobs:
        if values[name] % divisor:
            lower, upper = values[name] // divisor * divisor, (values[name] // divisor + 1) * divisor
            raise ConfigError(
                f"Knob {name!r} = {values[name]} must be a multiple of {divisor} ({why}); "
                f"try {max(lower, divisor)} or {upper}."
            )


def check_at_least(values: dict[str, Any], name: str, other: str) -> None:
    """Raise :class:`ConfigError` unless knob ``name`` is at least knob ``other``."""
    if values[name] < values[other]:
        raise ConfigError(
            f"Knob {name!r} = {values[name]} is smaller than {other!r} = {values[other]}: "
            f"an epoch would hold no full batch; raise {name} or lower {other}."
        )


COMMON: dict[str, Knob] = {
    "seed": whole(0),
    "epochs": whole(1),
    "steps": whole(1),
    "batch_size": whole(1),
    "samples_per_epoch": whole(1),
    "num_workers": whole(0),
    "lr": positive(10.0),
    "bce_weight": number(0.0, 1.0),
    "fn_weight": number(0.0, 1.0),
    "ema_decay": number(0.0, 1.0, high_open=True),
    "base_width": whole(1),
    "width": whole(1),
    "depth": whole(1, 7),
    "patch_size": whole(8),
    "image_size": whole(8),
    "n_train": whole(1),
    "n_val": whole(0),
    "augment": number(0.0, 2.0),
    "vessel_bias": number(0.0, 1.0),
    "amp": Knob(str, choices=tuple(a for a in AMP_CHOICES if isinstance(a, str)), check=_amp),
    "channels_last": FLAG,
    "tta": choice(*TTA_CHOICES),
    "max_train_seconds": positive(optional=True),
}
"""Knobs that mean the same in every lesson that has them."""


__all__ = [
    "COMMON",
    "FLAG",
    "Knob",
    "check_at_least",
    "check_divisible",
    "choice",
    "number",
    "positive",
    "text",
    "whole",
]
