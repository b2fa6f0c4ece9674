"""As-of times as the service writes them: in UTC, spelled with ``Z``.

The service's clock may be pinned with any offset (``JOURNEY_AS_OF=2025-12-31T20:00:00-05:00``)
and a request may give any; answers, snapshot metadata and messages all say the same instant
the same way, and a date drawn from one is its UTC date, as the KPIs' months and the
dashboard read it (20:00 at -05:00 on 31 December is 1 January in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_z(when: datetime) -> str:
    """``when`` in UTC as ISO text ending in ``Z`` (a naive time is taken as UTC)."""
    utc = when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return utc.isoformat().replace("+00:00", "Z")


def parsed(text: str) -> datetime:
    """ISO text as an aware time (no zone: UTC, as every `journey` command reads one)."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def utc_text(text: str) -> str:
    """ISO time text (a snapshot's as_of, written by any version) as ``iso_z`` writes it;
    text that is not a time is returned as it is, for the reader to see what was stored."""
    try:
        return iso_z(parsed(text))
    except (ValueError, OverflowError):  # OverflowError: no UTC equivalent (year 0 or 10000)
        return text


def utc_date(text: str) -> str:
    """The UTC date (ISO) of ISO time text; text that is not a time is returned as it is."""
    try:
        return parsed(text).astimezone(UTC).date().isoformat()
    except (ValueError, OverflowError):
        return text
