"""`journey ingest` on what an analyst brings: a load that rejects every row fails (exit 2)
without creating a store, a year-less timestamp pattern is refused at its mapping line, and
channels the feature spec does not list are named after the load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journey.cli_helpers import fails, ok, out, run
from tests.journey.ingest_helpers import REJECTS_LINE, read_rejects, rejects_file, stored

pytestmark = pytest.mark.usefixtures("isolated")

# UCI online shoppers' shape: no dates, a month name, integer-coded traffic types.
SESSIONS = ("Month,Region,TrafficType\n"
            "Feb,1,1\nMar,2,2\nJune,3,2\nNov,1,20\n")
MONTHS = ("columns: {customer_id: Region, ts: Month, channel: TrafficType}\n"
          "constants: {event_type: page_view}\n")


def test_a_load_that_accepts_nothing_fails_and_creates_no_store(tmp_path: Path) -> None:
    source, mapping = tmp_path / "sessions.csv", tmp_path / "m.yaml"
    source.write_text(SESSIONS, encoding="utf-8")
    mapping.write_text(MONTHS + "ts_format: ['%Y-%m-%d']\n", encoding="utf-8")
    store = tmp_path / "db" / "events.duckdb"
    result = run("ingest", source, "--mapping", mapping, "--store", store)
    assert result.exit_code == 2, result.output
    lines = out(result).splitlines()
    assert lines[0] == "read 4 rows from 1 file(s): 0 valid, 4 rejected"
    rejects = rejects_file(lines)
    assert len(read_rejects(rejects)) == 4
    [error] = [line for line in lines if line.startswith("error: ")]
    assert error == (f"error: nothing was loaded from {source}: all 4 rows read were rejected, "
                     f"no store was created at {store}; {REJECTS_LINE}{rejects}")
    assert not store.exists()
    assert sorted(p.name for p in store.parent.iterdir()) == ["rejects"]


def test_a_store_that_was_there_is_unchanged(tmp_path: Path, touchpoints: Path) -> None:
    store = tmp_path / "events.duckdb"
    ok("ingest", touchpoints, "--map", "customer_id=user,ts=when,event_type=what",
       "--store", store)
    before = stored(store)
    source, mapping = tmp_path / "sessions.csv", tmp_path / "m.yaml"
    source.write_text(SESSIONS, encoding="utf-8")
    mapping.write_text(MONTHS + "ts_format: ['%Y-%m-%d']\n", encoding="utf-8")
    result = run("ingest", source, "--mapping", mapping, "--store", store)
    assert result.exit_code == 2
    assert f"the store {store} is unchanged" in out(result)
    assert stored(store) == before
    summary = "\n".join(ok("summary", "--store", store))
    assert "sessions.csv" not in summary


def test_a_month_without_a_year_is_refused_before_reading(tmp_path: Path) -> None:
    source, mapping = tmp_path / "sessions.csv", tmp_path / "m.yaml"
    source.write_text(SESSIONS, encoding="utf-8")
    mapping.write_text(MONTHS + "ts_format: ['%b']\n", encoding="utf-8")
    message = fails("ingest", source, "--mapping", mapping, "--store", tmp_path / "e.duckdb")
    assert message.startswith(f"error: {mapping}: line 3: ts_format[0]: '%b' has no year")
    assert not (tmp_path / "e.duckdb").exists()


def test_unlisted_channels_are_named_and_renames_apply(tmp_path: Path) -> None:
    source, mapping = tmp_path / "sessions.csv", tmp_path / "m.yaml"
    source.write_text(SESSIONS, encoding="utf-8")
    mapping.write_text("columns: {customer_id: Region, channel: TrafficType}\n"
                       "constants: {event_type: page_view, ts: '2024-06-01'}\n"
                       "channels: {'1': search}\n", encoding="utf-8")
    lines = ok("ingest", source, "--mapping", mapping, "--store", tmp_path / "e.duckdb")
    note = " ".join(line.strip() for line in lines if not line.startswith(("read", "stored",
                                                                           "store ")))
    assert note.startswith("note: 3 of 4 new events have channels the feature spec does not "
                           "list, which features count as 'other': '2' (2), '20' (1) to keep "
                           "them apart: ")
    assert sorted(e["channel"] for e in stored(tmp_path / "e.duckdb")) == ["2", "2", "20",
                                                                          "search"]
