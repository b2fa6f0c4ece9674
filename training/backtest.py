"""`journey backtest`: score the predictions of past scoring runs against what happened.

A scoring run (``journey score`` or the service's ``POST /v1/admin/score``) leaves a snapshot
under ``<home>/scores`` with every customer's churn and conversion probability as of T and the
model versions that made them. Once T + H has passed in the event store (or by ``--as-of``),
the same labels the models learned from (features/labels.py) say what happened, and each
(model, version, T) gets realized ROC-AUC, log loss, Brier, ECE and a decile reliability
table. Results accumulate in ``<home>/backtests/backtest.json`` (kept after the score snapshot
itself is pruned; a re-run adds only what is new) and in MLflow's ``journey-backtest``
experiment: one run per (model, version, T), and one run per (model, version) whose metrics
are stepped by T, so the MLflow UI charts realized AUC over time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from features.errors import ConfigError
from features.labels import labels
from features.spec import FeatureSpec
from features.store import EventStore
from models.backtest import (
    DEFINITION_TAGS,
    SCORED_COLUMNS,
    horizon_closed,
    load_results,
    merge_results,
    realized,
    record_key,
    save_results,
)
from models.targets import target
from training.tracking import BACKTEST_EXPERIMENT, KIND_TAG, Tracking, own_run

Log = Callable[[str], None]
# The score snapshot's files (written by serving/snapshots.py, which training does not import).
SCORE_META, SCORE_CUSTOMERS = "meta.json", "customers.parquet"


@dataclass(frozen=True)
class Pending:
    """One (model, version, prediction time) whose horizon has closed."""

    target: str
    version: str
    as_of: datetime
    horizon_days: int
    label: str
    churn_gap_days: int
    snapshot: Path
    scored_at: str

    @property
    def key(self) -> str:
        return record_key(self.target, self.version, iso(self.as_of))


@dataclass(frozen=True)
class Report:
    added: list[dict[str, Any]]
    still_open: int  # predictions whose horizon has not closed yet
    already_done: int
    results: Path


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def score_snapshots(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every complete score snapshot under ``root`` with its meta, oldest first."""
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = json.loads((folder / SCORE_META).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{folder}: not a readable score snapshot ({exc})") from exc
        out.append((folder, meta))
    return out


def definition(meta: dict[str, Any], name: str, version: str,
               registry_tags: Callable[[str, str], dict[str, str]]) -> dict[str, Any]:
    """The horizon and label definition a model version predicted with: from the snapshot's
    meta, or (snapshots scored before it recorded them) from the version's registry tags."""
    known = meta.get("definitions", {}).get(name) or {}
    if not set(DEFINITION_TAGS) <= set(known):
        tags = registry_tags(name, version)
        missing = [t for t in DEFINITION_TAGS.values() if t not in tags]
        if missing:
            raise ConfigError(f"model {name} v{version}: the registry has no {missing} tags")
        known = {k: tags[t] for k, t in DEFINITION_TAGS.items()}
    return {"horizon_days": int(known["horizon_days"]), "label": str(known["label"]),
            "churn_gap_days": int(known["churn_gap_days"])}


def pending(snapshots: list[tuple[Path, dict[str, Any]]], done: set[str],
            observed_until: datetime, registry_tags: Callable[[str, str], dict[str, str]]
            ) -> tuple[list[Pending], int, int]:
    """The predictions ready to score, how many are still open, how many are already scored.
    The newest snapshot of a (model, version, T) wins when several were scored."""
    ready: dict[str, Pending] = {}
    still_open, seen = 0, 0
    for folder, meta in snapshots:
        as_of = datetime.fromisoformat(meta["as_of"].replace("Z", "+00:00"))
        for name in SCORED_COLUMNS:
            version = meta.get("models", {}).get(name)
            if version is None:
                continue
            d = definition(meta, name, str(version), registry_tags)
            job = Pending(name, str(version), as_of, d["horizon_days"], d["label"],
                          d["churn_gap_days"], folder, str(meta.get("scored_at", "")))
            if job.key in done:
                seen += 1
            elif not horizon_closed(as_of, job.horizon_days, observed_until):
                still_open += 1
            else:
                ready[job.key] = job
    return list(ready.values()), still_open, seen


def evaluate(job: Pending, outcomes: pd.DataFrame, observed_until: datetime) -> dict[str, Any]:
    """One backtest record: the snapshot's predictions joined to the realized labels."""
    column = SCORED_COLUMNS[job.target]
    scores = pq.read_table(job.snapshot / SCORE_CUSTOMERS,
                           columns=["customer_id", column]).to_pandas()
    joined = scores.merge(outcomes[["customer_id", job.label]], on="customer_id", how="inner")
    joined = joined[joined[job.label].notna()]
    if joined.empty:
        raise ConfigError(f"{job.snapshot}: no customer of the snapshot has a realized "
                          f"{job.label} label as of {iso(job.as_of)}")
    done = realized(joined[job.label].astype(bool).to_numpy().astype(int),
                    joined[column].to_numpy(float))
    return {"key": job.key, "target": job.target, "model_version": job.version,
            "registered_name": target(job.target, ()).registered_name,
            "as_of": iso(job.as_of), "horizon_days": job.horizon_days,
            "label": job.label, "churn_gap_days": job.churn_gap_days,
            "snapshot": job.snapshot.name, "scored_at": job.scored_at,
            "observed_until": iso(observed_until), "evaluated_at": iso(datetime.now(UTC)),
            "customers": len(scores), **done}


def run_backtest(scores: Path, out: Path, store: Path, spec: FeatureSpec,
                 tracking: Tracking | None, as_of: datetime | None = None,
                 log: Log = print, memory_limit: str | None = None) -> Report:
    """Score every closed, not yet scored prediction; store the results; log them to MLflow.
    ``memory_limit``: what DuckDB may hold reading ``store`` (JOURNEY_STORE_MEMORY)."""
    if not store.exists():
        raise ConfigError(f"event store not found: {store}; run `journey ingest`")
    old = load_results(out)
    registry = _registry_tags(tracking)
    with EventStore(store, read_only=True, memory_limit=memory_limit) as es:
        latest = es.time_range()[1]
        if latest is None:
            raise ConfigError(f"the event store {store} has no events")
        observed = latest.replace(tzinfo=UTC)
        observed = min(observed, as_of) if as_of is not None else observed
        jobs, still_open, seen = pending(score_snapshots(scores), {r["key"] for r in old},
                                         observed, registry)
        outcomes: dict[tuple[datetime, int, int], pd.DataFrame] = {}
        added = []
        for job in jobs:
            cache = (job.as_of, job.horizon_days, job.churn_gap_days)
            if cache not in outcomes:
                log(f"realized labels for [{iso(job.as_of)}, +{job.horizon_days}d) ...")
                outcomes[cache] = labels(es, spec, job.as_of, job.horizon_days,
                                         job.churn_gap_days).to_pandas()
            added.append(evaluate(job, outcomes[cache], observed))
    path = save_results(out, merge_results(old, added))
    if tracking is not None and added:
        log_to_mlflow(tracking, added)
    return Report(added, still_open, seen, path)


def _registry_tags(tracking: Tracking | None) -> Callable[[str, str], dict[str, str]]:
    def tags(name: str, version: str) -> dict[str, str]:
        if tracking is None:
            raise ConfigError(f"model {name} v{version}: the score snapshot does not record its "
                              "horizon and no MLflow registry was given to look it up")
        from mlflow.exceptions import MlflowException

        registered = target(name, ()).registered_name
        try:
            return dict(tracking.client().get_model_version(registered, version).tags)
        except MlflowException as exc:
            raise ConfigError(f"{registered} v{version}, named by a score snapshot, is not in "
                              f"the registry at {tracking.tracking_uri}") from exc

    return tags


def log_to_mlflow(tracking: Tracking, records: list[dict[str, Any]]) -> None:
    """One run per record (skipped when MLflow already has it), and each record's metrics
    appended to its (model, version) series run at the step of its prediction day."""
    import mlflow

    client = tracking.client()
    exp_id = tracking.experiment_id(client, BACKTEST_EXPERIMENT)
    for r in records:
        found = client.search_runs([exp_id], f"tags.`journey.backtest_key` = '{r['key']}'",
                                   max_results=1)
        if found:
            continue
        as_of = datetime.fromisoformat(r["as_of"].replace("Z", "+00:00"))
        step, millis = (as_of - datetime(1970, 1, 1, tzinfo=UTC)).days, int(as_of.timestamp() * 1e3)
        metrics = {k: v for k, v in r["metrics"].items() if v is not None}
        with own_run(exp_id, f"{r['target']} v{r['model_version']} @ {r['as_of']}"):
            mlflow.set_tags({KIND_TAG: "backtest", "journey.backtest_key": r["key"],
                             "journey.target": r["target"],
                             "journey.model_version": r["model_version"],
                             "journey.as_of": r["as_of"]})
            mlflow.log_params({k: r[k] for k in ("horizon_days", "label", "churn_gap_days",
                                                 "snapshot", "observed_until")})
            mlflow.log_metrics(metrics, step=step)
            mlflow.log_table(pd.DataFrame(r["reliability"]), "reliability.json")
        series = _series_run(client, exp_id, r["target"], r["model_version"])
        for k, v in metrics.items():
            client.log_metric(series, f"realized_{k}", v, timestamp=millis, step=step)


def _series_run(client: Any, exp_id: str, name: str, version: str) -> str:
    key = f"{name}|v{version}"
    found = client.search_runs([exp_id], f"tags.`journey.backtest_series` = '{key}'",
                               max_results=1)
    if found:
        return str(found[0].info.run_id)
    run = client.create_run(exp_id, run_name=f"{name} v{version} over time",
                            tags={KIND_TAG: "backtest-series", "journey.backtest_series": key,
                                  "journey.target": name, "journey.model_version": version})
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
