"""`journey score` and `journey segments` through typer's CliRunner on the small world, with
its champions in a home of the module's own."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.snapshots import latest
from tests.journey.cli_helpers import fails, ok
from tests.serving.conftest import AS_OF, Served, build_served
from tests.serving.test_service_files import misspelt_condition
from tests.training.world import Trained, UpliftTrained, World, clean_env, one_thread

pytestmark = pytest.mark.slow  # needs the trained world


@pytest.fixture(scope="module")
def home(world: World, trained: Trained, uplift_trained: UpliftTrained,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = build_served(world, trained, uplift_trained, tmp_path_factory.mktemp("cli-home"))
    with clean_env(), one_thread(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOURNEY_HOME", str(served.home))
        mp.setenv("JOURNEY_STORE", str(world.store))
        mp.setenv("JOURNEY_MLFLOW_TRACKING_URI", served.tracking_uri)
        yield served


@pytest.fixture(scope="module")
def scored(home: Served) -> list[str]:
    return ok("score", "--as-of", AS_OF.isoformat())


def test_score_writes_a_snapshot_and_prints_the_tiers(home: Served, scored: list[str]) -> None:
    snap = latest(home.home / "scores")
    assert snap is not None and snap.meta["customers"] > 0
    assert any(line.startswith(f"snapshot {snap.id}") for line in scored)
    table = snap.customers()
    assert table.num_rows == snap.meta["customers"]
    assert {"churn", "tier", "revenue_at_risk", "top_action", "region"} <= set(
        table.column_names)
    total = [line for line in scored if line.startswith("all")]
    assert total and f"{snap.meta['customers']:,}" in total[0]
    assert snap.journey_map() is not None


def test_segments_prints_a_table_and_exports_a_segment(home: Served, scored: list[str],
                                                       tmp_path: Path) -> None:
    lines = ok("segments", "--by", "tier,stage", "--where", "tier=high")
    assert lines[0].split()[:2] == ["tier", "stage"]
    assert all(line.startswith(("high", "all")) for line in lines[1:])
    out = tmp_path / "high.csv"
    done = ok("segments", "--where", "tier=high", "--where", "stage=awareness,consideration",
              "--export", str(out))
    rows = list(csv.DictReader(out.open()))
    assert done[0].startswith(f"{len(rows):,} customers")
    assert rows and all(r["tier"] == "high" for r in rows)
    assert {r["stage"] for r in rows} <= {"awareness", "consideration"}


@pytest.mark.parametrize(("args", "says"), [
    (["--by", "colour"], "--by: 'colour' is not a segment dimension"),
    (["--where", "tier"], "write DIM=VALUE"),
    (["--where", "region=atlantis"], "--where region: 'atlantis' is not a value of region"),
    (["--snapshot", "19990101T000000000000Z"], "not a readable score snapshot"),
])
def test_segments_errors_say_what_is_wrong(home: Served, scored: list[str], args: list[str],
                                           says: str) -> None:
    assert says in fails("segments", *args)


def test_score_refuses_a_missing_store(home: Served, tmp_path: Path) -> None:
    assert "no event store" in fails("score", "--store", str(tmp_path / "none.duckdb"))


BAD_RULES = ("rules:\n  - {id: x, kind: risk_crossed, params: {threshold: 0.5, direction: up}, "
             "endpoints: [], cooldown: 30d}\n")


@pytest.mark.parametrize("setting", ["JOURNEY_TRIGGERS", "JOURNEY_ACTION_CATALOG"])
def test_a_bad_rules_file_or_catalog_publishes_no_snapshot(
        home: Served, scored: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        setting: str) -> None:
    """The run printed "scored…", published its snapshot (LATEST moved, older ones pruned),
    then failed on the rules or the catalog, --no-actions or not, and judged no rule."""
    if setting == "JOURNEY_TRIGGERS":
        path, says = tmp_path / "rules.yaml", "rules[0].endpoints: must be a non-empty list"
        path.write_text(BAD_RULES)
    else:
        path, says = misspelt_condition(tmp_path), "no feature named 'csat_lo'"
    scores = home.home / "scores"
    before = sorted(p.name for p in scores.iterdir()), (scores / "LATEST").read_text()
    monkeypatch.setenv(setting, str(path))
    err = fails("score", "--as-of", AS_OF.isoformat(), "--no-actions")
    assert err.startswith(f"error: {path}: ") and says in err, err
    assert err.endswith(f"({setting})\n")
    assert (sorted(p.name for p in scores.iterdir()), (scores / "LATEST").read_text()) == before


def test_an_export_into_a_missing_folder_is_refused(home: Served, scored: list[str],
                                                    tmp_path: Path) -> None:
    """Was a FileNotFoundError traceback; the folder is not created (a mistyped path)."""
    target = tmp_path / "no" / "such" / "x.csv"
    assert fails("segments", "--export", target) == (
        f"error: --export {target}: the directory {target.parent} does not exist\n")
    assert not (tmp_path / "no").exists()
    assert "is a directory" in fails("segments", "--export", tmp_path)


def test_a_refused_export_leaves_the_file_there_as_it_was(home: Served, scored: list[str],
                                                          tmp_path: Path) -> None:
    """The file was opened (emptied) before the filter was refused."""
    out = tmp_path / "high.csv"
    out.write_text("kept\n")
    err = fails("segments", "--where", "region=atlantis", "--export", out)
    assert "'atlantis' is not a value of region" in err
    assert out.read_text() == "kept\n" and list(tmp_path.iterdir()) == [out]


def test_an_empty_selection_prints_no_mean_risk(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Was "nan": no customers have no mean risk."""
    from journey.marketing_cli import _print_table
    from serving.segments import SegmentBook
    from serving.snapshots import write_snapshot
    from tests.serving.test_segment_book import DIMS, NOW, table

    snap = write_snapshot(tmp_path, table(NOW), None, {"as_of": "2025-02-01T00:00:00Z"}, keep=2)
    _print_table(SegmentBook(snap, DIMS), ["tier"], {"tier": ["low"], "region": ["south"]})
    (total,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("all")]
    assert total.split()[:4] == ["all", "0", "0.0%", "-"]


def test_scoring_past_the_data_warns(capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from journey.marketing_cli import _warn_if_past_the_data

    newest = datetime(2025, 12, 31, 23, 0)
    _warn_if_past_the_data(newest, datetime(2026, 1, 1, tzinfo=UTC))  # the next day: fine
    assert capsys.readouterr().err == ""
    _warn_if_past_the_data(newest, datetime(2026, 12, 5, tzinfo=UTC))
    err = capsys.readouterr().err
    assert "newest event is 2025-12-31 23:00, 338 days before the as-of time 2026-12-05" in err
    _warn_if_past_the_data(None, datetime(2026, 12, 5, tzinfo=UTC))
    assert "has no events" in capsys.readouterr().err
