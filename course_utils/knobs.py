"""What each knob accepts, declared once: its type, its range or its choices.

:func:`course_utils.config.get_config` checks every knob against its :class:`Knob` before anything runs,
so a typo (``tta="flip"``) or an impossible number (``epochs=0``, ``lr=nan``) fails at the first cell,
naming the knob, what it accepts and (for text) the closest allowed value - not after the training.

The knobs most lessons share are declared here (:data:`COMMON`); each lesson's ``settings.py`` declares
its own in ``KNOBS``, and a lesson's ``KNOBS`` entry wins over a common one of the same name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError, ConfigTypeError
from .inference import TTA_CHOICES
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
            text = "a text" + (f" accepted by {self.check.__name__}" if self.check else "")
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
    "amp": choice("auto", "off", "bf16", "fp16"),
    "channels_last": FLAG,
    "tta": choice(*TTA_CHOICES),
    "max_train_seconds": positive(optional=True),
}
"""Knobs that mean the same in every lesson that has them."""


__all__ = ["COMMON", "FLAG", "Knob", "choice", "number", "positive", "text", "whole"]
