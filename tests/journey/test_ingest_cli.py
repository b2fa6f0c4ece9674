"""`journey ingest`: mappings, presets, rejects and their reasons, option errors, demo export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import features.store as store_module
import journey.cli as cli_module
from features.store import EventStore
from journey.cli import app
from tests.journey.cli_helpers import fails, ok, runner
from tests.journey.ingest_helpers import (
    REJECTS_LINE,
    TOUCHPOINTS_MAP,
    read_rejects,
    reject_counts,
    rejects_file,
    stage_table,
    stored,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("isolated")


def test_ingest_with_map_reports_counts_reasons_and_rejects(
    tmp_path: Path, touchpoints: Path
) -> None:
    store = tmp_path / "db" / "events.duckdb"
    lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", store)

    assert lines[0] == "read 6 rows from 1 file(s): 3 valid, 3 rejected"
    assert reject_counts(lines) == {
        "missing customer_id": 1,
        "unparseable timestamp": 1,
        "event_type unknown to the taxonomy": 1,
    }
    assert "stored 3 new events; 0 already stored or repeated (ignored by event_id)" in lines
    assert lines[-1].startswith(f"store {store}: ")
    assert lines[-1].endswith("s)")

    path = rejects_file(lines)
    assert path.parent == store.parent / "rejects"
    assert path.name.startswith("touchpoints.csv.") and path.suffix == ".csv"
    rejects = read_rejects(path)
    assert {
        (r["source"], int(r["line"]), r["field"], r["reason"], r["value"]) for r in rejects
    } == {
        (str(touchpoints), 4, "customer_id", "missing customer_id", ""),
        (str(touchpoints), 5, "ts", "unparseable timestamp", "not-a-date"),
        (str(touchpoints), 6, "event_type", "event_type unknown to the taxonomy", "Webinar"),
    }
    assert len(rejects) == 3

    events = stored(store)
    assert [(e["customer_id"], e["ts"], e["event_type"], e["channel"]) for e in events] == [
        ("u1", "2025-03-01T10:00:00", "page_view", "search"),
        ("u1", "2025-03-02T10:00:00", "purchase", "search"),
        ("u3", "2025-03-04T08:00:00", "review", "app"),
    ]
    assert all(e["event_id"].startswith("d-") for e in events)  # derived from content


def test_ingest_rejects_option_chooses_the_file(tmp_path: Path, touchpoints: Path) -> None:
    target = tmp_path / "out" / "bad-rows.csv"
    lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP,
               "--store", tmp_path / "e.duckdb", "--rejects", target)
    assert rejects_file(lines) == target
    assert [int(r["line"]) for r in read_rejects(target)] == [4, 5, 6]


def test_reingest_stores_nothing_new(tmp_path: Path, touchpoints: Path) -> None:
    store = tmp_path / "events.duckdb"
    first = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", store)
    assert "stored 3 new events; 0 already stored or repeated (ignored by event_id)" in first
    again = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", store)
    assert again[0] == "read 6 rows from 1 file(s): 3 valid, 3 rejected"
    assert "stored 0 new events; 3 already stored or repeated (ignored by event_id)" in again
    assert len(stored(store)) == 3


def test_ingest_purchases_preset(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(
        "customer_id,date,amount,order_id,quantity\n"
        "c1,2025-01-05,19.99,o-1,2\n"
        "c1,20250210,5,o-2,1\n"
        "c2,2025/03/01,42.50,o-3,3\n"
        "c3,2025-03-02,-1,o-4,1\n",
        encoding="utf-8",
    )
    store = tmp_path / "events.duckdb"
    lines = ok("ingest", source, "--preset", "purchases", "--store", store)
    assert lines[0] == "read 4 rows from 1 file(s): 3 valid, 1 rejected"
    assert reject_counts(lines) == {"negative value": 1}
    assert [(int(r["line"]), r["field"], r["value"]) for r in read_rejects(rejects_file(lines))] \
        == [(5, "value", "-1")]

    events = stored(store)
    assert [(e["event_id"], e["customer_id"], e["ts"], e["event_type"], e["channel"], e["value"])
            for e in events] == [
        ("o-1", "c1", "2025-01-05T00:00:00", "purchase", "unknown", 19.99),
        ("o-2", "c1", "2025-02-10T00:00:00", "purchase", "unknown", 5.0),
        ("o-3", "c2", "2025-03-01T00:00:00", "purchase", "unknown", 42.5),
    ]
    assert [json.loads(e["properties"]) for e in events] == [
        {"quantity": "2"}, {"quantity": "1"}, {"quantity": "3"}
    ]


def test_ingest_mapping_file(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "columns:\n"
        "  customer_id: Client\n"
        "  ts: [When, Timestamp]\n"  # the first candidate is absent from the file
        "  event_type: Kind\n"
        "event_types:\n"
        "  Visited: page_view\n"
        "  Bought: purchase\n"
        "constants:\n"
        "  channel: email\n",
        encoding="utf-8",
    )
    source = tmp_path / "export.csv"
    source.write_text(
        "Client,Timestamp,Kind\n"
        "k1,2025-04-01 09:00:00,Visited\n"
        "k1,2025-04-01 09:30:00,Bought\n",
        encoding="utf-8",
    )
    store = tmp_path / "events.duckdb"
    lines = ok("ingest", source, "--mapping", mapping, "--store", store)
    assert lines[0] == "read 2 rows from 1 file(s): 2 valid, 0 rejected"
    assert not any(line.startswith(REJECTS_LINE) for line in lines)
    assert [(e["customer_id"], e["ts"], e["event_type"], e["channel"]) for e in stored(store)] == [
        ("k1", "2025-04-01T09:00:00", "page_view", "email"),
        ("k1", "2025-04-01T09:30:00", "purchase", "email"),
    ]
    assert not (tmp_path / "rejects").exists()  # created on the first reject only


def test_unknown_events_keep_stores_the_unknown_type(tmp_path: Path, touchpoints: Path) -> None:
    store = tmp_path / "events.duckdb"
    lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", store,
               "--unknown-events", "keep")
    assert lines[0] == "read 6 rows from 1 file(s): 4 valid, 2 rejected"
    assert reject_counts(lines) == {"missing customer_id": 1, "unparseable timestamp": 1}
    kept = [(e["customer_id"], e["event_type"]) for e in stored(store) if e["customer_id"] == "u2"]
    assert kept == [("u2", "webinar")]

    # The kept type signals no stage: u2 is counted apart from the stages.
    summary = ok("summary", "--store", store)
    assert summary[0] == "3 customers, 4 events"
    [no_stage] = [line for line in summary if line.startswith("(no stage)")]
    assert no_stage.split() == ["(no", "stage)", "1"]
    assert sum(int(cells[0]) for cells in stage_table(summary).values()) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; presets are ['segment', 'purchases']"),
        (["--preset", "purchases", "--mapping", "m.yaml"],
         "give either --preset or --mapping, not both"),
        (["--map", "customer_id=user,ts"], "--map: expected FIELD=COLUMN, got 'ts'"),
        (["--map", "customer_id=user,ts=when,event_type=what,colour=src"],
         "--map: 'colour' is not an event field"),
        (["--mapping", "missing.yaml"], "mapping file not found: missing.yaml"),
    ],
    ids=["unknown-preset", "preset-and-mapping", "bad-map", "map-unknown-field",
         "missing-mapping-file"],
)
def test_ingest_option_errors(
    tmp_path: Path, touchpoints: Path, extra: list[str], message: str
) -> None:
    err = fails("ingest", touchpoints, "--store", tmp_path / "e.duckdb", *extra)
    assert err.startswith("error: ")
    assert message in err


def test_ingest_unknown_events_must_be_a_known_policy(tmp_path: Path, touchpoints: Path) -> None:
    store = str(tmp_path / "e.duckdb")
    result = runner.invoke(app, ["ingest", str(touchpoints), "--map", TOUCHPOINTS_MAP,
                                 "--store", store, "--unknown-events", "maybe"])
    assert result.exit_code == 2
    flat = " ".join(result.stderr.replace("│", " ").split())  # the error box wraps lines
    assert "'maybe' is not one of 'reject', 'keep'" in flat
    assert not (tmp_path / "e.duckdb").exists()


def test_ingest_missing_file(tmp_path: Path) -> None:
    err = fails("ingest", tmp_path / "nowhere.csv", "--map", TOUCHPOINTS_MAP,
                "--store", tmp_path / "e.duckdb")
    assert f"error: {tmp_path / 'nowhere.csv'}: no such file" in err


def test_ingest_missing_required_column_lists_the_files_columns(
    tmp_path: Path, touchpoints: Path
) -> None:
    err = fails("ingest", touchpoints, "--map", "customer_id=user,ts=when,event_type=kind",
                "--store", tmp_path / "e.duckdb")
    assert f"{touchpoints}: no column for required field 'event_type'" in err
    assert "tried ['kind']" in err
    assert "the file has columns ['user', 'when', 'what', 'src']" in err


def test_demo_crm_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the paths of the Makefile's demo, relative to the repo root
    store = tmp_path / "demo" / "events.duckdb"
    lines = ok("ingest", "examples/crm_export.csv", "--mapping", "examples/crm_mapping.yaml",
               "--store", store)
    assert lines[0] == "read 19 rows from 1 file(s): 13 valid, 6 rejected"
    reasons = {
        "missing customer_id", "unparseable timestamp", "event_type unknown to the taxonomy",
        "negative value", "value is not a number", "wrong number of fields",
    }
    assert reject_counts(lines) == dict.fromkeys(reasons, 1)
    assert "stored 13 new events; 0 already stored or repeated (ignored by event_id)" in lines

    # Which line of the export each reject names (the header is line 1).
    text = (REPO / "examples" / "crm_export.csv").read_text(encoding="utf-8").splitlines()
    raw = {number: text[number - 1] for number in range(1, len(text) + 1)}
    rejects = {int(r["line"]): r for r in read_rejects(rejects_file(lines))}
    assert sorted(rejects) == [13, 14, 15, 16, 17, 19]
    assert {r["source"] for r in rejects.values()} == {"examples/crm_export.csv"}
    assert raw[13].startswith(",") and rejects[13]["reason"] == "missing customer_id"
    assert raw[14].split(",")[1] == "yesterday" == rejects[14]["value"]
    assert rejects[14]["reason"] == "unparseable timestamp"
    assert raw[15].split(",")[2] == "Webinar Attended" == rejects[15]["value"]
    assert rejects[15]["reason"] == "event_type unknown to the taxonomy"
    assert raw[16].split(",")[4] == "-20.00" == rejects[16]["value"]
    assert rejects[16]["reason"] == "negative value"
    assert raw[17].split(",")[4] == "twelve" == rejects[17]["value"]
    assert rejects[17]["reason"] == "value is not a number"
    assert len(raw[19].split(",")) == 5 and raw[19] == rejects[19]["value"]
    assert rejects[19]["reason"] == "wrong number of fields: expected 6, got 5"

    # Line 20 repeats line 6 exactly; with no event id both are kept (two real purchases).
    assert raw[20] == raw[6]
    purchases = [e for e in stored(store) if e["event_type"] == "purchase"]
    assert [(e["customer_id"], e["value"]) for e in purchases] == [("ACME-001", 59.9)] * 2
    assert json.loads(purchases[0]["properties"]) == {"Campaign": "spring_sale"}


def test_ingest_uses_the_store_memory_setting(
    tmp_path: Path, touchpoints: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits: list[str] = []

    class Spy(EventStore):
        def __init__(self, path: str | Path, read_only: bool = False,
                     memory_limit: str | None = None) -> None:
            super().__init__(path, read_only, memory_limit)
            row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
            limits.append(str(row[0]) if row else "")

    monkeypatch.setattr(store_module, "EventStore", Spy)
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "256MB")
    lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", tmp_path / "m.duckdb")
    assert "read 6 rows from 1 file(s): 3 valid, 3 rejected" in lines
    assert limits == ["244.1 MiB"]  # 256e6 bytes


@pytest.mark.parametrize(("name", "value", "message"), [
    ("JOURNEY_STORE_MEMORY", "lots", "is not a size such as 4GB"),
    ("JOURNEY_STORE_MEMORY", "1MB", "is below 128 MB"),
    ("JOURNEY_PROMOTE_MARGIN", "abc", "valid number"),
])
def test_a_bad_setting_is_named_without_a_traceback(
    tmp_path: Path, touchpoints: Path, monkeypatch: pytest.MonkeyPatch,
    name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    err = fails("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", tmp_path / "b.duckdb")
    assert f"setting {name}={value!r} (environment or .env): " in err and message in err
    assert "Value error" not in err
    assert not (tmp_path / "b.duckdb").exists()


def test_a_long_ingest_reports_progress_on_stderr(
    tmp_path: Path, touchpoints: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "PROGRESS_SECONDS", 0.0)  # every load counts as long
    result = runner.invoke(app, ["ingest", str(touchpoints), "--map", TOUCHPOINTS_MAP,
                                 "--store", str(tmp_path / "p.duckdb")])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("read 6 rows (1 of 1 file(s)), 3 rejected, ")
    assert result.stderr.splitlines()[-1] == "storing 3 valid rows ..."
    assert "read 6 rows from 1 file(s): 3 valid, 3 rejected" in result.stdout


def test_a_short_ingest_prints_no_progress(tmp_path: Path, touchpoints: Path) -> None:
    result = runner.invoke(app, ["ingest", str(touchpoints), "--map", TOUCHPOINTS_MAP,
                                 "--store", str(tmp_path / "q.duckdb")])
    assert result.exit_code == 0 and result.stderr == ""


def test_unknown_event_types_are_named_with_the_ways_to_load_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "clicks.csv"
    rows = [("page_view", 2), ("Pop-up Viewed", 3), ("Webinar", 2), ("Quiz", 1)]
    lines = [f"c{i},2025-01-0{1 + i % 5}T10:00:00Z,{t}" for t, n in rows for i in range(n)]
    src.write_text("customer_id,ts,event_type\n" + "\n".join(lines) + "\n", encoding="utf-8")
    out = ok("ingest", src, "--store", tmp_path / "u.duckdb")
    assert "read 8 rows from 1 file(s): 2 valid, 6 rejected" in out
    assert "  unknown event types: 'Pop-up Viewed' (3), 'Webinar' (2), 'Quiz' (1)" in out
    assert any("(--unknown-events keep)" in line for line in out)

    import features.loaders as loaders  # a column of garbage: names are counted up to a cap
    monkeypatch.setattr(loaders, "MAX_UNKNOWN_NAMES", 2)
    out = ok("ingest", src, "--store", tmp_path / "v.duckdb")
    text = " ".join(line.strip() for line in out)  # long lines wrap
    assert ("unknown event types: 'Pop-up Viewed' (3), 'Webinar' (2); 1 more rows of types "
            "not counted by name") in text
    kept = ok("ingest", src, "--store", tmp_path / "w.duckdb", "--unknown-events", "keep")
    assert not any("unknown event types" in line for line in kept)
