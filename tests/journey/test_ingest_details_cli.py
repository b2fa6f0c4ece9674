"""`journey ingest --details`: detail tables' values joined onto the events at load, what the
command says about it, and the detail files it refuses before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.features.details_cases import EVENTS, ORDERS, write
from tests.journey.cli_helpers import fails, ok
from tests.journey.ingest_helpers import read_rejects, rejects_file, stored

pytestmark = pytest.mark.usefixtures("isolated")


def flat(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


def test_details_fill_the_purchases_values(tmp_path: Path) -> None:
    events, orders = write(tmp_path / "events.csv", EVENTS), write(tmp_path / "o.csv", ORDERS)
    store = tmp_path / "s.duckdb"
    lines = ok("ingest", events, "--preset", "segment", "--details", orders, "--store", store)
    assert ("details o.csv (value: total_price): 2 rows, 2 joined to events: 2 purchase events "
            "now carry a value; 2 of the 4 purchase events in this load still have none"
            ) in flat(lines)
    values = {e["event_id"]: e["value"] for e in stored(store)}
    assert (values["o1"], values["o2"], values["o3"], values["p1"]) == (69.73, 18.99, None, None)
    assert not any(line.startswith("rejected rows") for line in lines)


def test_detail_rejects_are_listed_with_the_events(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    orders = write(tmp_path / "o.csv", ORDERS + "o3,2024-01-03,12..5,Canada\n")
    lines = ok("ingest", events, "--preset", "segment", "--details", orders,
               "--store", tmp_path / "s.duckdb")
    assert "  o.csv: 1 rows rejected: value is not a number" in lines
    assert [(r["source"], r["line"], r["field"], r["reason"], r["value"])
            for r in read_rejects(rejects_file(lines))] == [
        (str(orders), "4", "total_price", "value is not a number", "12..5")]
    summary = ok("summary", "--store", tmp_path / "s.duckdb")
    assert any(str(rejects_file(lines)) in line for line in summary)


def test_several_details_and_a_mapping_file(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    (tmp_path / "w").mkdir()
    write(tmp_path / "w" / "first.csv", "id,total\no3,4\n")
    mapping = write(tmp_path / "w" / "m.yaml",
                    "columns: {customer_id: user_id, ts: ts, event_type: event_type, "
                    "event_id: event_id}\nevent_types: {Order Completed: purchase, "
                    "Page: page_view}\ndetails: [{file: first.csv, columns: {value: total}}]\n")
    # Without a `columns:` entry, --details reads the mapping's value column (here: `value`).
    err = fails("ingest", events, "--mapping", mapping, "--details",
                write(tmp_path / "o.csv", ORDERS), "--store", tmp_path / "s.duckdb")
    assert "detail file has none of the columns (value: ['value']; channel: ['channel']" in err
    orders = write(tmp_path / "v.csv", "id,value\no1,69.73\no2,18.99\n")
    store = tmp_path / "s.duckdb"
    lines = ok("ingest", events, "--mapping", mapping, "--details", orders, "--store", store)
    assert [line.split(" (")[0] for line in lines if line.startswith("details")] == [
        "details first.csv", "details v.csv", "details: 3 of the 4 purchase events in this load"
        " carry a value, 1 still have none"]
    assert ("details: 3 of the 4 purchase events in this load carry a value, 1 still have none"
            ) in flat(lines)
    values = {e["event_id"]: e["value"] for e in stored(store)}
    assert (values["o1"], values["o2"], values["o3"]) == (69.73, 18.99, 4.0)


def test_refused_detail_files_leave_no_store(tmp_path: Path) -> None:
    events, store = write(tmp_path / "events.csv", EVENTS), tmp_path / "db" / "s.duckdb"
    missing = tmp_path / "nope.csv"
    err = fails("ingest", events, "--preset", "segment", "--details", missing, "--store", store)
    assert f"--details {missing}: no such file {missing}" in err
    twice = write(tmp_path / "twice.csv", ORDERS + "o1,2024-01-05,3,Canada\n")
    err = fails("ingest", events, "--preset", "segment", "--details", twice, "--store", store)
    assert f"{twice}: line 4: key 'o1' (column 'id') is on line 2 too" in " ".join(err.split())
    assert "nothing was loaded from" in " ".join(err.split())
    keyless = write(tmp_path / "keyless.csv", "order_id,total_price\no1,3\n")
    err = fails("ingest", events, "--preset", "segment", "--details", keyless, "--store", store)
    assert ("detail file has no key column 'id' (given at --details); the file has columns "
            "['order_id', 'total_price']") in " ".join(err.split())
    assert not store.parent.exists()


def test_a_store_that_holds_the_events_already_says_so(tmp_path: Path) -> None:
    events, orders = write(tmp_path / "events.csv", EVENTS), write(tmp_path / "o.csv", ORDERS)
    store = tmp_path / "s.duckdb"
    first = ok("ingest", events, "--preset", "segment", "--store", store)
    assert not any("detail" in line for line in first)
    again = ok("ingest", events, "--preset", "segment", "--details", orders, "--store", store)
    text = flat(again)
    assert "2 of them conflicting" in text
    assert "note: values joined from detail files reach only events new to this store" in text
    assert all(e["value"] is None for e in stored(store))
    fresh = ok("ingest", events, "--preset", "segment", "--details", orders,
               "--store", tmp_path / "new.duckdb")
    assert "note: values joined" not in flat(fresh)
