"""`journey backtest` and `journey retrain`: the model lifecycle after promotion — how past
predictions fared once their horizon closed, and retraining on a cadence through the gate."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from features.errors import ConfigError
from features.memory_errors import memory_errors
from features.spec import load_spec
from features.taxonomy import load_taxonomy
from journey.common import StoreOpt, TaxonomyOpt, app, friendly_errors, parse_when
from journey.pipeline import OutOpt, SpecOpt
from journey.settings import Settings


@app.command()
@friendly_errors
def backtest(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Score only horizons closed by this time (default: the store's newest "
                        "event).")] = None,
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
    scores: Annotated[Path | None, typer.Option(
        help="Score snapshots to read (default: $JOURNEY_HOME/scores).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Where backtest.json goes (default: $JOURNEY_HOME/backtests).")] = None,
) -> None:
    """Score past predictions whose horizon has closed against what happened.

    Realized AUC, log loss, Brier and calibration per model version and prediction time,
    stored under $JOURNEY_HOME/backtests and logged to MLflow (experiment journey-backtest)."""
    from training.backtest import run_backtest

    if scores is not None and not scores.is_dir():
        # The default folder may not exist yet (nothing scored); a named one is a typo, and
        # "0 new" would pass for "nothing closed yet".
        what = "is not a folder" if scores.exists() else "not found"
        raise ConfigError(f"--scores {scores}: {what}; name the folder of score snapshots "
                          "(`journey score` writes them under $JOURNEY_HOME/scores)")
    settings = Settings()
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    started = time.perf_counter()
    store_path, memory = store or settings.store_path, settings.store_memory
    with memory_errors(f"backtesting the score snapshots against {store_path}", memory):
        report = run_backtest(scores or settings.scores_path, out or settings.backtests_path,
                              store_path, feature_spec, settings.tracking(),
                              parse_when(as_of) if as_of else None, log=typer.echo,
                              memory_limit=memory)
    for r in report.added:
        m = r["metrics"]
        typer.echo(f"{r['target']:<10} v{r['model_version']:<4} as of {r['as_of']} "
                   f"+{r['horizon_days']}d: AUC {_fmt(m['roc_auc'])}  log loss "
                   f"{_fmt(m['log_loss'])}  Brier {_fmt(m['brier'])}  ECE {_fmt(m['ece'])}  "
                   f"({int(m['n']):,} customers)")
    typer.echo(f"{len(report.added)} new, {report.already_done} already scored, "
               f"{report.still_open} with the horizon still open, in "
               f"{time.perf_counter() - started:.1f}s -> {report.results}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


@app.command()
@friendly_errors
def retrain(
    config: Annotated[Path | None, typer.Option(
        "--config", help="Retraining spec YAML (env JOURNEY_RETRAIN_SPEC; default "
                         "experiments/retrain.yaml).")] = None,
    force: Annotated[bool, typer.Option(help="Run a cycle even when it is not due.")] = False,
    now: Annotated[str | None, typer.Option(
        help="The cycle's clock (default: now). Earlier than the store's newest event, it "
             "replays the past: the cycle uses only events up to this time. Not before the "
             "last recorded cycle's (replays go forward).")] = None,
    drift_days: Annotated[float | None, typer.Option(
        "--drift-days", min=1, help="Also run a cycle when the customers active in these last "
        "days drift from those active in the same number of days before (models/config/"
        "drift.yaml thresholds), if events arrived since the last cycle.")] = None,
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
    out: OutOpt = None,
) -> None:
    """Run one retraining cycle when due: cadence, --force, or drift with --drift-days.

    Moves the experiment's cutoffs to the newest horizon closed by the clock (--now, or the
    store's newest event when earlier), trains challengers, gates them against the champions
    on that holdout, logs the decisions to MLflow (journey-retrain) and records the cycle."""
    from training.dataset import SnapshotSource
    from training.drift import drift_check
    from training.retrain import RetrainRun, load_retrain
    from training.retrain import retrain as run

    settings = Settings()
    path = config or settings.retrain_spec
    if config is None and not path.is_file():  # the default is relative to the project folder
        raise ConfigError(f"retraining spec not found: {path.resolve()}; run from the project "
                          "folder, or name the spec with --config or JOURNEY_RETRAIN_SPEC")
    rs, exp = load_retrain(path)
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    source = SnapshotSource(store or settings.store_path, out or settings.snapshots_path,
                            feature_spec, log=typer.echo, memory_limit=settings.store_memory)
    clock = parse_when(now) if now else datetime.now(UTC)
    started = time.perf_counter()
    tracking = settings.tracking()
    try:
        drift = None if drift_days is None else drift_check(
            source.store, min(clock, source.latest_event()), drift_days, feature_spec,
            memory_limit=settings.store_memory)
        outcome = run(rs, exp, RetrainRun(source, tracking, feature_spec,
                                          settings.retrain_path, settings.promote_margin,
                                          typer.echo), clock, force, drift, config_file=path)
    finally:
        source.close()
    if outcome.cycle is None:
        typer.echo(outcome.why)
        return
    promoted = [d["target"] for d in outcome.cycle.decisions if d["promoted"]]
    typer.echo(f"cycle ({outcome.why}) done in {time.perf_counter() - started:.1f}s: "
               f"promoted {', '.join(promoted) or 'nothing'} -> "
               f"{settings.retrain_path / 'cycles.json'}")
