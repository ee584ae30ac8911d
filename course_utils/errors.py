"""Exceptions with messages that tell the learner what to do."""

from __future__ import annotations


class CourseError(Exception):
    """Base class of the course's own errors."""


class ConfigError(CourseError, ValueError):
    """A profile, knob or path in the configuration is not usable."""


class ConfigTypeError(ConfigError, TypeError):
    """A knob was given a value of the wrong type."""


class DataError(CourseError, ValueError):
    """Input data is missing or malformed (the message names the file)."""


class TimeCapWarning(UserWarning):
    """Training stopped at its optional time cap before the planned work: the run's numbers fall short."""


class DataWarning(UserWarning):
    """Input data is legal but suspicious (an inverted mask, an empty label, a stray file): the message names it."""


class CorruptFileError(DataError):
    """A file is corrupt or incomplete (cut short while written, copied or downloaded): the message names it."""


class MetricWarning(UserWarning):
    """Metric values were left out of a summary (NaN, Inf or missing): the message says how many of which."""
