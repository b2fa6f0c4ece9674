"""`journey train`, `journey compare` and `journey promote`: models tracked in MLflow."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from features.spec import load_spec
from features.taxonomy import load_taxonomy
from journey.common import StoreOpt, TaxonomyOpt, app, friendly_errors
from journey.pipeline import OutOpt, SpecOpt
from journey.settings import Settings
from models.targets import SURVIVAL, TARGETS
from training.tracking import local_path, mlflow_run_uri


@app.command()
@friendly_errors
def train(
    experiment: Annotated[Path, typer.Option("--experiment", help="Experiment spec YAML.")],
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
    out: OutOpt = None,
) -> None:
    """Train every model of an experiment, track it in MLflow, register it, pick challengers."""
    from training.dataset import SnapshotSource, load_dataset
    from training.experiment import load_experiment
    from training.train import Context, train_experiment

    settings = Settings()
    exp = load_experiment(experiment)
    tracking = settings.tracking()  # a store mlflow run cannot use fails before the data loads
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    source = SnapshotSource(store or settings.store_path, out or settings.snapshots_path,
                            feature_spec, log=typer.echo, memory_limit=settings.store_memory)
    started = time.perf_counter()
    try:
        ds = load_dataset(exp, source)
    finally:
        source.close()
    typer.echo(f"experiment {exp.name}: {len(ds.train):,} training rows, {len(ds.valid):,} "
               f"validation, {len(ds.test):,} test (definition {ds.definition_hash})")
    results = train_experiment(exp, ds, Context(tracking, feature_spec, experiment, typer.echo,
                                                store=source.store))
    typer.echo(f"{len(results)} models trained and registered in "
               f"{time.perf_counter() - started:.1f}s -> {tracking.tracking_uri}")


@app.command()
@friendly_errors
def compare(
    out: Annotated[Path | None, typer.Option(
        "--out",
        help="Folder for leaderboard.md and leaderboard.csv (default: $JOURNEY_HOME/reports).",
    )] = None,
) -> None:
    """Leaderboard of every tracked model run, ranked on each holdout."""
    from training.compare import apart, leaderboard, to_markdown, unfinished, write

    settings = Settings()
    folder = out or settings.home / "reports"
    _check_folder(folder)  # before the board is read and printed, not after
    tracking = settings.tracking()
    uri = tracking.tracking_uri
    missing = _no_tracking_store(settings)
    if missing:
        typer.echo(missing)
        return
    board = leaderboard(tracking.client())
    if board.empty:
        typer.echo(f"no model runs tracked yet in {uri}: run `journey train --experiment ...`")
        return
    shown = board.drop(columns=["run_id", "definition", "data"], errors="ignore")  # in the CSV
    typer.echo(f"model runs tracked in {uri}\n{to_markdown(shown)}")
    for note in apart(board) + unfinished(board):
        typer.echo(note)
    md, csv = write(board, folder)
    typer.echo(f"-> {md}\n-> {csv}")


def _check_folder(folder: Path) -> None:
    """--out must be a folder, or one that can be made: not a file, not under one."""
    from features.errors import ConfigError

    for there in (folder, *folder.parents):
        if not there.exists():
            continue
        if not there.is_dir():
            raise ConfigError(f"--out {folder}: {there} is a file; name a folder for "
                              "leaderboard.md and leaderboard.csv")
        if not os.access(there, os.W_OK):
            raise ConfigError(f"--out {folder}: {there} is not writable")
        return


def _uri_source(settings: Settings) -> str:
    """Which setting chose the tracking store, so a mistyped one is easy to spot."""
    if mlflow_run_uri() is not None:
        return "MLFLOW_TRACKING_URI of `mlflow run`"
    if settings.mlflow_tracking_uri is not None:
        return f"JOURNEY_MLFLOW_TRACKING_URI={settings.mlflow_tracking_uri}"
    return f"JOURNEY_HOME={settings.home}"


@app.command()
@friendly_errors
def promote(
    target: Annotated[
        list[str] | None, typer.Option("--target", help=f"One of {(*TARGETS, SURVIVAL)} or an "
                                       "uplift target; default: all.")
    ] = None,
    margin: Annotated[float | None, typer.Option(
        help="Required improvement of the primary metric (env JOURNEY_PROMOTE_MARGIN).")] = None,
    force: Annotated[bool, typer.Option(help="Promote even when the gate says no.")] = False,
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
    out: OutOpt = None,
) -> None:
    """Move `champion` to the challenger when it beats the champion on the same holdout."""
    from features.errors import ConfigError
    from training.champions import promotion
    from training.dataset import SnapshotSource
    from training.promote import check_margin, promote_all
    from training.uplift_gate import UPLIFT_TARGETS, promote_uplift

    known = (*TARGETS, SURVIVAL, *UPLIFT_TARGETS)
    names = target or list(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConfigError(f"--target {unknown}: not one of {known}")
    settings = Settings()
    missing = _no_tracking_store(settings)
    if missing:  # nothing to promote; opening the store would only create an empty one
        raise ConfigError(missing)
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    source = SnapshotSource(store or settings.store_path, out or settings.snapshots_path,
                            feature_spec, log=typer.echo, memory_limit=settings.store_memory)
    tracking = settings.tracking()
    try:
        gate_margin = check_margin(settings.promote_margin if margin is None else margin)
        # One promotion for both gates: the uplift champions move with the others, at the end.
        with promotion(tracking.tracking_uri, lambda line: typer.echo(line, err=True)):
            decisions = promote_all([n for n in names if n in (*TARGETS, SURVIVAL)],
                                    tracking, source, gate_margin, force,
                                    only_trained=not target)
            decisions += promote_uplift([n for n in names if n in UPLIFT_TARGETS],
                                        tracking, source.store, feature_spec, gate_margin,
                                        force, only_trained=not target,
                                        memory_limit=settings.store_memory)
    finally:
        source.close()
    for d in decisions:
        typer.echo(f"{d.target}: {'PROMOTED' if d.promoted else 'kept'} — {d.reason}")


def _no_tracking_store(settings: Settings) -> str | None:
    """Why there is nothing tracked to read (a local tracking database that does not exist:
    opening it would create an empty one), or None."""
    where = local_path(settings.tracking().tracking_uri)
    if where is None or where.exists():
        return None
    return (f"no MLflow tracking store at {where} ({_uri_source(settings)}): nothing tracked "
            "there yet; check the setting, or run `journey train --experiment ...`")


@app.command()
@friendly_errors
def uplift(
    experiment: Annotated[Path, typer.Option("--experiment", help="Uplift experiment YAML.")],
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
) -> None:
    """Fit uplift learners on the logged action history; track and register them in MLflow.

    Each outcome's best learner on validation becomes its challenger."""
    from training.uplift import load_decisions, train_uplift
    from training.uplift_spec import load_uplift_experiment

    settings = Settings()
    exp = load_uplift_experiment(experiment)
    tracking = settings.tracking()  # a store mlflow run cannot use fails before the data loads
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    started = time.perf_counter()
    d = load_decisions(exp, store or settings.store_path, feature_spec, log=typer.echo,
                       memory_limit=settings.store_memory)
    typer.echo(f"uplift experiment {exp.name}: {len(d.train):,} training decisions, "
               f"{len(d.valid):,} validation, {len(d.test):,} test")
    results = train_uplift(exp, d, tracking, experiment, typer.echo)
    typer.echo(f"{len(results)} uplift models trained and registered in "
               f"{time.perf_counter() - started:.1f}s -> {tracking.tracking_uri}")
