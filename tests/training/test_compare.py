"""The leaderboard read back from MLflow: one row per model run, ranked within its holdout,
rendered as Markdown and written with a CSV copy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.targets import TARGETS, target
from tests.training.world import Trained, World, copy_registry
from training import evaluate
from training.compare import (
    COLUMNS,
    DATA_TAG,
    apart,
    leaderboard,
    to_markdown,
    unfinished,
    write,
)
from training.tracking import KIND_TAG, TRAINING_EXPERIMENT
from training.train import CHALLENGER

pytestmark = pytest.mark.slow  # needs the shared training (once per session)

HOLDOUT = "2025-10-01 +30d"


@pytest.fixture(scope="module")
def board(trained: Trained) -> pd.DataFrame:
    return leaderboard(trained.tracking.client())


def test_one_row_per_model_run(board: pd.DataFrame, trained: Trained) -> None:
    assert len(board) == 6
    assert set(board["run_id"]) == {r.run_id for r in trained.results}
    # every run finished: no status column
    assert list(board.columns[:9]) == [c for c in COLUMNS if c != "status"][:9]
    assert set(board["holdout"]) == {HOLDOUT}
    assert set(board["experiment"]) == {"small"}
    for row in board.itertuples(index=False):
        r = next(r for r in trained.results if r.run_id == row.run_id)
        assert (row.target, row.family, row.version) == (r.target, r.family, r.version)
        assert row.definition == trained.ds.definition_hash
        assert row.metric == ("log_loss" if r.target == "next_stage" else "roc_auc")
        # A row's fields are typed as any scalar; these columns hold a name and seconds.
        assert row.score == pytest.approx(r.test[cast(str, row.metric)], abs=1e-12)
        assert row.log_loss == pytest.approx(r.test["log_loss"], abs=1e-12)
        assert cast(float, row.train_seconds) > 0


def test_ranks_within_each_holdout(board: pd.DataFrame, trained: Trained,
                                   world: World) -> None:
    assert board["target"].tolist() == sorted(board["target"])  # grouped by target
    for name in TARGETS:
        part = board[board["target"] == name]
        assert part["rank"].tolist() == [1, 2]  # best first
        t = target(name, world.spec.stages)
        best = max(
            (r for r in trained.results if r.target == name),
            key=lambda r: evaluate.primary(t, r.test) * (1 if t.higher_is_better else -1),
        )
        assert part.iloc[0]["run_id"] == best.run_id
    # Binary-only metrics are empty for next-stage rows and vice versa.
    stage = board[board["target"] == "next_stage"]
    assert stage["roc_auc"].isna().all() and stage["macro_auc"].notna().all()
    binary = board[board["target"] != "next_stage"]
    assert binary["macro_auc"].isna().all() and binary["lift_top_decile"].notna().all()


def test_aliases_column_shows_the_challenger(board: pd.DataFrame, trained: Trained) -> None:
    client = trained.tracking.client()
    for name in TARGETS:
        registered = "journey-" + name.replace("_", "-")
        challenger = str(client.get_registered_model(registered).aliases[CHALLENGER])
        row = board[(board["target"] == name) & (board["version"] == challenger)]
        assert row["aliases"].tolist() == [CHALLENGER]


def test_other_holdouts_and_definitions_rank_apart(trained: Trained, tmp_path: Path) -> None:
    """Runs judged on another test window, or on another feature definition, are ranked in
    their own group; a better run on the same holdout pushes the others down."""
    client, exp_id = _registry_copy(trained, tmp_path)
    base = _churn_tags(trained)
    uplift = {**base, "journey.target": "uplift-convert", "journey.family": "uplift-x",
              "journey.test_window": "2025-10-01..2025-11-01", "journey.label": ""}
    del uplift["journey.test_cutoff"]
    extra = {
        "later": ({**base, "journey.test_cutoff": "2025-11-01"}, 0.5),
        "other-def": ({**base, "journey.definition_hash": "0" * 16}, 0.6),
        "other-label": ({**base, "journey.label": "churned_no_purchase"}, 0.7),
        "other-data": ({**base, DATA_TAG: "another store"}, 0.8),
        "uplift": (uplift, 0.05),
        "best": (base, 0.999),
    }
    ids = {}
    for name, (tags, score) in extra.items():
        run = client.create_run(exp_id, tags=tags, run_name=name)
        metric = "test_qini_mean" if name == "uplift" else "test_roc_auc"
        client.log_metric(run.info.run_id, metric, score)
        client.set_terminated(run.info.run_id)
        ids[name] = run.info.run_id
    board = leaderboard(client)
    assert len(board) == 12
    rank = dict(zip(board["run_id"], board["rank"], strict=True))
    for alone in ("later", "other-def", "other-label", "other-data", "uplift", "best"):
        assert rank[ids[alone]] == 1, alone
    up = board[board["run_id"] == ids["uplift"]].iloc[0]
    assert (up["metric"], up["score"]) == ("qini_mean", 0.05)
    assert up["holdout"] == "decisions 2025-10-01..2025-11-01 +30d"
    churn = board[(board["target"] == "churn") & (board["holdout"] == HOLDOUT)
                  & (board["definition"] == trained.ds.definition_hash)
                  & (board["label"] == "churned_inactive") & (board["data"] == "")]
    assert sorted(churn["rank"]) == [1, 2, 3]
    assert board.loc[board["run_id"] == ids["later"], "holdout"].item() == "2025-11-01 +30d"
    assert board.loc[board["run_id"] == ids["best"], "version"].item() == ""  # not registered
    notes = [n for n in apart(board) if n.startswith("note: churn (churned_inactive) on "
                                                     f"{HOLDOUT}")]
    assert notes == [f"note: churn (churned_inactive) on {HOLDOUT}: runs on 2 feature "
                     "definitions and 2 data sets are ranked apart (3 groups, each with its own "
                     "rank 1); the definition and data columns of the CSV tell them apart"]
    assert not any("2025-11-01" in n for n in apart(board))  # one group there


def test_markdown(board: pd.DataFrame) -> None:
    text = to_markdown(board)
    lines = text.splitlines()
    assert len(lines) == 2 + len(board)
    assert lines[0] == "| " + " | ".join(board.columns) + " |"
    assert lines[1] == "|" + "|".join("---" for _ in board.columns) + "|"
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[2:])
    assert all(line.count(" | ") == len(board.columns) - 1 for line in lines[2:])
    first = board.iloc[0]
    assert f"{first['score']:.4f}" in lines[2]


def test_markdown_cells() -> None:
    frame = pd.DataFrame({"name": ["a|b", None], "x": [0.123456, math.nan],
                          "n": pd.array([1, None], dtype="Int64")})
    lines = to_markdown(frame).splitlines()
    assert lines[2] == "| a\\|b | 0.1235 | 1 |"
    assert lines[3] == "|  |  |  |"


def test_write_markdown_and_csv(board: pd.DataFrame, tmp_path: Path) -> None:
    md, csv = write(board, tmp_path / "reports" / "nested")
    assert md == tmp_path / "reports" / "nested" / "leaderboard.md"
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Journey leaderboard\n\n| rank | target |")
    assert text.count("\n| ") == len(board) + 1
    back = pd.read_csv(csv)
    assert list(back.columns) == list(board.columns)
    assert len(back) == len(board)
    assert back["rank"].tolist() == board["rank"].astype(int).tolist()
    np.testing.assert_allclose(back["score"], board["score"].astype(float))
    # Writing again replaces the files.
    write(board.head(2), tmp_path / "reports" / "nested")
    assert len(pd.read_csv(csv)) == 2


def test_time_to_churn_runs_of_another_gap_are_another_label() -> None:
    """Churn dated by a 7-day gap is not the 30-day one: never ranked together."""
    from training.compare import _row

    tags = {"journey.target": "time_to_churn", "journey.label": "churn_days",
            "journey.test_cutoff": "2025-10-01", "journey.horizon_days": "91"}
    assert _row({**tags, "journey.churn_gap_days": "7"}, {})["label"] == "churn_days (gap 7d)"
    churn = {**tags, "journey.target": "churn", "journey.label": "churned_inactive",
             "journey.churn_gap_days": "7"}
    assert _row(churn, {})["label"] == "churned_inactive"  # the gap does not change this label


def test_runs_that_did_not_finish_are_listed_without_a_rank(trained: Trained,
                                                            tmp_path: Path) -> None:
    """A failed run, or one a killed `journey train` left RUNNING, may lack what a finished run
    logs: listed with its status, never ranked above the finished ones."""
    client, exp_id = _registry_copy(trained, tmp_path)
    tags = _churn_tags(trained)
    ids = {}
    for name, status in (("failed", "FAILED"), ("killed", None)):
        run = client.create_run(exp_id, tags=tags, run_name=name)
        client.log_metric(run.info.run_id, "test_roc_auc", 0.9999)  # better than every other
        if status:
            client.set_terminated(run.info.run_id, status)
        ids[name] = run.info.run_id
    board = leaderboard(client)
    row = {name: board[board["run_id"] == rid].iloc[0] for name, rid in ids.items()}
    assert row["failed"]["status"] == "FAILED" and row["killed"]["status"] == "RUNNING"
    assert all(pd.isna(r["rank"]) for r in row.values())
    churn = board[(board["target"] == "churn") & (board["holdout"] == HOLDOUT)
                  & (board["label"] == "churned_inactive")]
    assert churn["rank"].min() == 1 and pd.isna(churn.iloc[0]["status"])  # a finished one leads
    assert set(churn["run_id"].iloc[-2:]) == set(ids.values())  # listed last
    assert unfinished(board) == [
        "note: 2 model run(s) did not finish (1 FAILED, 1 RUNNING: RUNNING is one still "
        "training, or one a killed `journey train` left) and are listed without a rank; their "
        "models may lack what a finished run logs"]
    assert unfinished(leaderboard(trained.tracking.client())) == []  # all finished there


def _registry_copy(trained: Trained, tmp_path: Path) -> tuple[MlflowClient, str]:
    """A copy of the shared registry (runs added here stay here) and its training experiment."""
    tracking = copy_registry(trained.tracking, tmp_path / "registry")
    client = tracking.client()
    return client, tracking.experiment_id(client, TRAINING_EXPERIMENT)


def _churn_tags(trained: Trained) -> dict[str, str]:
    """A hand-made churn model run's tags, judged on the shared holdout."""
    return {KIND_TAG: "model", "journey.target": "churn", "journey.family": "lightgbm",
            "journey.experiment": "manual", "journey.horizon_days": "30",
            "journey.test_cutoff": "2025-10-01", "journey.label": "churned_inactive",
            "journey.definition_hash": trained.ds.definition_hash}
