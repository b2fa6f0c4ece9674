"""`journey features`, `journey labels` and `journey attributes`: the feature pipeline's stages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from features.errors import ConfigError
from features.spec import FeatureSpec, load_spec
from features.taxonomy import load_taxonomy
from journey.common import StoreOpt, TaxonomyOpt, app, friendly_errors, parse_when
from journey.settings import Settings

SpecOpt = Annotated[
    Path | None, typer.Option("--spec", help="Feature definitions YAML (env JOURNEY_FEATURE_SPEC).")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Snapshot root (env JOURNEY_SNAPSHOTS).")
]


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


@dataclass(frozen=True)
class Run:
    """What the feature pipeline's commands resolve from options and settings alike."""

    spec: FeatureSpec
    cutoff: datetime
    store: Path
    snapshots: Path


def _resolve(as_of: str, store: Path | None, spec: Path | None, taxonomy: Path | None,
             out: Path | None) -> Run:
    settings = Settings()
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    return Run(feature_spec, parse_when(as_of), store or settings.store_path,
               out or settings.snapshots_path)


@app.command()
@friendly_errors
def features(
    as_of: Annotated[str, typer.Option("--as-of", help="Cutoff T: only events before it count.")],
    engine: Annotated[Engine, typer.Option(help="Where to compute.")] = Engine.duckdb,
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
    out: OutOpt = None,
) -> None:
    """Feature vectors of every customer as of T, written as a versioned snapshot."""
    from features.snapshot import data_fingerprint, write_snapshot
    from features.store import EventStore

    run = _resolve(as_of, store, spec, taxonomy, out)
    started = time.perf_counter()
    with EventStore(run.store, read_only=True) as es:
        if engine is Engine.spark:
            from features.spark import spark_features_from_store

            table = spark_features_from_store(es, run.spec, run.cutoff)
        else:
            from features.batch import BatchEngine

            table = BatchEngine(es, run.spec).features(run.cutoff)
        data = data_fingerprint(es, run.cutoff)  # training reuses it only on the same events
    snap = write_snapshot(run.snapshots, "features", table, run.spec, run.cutoff,
                          engine=engine.value, store=str(run.store), data=data)
    took = time.perf_counter() - started
    typer.echo(
        f"{table.num_rows:,} customers x {table.num_columns - 1} features as of "
        f"{run.cutoff.isoformat()} (definition {run.spec.hash}, {engine.value}, "
        f"{took:.1f}s) -> {snap.path}"
    )


@app.command()
@friendly_errors
def labels(
    as_of: Annotated[str, typer.Option("--as-of", help="Cutoff T: labels look at (T, T+H].")],
    horizon: Annotated[int, typer.Option(min=1, help="Horizon H in days.")],
    churn_gap_days: Annotated[
        int, typer.Option(min=1, help="Inactivity that counts as churn (time-to-churn label).")
    ] = 30,
    store: StoreOpt = None,
    spec: SpecOpt = None,
    taxonomy: TaxonomyOpt = None,
    out: OutOpt = None,
) -> None:
    """Labels of every customer seen before T for the horizon H, as a versioned snapshot."""
    from features.labels import labels as make_labels
    from features.snapshot import data_fingerprint, write_snapshot
    from features.store import EventStore

    run = _resolve(as_of, store, spec, taxonomy, out)
    cutoff = run.cutoff
    with EventStore(run.store, read_only=True) as es:
        latest = es.time_range()[1]
        table = make_labels(es, run.spec, cutoff, horizon, churn_gap_days)
        data = data_fingerprint(es, cutoff + timedelta(days=horizon))
    snap = write_snapshot(run.snapshots, "labels", table, run.spec, cutoff, horizon,
                          churn_gap_days=churn_gap_days, store=str(run.store), data=data)
    counts = table.column("next_stage").value_counts().to_pylist()
    typer.echo(
        f"{table.num_rows:,} customers labelled for ({cutoff.isoformat()}, +{horizon}d] "
        f"-> {snap.path}"
    )
    typer.echo("next stage: " + ", ".join(f"{c['values']} {c['counts']:,}" for c in counts))
    if latest is None or latest.replace(tzinfo=UTC) < cutoff + timedelta(days=horizon):
        typer.echo(
            f"warning: the store's events end at {latest}, before T+H: the horizon is not "
            "fully observed, so late outcomes are missing from these labels"
        )


@app.command()
@friendly_errors
def attributes(
    source: Annotated[Path, typer.Argument(help="CSV or Parquet file/directory of customers.")],
    id_column: Annotated[str, typer.Option(help="The customer id column.")] = "customer_id",
    store: StoreOpt = None,
) -> None:
    """Load customer attributes (region, device, acquisition channel...) into the store."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from features.store import EventStore

    if not source.exists():
        raise ConfigError(f"{source}: no such file or directory")
    if source.is_dir() or source.suffix == ".parquet":
        table = pq.read_table(source)
    else:
        table = pacsv.read_csv(
            source, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
        )
    settings = Settings()
    with EventStore(store or settings.store_path, memory_limit=settings.store_memory) as es:
        n = es.load_attributes(table, id_column)
    attrs = [c for c in table.column_names if c != id_column]
    typer.echo(f"attributes {attrs} of {n:,} customers -> {store or settings.store_path}")
