"""The live backtest: predictions of score snapshots are scored once their horizon has closed,
against the labels the models learn from, per model version and prediction time; results are
stored once (a re-run adds nothing) and logged to MLflow with AUC stepped over time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from features.errors import ConfigError
from features.labels import labels
from features.store import EventStore
from models.backtest import decile_table, load_results, realized
from serving.snapshots import write_snapshot
from tests.journey.cli_helpers import fails, ok
from tests.training.world import World, build_world
from training.backtest import run_backtest
from training.tracking import BACKTEST_EXPERIMENT, Tracking

DEFINITIONS = {"churn": {"horizon_days": "30", "label": "churned_inactive",
                         "churn_gap_days": "30"},
               "conversion": {"horizon_days": "30", "label": "converted",
                              "churn_gap_days": "30"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory)


def snapshot(world: World, root: Path, as_of: datetime, versions: dict[str, str],
             definitions: dict[str, Any] | None = DEFINITIONS) -> None:
    """A score snapshot whose churn predictions are the realized labels (a perfect model) and
    whose conversion predictions are one constant (no skill), made at ``as_of``."""
    with EventStore(world.store, read_only=True) as es:
        truth = labels(es, world.spec, as_of, 30, 30).to_pandas()
    table = pa.table({"customer_id": truth["customer_id"],
                      "churn": truth["churned_inactive"].astype(float),
                      "conversion": np.full(len(truth), 0.2)})
    meta: dict[str, Any] = {"as_of": as_of.isoformat().replace("+00:00", "Z"),
                            "customers": len(truth), "models": versions}
    if definitions is not None:
        meta["definitions"] = definitions
    write_snapshot(root, table, None, meta, keep=10)


def test_realized_metrics_and_deciles() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 1])
    p = np.linspace(0.05, 0.95, 10)
    got = realized(y, p, bins=5)
    assert got["metrics"]["n"] == 10 and got["metrics"]["base_rate"] == 0.6
    assert got["metrics"]["mean_predicted"] == pytest.approx(0.5)
    assert [b["observed_rate"] for b in got["reliability"]] == [0.0, 1.0, 0.5, 0.5, 1.0]
    assert sum(b["n"] for b in decile_table(y, p)) == 10
    with pytest.raises(ValueError, match="must lie in"):
        realized(y, p + 1)


def test_closed_horizons_are_scored_once_and_logged(world: World, tmp_path: Path) -> None:
    scores, out = tmp_path / "scores", tmp_path / "backtests"
    tracking = Tracking.local(tmp_path)
    snapshot(world, scores, datetime(2025, 10, 1, tzinfo=UTC), {"churn": "3", "conversion": "4"})
    snapshot(world, scores, datetime(2025, 11, 1, tzinfo=UTC), {"churn": "5", "conversion": "4"})
    snapshot(world, scores, datetime(2025, 12, 15, tzinfo=UTC), {"churn": "5", "conversion": "4"})
    report = run_backtest(scores, out, world.store, world.spec, tracking, log=lambda _: None)
    assert report.still_open == 2 and report.already_done == 0  # Dec 15 + 30d is after the data
    got = {(r["target"], r["model_version"], r["as_of"]): r for r in report.added}
    assert set(got) == {("churn", "3", "2025-10-01T00:00:00Z"),
                        ("conversion", "4", "2025-10-01T00:00:00Z"),
                        ("churn", "5", "2025-11-01T00:00:00Z"),
                        ("conversion", "4", "2025-11-01T00:00:00Z")}
    churn = got[("churn", "3", "2025-10-01T00:00:00Z")]
    assert churn["metrics"]["roc_auc"] == 1.0 and churn["metrics"]["brier"] == 0.0
    assert churn["metrics"]["n"] == churn["customers"] > 1000
    assert got[("conversion", "4", "2025-10-01T00:00:00Z")]["metrics"]["roc_auc"] == 0.5
    assert len(churn["reliability"]) == 10

    again = run_backtest(scores, out, world.store, world.spec, tracking, log=lambda _: None)
    assert again.added == [] and again.already_done == 4 and again.still_open == 2
    stored = load_results(out)
    assert len(stored) == 4 and json.loads((out / "backtest.json").read_text())["results"]

    client = tracking.client()
    exp_id = tracking.experiment_id(client, BACKTEST_EXPERIMENT)
    runs = client.search_runs([exp_id])
    assert len(runs) == 4 + 3  # a run per record, a series run per (model, version)
    series = next(r for r in runs if r.data.tags.get("journey.backtest_series") == "conversion|v4")
    history = client.get_metric_history(series.info.run_id, "realized_roc_auc")
    assert [m.step for m in history] == [20362, 20393]  # days since 1970: Oct 1, Nov 1
    assert [m.value for m in history] == [0.5, 0.5]


def test_as_of_closes_fewer_horizons_and_old_snapshots_need_the_registry(
        world: World, tmp_path: Path) -> None:
    scores = tmp_path / "scores"
    snapshot(world, scores, datetime(2025, 10, 1, tzinfo=UTC), {"churn": "1"})
    early = run_backtest(scores, tmp_path / "bt", world.store, world.spec, None,
                         as_of=datetime(2025, 10, 20, tzinfo=UTC), log=lambda _: None)
    assert early.added == [] and early.still_open == 1
    bare = tmp_path / "bare"
    snapshot(world, bare, datetime(2025, 10, 1, tzinfo=UTC), {"churn": "1"}, definitions=None)
    with pytest.raises(ConfigError, match="does not record its horizon"):
        run_backtest(bare, tmp_path / "bt2", world.store, world.spec, None, log=lambda _: None)
    with pytest.raises(ConfigError, match="journey-churn v1, named by a score snapshot, is not"):
        run_backtest(bare, tmp_path / "bt2", world.store, world.spec, Tracking.local(tmp_path),
                     log=lambda _: None)


def test_the_command_prints_each_new_result(world: World, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    snapshot(world, tmp_path / "scores", datetime(2025, 10, 1, tzinfo=UTC), {"churn": "2"})
    lines = ok("backtest", "--store", world.store, "--as-of", "2025-12-01")
    assert any(line.startswith("churn      v2    as of 2025-10-01T00:00:00Z +30d: AUC 1.0000")
               for line in lines), lines
    assert lines[-1].startswith("1 new, 0 already scored, 0 with the horizon still open")
    assert "not an ISO date" in fails("backtest", "--store", world.store, "--as-of", "soon")
