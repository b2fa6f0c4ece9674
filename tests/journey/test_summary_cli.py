"""`journey summary`: the stage table, --as-of, recent loads, and the default event store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journey.cli_helpers import fails, ok
from tests.journey.ingest_helpers import STAGES, TOUCHPOINTS_MAP, rejects_file, stage_table

pytestmark = pytest.mark.usefixtures("isolated")


def test_summary_on_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "events.duckdb"
    err = fails("summary", "--store", missing)
    assert f"error: event store not found: {missing}" in err
    assert not missing.parent.exists()


@pytest.fixture
def journeys(tmp_path: Path) -> Path:
    """Four customers whose furthest stages are awareness, decision, purchase and advocacy."""
    path = tmp_path / "journeys.csv"
    path.write_text(
        "customer_id,ts,event_type,channel\n"
        "a,2025-05-01T00:00:00Z,ad_impression,display\n"
        "b,2025-05-01T00:00:00Z,page_view,search\n"
        "b,2025-05-03T00:00:00Z,add_to_cart,search\n"
        "c,2025-05-01T00:00:00Z,ad_click,social\n"
        "c,2025-05-02T00:00:00Z,page_view,social\n"
        "c,2025-05-03T00:00:00Z,checkout,social\n"
        "c,2025-05-05T00:00:00Z,purchase,social\n"
        "d,2025-05-01T00:00:00Z,review,app\n"
        ",2025-05-01T00:00:00Z,page_view,app\n",  # line 10: rejected
        encoding="utf-8",
    )
    return path


def test_summary_stage_table_and_recent_loads(tmp_path: Path, journeys: Path) -> None:
    store = tmp_path / "events.duckdb"
    ingest = ok("ingest", journeys, "--store", store)
    rejects = rejects_file(ingest)

    lines = ok("summary", "--store", store)
    assert lines[0] == "4 customers, 8 events"
    assert lines[2].split() == ["stage", "at", "stage", "reached", "conv.", "from", "prev.",
                                "median", "days", "to", "reach"]
    table = stage_table(lines)
    assert list(table) == STAGES
    assert table == {
        "awareness": ["1", "4", "0.0"],
        "consideration": ["0", "3", "75.0%", "0.0"],
        "decision": ["1", "3", "100.0%", "2.0"],
        "purchase": ["1", "2", "66.7%", "2.0"],
        "retention": ["0", "1", "50.0%", "0.0"],
        "advocacy": ["1", "1", "100.0%", "0.0"],
    }
    assert not any(line.startswith("(no stage)") for line in lines)

    start = lines.index("recent loads (newest first):")
    assert lines[start + 1:] == [
        f"  #1 {journeys}: read 9, stored 8 new, 0 duplicates, 1 rejected "
        f'{{"missing customer_id": 1}} -> {rejects}'
    ]


def test_summary_as_of_and_load_history(tmp_path: Path, journeys: Path) -> None:
    store = tmp_path / "events.duckdb"
    ok("ingest", journeys, "--store", store)
    ok("ingest", journeys, "--store", store)

    # Before May 4th, c has not purchased yet.
    lines = ok("summary", "--store", store, "--as-of", "2025-05-04")
    assert lines[0] == "4 customers, 7 events before 2025-05-04T00:00:00+00:00"
    assert [table[:2] for table in stage_table(lines).values()] == [
        ["1", "4"], ["0", "3"], ["2", "3"], ["0", "1"], ["0", "1"], ["1", "1"]
    ]

    loads = ok("summary", "--store", store)
    start = loads.index("recent loads (newest first):")
    assert len(loads[start + 1:]) == 2
    assert "stored 0 new, 8 duplicates, 1 rejected" in loads[start + 1]
    assert "stored 8 new, 0 duplicates, 1 rejected" in loads[start + 2]

    only_one = ok("summary", "--store", store, "--loads", "1")
    assert len(only_one[only_one.index("recent loads (newest first):") + 1:]) == 1
    none = ok("summary", "--store", store, "--loads", "0")
    assert "recent loads (newest first):" not in none


def test_journey_store_env_is_the_default_store(
    tmp_path: Path, touchpoints: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_store = tmp_path / "from-env" / "events.duckdb"
    monkeypatch.setenv("JOURNEY_STORE", str(env_store))
    lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP)
    assert lines[-1].startswith(f"store {env_store}: ")
    assert env_store.is_file()
    assert rejects_file(lines).parent == env_store.parent / "rejects"
    assert not (tmp_path / "var").exists()

    summary = ok("summary")
    assert summary[0] == "2 customers, 3 events"
    # --store still wins over the environment.
    assert fails("summary", "--store", tmp_path / "other.duckdb").startswith(
        "error: event store not found"
    )


def test_default_store_is_under_var_in_the_working_directory(
    tmp_path: Path, touchpoints: Path
) -> None:
    lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP)
    assert lines[-1].startswith(f"store {Path('var') / 'events.duckdb'}: ")
    assert (tmp_path / "var" / "events.duckdb").is_file()
    assert len(list((tmp_path / "var" / "rejects").iterdir())) == 1
    assert ok("summary")[0] == "2 customers, 3 events"


def test_summary_counts_reused_event_ids_apart(tmp_path: Path) -> None:
    """A row whose event_id a different event already holds is data lost, not a re-send."""
    store = tmp_path / "events.duckdb"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("event_id,customer_id,ts,event_type\n"
                     "e1,a,2025-05-01T00:00:00Z,page_view\n"
                     "e2,a,2025-05-02T00:00:00Z,purchase\n", encoding="utf-8")
    second.write_text("event_id,customer_id,ts,event_type\n"
                      "e1,a,2025-05-01T00:00:00Z,page_view\n"  # the same event again
                      "e2,b,2025-05-03T00:00:00Z,page_view\n", encoding="utf-8")  # another one
    ok("ingest", first, "--store", store)
    ok("ingest", second, "--store", store)
    loads = ok("summary", "--store", store)
    start = loads.index("recent loads (newest first):")
    assert "stored 0 new, 2 duplicates (1 conflicting), 0 rejected" in loads[start + 1]
    assert "stored 2 new, 0 duplicates, 0 rejected" in loads[start + 2]
