"""The store a load (``journey ingest``) writes to: a store that the load's opening created is
removed again when the load fails with nothing stored, so a failed first load leaves no empty
store behind (nor the log, spill directory or directories made for it).

A load that rejects every row it reads fails too (``refused_load``): its mapping or format is
wrong, and an exit status of 0 with an empty store would let a script carry on as if it had
loaded. Unlike a load that stops on an unreadable file, it keeps its rejects file, which
says why each row was refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from features import store
from features.errors import SourceError
from features.loaders import LoadReport
from features.store import EventStore
from features.store_messages import nothing_accepted


class NothingAcceptedError(SourceError):
    """Every row a load read was rejected: nothing was stored."""


@contextmanager
def load_target(path: str | Path, memory_limit: str | None = None) -> Iterator[EventStore]:
    """The store at ``path``, opened for writing and closed after."""
    path = Path(path)
    made = [p for p in (*reversed(path.parents), path, *_beside(path)) if not p.exists()]
    es = store.EventStore(path, memory_limit=memory_limit)  # looked up now: tests replace it
    try:
        yield es
    except BaseException:
        try:
            empty = es.count() == 0
        except duckdb.Error:
            empty = False  # cannot tell: keep it
        es.close()
        if empty:
            _remove(made)
        raise
    es.close()


def _beside(path: Path) -> tuple[Path, Path]:
    """What DuckDB makes beside a store: its write-ahead log and its spill directory."""
    return path.with_name(path.name + ".wal"), path.with_name(path.name + ".tmp")


def _remove(made: list[Path]) -> None:
    """Remove what did not exist before the store was opened (``made``: parents first),
    deepest first; a directory only when it is empty."""
    for p in reversed(made):
        if p.is_dir():
            if not any(p.iterdir()):
                p.rmdir()
        elif p.exists():
            p.unlink()


def refused_load(es: EventStore, report: LoadReport, source: str | Path, existed: bool
                 ) -> NothingAcceptedError:
    """The error that ends a load that accepted nothing, raised inside ``load_target`` (which
    then removes a store it made). Such a load stores no event and no ingest log row
    (``store_log.record``), so a store that was there is left as it was."""
    said = nothing_accepted(source, report.rows_read, report.rejects_path, es.path, existed)
    return NothingAcceptedError(said)
