"""Group commit: appends from many request threads, written together by whichever holds the
write path.

An append costs a few DuckDB statements whatever its size, and under load each statement
waits to take the GIL back from a busy event loop: one-event appends took 10-40 ms in the
service at 40 a second, so a queue formed behind the write lock now and then and held every
connection of a client for up to half a second. Here a thread that gets the write path
commits everything queued by then, its own request and those waiting, in one append; the
others find theirs done. The queue cannot grow faster than one append drains it.

Each request is answered as if the appends had run one after another in arrival order (the
first of repeated event ids wins), and only after the commit that holds its events. If a
group's append fails, its requests are appended one by one, so one request's error is not
another's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

from features.store import AppendResult


@dataclass
class _Pending:
    table: pa.Table
    result: AppendResult | None = None
    error: BaseException | None = None

    @property
    def settled(self) -> bool:
        return self.result is not None or self.error is not None


class GroupCommit:
    """``commit(table)`` appends all or none and returns the inserted rows; ``then(result)``
    runs after each commit, still on the write path (the callers' in-memory follow-up)."""

    def __init__(self, commit: Callable[[pa.Table], AppendResult],
                 then: Callable[[AppendResult], None] | None = None) -> None:
        self._commit = commit
        self._then = then
        self._write = threading.Lock()
        self._queued = threading.Lock()
        self._queue: list[_Pending] = []
        self.groups = 0  # commits made, and the requests they held (for tests and diagnosis)
        self.requests = 0

    def append(self, table: pa.Table) -> AppendResult:
        """Append ``table`` (event schema); returns once its events are committed."""
        mine = _Pending(table)
        with self._queued:
            self._queue.append(mine)
        with self._write:
            if not mine.settled:
                with self._queued:
                    group, self._queue = self._queue, []
                self._run(group)
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def waiting(self) -> int:
        """Requests queued and not yet taken by a writer."""
        with self._queued:
            return len(self._queue)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the write path (e.g. to close the store) with no append in flight."""
        with self._write:
            yield

    def _run(self, group: list[_Pending]) -> None:
        try:
            tables = [p.table for p in group]
            result = self._commit(tables[0] if len(tables) == 1 else pa.concat_tables(tables))
        except BaseException as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for p in group:  # whose request failed: each on its own
                self._run([p])
            return
        self.groups += 1
        self.requests += len(group)
        try:
            if self._then is not None:
                self._then(result)
            answers = _shares(group, result)
        except BaseException as exc:  # committed, but what follows failed: say so to all
            for p in group:
                p.error = exc
            return
        for p, answer in zip(group, answers, strict=True):
            p.result = answer


def _shares(group: list[_Pending], result: AppendResult) -> list[AppendResult]:
    """Each request's part of a group's result: an inserted id counts for the first request
    that sent it, and its row goes with it."""
    if len(group) == 1:
        return [result]
    rows = result.rows
    if rows is None:
        raise ValueError("a group commit needs the inserted rows back (returning=True)")
    unclaimed = {e: i for i, e in enumerate(rows["event_id"].to_pylist())}
    out = []
    for p in group:
        ids = p.table["event_id"].to_pylist()
        mine = [unclaimed.pop(e) for e in dict.fromkeys(ids) if e in unclaimed]
        out.append(AppendResult(len(ids), len(mine), _rows(rows, mine)))
    return out


def _rows(rows: pa.Table, at: list[int]) -> pa.Table:
    """Rows ``at`` of ``rows``. A request's inserted rows are one run of the group's (they
    keep the order of the concatenated requests), so a slice serves: ``take`` is a kernel
    call, and each one gives up the GIL on the write path."""
    if not at:
        return rows.slice(0, 0)
    if at == list(range(at[0], at[0] + len(at))):
        return rows.slice(at[0], len(at))
    return rows.take(pa.array(at, pa.int64()))
