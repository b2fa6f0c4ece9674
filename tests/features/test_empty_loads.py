"""A load that rejects every row it reads is refused: a store it would have created is not
left behind, a store that was there stays as it was (ingest log included), and the rejects
file, which says why each row was refused, is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import SourceError
from features.mapping import identity_mapping
from features.store import EventStore
from features.store_load import NothingAcceptedError, load_target, refused_load
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type\n"
ALL_BAD = HEADER + "e1,c1,June,page_view\ne2,c1,July,page_view\n"
GOOD = HEADER + "g1,c1,2025-03-01T10:00:00Z,page_view\n"


def _load(store: Path, source: Path, rejects: Path, taxonomy: Taxonomy) -> None:
    """What `journey ingest` does around a load."""
    existed = store.exists()
    with load_target(store) as es:
        report = es.ingest(source, identity_mapping(), taxonomy, rejects)
        if report.load.accepted_nothing:
            raise refused_load(es, report.load, source, existed)


def test_a_first_load_that_accepts_nothing_creates_no_store(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    source, store = tmp_path / "bad.csv", tmp_path / "new" / "events.duckdb"
    source.write_text(ALL_BAD, encoding="utf-8")
    rejects = tmp_path / "rejects" / "bad.csv"
    with pytest.raises(NothingAcceptedError) as info:
        _load(store, source, rejects, taxonomy)
    assert isinstance(info.value, SourceError)
    assert str(info.value) == (
        f"nothing was loaded from {source}: all 2 rows read were rejected, no store was created "
        f"at {store}; rejected rows (file, line, field, reason, value): {rejects}")
    assert not (tmp_path / "new").exists()
    assert rejects.read_text(encoding="utf-8").splitlines()[1:] == [
        f"{source},2,ts,unparseable timestamp,June", f"{source},3,ts,unparseable timestamp,July"]


def test_a_store_that_was_there_stays_as_it_was(tmp_path: Path, taxonomy: Taxonomy) -> None:
    good, bad, store = tmp_path / "good.csv", tmp_path / "bad.csv", tmp_path / "events.duckdb"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(ALL_BAD, encoding="utf-8")
    _load(store, good, tmp_path / "r1.csv", taxonomy)
    with EventStore(store, read_only=True) as es:
        before = (es.count(), es.ingest_log())
    with pytest.raises(NothingAcceptedError, match=f"the store {store} is unchanged; rejected "):
        _load(store, bad, tmp_path / "r2.csv", taxonomy)
    with EventStore(store, read_only=True) as es:
        assert (es.count(), es.ingest_log()) == before
    assert (tmp_path / "r2.csv").exists()


def test_an_empty_file_and_a_load_of_repeats_are_not_refused(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    empty, good, store = tmp_path / "empty.csv", tmp_path / "good.csv", tmp_path / "e.duckdb"
    empty.write_text(HEADER, encoding="utf-8")
    good.write_text(GOOD, encoding="utf-8")
    _load(store, empty, tmp_path / "r0.csv", taxonomy)
    _load(store, good, tmp_path / "r1.csv", taxonomy)
    _load(store, good, tmp_path / "r2.csv", taxonomy)  # nothing new stored, nothing rejected
    with EventStore(store, read_only=True) as es:
        assert es.count() == 1
        assert len(es.ingest_log()) == 3
