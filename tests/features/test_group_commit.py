"""GroupCommit: concurrent appends committed together, answered as if one after another."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from features.group_commit import GroupCommit
from features.schema import EVENT_FIELDS, EVENT_SCHEMA
from features.store import AppendResult, EventStore

WHEN = datetime(2025, 6, 1, tzinfo=UTC)


def events(*ids: str, customer: str = "c1") -> pa.Table:
    return pa.Table.from_pylist(
        [{f: None for f in EVENT_FIELDS} | {"event_id": e, "customer_id": customer, "ts": WHEN,
                                           "event_type": "page_view", "channel": "web"}
         for e in ids], schema=EVENT_SCHEMA)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.duckdb") as s:
        yield s


class Gate:
    """A commit that holds the first call until released, so others queue behind it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[int] = []  # rows per commit

    def __call__(self, table: pa.Table) -> AppendResult:
        self.calls.append(table.num_rows)
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return self.store.append(table, returning=True)


def run_queued(writer: GroupCommit, gate: Gate, first: pa.Table, queued: list[pa.Table]
               ) -> tuple[AppendResult | BaseException, list[AppendResult | BaseException]]:
    """``first`` holds the write path while ``queued`` arrive in order; then all finish."""
    out: dict[int, AppendResult | BaseException] = {}

    def send(k: int, table: pa.Table) -> None:
        try:
            out[k] = writer.append(table)
        except BaseException as exc:  # the test inspects it
            out[k] = exc

    threads = [threading.Thread(target=send, args=(0, first))]
    threads[0].start()
    assert gate.entered.wait(10)
    for k, table in enumerate(queued, 1):
        threads.append(threading.Thread(target=send, args=(k, table)))
        threads[-1].start()
        while writer.waiting() < k:  # until it is queued: the order is the arrival order
            threading.Event().wait(0.001)
    gate.release.set()
    for t in threads:
        t.join(10)
    return out[0], [out[k] for k in range(1, len(queued) + 1)]


def test_queued_requests_are_committed_together_with_sequential_answers(store: EventStore) -> None:
    gate = Gate(store)
    writer = GroupCommit(gate)
    first, rest = run_queued(writer, gate, events("a"),
                             [events("x", "y"), events("y", "z"), events("x", "a"), events("w")])
    assert isinstance(first, AppendResult) and first.inserted == 1
    got = [(r.received, r.inserted, r.duplicates) for r in rest if isinstance(r, AppendResult)]
    # y counts for the first request that sent it, a was stored before, w is new.
    assert got == [(2, 2, 0), (2, 1, 1), (2, 0, 2), (1, 1, 0)]
    assert gate.calls == [1, 7]  # the four queued requests: one commit
    assert (writer.groups, writer.requests) == (2, 5)
    second = rest[1]
    assert isinstance(second, AppendResult) and second.rows is not None
    assert sorted(second.rows["event_id"].to_pylist()) == ["z"]
    stored = store.con.execute("SELECT event_id FROM events ORDER BY event_id").fetchall()
    assert [r[0] for r in stored] == ["a", "w", "x", "y", "z"]


def test_a_failing_request_does_not_fail_the_others_in_its_group(store: EventStore) -> None:
    gate = Gate(store)

    def commit(table: pa.Table) -> AppendResult:
        if "bad" in table["event_id"].to_pylist():
            raise ValueError("event bad refused")
        return gate(table)

    writer = GroupCommit(commit)
    first, rest = run_queued(writer, gate, events("a"),
                             [events("b"), events("bad", "c"), events("d")])
    assert isinstance(first, AppendResult)
    assert isinstance(rest[0], AppendResult) and rest[0].inserted == 1
    assert isinstance(rest[1], ValueError) and "bad" in str(rest[1])
    assert isinstance(rest[2], AppendResult) and rest[2].inserted == 1
    stored = store.con.execute("SELECT event_id FROM events ORDER BY event_id").fetchall()
    assert [r[0] for r in stored] == ["a", "b", "d"]  # nothing of the failed request


def test_follow_up_runs_once_per_commit_and_its_error_reaches_every_request(
        store: EventStore) -> None:
    gate = Gate(store)
    seen: list[list[str]] = []

    def then(result: AppendResult) -> None:
        assert result.rows is not None
        seen.append(sorted(result.rows["event_id"].to_pylist()))
        if "boom" in seen[-1]:
            raise RuntimeError("follow-up failed")

    writer = GroupCommit(gate, then)
    first, rest = run_queued(writer, gate, events("a"), [events("boom"), events("b")])
    assert isinstance(first, AppendResult)
    assert seen == [["a"], ["b", "boom"]]
    assert all(isinstance(r, RuntimeError) for r in rest)


def test_one_request_alone_gets_the_commit_result(store: EventStore) -> None:
    writer = GroupCommit(lambda t: store.append(t, returning=True))
    done = writer.append(events("a", "a", "b"))
    assert (done.received, done.inserted) == (3, 2)
    assert writer.append(events("b")).inserted == 0
    with writer.exclusive():  # the write path is free again
        pass


def test_a_group_needs_the_rows_back(store: EventStore) -> None:
    gate = Gate(store)
    writer = GroupCommit(lambda t: AppendResult(gate(t).received, t.num_rows))
    _, rest = run_queued(writer, gate, events("a"), [events("b"), events("c")])
    assert all(isinstance(r, ValueError) and "returning=True" in str(r) for r in rest)
