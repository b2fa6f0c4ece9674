"""Epoch seconds read as milliseconds land in January 1970 and load without an error: the load
ends with one warning naming how many, an example line, and the unit that fits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from features.mapping import ColumnMapping, identity_mapping
from features.schema import events_table
from features.store import EventStore
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import utc


def _csv(path: Path, stamps: list[str]) -> Path:
    rows = "".join(f"e{i},c{i},{ts},page_view\n" for i, ts in enumerate(stamps))
    path.write_text("event_id,customer_id,ts,event_type\n" + rows, encoding="utf-8")
    return path


def _epochs(unit: str) -> ColumnMapping:
    return replace(identity_mapping(), ts_format=(unit,))


def test_seconds_read_as_milliseconds_warn_once(tmp_path: Path, load: LoadFn) -> None:
    path = _csv(tmp_path / "e.csv", ["1766188800", "1766188860", "1766188920"])
    got = load(path, _epochs("epoch_ms"), batch_rows=2)  # the count spans batches
    assert got.column("ts")[0] == utc(1970, 1, 21, 10, 36, 28, 800000)
    warnings = [line for line in got.report.lines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: 3 events of this load, read as epoch_ms, fall before 1971 (e.g. {path} line "
        "2: 1766188800 read as 1970-01-21T10:36:28Z): are they epoch_s? (ts_format: [epoch_s] "
        "reads 1766188800 as 2025-12-20T00:00:00Z)"]


def test_milliseconds_read_as_microseconds(tmp_path: Path, load: LoadFn) -> None:
    path = _csv(tmp_path / "e.csv", ["1766188800000"])
    got = load(path, _epochs("epoch_us"))
    assert got.report.epochs.lines() == [
        f"warning: 1 events of this load, read as epoch_us, fall before 1971 (e.g. {path} line "
        "2: 1766188800000 read as 1970-01-21T10:36:28Z): are they epoch_ms? (ts_format: "
        "[epoch_ms] reads 1766188800000 as 2025-12-20T00:00:00Z)"]


def test_no_warning_when_the_unit_fits(tmp_path: Path, load: LoadFn) -> None:
    got = load(_csv(tmp_path / "s.csv", ["1766188800"]), _epochs("epoch_s"))
    assert got.report.epochs.lines() == []
    got = load(_csv(tmp_path / "m.csv", ["1766188800000"]), _epochs("epoch_ms"))
    assert got.report.epochs.lines() == []


def test_times_not_read_from_epochs_say_nothing(tmp_path: Path, load: LoadFn) -> None:
    """1970 written as a date, or in a typed timestamp column, is what the source says."""
    got = load(_csv(tmp_path / "iso.csv", ["1970-01-21T00:00:00Z"]))
    assert got.report.epochs.lines() == []
    table = events_table([{"event_id": "e", "customer_id": "c", "ts": utc(1970, 1, 21),
                           "event_type": "page_view", "channel": "web"}])
    pq.write_table(table, tmp_path / "t.parquet")
    got = load(tmp_path / "t.parquet", _epochs("epoch_ms"))
    assert got.report.epochs.lines() == [] and got.table.num_rows == 1


def test_the_ingest_report_carries_the_warning(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = _csv(tmp_path / "e.csv", ["1766188800"])
    with EventStore(tmp_path / "events.duckdb") as es:
        report = es.ingest(path, _epochs("epoch_ms"), taxonomy)
    assert any(line.startswith("warning: 1 events of this load, read as epoch_ms")
               for line in report.lines())
