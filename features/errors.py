"""Domain errors of the feature layer; serving maps them to HTTP statuses in one place."""

from __future__ import annotations


class JourneyError(Exception):
    """Base class for every error Journey raises on purpose."""


class ConfigError(JourneyError):
    """A configuration file or option is invalid (says which file and which key)."""


class MappingError(ConfigError):
    """A column mapping does not fit the source file."""


class SourceError(JourneyError):
    """A source file cannot be read at all (missing, unknown format)."""


class StoreError(JourneyError):
    """The event store cannot be opened or written."""
