"""The request-sized append (features/rows.py, the service's ingest path) stores exactly what the
file-load path stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import features.rows as rows_module
import features.store as store_module
from features.rows import read_keys
from features.store import EventStore
from tests.features.test_store import events_table, rows, utc


def _codes(s: EventStore) -> list[tuple[Any, ...]]:
    """Events with the customer id and names their stored keys and codes stand for."""
    return s.con.execute("""
        SELECT e.event_id, c.customer_id, t.name, ch.name, a.name
        FROM events e JOIN customers c USING (customer_key)
        JOIN vocab t ON t.kind = 'event_type' AND t.code = e.event_type_code
        JOIN vocab ch ON ch.kind = 'channel' AND ch.code = e.channel_code
        LEFT JOIN vocab a ON a.kind = 'action' AND a.code = e.action_code
        ORDER BY e.event_id""").fetchall()


def _event_ids(inserted: pa.Table | None) -> list[str]:
    """The sorted event ids of an append's inserted rows (asked for with returning=True)."""
    assert inserted is not None
    return sorted(r["event_id"] for r in inserted.to_pylist())


@pytest.mark.parametrize("n", [3, 200])  # one VALUES statement, or the Arrow insert
def test_small_appends_store_what_the_staged_path_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The service's append path (keys and codes by lookup) and the file-load path (staging
    table, joins) leave the same rows, keys and codes: new and known customers, new channels
    and actions, repeats inside a batch and across batches."""
    def batches() -> list[pa.Table]:
        first = [{"event_id": f"e{i}", "customer_id": f"c{i % 5}", "ts": utc(2024, 1, 1, i % 24),
                  "event_type": "page_view", "channel": "web"} for i in range(n)]
        second = [
            {"event_id": "e0", "customer_id": "c0", "ts": utc(2024, 2, 1), "event_type": "review"},
            {"event_id": "x1", "customer_id": "new", "ts": utc(2024, 2, 2),
             "event_type": "purchase", "channel": "kiosk", "value": 3.0, "action": "coupon"},
            {"event_id": "x1", "customer_id": "other", "ts": utc(2024, 2, 3),
             "event_type": "review"},
            {"event_id": "x2", "customer_id": "c1", "ts": utc(2024, 2, 4),
             "event_type": "purchase", "channel": "kiosk", "action": "sms"},
        ]
        return [events_table(first), events_table(second)]

    results = {}
    for small in (True, False):
        if not small:
            monkeypatch.setattr(store_module, "SMALL_APPEND", 0)
        with EventStore(tmp_path / f"{small}.duckdb") as s:
            got = [s.append(b, returning=True) for b in batches()]
            inserted = [_event_ids(g.rows) for g in got]
            results[small] = (rows(s), _codes(s), [(g.received, g.inserted) for g in got],
                              inserted)
    assert results[True] == results[False]
    assert results[True][2] == [(n, n), (4, 2)]
    assert sorted(results[True][3][1]) == ["x1", "x2"]


def _picture(s: EventStore) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    codes: dict[str, dict[str, int]] = {}
    for kind, name, code in s.con.execute("SELECT kind, name, code FROM vocab").fetchall():
        codes.setdefault(kind, {})[name] = code
    return read_keys(s.con), codes


def test_a_failed_append_leaves_the_writers_picture_as_the_store_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-memory keys and codes learn new ones only when their transaction commits: after
    a failure in the middle, the retry gets the keys the store would give, and the picture
    matches the tables."""
    with EventStore(tmp_path / "s.duckdb") as s:
        s.append(events_table([{"event_id": "a", "customer_id": "c0", "ts": utc(2024, 1, 1),
                                "event_type": "page_view", "channel": "web"}]))
        novel = events_table([{"event_id": "b", "customer_id": "fresh", "ts": utc(2024, 1, 2),
                               "event_type": "purchase", "channel": "kiosk",
                               "action": "coupon"}])

        def broken(*_: object) -> None:
            raise RuntimeError("disk full")

        with monkeypatch.context() as m:
            m.setattr(rows_module, "_insert", broken)
            with pytest.raises(RuntimeError, match="disk full"):
                s.append(novel)
        appender = s.appender()
        assert "fresh" not in appender.keys and "kiosk" not in appender.codes["channel"]
        assert (appender.keys, {k: v for k, v in appender.codes.items() if v}) == _picture(s)
        assert s.append(novel, returning=True).inserted == 1
        assert (appender.keys, {k: v for k, v in appender.codes.items() if v}) == _picture(s)
        assert s.customer_keys() is appender.keys  # shared with readers, not read twice
        assert rows(s)[-1][:2] == ("b", "fresh")


def test_a_serving_writer_appends_any_size_through_its_picture(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grouped requests can exceed the small-append size: the staged path would drop the
    picture, to be read again on the next request's path."""
    monkeypatch.setattr(store_module, "SMALL_APPEND", 5)
    with EventStore(tmp_path / "s.duckdb") as s:
        s.serve_appends(2)
        picture = s.appender()
        batch = events_table([{"event_id": f"g{i}", "customer_id": f"c{i % 4}",
                               "ts": utc(2024, 1, 1, i), "event_type": "page_view"}
                              for i in range(12)])
        assert s.append(batch).inserted == 12
        assert s.append(batch).inserted == 0
        assert s.appender() is picture and len(picture.ids) == 12
        assert picture.keys == read_keys(s.con)
