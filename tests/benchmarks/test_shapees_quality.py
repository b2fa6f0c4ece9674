"""The Trafilea/Shapees conversion benchmark (benchmarks.lib.shapees) on the real events.

The end-to-end test is skipped when ../shared/data/trafilea-shapees-hackathon-events is absent;
the path, grid and filtering checks run without it.
"""

from __future__ import annotations

import csv
import gzip
import math
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from benchmarks.lib import shapees
from benchmarks.lib.shapees import (
    CATCH_ALL_USER,
    GRID_END,
    HORIZON_DAYS,
    SHAPEES,
    grid,
    shapees_quality,
    write_events,
)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "trafilea-shapees-hackathon-events"
MODELS = ("shapees_conversion", "shapees_baseline_conversion")


def test_data_path_is_the_repositorys_sibling_shared_folder() -> None:
    assert (REPO / "pyproject.toml").is_file()
    assert (REPO / "benchmarks" / "lib" / "shapees.py").is_file()
    assert SHAPEES == DATA
    assert SHAPEES.parts[-3:] == ("shared", "data", "trafilea-shapees-hackathon-events")


def test_missing_data_raises_a_clear_error(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "absent"
    monkeypatch.setattr(shapees, "SHAPEES", absent)
    with pytest.raises(FileNotFoundError, match="Shapees data not found"):
        shapees_quality(tmp_path / "work")


def test_grid_windows_end_by_the_selection_day() -> None:
    days = grid()
    step = timedelta(days=HORIZON_DAYS)
    assert days == sorted(days)
    assert days[-1] + step == GRID_END
    assert all(b - a == step for a, b in pairwise(days))
    assert days[0] >= date(2022, 10, 3)  # the first event in the data


def test_write_events_drops_only_the_catch_all_user(tmp_path: Path) -> None:
    src, out = tmp_path / "events.csv.gz", tmp_path / "out.csv.gz"
    rows = [
        ["user_id", "event_type", "event_id", "ts"],
        ["a", "Page", "1", "2024-01-01 00:00:00.000000"],
        [CATCH_ALL_USER, "Page", "2", "2024-01-01 00:00:01.000000"],
        ["b", "Order Completed", "3", "2024-01-02 00:00:00.000000"],
    ]
    with gzip.open(src, "wt", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    assert write_events(src, out) == (2, 1)
    with gzip.open(out, "rt", newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [rows[0], rows[1], rows[3]]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not (DATA / "events.csv.gz").is_file():
        pytest.skip(f"shared data not available: {DATA}")
    return shapees_quality(tmp_path_factory.mktemp("shapees"), seed=0)


@pytest.mark.shared_data
@pytest.mark.slow
def test_reports_conversion_metrics_with_bootstrap_intervals(result: dict[str, Any]) -> None:
    for key in ("shapees_conversion_auc_ci", "shapees_conversion_auc", "shapees_customers",
                "shapees_positives", "shapees_cutoffs", "shapees_horizon_days", "shapees_seed",
                "shapees_data", "shapees_seconds", "shapees_n", "shapees_folds"):
        assert key in result, key
    for prefix in MODELS:
        auc = result[f"{prefix}_auc"]
        assert 0.0 <= auc <= 1.0
        for ci_key in (f"{prefix}_auc_ci", f"{prefix}_auc_ci_by_customer"):
            lo, hi = result[ci_key]
            assert 0.0 <= lo <= auc <= hi <= 1.0, (ci_key, lo, auc, hi)
        assert 0.0 < result[f"{prefix}_pr_auc"] <= 1.0
        assert math.isfinite(result[f"{prefix}_log_loss"]) and result[f"{prefix}_log_loss"] > 0
        assert 0.0 <= result[f"{prefix}_brier"] <= 1.0
    assert result["shapees_seed"] == 0
    assert result["shapees_horizon_days"] == HORIZON_DAYS
    assert result["shapees_data"] == str(DATA)
    assert result["shapees_seconds"] > 0


@pytest.mark.shared_data
@pytest.mark.slow
def test_catch_all_user_is_excluded_and_there_are_buyers(result: dict[str, Any]) -> None:
    assert result["shapees_customers"] < 250
    assert result["shapees_customers"] == 249  # PROVENANCE.md: 249 users without it
    assert result["shapees_rows_dropped_catch_all"] == 9_116
    assert 0 < result["shapees_positives"] < result["shapees_n"]
    assert result["shapees_customers_evaluated"] <= result["shapees_customers"]


@pytest.mark.shared_data
@pytest.mark.slow
def test_folds_are_rolling_and_time_ordered(result: dict[str, Any]) -> None:
    h = timedelta(days=result["shapees_horizon_days"])
    folds = result["shapees_folds"]
    assert [f["test"] for f in folds] == result["shapees_cutoffs"]
    assert result["shapees_cutoffs"] == sorted(result["shapees_cutoffs"])
    assert sum(f["test_positives"] for f in folds) == result["shapees_positives"]
    assert sum(f["test_rows"] for f in folds) == result["shapees_n"]
    for f in folds:
        test, valid = date.fromisoformat(f["test"]), date.fromisoformat(f["valid"])
        assert valid + h <= test
        assert test + h <= GRID_END  # no label window reaches the selection day
        assert f["train_positives"] >= shapees.MIN_TRAIN_POSITIVES
        assert f["valid_positives"] >= 1
