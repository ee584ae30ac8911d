"""Progress bars that look right in Jupyter, in a terminal and in executed notebooks.

Set ``COURSE_PLAIN_PROGRESS=1`` (the notebook runner does) to get text bars instead
of widgets, so that executed HTML shows readable progress rather than widget stubs.
"""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, enabled: bool = True, **kwargs):
    """``tqdm`` over ``iterable`` (widget in Jupyter, text elsewhere); a no-op when disabled."""
    if os.environ.get("COURSE_PLAIN_PROGRESS", "") not in ("", "0"):
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 5.0)
        kwargs.setdefault("ascii", True)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, disable=not enabled, **kwargs)
