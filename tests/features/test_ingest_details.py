"""Detail tables joined at ingest: an event takes the value (and channel) of the detail row
keyed by its id, unless it has its own; what the join did is counted and reported."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.details_join import SORT_PROBES_ABOVE, _KeyIndex
from features.mapping import choose_mapping, load_mapping_file
from features.store import EventStore
from features.taxonomy import Taxonomy
from tests.features.details_cases import EVENTS, ORDERS, load_joined, write
from tests.features.test_shared_data import SHARED_DATA, require

SHAPEES = SHARED_DATA / "trafilea-shapees-hackathon-events"


def test_detail_values_fill_the_events_with_their_id(tmp_path: Path, taxonomy: Taxonomy) -> None:
    events, orders = write(tmp_path / "events.csv", EVENTS), write(tmp_path / "o.csv", ORDERS)
    got = load_joined(tmp_path, taxonomy, events, details=[orders])
    assert got.value("o1") == 69.73
    assert got.value("o2") == 18.99
    assert got.value("o3") is None  # no detail row
    assert got.value("p1") is None
    details = got.report.details
    assert details is not None
    [counts] = details.files
    assert (counts.rows, counts.joined, counts.filled, counts.filled_conversions,
            counts.unmatched) == (2, 2, 2, 2, 0)
    assert (details.conversions, details.valued) == (4, 2)
    assert got.rejects == []
    text = " ".join(" ".join(got.report.lines()).split())
    assert ("details o.csv (value: total_price): 2 rows, 2 joined to events: 2 purchase events "
            "now carry a value; 2 of the 4 purchase events in this load still have none") in text


def test_without_details_nothing_is_joined(tmp_path: Path, taxonomy: Taxonomy) -> None:
    got = load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS))
    assert got.report.details is None
    assert all(row["value"] is None for row in got.rows.values())
    assert not any(line.startswith("details") for line in got.report.lines())


def test_an_events_own_value_wins_and_disagreements_are_counted(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    events = write(tmp_path / "events.csv",
                   "user_id,event_type,event_id,ts,revenue\n"
                   "u1,Order Completed,o1,2024-01-01T10:05:00Z,10\n"    # file says 69.73
                   "u2,Order Completed,o2,2024-01-02T10:00:00Z,18.99\n"  # file agrees
                   "u3,Order Completed,o3,2024-01-03T10:00:00Z,\n")
    orders = write(tmp_path / "o.csv", ORDERS + "o3,2024-01-03 10:00:00,5.5,Canada\n")
    got = load_joined(tmp_path, taxonomy, events, details=[orders])
    assert [got.value(i) for i in ("o1", "o2", "o3")] == [10.0, 18.99, 5.5]
    assert got.report.details is not None
    [counts] = got.report.details.files
    assert (counts.joined, counts.filled, counts.kept_own, counts.differed) == (3, 1, 2, 1)
    assert ("  2 joined events kept their own value (1 of them differ from o.csv's)"
            in got.report.lines())


def test_detail_rows_without_an_event_are_counted_not_refused(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    orders = write(tmp_path / "o.csv", ORDERS + "zz,2024-02-01 00:00:00,7,Canada\n"
                                                "p1,2024-01-01 10:00:00,3,Canada\n")
    got = load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                      details=[orders])
    assert got.report.details is not None
    [counts] = got.report.details.files
    # p1 is a page view: it joins (and is counted apart from the purchases).
    assert (counts.rows, counts.joined, counts.unmatched, counts.filled,
            counts.filled_conversions) == (4, 3, 1, 3, 2)
    assert got.value("p1") == 3.0
    text = " ".join(" ".join(got.report.lines()).split())
    assert "2 purchase events and 1 other events now carry a value" in text
    assert "1 rows of o.csv match no event of this load: not joined" in text


def test_events_with_a_derived_id_are_not_joined(tmp_path: Path, taxonomy: Taxonomy) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    got = load_joined(tmp_path, taxonomy, events, details=[write(tmp_path / "o.csv", ORDERS)])
    [derived] = [r for r in got.rows.values() if r["_derived_id"]]
    assert derived["value"] is None


def test_gzipped_jsonl_and_parquet_details(tmp_path: Path, taxonomy: Taxonomy) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    gz = tmp_path / "order_completed.csv.gz"
    gz.write_bytes(gzip.compress(ORDERS.encode()))
    jsonl = write(tmp_path / "orders.jsonl", "\n".join(json.dumps(r) for r in (
        {"id": "o1", "total_price": 69.73}, {"id": "o2", "total_price": "18.99"})) + "\n")
    parquet = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": ["o1", "o2"], "total_price": [69.73, 18.99]}), parquet)
    for path in (gz, jsonl, parquet):
        got = load_joined(tmp_path, taxonomy, events, details=[path])
        assert [got.value("o1"), got.value("o2")] == [69.73, 18.99], path.name


def test_the_first_detail_file_listed_wins(tmp_path: Path, taxonomy: Taxonomy) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    first = write(tmp_path / "a.csv", "id,total\no1,1\n")
    second = write(tmp_path / "b.csv", "id,total_price\no1,2\no2,3\n")
    got = load_joined(tmp_path, taxonomy, events, details=[first, second])
    assert [got.value("o1"), got.value("o2")] == [1.0, 3.0]
    assert got.report.details is not None
    a, b = got.report.details.files
    assert (a.filled, b.filled, b.kept_own, b.differed) == (1, 1, 1, 1)
    assert got.report.lines()[-1] == (
        "details: 2 of the 4 purchase events in this load carry a value, 2 still have none")


def test_a_mapping_file_names_the_key_and_columns(tmp_path: Path, taxonomy: Taxonomy) -> None:
    (tmp_path / "exports").mkdir()
    write(tmp_path / "exports" / "orders.csv",
          "order_event,amount,utm_source\n"
          "o1,12.5, FB \n"        # own channel: unknown, so the file's (renamed) is taken
          "o2,7,email\n")         # own channel: search, which is kept
    events = write(tmp_path / "events.csv",
                   "user_id,event_type,event_id,ts,channel\n"
                   "u1,Order Completed,o1,2024-01-01T10:05:00Z,\n"
                   "u2,Order Completed,o2,2024-01-02T10:00:00Z,search\n")
    mapping = write(tmp_path / "m.yaml",
                    "columns: {customer_id: user_id, ts: ts, event_type: event_type, "
                    "event_id: event_id, channel: channel}\n"
                    "event_types: {Order Completed: purchase}\n"
                    "channels: {fb: social}\n"
                    "details:\n"
                    "  - file: exports/orders.csv\n"
                    "    key: order_event\n"
                    "    columns: {value: amount, channel: utm_source}\n")
    got = load_joined(tmp_path, taxonomy, events, load_mapping_file(mapping))
    assert [(got.rows[i]["value"], got.rows[i]["channel"]) for i in ("o1", "o2")] == [
        (12.5, "social"), (7.0, "search")]
    assert got.report.details is not None
    [counts] = got.report.details.files
    assert (counts.used, counts.channels) == ({"value": "amount", "channel": "utm_source"}, 1)


def test_a_store_load_keeps_the_joined_values_and_logs_detail_rejects(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    orders = write(tmp_path / "o.csv", ORDERS + "o3,2024-01-03 10:00:00,-4,Canada\n")
    rejects = tmp_path / "rejects" / "r.csv"
    with EventStore(tmp_path / "s.duckdb") as es:
        report = es.ingest(events, choose_mapping(preset="segment", details=[orders]), taxonomy,
                           rejects)
        got = es.con.execute("SELECT event_id, value FROM events WHERE value IS NOT NULL "
                             "ORDER BY event_id").fetchall()
        [logged] = es.ingest_log()
    assert got == [("o1", 69.73), ("o2", 18.99)]
    assert report.load.rejected_total == 0  # the events' own count: no event was refused
    assert logged["rejects_path"] == str(rejects)  # but the file lists the detail's reject
    assert rejects.read_text(encoding="utf-8").splitlines()[1] == (
        f"{orders},4,total_price,negative value,-4")


@pytest.mark.parametrize("keys", [100, SORT_PROBES_ABOVE + 1000])
def test_the_key_index_finds_ids_exactly(keys: int) -> None:
    names = pa.array([f"k{i}" for i in range(keys)])
    ids = pa.array(["k3", "nope", f"k{keys - 1}", "k0"])
    # Every key of one hash: the index must look up by text, not find just one of them.
    for hashes in (np.arange(keys, dtype=np.uint64) * 7919, np.zeros(keys, np.uint64)):
        index = _KeyIndex(names, hashes)
        probe = np.array([3 * 7919, 5, (keys - 1) * 7919, 0], np.uint64)
        assert index.exact == bool(hashes.any())
        assert index.find(ids, probe if index.exact else np.zeros(4, np.uint64)).tolist() == [
            3, -1, keys - 1, 0]


def test_a_hash_match_of_another_id_is_not_a_join() -> None:
    index = _KeyIndex(pa.array(["a", "b"]), np.array([1, 2], np.uint64))
    assert index.find(pa.array(["x", "b"]), np.array([1, 2], np.uint64)).tolist() == [-1, 1]


@pytest.mark.shared_data
def test_shapees_order_totals_become_the_purchases_values(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    events = require(SHAPEES / "events.csv.gz")
    orders = require(SHAPEES / "order_completed.csv.gz")
    with gzip.open(orders, "rt", newline="", encoding="utf-8") as fh:
        totals = {row["id"]: float(row["total_price"]) for row in csv.DictReader(fh)}
    got = load_joined(tmp_path, taxonomy, events, details=[orders])
    assert got.report.details is not None
    [counts] = got.report.details.files
    assert (counts.rows, counts.joined, counts.unmatched, counts.filled,
            counts.filled_conversions, counts.kept_own) == (43, 43, 0, 43, 43, 0)
    assert (got.report.details.conversions, got.report.details.valued) == (98, 43)
    purchases = [r for r in got.rows.values() if r["event_type"] == "purchase"]
    valued = {r["event_id"]: r["value"] for r in purchases if r["value"] is not None}
    assert valued == totals
    assert sum(valued.values()) == pytest.approx(sum(totals.values())) == pytest.approx(2967.70)
