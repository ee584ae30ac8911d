"""Self-checks for the exercises: call ``check_...(your_answer)`` at the end of an exercise cell.

A check never raises on a wrong answer: it returns a :class:`CheckResult` that
shows a tick, or says what is wrong and gives a hint. An answer left as ``...``
(the placeholder) is reported as not attempted, so notebooks still run top to bottom.
"""
from .result import CheckResult, not_attempted

__all__ = ["CheckResult", "not_attempted"]
