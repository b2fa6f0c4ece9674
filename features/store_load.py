"""The store a load (``journey ingest``) writes to: a store that the load's opening created is
removed again when the load fails with nothing stored, so a failed first load leaves no empty
store behind (nor the log, spill directory or directories made for it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from features import store
from features.store import EventStore


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
