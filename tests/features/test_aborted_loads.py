"""A load that stops on a bad file stores nothing, and leaves nothing behind that says
otherwise: no rejects file listing rows of a load that never happened, no new empty store; its
error says that no file's rows were loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import SourceError
from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping
from features.store import EventStore
from features.store_load import load_target
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"
GOOD = HEADER + "e1,c1,2025-03-01T10:00:00Z,page_view,search,,,\n"
# One good row, one the load rejects: a rejects file would list it.
WITH_REJECT = GOOD + "e2,c1,2025-03-01T10:00:00Z,page_view,search,NaN,,\n"


def folder_with_corrupt_parquet(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(WITH_REJECT, encoding="utf-8")
    (folder / "b.parquet").write_bytes(b"PAR1 not really")
    return folder


def leftovers(where: Path) -> list[str]:
    return sorted(p.name for p in where.rglob("*")) if where.exists() else []


def test_a_load_stopped_by_a_corrupt_file_writes_no_rejects_and_says_so(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    folder = folder_with_corrupt_parquet(tmp_path)
    rejects = tmp_path / "rejects" / "in.csv"
    with EventStore(tmp_path / "s.duckdb") as es:
        with pytest.raises(SourceError) as info:
            es.ingest(folder, identity_mapping(), taxonomy, rejects)
        assert es.count() == 0
    assert str(info.value).startswith(f"{folder / 'b.parquet'}: not a readable Parquet file")
    assert str(info.value).endswith(
        f"; nothing was loaded from any of the 2 files of {folder} (a load stores the rows of all "
        "its files or none): fix or remove that file and load again")
    assert not (tmp_path / "rejects").exists()  # nor a partial file, nor its directory


def test_a_file_with_duplicated_columns_says_nothing_was_loaded(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("event_id,customer_id,ts,event_type,value,value\n"
                    "e1,c1,2025-03-01,page_view,1,2\n", encoding="utf-8")
    with EventStore(tmp_path / "s.duckdb") as es, pytest.raises(SourceError) as info:
        es.ingest(path, identity_mapping(), taxonomy, tmp_path / "rejects" / "dup.csv")
    assert str(info.value) == (f"{path}: line 1: duplicate column names ['value']; nothing was "
                               f"loaded from {path}")


def test_an_aborted_load_keeps_an_earlier_rejects_file_of_the_same_name(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("an earlier load's rejects\n", encoding="utf-8")
    with EventStore(tmp_path / "s.duckdb") as es, pytest.raises(SourceError):
        es.ingest(folder_with_corrupt_parquet(tmp_path), identity_mapping(), taxonomy, rejects)
    assert rejects.read_text(encoding="utf-8") == "an earlier load's rejects\n"
    assert leftovers(tmp_path) == sorted(["in", "a.csv", "b.parquet", "rejects.csv",
                                          "s.duckdb"])


def test_a_stored_load_names_its_rejects_file(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "a.csv"
    path.write_text(WITH_REJECT, encoding="utf-8")
    rejects = tmp_path / "rejects" / "a.csv"
    with EventStore(tmp_path / "s.duckdb") as es:
        report = es.ingest(path, identity_mapping(), taxonomy, rejects)
    assert report.append.inserted == 1 and report.load.rejects_path == rejects
    assert leftovers(tmp_path / "rejects") == ["a.csv"]
    assert "value is not finite" in rejects.read_text(encoding="utf-8")


def test_reading_alone_writes_the_rejects_once_every_file_is_read(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    rejects = tmp_path / "rejects" / "r.csv"
    with pytest.raises(SourceError):
        list(load_events(folder_with_corrupt_parquet(tmp_path), identity_mapping(), taxonomy,
                         LoadReport(), rejects))
    assert not (tmp_path / "rejects").exists()
    (tmp_path / "in" / "b.parquet").unlink()
    list(load_events(tmp_path / "in", identity_mapping(), taxonomy, LoadReport(), rejects))
    assert leftovers(tmp_path / "rejects") == ["r.csv"]


def test_a_failed_first_load_leaves_no_new_store(tmp_path: Path, taxonomy: Taxonomy) -> None:
    folder = folder_with_corrupt_parquet(tmp_path)
    store = tmp_path / "new" / "deeper" / "s.duckdb"
    with pytest.raises(SourceError), load_target(store) as es:
        es.ingest(folder, identity_mapping(), taxonomy, store.parent / "rejects" / "in.csv")
    assert not (tmp_path / "new").exists()


def test_a_failed_load_keeps_a_store_that_was_there(tmp_path: Path, taxonomy: Taxonomy) -> None:
    store = tmp_path / "s.duckdb"
    EventStore(store).close()  # an empty store of the user's: kept
    with pytest.raises(SourceError), load_target(store) as es:
        es.ingest(folder_with_corrupt_parquet(tmp_path), identity_mapping(), taxonomy)
    assert store.exists()


def test_a_new_store_that_holds_events_is_kept_whatever_fails_after(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    (tmp_path / "a.csv").write_text(GOOD, encoding="utf-8")
    store = tmp_path / "new" / "s.duckdb"
    with pytest.raises(RuntimeError), load_target(store) as es:
        es.ingest(tmp_path / "a.csv", identity_mapping(), taxonomy)
        raise RuntimeError("after the load was stored")
    with EventStore(store, read_only=True) as es:
        assert es.count() == 1
