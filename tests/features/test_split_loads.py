"""Identical rows without an event id are separate events only within one load: split between
two loads, the second takes its copies as already stored. The design stays (reloading a file
changes nothing); the load now says how many rows matched an earlier load's events, where it
used to fold them silently into "already stored or repeated"."""

from __future__ import annotations

from pathlib import Path

from features.mapping import identity_mapping
from features.store import EventStore
from features.store_log import matched_note
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"
PAIR = ",c1,2024-01-03,purchase,web,5,,\n"  # two identical same-day purchases
OTHER = ",c2,2024-01-04,purchase,web,7,,\n"


def write(path: Path, rows: str) -> Path:
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def test_identical_rows_split_between_loads_are_counted_and_said(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    with EventStore(one) as store:
        whole = store.ingest(write(tmp_path / "all.csv", PAIR * 2 + OTHER), identity_mapping(),
                             taxonomy)
        assert store.count() == 3
    assert whole.matched_earlier == 0
    assert not any("earlier load" in line for line in whole.lines())
    with EventStore(two) as store:
        first = store.ingest(write(tmp_path / "a.csv", PAIR), identity_mapping(), taxonomy)
        second = store.ingest(write(tmp_path / "b.csv", PAIR + OTHER), identity_mapping(),
                              taxonomy)
        assert store.count() == 2  # one purchase of the pair is lost
    assert first.matched_earlier == 0
    assert (second.append.inserted, second.append.duplicates, second.matched_earlier) == (
        1, 1, 1)
    said = " ".join(" ".join(second.lines()).split())
    assert "note: 1 ignored row without an event id is identical to events an earlier" in said
    assert "in one load, or give them explicit event ids" in said


def test_a_reload_says_it_too_and_explicit_ids_never(tmp_path: Path, taxonomy: Taxonomy) -> None:
    source = write(tmp_path / "all.csv", PAIR * 2 + OTHER + "x1,c3,2024-01-05,purchase,web,1,,\n")
    with EventStore(tmp_path / "s.duckdb") as store:
        store.ingest(source, identity_mapping(), taxonomy)
        again = store.ingest(source, identity_mapping(), taxonomy)
        assert store.count() == 4
    assert (again.append.inserted, again.matched_earlier) == (0, 3)  # x1 is a re-send


def test_no_note_without_matches() -> None:
    assert matched_note(0) == []
    assert matched_note(1234)[0].startswith("note: 1,234 ignored rows without an event id are")
