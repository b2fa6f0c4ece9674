"""Loading the real datasets in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from features.mapping import load_preset
from features.store import EventStore, IngestReport
from features.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
SEGMENT_EVENTS = SHARED_DATA / "trafilea-shapees-hackathon-events" / "events.csv.gz"
CDNOW_MASTER = SHARED_DATA / "cdnow" / "cdnow_master.csv.gz"

pytestmark = pytest.mark.shared_data


def require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture(scope="module")
def segment(
    tmp_path_factory: pytest.TempPathFactory, taxonomy: Taxonomy
) -> Iterator[tuple[EventStore, IngestReport, Path]]:
    source = require(SEGMENT_EVENTS)
    tmp = tmp_path_factory.mktemp("segment")
    rejects = tmp / "rejects.csv"
    with EventStore(tmp / "events.duckdb") as store:
        report = store.ingest(source, load_preset("segment"), taxonomy, rejects)
        yield store, report, rejects


@pytest.fixture(scope="module")
def cdnow(
    tmp_path_factory: pytest.TempPathFactory, taxonomy: Taxonomy
) -> Iterator[tuple[EventStore, IngestReport, Path]]:
    source = require(CDNOW_MASTER)
    tmp = tmp_path_factory.mktemp("cdnow")
    rejects = tmp / "rejects.csv"
    with EventStore(tmp / "events.duckdb") as store:
        report = store.ingest(source, load_preset("purchases"), taxonomy, rejects)
        yield store, report, rejects


# -- Trafilea / Shapees Segment events -------------------------------------------------------------
def test_segment_counts(segment: tuple[EventStore, IngestReport, Path]) -> None:
    store, report, _ = segment
    load = report.load
    assert load.files == [str(SEGMENT_EVENTS)]
    assert load.rows_read == 16_008
    assert load.rejected == Counter({"event_type unknown to the taxonomy": 1_257})
    assert load.valid == 16_008 - 1_257 == 14_751
    # 29 event ids are sent more than once (some with another timestamp): stored once each.
    assert report.append.received == 14_751
    assert report.append.inserted == 14_722
    assert report.append.duplicates == 29
    assert store.count() == 14_722


def test_segment_rejects_are_the_popup_events(
    segment: tuple[EventStore, IngestReport, Path],
) -> None:
    _, _, rejects = segment
    with rejects.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1_257
    assert Counter(r["value"] for r in rows) == Counter(
        {"Pop-up Email Viewed": 1_157, "Pop-up Email Accepted": 100}
    )
    assert {r["field"] for r in rows} == {"event_type"}
    assert {r["source"] for r in rows} == {str(SEGMENT_EVENTS)}
    lines = [int(r["line"]) for r in rows]
    assert lines[0] == 3  # the second data row of the file is the first pop-up
    assert len(set(lines)) == len(lines)
    assert min(lines) >= 2 and max(lines) <= 16_009


def test_segment_stored_events(segment: tuple[EventStore, IngestReport, Path]) -> None:
    store, _, _ = segment
    by_type = dict(store.con.execute(
        "SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    assert by_type == {"page_view": 7_602, "product_view": 5_842, "add_to_cart": 698,
                       "checkout": 482, "purchase": 98}
    row = store.con.execute(
        "SELECT count(DISTINCT customer_id), list(DISTINCT channel) FROM events").fetchone()
    assert row is not None
    customers, channels = row
    assert customers == 250
    assert channels == ["unknown"]
    assert store.time_range() == (datetime(2022, 10, 3, 16, 42, 33, 646000),
                                  datetime(2024, 4, 11, 21, 6, 44, 469000))


def test_segment_keep_policy_keeps_popups(taxonomy: Taxonomy, tmp_path: Path) -> None:
    source = require(SEGMENT_EVENTS)
    with EventStore(tmp_path / "keep.duckdb") as store:
        report = store.ingest(source, load_preset("segment"), taxonomy.with_policy("keep"))
        assert report.load.valid == 16_008
        assert report.load.rejected_total == 0
        assert report.append.inserted == 15_977  # 16,008 rows, 15,977 distinct event ids
        popups = dict(store.con.execute(
            "SELECT event_type, count(*) FROM events WHERE event_type LIKE 'pop_up%' GROUP BY 1"
        ).fetchall())
        # 1,157 and 100 rows; one id of each is re-sent, so 1,156 and 99 are stored.
        assert popups == {"pop_up_email_viewed": 1_156, "pop_up_email_accepted": 99}


def test_segment_reload_stores_nothing(segment: tuple[EventStore, IngestReport, Path],
                                       taxonomy: Taxonomy) -> None:
    store, _, _ = segment
    again = store.ingest(SEGMENT_EVENTS, load_preset("segment"), taxonomy)
    assert again.append.received == 14_751
    assert again.append.inserted == 0
    assert store.count() == 14_722


# -- CDNOW purchases -------------------------------------------------------------------------------
def test_cdnow_counts(cdnow: tuple[EventStore, IngestReport, Path]) -> None:
    store, report, rejects = cdnow
    assert report.load.rows_read == 69_659
    assert report.load.valid == 69_659
    assert report.load.rejected_total == 0
    assert not rejects.exists()
    # 255 rows repeat another row exactly (same customer, day, CDs and amount): they are real
    # repeated purchases without an id, numbered apart, so every row is stored.
    assert report.append == type(report.append)(received=69_659, inserted=69_659)
    assert store.count() == 69_659


def test_cdnow_stored_events(cdnow: tuple[EventStore, IngestReport, Path]) -> None:
    store, _, _ = cdnow
    assert store.time_range() == (datetime(1997, 1, 1), datetime(1998, 6, 30))
    row = store.con.execute(
        "SELECT count(DISTINCT customer_id), list(DISTINCT event_type), "
        "count(*) FILTER (WHERE value = 0), "
        "count(*) FILTER (WHERE regexp_matches(event_id, '^d-[0-9a-f]{32}-[0-9]+$')), "
        "round(sum(value), 2), sum(CAST(properties->>'number_of_cds' AS INTEGER)) FROM events"
    ).fetchone()
    assert row is not None
    customers, types, zero, renumbered, total, cds = row
    assert customers == 23_570
    assert types == ["purchase"]
    assert zero == 80
    assert renumbered == 255
    assert total == pytest.approx(2_500_315.63)
    assert cds == 167_881  # number_of_cds, packed into properties
    first = store.customer_history("00001")
    assert first.num_rows == 1
    assert first.column("value").to_pylist() == [11.77]


def test_cdnow_reload_stores_nothing(cdnow: tuple[EventStore, IngestReport, Path],
                                     taxonomy: Taxonomy) -> None:
    store, _, _ = cdnow
    again = store.ingest(CDNOW_MASTER, load_preset("purchases"), taxonomy)
    assert again.load.valid == 69_659
    assert again.append.inserted == 0
    assert again.append.duplicates == 69_659
    assert store.count() == 69_659
