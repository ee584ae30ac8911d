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
