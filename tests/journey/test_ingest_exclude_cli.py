"""`journey ingest --exclude-customer` and a mapping's `exclude_customers:`: a stream's
catch-all or test user left out at load, counted apart (rows read = valid + rejected +
excluded), a listed id with no row named, and a bad list refused at its line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.features.details_cases import EVENTS, ORDERS, write
from tests.features.test_shared_data import SEGMENT_EVENTS
from tests.journey.cli_helpers import fails, ok
from tests.journey.ingest_helpers import stored

pytestmark = pytest.mark.usefixtures("isolated")
CATCH_ALL = "d2876433-8da4-4e4a-9ea6-a5a72e6a96bf"  # Shapees' (its PROVENANCE.md)


def test_excluded_rows_are_counted_not_stored(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", EVENTS + "u1,Page,p2,bad-time\n")
    store = tmp_path / "s.duckdb"
    lines = ok("ingest", events, "--preset", "segment", "--store", store,
               "--exclude-customer", " u3 ", "--exclude-customer", "u9")
    assert lines[0] == "read 6 rows from 1 file(s): 3 valid, 1 rejected, 2 excluded"
    assert "  excluded          2  customer 'u3' (exclude_customers)" in lines
    assert "  excluded customers with no row in this load: 'u9'" in lines
    assert {e["customer_id"] for e in stored(store)} == {"u1", "u2"}


def test_a_mapping_lists_them_and_the_option_adds(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns: {customer_id: user_id, event_id: event_id, ts: ts, "
                       "event_type: event_type}\n"
                       "event_types: {Page: page_view, Order Completed: purchase}\n"
                       "exclude_customers: [u1]\n", encoding="utf-8")
    store = tmp_path / "s.duckdb"
    lines = ok("ingest", events, "--mapping", mapping, "--store", store,
               "--exclude-customer", "u2")
    assert lines[0] == "read 5 rows from 1 file(s): 2 valid, 0 rejected, 3 excluded"
    assert {e["customer_id"] for e in stored(store)} == {"u3"}


@pytest.mark.parametrize(("listed", "said"), [
    ("exclude_customers: u1\n", "line 3: exclude_customers: give a list of customer ids"),
    ("exclude_customers: [u1, '  ']\n",
     "line 3: exclude_customers[1]: '  ' is not a customer id (give the id as text)"),
    ("exclude_customers: [u1, 7]\n", "exclude_customers[1]: 7 is not a customer id"),
])
def test_a_bad_list_is_refused_at_its_line(tmp_path: Path, listed: str, said: str) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns: {customer_id: user_id, ts: ts, event_type: event_type}\n"
                       "constants: {channel: web}\n" + listed, encoding="utf-8")
    store = tmp_path / "s.duckdb"
    message = fails("ingest", write(tmp_path / "e.csv", EVENTS), "--mapping", mapping,
                    "--store", store)
    assert said in message
    assert not store.exists()


def test_an_empty_id_on_the_command_line_is_refused(tmp_path: Path) -> None:
    message = fails("ingest", write(tmp_path / "e.csv", EVENTS), "--preset", "segment",
                    "--store", tmp_path / "s.duckdb", "--exclude-customer", " ")
    assert "--exclude-customer: ' ' is not a customer id" in message


@pytest.mark.skipif(not SEGMENT_EVENTS.exists(), reason="../shared/data is not here")
def test_shapees_without_its_catch_all_user(tmp_path: Path) -> None:
    with gzip.open(SEGMENT_EVENTS, "rt", encoding="utf-8") as fh:
        rows = fh.read().splitlines()[1:]
    theirs = sum(1 for r in rows if r.startswith(CATCH_ALL + ","))
    store = tmp_path / "s.duckdb"
    lines = ok("ingest", SEGMENT_EVENTS, "--preset", "segment", "--store", store,
               "--exclude-customer", CATCH_ALL, "--unknown-events", "keep")
    assert theirs == 9116  # PROVENANCE.md: 9,116 of the 16,008 events
    assert lines[0].endswith(f", {theirs:,} excluded")
    assert f"  excluded {theirs:>10,}  customer '{CATCH_ALL}' (exclude_customers)" in lines
    assert CATCH_ALL not in {e["customer_id"] for e in stored(store)}


def test_the_ingest_log_keeps_the_details_and_exclusions_a_load_used(tmp_path: Path) -> None:
    """`journey summary` lists what each load used besides its file, so a store can be
    loaded again the same way; a plain load lists nothing more."""
    events, orders = write(tmp_path / "events.csv", EVENTS), write(tmp_path / "o.csv", ORDERS)
    store = tmp_path / "s.duckdb"
    ok("ingest", events, "--preset", "segment", "--store", store)
    ok("ingest", events, "--preset", "segment", "--store", store, "--details", orders,
       "--exclude-customer", "u3")
    lines = ok("summary", "--store", store)
    loads = lines[lines.index("recent loads (newest first):") + 1:]
    assert loads[1:3] == ["    details joined: o.csv", "    excluded by customer id: 2 rows"]
    assert len(loads) == 4 and loads[3].startswith(f"  #1 {events}: read 5")
