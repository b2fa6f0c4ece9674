"""The `journey` command line, end to end through typer's CliRunner (in process)."""

from __future__ import annotations

import csv
import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.store import EventStore
from journey import __version__
from journey.cli import app
from tests.journey.cli_helpers import fails, ok, out, run, runner

REPO = Path(__file__).resolve().parents[2]
STAGES = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]
REJECTS_LINE = "rejected rows (file, line, field, reason, value): "




def reject_counts(lines: list[str]) -> dict[str, int]:
    """The per-reason lines of an ingest report: reason -> count."""
    counts = {}
    for line in lines:
        m = re.fullmatch(r"  rejected +([\d,]+)  (.+)", line)
        if m:
            counts[m[2]] = int(m[1].replace(",", ""))
    return counts


def rejects_file(lines: list[str]) -> Path:
    [line] = [x for x in lines if x.startswith(REJECTS_LINE)]
    return Path(line.removeprefix(REJECTS_LINE))


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["source", "line", "field", "reason", "value"]
        return list(reader)


def stored(store: Path) -> list[dict[str, Any]]:
    """Every stored event (ts as ISO text), ordered by customer and time."""
    with EventStore(store, read_only=True) as es:
        cur = es.con.execute(
            "SELECT event_id, customer_id, strftime(ts, '%Y-%m-%dT%H:%M:%S') AS ts, event_type, "
            "channel, value, action, properties FROM events ORDER BY customer_id, ts, event_type"
        )
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every command from tmp_path (the default var/ and .env) with no JOURNEY_* settings."""
    for name in ("JOURNEY_STORE", "JOURNEY_HOME", "JOURNEY_TAXONOMY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- help and version -----------------------------------------------------------------------------
COMMAND_OPTIONS = {
    "simulate": ["--out", "--customers", "--days", "--seed", "--params", "--workers"],
    "oracle": ["--sim", "--as-of", "--horizon", "--out", "--replicas", "--effects", "--sample"],
    "ingest": ["--map", "--mapping", "--preset", "--store", "--taxonomy", "--unknown-events",
               "--rejects"],
    "summary": ["--store", "--taxonomy", "--as-of", "--loads"],
}


def test_app_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    text = out(result)
    assert "Usage: journey [OPTIONS] COMMAND [ARGS]" in text
    assert "--version" in text
    for command in COMMAND_OPTIONS:
        assert re.search(rf"^\W*{command}\s+\w", text, re.MULTILINE), command


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_command_help_lists_its_options(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    text = out(result)
    assert f"Usage: journey {command} [OPTIONS]" in text
    for option in COMMAND_OPTIONS[command]:
        assert re.search(rf"{re.escape(option)}\b", text), (command, option)


def test_version_needs_no_command() -> None:
    result = run("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{__version__}\n"
    assert __version__ == "0.1.0"


# -- ingest ---------------------------------------------------------------------------------------
@pytest.fixture
def touchpoints(tmp_path: Path) -> Path:
    """Six rows in a foreign shape: three valid, three rejected for three different reasons."""
    path = tmp_path / "touchpoints.csv"
    path.write_text(
        "user,when,what,src\n"
        "u1,2025-03-01T10:00:00Z,Page View,Search\n"    # line 2
        "u1,2025-03-02T10:00:00Z,purchase,search\n"     # line 3
        ",2025-03-02T11:00:00Z,page_view,direct\n"      # line 4: no customer
        "u2,not-a-date,page_view,direct\n"              # line 5: bad timestamp
        "u2,2025-03-03T10:00:00Z,Webinar,direct\n"      # line 6: unknown event type
        "u3,2025-03-04T10:00:00+02:00,review,app\n",    # line 7
        encoding="utf-8",
    )
    return path


TOUCHPOINTS_MAP = "customer_id=user,ts=when,event_type=what,channel=src"


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


def test_summary_on_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "events.duckdb"
    err = fails("summary", "--store", missing)
    assert f"error: event store not found: {missing}" in err
    assert not missing.parent.exists()


# -- summary --------------------------------------------------------------------------------------
def stage_table(lines: list[str]) -> dict[str, list[str]]:
    """Stage rows of the summary: stage -> the remaining cells."""
    table = {}
    for line in lines:
        cells = line.split()
        if cells and cells[0] in STAGES:
            table[cells[0]] = cells[1:]
    return table


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
        f"  {journeys}: read 9, stored 8 new, 0 duplicates, 1 rejected "
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


# -- the demo CRM export --------------------------------------------------------------------------
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


# -- simulate and oracle --------------------------------------------------------------------------
SIM_ARGS = ("--customers", "300", "--days", "60", "--seed", "1", "--workers", "1")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "sim"
    result = run("simulate", *SIM_ARGS, "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    return out


def manifest(sim: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((sim / "simulation.json").read_text())
    return data


def test_simulate_writes_parquet_and_manifest(sim_dir: Path) -> None:
    for part in ("events", "customers", "truth"):
        assert [p.name for p in (sim_dir / part).iterdir()] == ["part-00000.parquet"], part
    m = manifest(sim_dir)
    assert (m["customers"], m["days"], m["seed"]) == (300, 60, 1)
    events = pq.read_table(sim_dir / "events")
    assert m["events"] == events.num_rows > 0
    assert events.column_names == ["event_id", "customer_id", "ts", "event_type", "channel",
                                   "value", "action", "properties"]
    assert pq.read_table(sim_dir / "customers").num_rows == 300
    assert pq.read_table(sim_dir / "truth").num_rows == 300
    assert pc.count_distinct(events["customer_id"]).as_py() <= 300
    start = date.fromisoformat(m["start"])
    days = pc.min_max(events["ts"]).as_py()
    assert start <= days["min"].date() and days["max"].date() < start + timedelta(days=60)


def test_simulate_is_deterministic_by_seed(tmp_path: Path, sim_dir: Path) -> None:
    again = tmp_path / "again"
    lines = ok("simulate", *SIM_ARGS, "--out", again)
    m = manifest(sim_dir)
    [line] = lines
    assert line.startswith(
        f"simulated 300 customers over 60 days from {m['start']}: {m['events']:,} events in ")
    assert line.endswith(f"s -> {again}")
    for part in ("events", "customers", "truth"):
        assert pq.read_table(again / part).equals(pq.read_table(sim_dir / part)), part
    events = "events/part-00000.parquet"
    assert (again / events).read_bytes() == (sim_dir / events).read_bytes()

    other = tmp_path / "other"
    ok("simulate", "--customers", "300", "--days", "60", "--seed", "2", "--workers", "1",
       "--out", other)
    assert not pq.read_table(other / "events").equals(pq.read_table(sim_dir / "events"))


def test_oracle_probabilities_for_customers_who_arrived(tmp_path: Path, sim_dir: Path) -> None:
    start = date.fromisoformat(manifest(sim_dir)["start"])
    as_of = (start + timedelta(days=40)).isoformat()
    target = tmp_path / "x.parquet"
    lines = ok("oracle", "--sim", sim_dir, "--as-of", as_of, "--horizon", "14",
               "--replicas", "20", "--out", target)

    frame = pq.read_table(target).to_pandas()
    truth = pq.read_table(sim_dir / "truth").to_pandas()
    arrived = set(truth.loc[truth.arrival_day < 40, "customer_id"])
    assert 0 < len(arrived) < 300
    assert set(frame.customer_id) == arrived and frame.customer_id.is_unique
    assert frame.p_convert.notna().all()
    assert frame.p_convert.between(0, 1).all()
    assert frame.p_inactive.between(0, 1).all()
    # 20 replicas: every probability is a multiple of 1/20.
    assert ((frame.p_convert * 20).round(9) % 1 == 0).all()
    assert lines == [
        f"oracle for {len(arrived):,} customers at {as_of} + 14d: "
        f"mean P(convert) {frame.p_convert.mean():.3f}, "
        f"mean P(no activity) {frame.p_inactive.mean():.3f} -> {target}"
    ]


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("{start}T12:00:00", "the oracle works on whole days; give a date (midnight UTC)"),
        ("{start}", "outside the simulated days"),
        ("{day61}", "outside the simulated days"),
        ("next tuesday", "'next tuesday' is not an ISO date or timestamp"),
    ],
    ids=["not-midnight", "first-day", "after-the-end", "not-a-date"],
)
def test_oracle_bad_cutoff(tmp_path: Path, sim_dir: Path, as_of: str, message: str) -> None:
    start = date.fromisoformat(manifest(sim_dir)["start"])
    when = as_of.format(start=start, day61=start + timedelta(days=61))
    err = fails("oracle", "--sim", sim_dir, "--as-of", when, "--horizon", "14",
                "--replicas", "1", "--out", tmp_path / "x.parquet")
    assert err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "x.parquet").exists()


def test_oracle_on_a_directory_that_is_no_simulation(tmp_path: Path) -> None:
    err = fails("oracle", "--sim", tmp_path, "--as-of", "2025-02-01", "--horizon", "14",
                "--out", tmp_path / "x.parquet")
    assert f"error: {tmp_path}: not a simulation output (no simulation.json)" in err
