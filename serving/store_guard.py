"""Writes to the event store that can fail for reasons outside the request: a full disk, a
read-only file system, an I/O error. The client gets a 503 saying so and what to do, not a
500 that reads as a bug; when DuckDB has invalidated the connection (its commit may even be
durable) no later append can succeed, so the failure stays, /readyz reports it and a
supervisor restarts the service, which reopens the store (DuckDB replays its log).
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa

from features.store import AppendResult, EventStore
from serving.errors import StoreFailedError

log = logging.getLogger("journey.serving")


class StoreGuard:
    def __init__(self) -> None:
        self.failure: str | None = None  # the store can no longer write (a restart can)

    def append(self, store: EventStore, table: pa.Table) -> AppendResult:
        if self.failure is not None:
            raise StoreFailedError(self.failure)
        try:
            return store.append(table, returning=True)
        except duckdb.FatalException as exc:
            log.critical("event store failed, events refused until a restart: %s", exc)
            self.failure = store_failed(exc, fatal=True)
            raise StoreFailedError(self.failure) from exc
        except (duckdb.IOException, duckdb.TransactionException) as exc:
            log.error("event store could not write this request's events: %s", exc)
            raise StoreFailedError(store_failed(exc, fatal=False)) from exc


def store_failed(exc: BaseException, fatal: bool) -> str:
    """What a client is told: the condition in words, no path (the log has DuckDB's whole
    text), and what to do."""
    text = str(exc)
    cause = ("the disk is full" if "No space left" in text or "disk is full" in text
             else "the file system is read-only" if "Read-only" in text
             else f"an I/O error ({type(exc).__name__})")
    if fatal:
        return (f"the event store can no longer write ({cause}): events are refused until the "
                "service restarts (journey stop, then journey serve) once that is fixed; "
                "predictions go on. Retry this request's events then with the same event_ids "
                "(any stored already are not stored twice)")
    return (f"the event store could not write ({cause}): none of this request's events were "
            "stored; retry with the same event_ids once that is fixed")
