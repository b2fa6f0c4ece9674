"""`journey compare`: a leaderboard of every tracked model run, read back from MLflow.

Runs are only ranked against runs judged on the same holdout (target, label definition, test
cutoff or window, horizon, feature definition, and the data, when the run recorded it): a
number from another period, another label or another store is not a comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.targets import PRIMARY_METRIC, SURVIVAL
from training.tracking import KIND_TAG

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile",
           "capture_top_decile", "macro_auc", "top1_accuracy")
COLUMNS = ("rank", "target", "label", "family", "experiment", "version", "aliases", "status",
           "holdout", "metric", "score", *METRICS, "train_seconds", "definition", "data",
           "run_id")
UPLIFT_METRIC = "qini_mean"  # an uplift model ranks actions: no AUC to show
DATA_TAG = "journey.data"  # the events a run was trained and tested on, when it recorded them


def _aliases(client: MlflowClient, names: set[str]) -> dict[tuple[str, str], str]:
    # search_model_versions leaves `aliases` empty on SQL stores; the registered model has them.
    from mlflow.exceptions import MlflowException

    out: dict[tuple[str, str], list[str]] = {}
    for name in names:
        try:
            aliases = client.get_registered_model(name).aliases
        except MlflowException:
            continue
        for alias, version in aliases.items():
            out.setdefault((name, str(version)), []).append(alias)
    return {k: ",".join(sorted(v)) for k, v in out.items()}


def _version_by_run(client: MlflowClient, names: set[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for name in names:
        for mv in client.search_model_versions(f"name = '{name}'"):
            out[str(mv.run_id)] = (name, str(mv.version))
    return out


def leaderboard(client: MlflowClient) -> pd.DataFrame:
    """One row per model run, ranked within its holdout by the target's primary metric."""
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exp_ids, filter_string=f"tags.`{KIND_TAG}` = 'model'",
                              max_results=50_000) if exp_ids else []
    names = {"journey-" + r.data.tags.get("journey.target", "").replace("_", "-") for r in runs}
    versions, aliases = _version_by_run(client, names), _aliases(client, names)
    rows = []
    for r in runs:
        name, version = versions.get(r.info.run_id, ("", ""))
        # A run that failed or never ended (a killed `journey train`) is listed, not ranked:
        # its model may lack what a finished run logs (the drift reference, plots).
        status = None if r.info.status == "FINISHED" else str(r.info.status)
        rows.append({**_row(r.data.tags, r.data.metrics), "version": version,
                     "aliases": aliases.get((name, version), ""), "status": status,
                     "run_id": r.info.run_id})
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    if frame.empty:
        return frame.assign(rank=pd.Series(dtype=int))[list(COLUMNS)]
    asc = frame["metric"].eq("log_loss")
    key = frame["score"].where(asc, -frame["score"])  # smaller is better after this
    key = key.where(frame["status"].isna())  # unfinished runs: no rank, listed last
    group = [frame.target, frame.label, frame.holdout, frame.definition, frame.data]
    frame["rank"] = key.groupby(group).rank(method="min").astype("Int64")
    # Groups that are not ranked against each other are listed apart, not interleaved.
    frame = frame.assign(_k=key).sort_values(["target", "label", "holdout", "definition", "data",
                                              "_k"])
    return frame.drop(columns="_k")[list(COLUMNS)].dropna(axis=1, how="all").reset_index(
        drop=True)


def apart(board: pd.DataFrame) -> list[str]:
    """A note for each target, label and holdout whose runs are ranked in several groups,
    on other feature definitions or other data (columns the printed board leaves out): each
    group has its own rank 1, which reads as a tie without the note."""
    notes = []
    for (target, label, holdout), runs in board.groupby(["target", "label", "holdout"],
                                                        sort=True):
        groups = runs[["definition", "data"]].drop_duplicates()
        if len(groups) < 2:
            continue
        why = [f"{n} feature definitions" for n in [runs["definition"].nunique()] if n > 1]
        why += [f"{n} data sets" for n in [runs["data"].nunique()] if n > 1]
        named = f"{target} ({label})" if label else str(target)
        notes.append(f"note: {named} on {holdout}: runs on {' and '.join(why)} are ranked "
                     f"apart ({len(groups)} groups, each with its own rank 1); the definition "
                     "and data columns of the CSV tell them apart")
    return notes


def unfinished(board: pd.DataFrame) -> list[str]:
    """A note on the runs listed without a rank because they did not finish."""
    if "status" not in board.columns or board["status"].isna().all():
        return []
    counts = board["status"].value_counts()
    what = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return [f"note: {int(counts.sum())} model run(s) did not finish ({what}: RUNNING is one "
            "still training, or one a killed `journey train` left) and are listed without a "
            "rank; their models may lack what a finished run logs"]


def _row(tags: dict[str, str], m: dict[str, float]) -> dict[str, object]:
    t = tags.get("journey.target", "")
    uplift = t.startswith("uplift-")
    metric = UPLIFT_METRIC if uplift else PRIMARY_METRIC.get(t, "roc_auc")
    where = (f"decisions {tags.get('journey.test_window', '')}" if uplift
             else tags.get("journey.test_cutoff", ""))
    label = tags.get("journey.label", "")
    if t == SURVIVAL and "journey.churn_gap_days" in tags:  # the gap defines when churn is
        label = f"{label} (gap {tags['journey.churn_gap_days']}d)"
    return {
        "target": t, "label": label,
        "family": tags.get("journey.family", ""),
        "experiment": tags.get("journey.experiment", ""),
        "holdout": f"{where} +{tags.get('journey.horizon_days', '')}d",
        "metric": metric, "score": m.get(f"test_{metric}"),
        **{k: m.get(f"test_{k}") for k in METRICS},
        "train_seconds": m.get("train_seconds"),
        "definition": tags.get("journey.definition_hash", ""),
        "data": tags.get(DATA_TAG, ""),
    }


def to_markdown(frame: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.4f}"
        return "" if v is None or v is pd.NA else str(v).replace("|", "\\|")

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([head, rule, *body]) + "\n"


def write(frame: pd.DataFrame, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, csv = out / "leaderboard.md", out / "leaderboard.csv"
    md.write_text("# Journey leaderboard\n\n" + to_markdown(frame), encoding="utf-8")
    frame.to_csv(csv, index=False)
    return md, csv
