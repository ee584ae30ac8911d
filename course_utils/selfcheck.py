"""The value every self-check returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a self-check: ``ok`` and a message for the learner. Truthy when correct."""

    ok: bool
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark = "✅" if self.ok else ("⏳" if not self.attempted else "❌")
        return f"{mark} {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else ("#6e7781" if not self.attempted else "#cf222e")
        mark = "✅" if self.ok else ("⏳" if not self.attempted else "❌")
        text = self.message.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        return f'<div style="border-left:4px solid {colour};padding:4px 8px">{mark} {text}</div>'


def not_attempted(answer: Any) -> bool:
    """True for the placeholders ``...`` and ``None`` that exercise cells start with."""
    return answer is Ellipsis or answer is None


def correct(message: str = "Correct!") -> CheckResult:
    return CheckResult(True, message)


def wrong(message: str) -> CheckResult:
    return CheckResult(False, message)


def pending(what: str = "this exercise") -> CheckResult:
    return CheckResult(
        False, f"Not attempted yet: replace the `...` in {what} with your answer and re-run the cell.", attempted=False
    )


def as_number(answer: Any) -> float | None:
    """``answer`` as a finite float, or ``None`` (booleans, text, NaN and infinities are not numbers here)."""
    if isinstance(answer, bool):
        return None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def returned_nothing(value: Any) -> bool:
    """True when a learner's function returned ``None`` or ``...``: its body is still the stub ``...``."""
    return value is None or value is Ellipsis


def yours_or_course(result: CheckResult, yours: Any, course: Any, what: str) -> Any:
    """``yours`` when its check ``result`` passed, else the tested ``course`` version, saying which one the lesson
    uses from here on (``what`` names it, e.g. ``"soft_dice_loss"``)."""
    if result.ok:
        print(f"-> the lesson uses your {what} from here on.")
        return yours
    why = "not attempted yet" if not result.attempted else "its check does not pass yet"
    name = getattr(course, "__qualname__", None) or type(course).__qualname__
    module = getattr(course, "__module__", None) or type(course).__module__
    print(f"-> your {what}: {why}; the lesson goes on with the course's {module}.{name}.")
    return course
