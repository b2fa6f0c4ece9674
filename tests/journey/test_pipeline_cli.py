"""`journey features`, `labels` and `attributes` end to end through typer's CliRunner, on a small
simulated population (simulate -> ingest -> attributes -> features / labels snapshots)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from features.labels import INACTIVE
from features.layout import CATEGORICAL, layout
from features.spec import load_spec
from features.taxonomy import load_taxonomy
from tests.journey.cli_helpers import fails, ok, run

LABEL_COLUMNS = ["customer_id", "next_stage", "converted", "churned_inactive",
                 "churned_no_purchase", "churn_days", "churn_observed"]
STAGES = {*load_taxonomy().stages, INACTIVE}  # next-stage label values






def clear_env(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("JOURNEY_"):
            mp.delenv(name)


@dataclass(frozen=True)
class World:
    root: Path
    start: date
    as_of: str
    features_out: list[str]
    labels_out: list[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Simulate 400 customers over 90 days, ingest, load attributes, then make snapshots as of
    day 60 (features, and labels for 14 days) into ./snaps; the store is the default one."""
    root = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        clear_env(mp)
        mp.chdir(root)
        ok("simulate", "--out", "sim", "--customers", "400", "--days", "90", "--workers", "1",
           "--seed", "11")
        start = date.fromisoformat(json.loads((root / "sim" / "simulation.json").read_text())
                                   ["start"])
        as_of = (start + timedelta(days=60)).isoformat()
        ok("ingest", "sim/events")
        attrs = ok("attributes", "sim/customers")
        assert attrs == ["attributes ['region', 'device', 'acquisition_channel', 'first_seen'] "
                         f"of 400 customers -> {Path('var') / 'events.duckdb'}",
                         "  400 of them with events in the store, 0 without"]
        feats = ok("features", "--as-of", as_of, "--out", "snaps")
        labs = ok("labels", "--as-of", as_of, "--horizon", "14", "--out", "snaps")
        yield World(root, start, as_of, feats, labs)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs from its own empty directory with no JOURNEY_* settings."""
    clear_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cutoff(world: World) -> datetime:
    return datetime.fromisoformat(world.as_of).replace(tzinfo=UTC)


def snap_dir(world: World, kind: str, leaf: str) -> Path:
    return world.root / "snaps" / kind / load_spec().hash / leaf


# -- features ------------------------------------------------------------------------------------
def test_features_snapshot(world: World) -> None:
    path = snap_dir(world, "features", f"{world.as_of}T00-00-00Z")
    assert sorted(p.name for p in path.iterdir()) == ["data.parquet", "manifest.json"]
    table = pq.read_table(path / "data.parquet")
    spec = load_spec()
    names = ["customer_id", *layout(spec).names, *CATEGORICAL,
             *(f"attr_{a}" for a in spec.attributes)]
    assert table.column_names == names
    [line] = world.features_out
    m = re.fullmatch(r"(\d+) customers x (\d+) features as of (\S+) \(definition (\w+), duckdb, "
                     r"[\d.]+s\) -> (.+)", line)
    assert m, line
    assert int(m[1]) == table.num_rows > 0
    assert int(m[2]) == table.num_columns - 1
    assert m[3] == cutoff(world).isoformat()
    assert m[4] == spec.hash
    assert Path(m[5]) == Path("snaps") / "features" / spec.hash / path.name
    ids = table["customer_id"].to_pylist()
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "features"
    assert manifest["definition_hash"] == spec.hash
    assert manifest["definition"] == json.loads(json.dumps(spec.definition()))
    assert manifest["as_of"] == cutoff(world).isoformat()
    assert manifest["horizon_days"] is None
    assert manifest["rows"] == table.num_rows
    assert manifest["columns"] == names
    assert (manifest["engine"], manifest["store"]) == ("duckdb", str(Path("var/events.duckdb")))


def test_population_is_everyone_seen_before_t(world: World) -> None:
    events = pq.read_table(world.root / "sim" / "events", columns=["customer_id", "ts"])
    seen = {r["customer_id"] for r in events.to_pylist() if r["ts"] < cutoff(world)}
    path = snap_dir(world, "features", f"{world.as_of}T00-00-00Z")
    feats = pq.read_table(path / "data.parquet", columns=["customer_id", "tenure_days"])
    assert set(feats["customer_id"].to_pylist()) == seen
    assert 0 < len(seen) < 400  # some customers arrive after day 60
    assert max(feats["tenure_days"].to_pylist()) <= 60.0


def test_attributes_are_joined(world: World) -> None:
    customers = pq.read_table(world.root / "sim" / "customers").to_pylist()
    region = {c["customer_id"]: c["region"] for c in customers}
    device = {c["customer_id"]: c["device"] for c in customers}
    path = snap_dir(world, "features", f"{world.as_of}T00-00-00Z")
    rows = pq.read_table(path / "data.parquet",
                         columns=["customer_id", "attr_region", "attr_device"]).to_pylist()
    assert all(r["attr_region"] is not None for r in rows)
    assert all(r["attr_region"] == region[r["customer_id"]] for r in rows)
    assert all(r["attr_device"] == device[r["customer_id"]] for r in rows)


# -- labels --------------------------------------------------------------------------------------
def test_labels_snapshot(world: World) -> None:
    spec = load_spec()
    path = snap_dir(world, "labels", f"{world.as_of}T00-00-00Z_h14d_g30d")
    table = pq.read_table(path / "data.parquet")
    assert table.column_names == LABEL_COLUMNS
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "labels"
    assert manifest["definition_hash"] == spec.hash
    assert (manifest["horizon_days"], manifest["churn_gap_days"]) == (14, 30)
    assert manifest["rows"] == table.num_rows
    assert manifest["as_of"] == cutoff(world).isoformat()
    first, second = world.labels_out  # no warning: day 74 is inside the 90 simulated days
    assert first == (f"{table.num_rows:,} customers labelled for [{cutoff(world).isoformat()}, "
                     f"+14d) -> {Path('snaps') / 'labels' / spec.hash / path.name}")
    counts = dict(re.findall(r"(\w+) ([\d,]+)", second.removeprefix("next stage: ")))
    stages = table["next_stage"].to_pylist()
    assert {k: int(v.replace(",", "")) for k, v in counts.items()} == {
        s: stages.count(s) for s in set(stages)}
    assert set(stages) <= STAGES
    rows = table.to_pylist()
    assert all(r["churned_inactive"] == (r["next_stage"] == "inactive") for r in rows)
    assert all(0.0 <= r["churn_days"] <= 14.0 for r in rows)
    assert all(r["churn_observed"] or r["churn_days"] == 14.0 for r in rows)
    assert all(not r["converted"] or r["next_stage"] != "inactive" for r in rows)


def test_features_and_labels_have_the_same_rows(world: World) -> None:
    feats = pq.read_table(snap_dir(world, "features", f"{world.as_of}T00-00-00Z")
                          / "data.parquet", columns=["customer_id"])
    labs = pq.read_table(snap_dir(world, "labels", f"{world.as_of}T00-00-00Z_h14d_g30d")
                         / "data.parquet", columns=["customer_id"])
    assert feats["customer_id"].to_pylist() == labs["customer_id"].to_pylist()


def test_labels_warn_when_the_horizon_is_not_observed(world: World) -> None:
    lines = ok("labels", "--as-of", world.as_of, "--horizon", "60", "--out", "snaps2",
               "--store", world.root / "var" / "events.duckdb")
    assert len(lines) == 3
    assert lines[2].startswith("warning: the store's events end at ")
    assert "the horizon is not fully observed" in lines[2]
    assert (Path("snaps2") / "labels" / load_spec().hash / f"{world.as_of}T00-00-00Z_h60d_g30d"
            / "manifest.json").is_file()


def test_snapshot_root_from_the_environment(world: World,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_SNAPSHOTS", "from_env")
    monkeypatch.setenv("JOURNEY_STORE", str(world.root / "var" / "events.duckdb"))
    ok("features", "--as-of", f"{world.as_of}T12:00:00+02:00")
    leaf = f"{world.as_of}T10-00-00Z"  # stamped in UTC
    assert (Path("from_env") / "features" / load_spec().hash / leaf / "data.parquet").is_file()


def test_spec_names_the_store_never_held_are_warned_about(world: World, tmp_path: Path) -> None:
    """A misspelt attribute makes a column that is always empty: said."""
    assert len(world.features_out) == 1  # the shipped spec: no warning
    text = (resources.files("features.config") / "features.yaml").read_text("utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace("device", "devise"))
    lines = ok("features", "--as-of", world.as_of, "--spec", spec, "--out", "s",
               "--store", world.root / "var" / "events.duckdb")
    assert lines[1:] == ["warning: the feature spec's attributes devise have no value in the "
                         "store (it holds: acquisition_channel, device, first_seen, region; "
                         "`journey attributes` loads them): their attr_ columns are empty"]


# -- errors --------------------------------------------------------------------------------------
def test_bad_as_of(world: World) -> None:
    store = world.root / "var" / "events.duckdb"
    for command in (["features"], ["labels", "--horizon", "14"]):
        message = fails(*command, "--as-of", "next tuesday", "--store", store, "--out", "s")
        assert message == ("error: 'next tuesday' is not an ISO date or timestamp "
                           "(e.g. 2025-06-01)\n")
    assert not Path("s").exists()


def test_store_missing(world: World) -> None:
    for command in (["features"], ["labels", "--horizon", "14"]):
        message = fails(*command, "--as-of", world.as_of, "--out", "s")
        hint = "; load events into it with `journey ingest`\n"
        assert message == f"error: event store not found: {Path('var') / 'events.duckdb'}{hint}"
        message = fails(*command, "--as-of", world.as_of, "--store", "nowhere.duckdb")
        assert message == f"error: event store not found: nowhere.duckdb{hint}"
    assert not Path("s").exists()
    assert not Path("var").exists()  # a read-only command creates no store


def test_bad_spec_file(world: World, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("windows_days: [30, 7]\n", encoding="utf-8")
    message = fails("features", "--as-of", world.as_of, "--spec", spec,
                    "--store", world.root / "var" / "events.duckdb")
    assert message.startswith(f"error: {spec}: line 1: windows_days[1]: windows must increase")


def test_a_spark_failure_is_one_line_and_a_hint(world: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the JVM's stack trace of some hundred lines: its first line and what to check."""
    pytest.importorskip("pyspark")
    from pyspark.errors import PySparkRuntimeError

    from features import spark

    def fail(*args: object, **kwargs: object) -> None:
        raise PySparkRuntimeError(errorClass="JAVA_GATEWAY_EXITED", messageParameters={})

    monkeypatch.setattr(spark, "spark_features_from_store", fail)
    message = fails("features", "--as-of", world.as_of, "--engine", "spark", "--out", "s",
                    "--store", world.root / "var" / "events.duckdb")
    lines = message.splitlines()
    assert lines[0].startswith("error: the Spark job failed: [JAVA_GATEWAY_EXITED] ")
    assert len(lines) == 2 and "Java 17" in lines[1]


def test_other_errors_on_spark_are_not_disguised(world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from features import spark

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(spark, "spark_features_from_store", fail)
    result = run("features", "--as-of", world.as_of, "--engine", "spark", "--out", "s",
                 "--store", world.root / "var" / "events.duckdb")
    assert isinstance(result.exception, RuntimeError)


def test_attributes_errors(tmp_path: Path) -> None:
    (tmp_path / "attrs.csv").write_text("id,region\nC1,east\n", encoding="utf-8")
    message = fails("attributes", "attrs.csv", "--store", "s.duckdb")
    assert message == ("error: attributes: no 'customer_id' column; columns are "
                       "['id', 'region']\n")
    lines = ok("attributes", "attrs.csv", "--id-column", "id", "--store", "s.duckdb")
    assert lines == ["attributes ['region'] of 1 customers -> s.duckdb",
                     "  0 of them with events in the store, 1 without (first: 'C1')",
                     "warning: no customer of attrs.csv has events in the store; ids match only "
                     "as spelled ('00001' is not '1'): load the events first, or check the ids"]
    (tmp_path / "ids.csv").write_text("customer_id\nC1\n", encoding="utf-8")
    message = fails("attributes", "ids.csv", "--store", "s.duckdb")
    assert message == "error: attributes: the file has no attribute columns besides the id\n"
    message = fails("attributes", "missing.csv", "--store", "s.duckdb")
    assert message == "error: missing.csv: no such file or directory\n"
    (tmp_path / "attrs.xlsx").write_text("", encoding="utf-8")
    message = fails("attributes", "attrs.xlsx", "--store", "s.duckdb")
    assert message.startswith("error: attrs.xlsx: unknown file type; expected one of")


def test_attributes_keep_leading_zeros_and_report_what_was_not_loaded(tmp_path: Path) -> None:
    """Ids are text as ingest reads them: a CSV of zero-padded ids joins the events' ids."""
    store = tmp_path / "events.duckdb"
    (tmp_path / "events.csv").write_text(
        "event_id,customer_id,ts,event_type\ne1,00001,2024-01-01,page_view\n"
        "e2,00002,2024-01-02,purchase\n", encoding="utf-8")
    ok("ingest", "events.csv", "--store", store)
    (tmp_path / "attrs.csv").write_text(
        "customer_id,region\n00001,north\n00002,south\n00002,east\n,west\n99999,none\n",
        encoding="utf-8")
    lines = ok("attributes", "attrs.csv", "--store", store)
    assert lines == [
        f"attributes ['region'] of 3 customers -> {store}",
        "  2 of them with events in the store, 1 without (first: '99999')",
        "  1 row replaced by a later row of the same customer (the last row wins)",
        "warning: 1 row without a customer id ('customer_id') not loaded: line 5",
    ]
    ok("features", "--as-of", "2024-02-01", "--store", store, "--out", "snaps")
    [data] = Path("snaps").glob("features/*/*/data.parquet")
    rows = pq.read_table(data, columns=["customer_id", "attr_region"]).to_pylist()
    assert rows == [{"customer_id": "00001", "attr_region": "north"},
                    {"customer_id": "00002", "attr_region": "east"}]


# -- where snapshots go, and cutoffs outside the data ---------------------------------------------
def test_an_output_folder_that_cannot_be_written_fails_before_computing(world: World) -> None:
    store = world.root / "var" / "events.duckdb"
    Path("taken.csv").write_text("a,b\n", encoding="utf-8")
    for command in (["features"], ["labels", "--horizon", "14"]):
        message = fails(*command, "--as-of", world.as_of, "--store", store, "--out", "taken.csv")
        assert message == ("error: snapshot folder taken.csv (--out or JOURNEY_SNAPSHOTS): "
                           "taken.csv is a file, not a folder\n")
        message = fails(*command, "--as-of", world.as_of, "--store", store,
                        "--out", "taken.csv/deeper")
        assert "taken.csv is a file, not a folder" in message
    message = fails("features", "--as-of", world.as_of, "--store", store, "--out", "/proc/x")
    assert message.startswith("error: snapshot folder /proc/x (--out or JOURNEY_SNAPSHOTS): "
                              "cannot create or write /proc/x")
    assert message.count("\n") == 1
    assert Path("taken.csv").read_text(encoding="utf-8") == "a,b\n"


def test_features_warn_when_as_of_is_outside_the_events(world: World) -> None:
    store = world.root / "var" / "events.duckdb"
    before = (world.start - timedelta(days=3)).isoformat()
    lines = ok("features", "--as-of", before, "--store", store, "--out", "s")
    assert lines[0].startswith("0 customers x ")
    assert lines[1].startswith(f"warning: --as-of {before}T00:00:00+00:00 is not after the "
                               f"store's first event ({world.start.isoformat()}T")
    assert lines[1].endswith("): the snapshot is empty (0 customers)")
    assert len(lines) == 2
    # The simulation covers 90 days and the longest window is 90 days.
    late = (world.start + timedelta(days=90 + 91)).isoformat()
    lines = ok("features", "--as-of", late, "--store", store, "--out", "s")
    assert len(lines) == 2
    m = re.fullmatch(rf"warning: --as-of {late}T00:00:00\+00:00 is (\d+) days after the store's "
                     r"last event \((\S+)\), more than the longest feature window \(90 days\): "
                     r"every windowed feature is empty", lines[1])
    assert m, lines[1]
    assert int(m[1]) >= 91
    assert len(ok("features", "--as-of", world.as_of, "--store", store, "--out", "s")) == 1
