"""Argument checks shared by every layer: one message style, with a did-you-mean for text choices."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, ConfigTypeError


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`ConfigError` naming ``name``,
    the closest allowed value and all of them."""
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices if c is not None], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(repr(c) for c in choices)
    raise ConfigError(f"{name}={value!r} is not supported.{hint} Choose one of {shown}.")


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}.")
    return value
