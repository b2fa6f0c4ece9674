"""Writes to the event store that can fail for reasons outside the request: a full disk, a
read-only file system, an I/O error. The client gets a 503 saying so and what to do, not a
500 that reads as a bug; when DuckDB has invalidated the connection (its commit may even be
durable) no later append can succeed, so the failure stays, /readyz reports it and a
supervisor restarts the service, which reopens the store (DuckDB replays its log).

A refused write that leaves the store usable is listed by /readyz (``problems``) until a
write is stored again, which the log says, with how many were refused meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from features.store import AppendResult, EventStore
from serving.errors import StoreFailedError
from serving.log_throttle import Throttle, more
from serving.utc import iso_z

log = logging.getLogger("journey.serving")


@dataclass
class Refusals:
    """Writes refused since the last one stored."""

    since: datetime
    cause: str  # the latest's, in words, no path
    count: int = 1


class StoreGuard:
    def __init__(self) -> None:
        self.failure: str | None = None  # the store can no longer write (a restart can)
        self.refused: Refusals | None = None  # refused writes since the last stored one
        # A full disk refuses every ingest: a line per request would fill what is left.
        self._throttle = Throttle()

    def append(self, store: EventStore, table: pa.Table) -> AppendResult:
        if self.failure is not None:
            raise StoreFailedError(self.failure)
        try:
            result = store.append(table, returning=True)
        except duckdb.FatalException as exc:
            log.critical("event store failed, events refused until a restart: %s", exc)
            self.failure = store_failed(exc, fatal=True)
            raise StoreFailedError(self.failure) from exc
        except (duckdb.IOException, duckdb.TransactionException) as exc:
            self._refused(exc)
            raise StoreFailedError(store_failed(exc, fatal=False)) from exc
        if self.refused is not None:
            r, self.refused = self.refused, None
            log.warning("event store writes again: %d request(s)' events were refused since "
                        "%s (last: %s)", r.count, iso_z(r.since.replace(microsecond=0)), r.cause)
        return result

    def _refused(self, exc: BaseException) -> None:
        cause = _cause(exc)
        if self.refused is None:
            self.refused = Refusals(datetime.now(UTC), cause)
        else:
            self.refused.count += 1
            self.refused.cause = cause
        held = self._throttle.allow("refused")
        if held is not None:
            log.error("event store could not write this request's events: %s%s", exc,
                      more(held, "refused"))


def _cause(exc: BaseException) -> str:
    text = str(exc)
    return ("the disk is full" if "No space left" in text or "disk is full" in text
            else "the file system is read-only" if "Read-only" in text
            else f"an I/O error ({type(exc).__name__})")


def store_failed(exc: BaseException, fatal: bool) -> str:
    """What a client is told: the condition in words, no path (the log has DuckDB's whole
    text), and what to do."""
    cause = _cause(exc)
    if fatal:
        return (f"the event store can no longer write ({cause}): events are refused until the "
                "service restarts (journey stop, then journey serve) once that is fixed; "
                "predictions go on. Retry this request's events then with the same event_ids "
                "(any stored already are not stored twice)")
    return (f"the event store could not write ({cause}): none of this request's events were "
            "stored; retry with the same event_ids once that is fixed")
