"""`journey features`, `journey labels` and `journey attributes`: the feature pipeline's stages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from features.errors import ConfigError
from features.memory_errors import memory_errors
from features.spec import FeatureSpec, load_spec
from features.taxonomy import load_taxonomy
from journey.common import (
    DelimiterOpt,
    EncodingOpt,
    StoreOpt,
    TaxonomyOpt,
    app,
    friendly_errors,
    parse_when,
)
from journey.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

    from features.readers import Reject
    from features.store import EventStore
    from features.store_attributes import AttributeLoad

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
    store_memory: str  # what DuckDB may hold (JOURNEY_STORE_MEMORY)


def _resolve(as_of: str, store: Path | None, spec: Path | None, taxonomy: Path | None,
             out: Path | None) -> Run:
    settings = Settings()
    feature_spec = load_spec(spec or settings.feature_spec,
                             load_taxonomy(taxonomy or settings.taxonomy))
    return Run(feature_spec, parse_when(as_of), store or settings.store_path,
               out or settings.snapshots_path, settings.store_memory)


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
    from features.snapshot import check_root, write_snapshot
    from features.store import EventStore

    run = _resolve(as_of, store, spec, taxonomy, out)
    started = time.perf_counter()
    # Bounded as a load is (DuckDB's own default is 80 % of RAM), so that lowering
    # JOURNEY_STORE_MEMORY below a process's memory limit works, as running out says to.
    with EventStore(run.store, read_only=True, memory_limit=run.store_memory) as es:
        check_root(run.snapshots, "features")
        warnings = _as_of_warnings(run, *es.time_range()) + _unseen_names(es, run)
        table, data = _computed(es, run, engine)
    snap = write_snapshot(run.snapshots, "features", table, run.spec, run.cutoff,
                          engine=engine.value, store=str(run.store), data=data)
    took = time.perf_counter() - started
    typer.echo(
        f"{table.num_rows:,} customers x {table.num_columns - 1} features as of "
        f"{run.cutoff.isoformat()} (definition {run.spec.hash}, {engine.value}, "
        f"{took:.1f}s) -> {snap.path}"
    )
    for line in warnings:
        typer.echo(line)


def _computed(es: EventStore, run: Run, engine: Engine) -> tuple[pa.Table, dict[str, Any]]:
    """The features and the data fingerprint (training reuses a snapshot only on the same
    events); running out of memory ends the command with one line saying what to change."""
    from features.snapshot import data_fingerprint

    doing = f"computing the features of {run.store} as of {run.cutoff.isoformat()}"
    with memory_errors(doing, run.store_memory):
        if engine is Engine.spark:
            table = _on_spark(es, run)
        else:
            from features.batch import BatchEngine

            table = BatchEngine(es, run.spec).features(run.cutoff)
        return table, data_fingerprint(es, run.cutoff)


def _on_spark(es: EventStore, run: Run) -> pa.Table:
    """The features on Spark; a failure of Spark itself ends the command with one line of the
    Java error and what to check, not its stack trace of some hundred lines."""
    from features.spark import spark_failure, spark_features_from_store

    try:
        return spark_features_from_store(es, run.spec, run.cutoff)
    except Exception as exc:
        short = spark_failure(exc)
        if short is None:
            raise
        raise short from exc


def _as_of_warnings(run: Run, first: datetime | None, last: datetime | None) -> list[str]:
    """T before the store's first event gives an empty snapshot; T long after its last one
    gives vectors whose every window is empty: both likely a wrong --as-of or store."""
    when = run.cutoff.isoformat()
    if first is None or last is None:
        return [f"warning: the store {run.store} holds no events: the snapshot is empty"]
    first, last = first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)
    if run.cutoff <= first:
        return [f"warning: --as-of {when} is not after the store's first event "
                f"({first.isoformat()}): the snapshot is empty (0 customers)"]
    longest = max(run.spec.windows_days)
    if run.cutoff - last > timedelta(days=longest):
        return [f"warning: --as-of {when} is {(run.cutoff - last).days} days after the store's "
                f"last event ({last.isoformat()}), more than the longest feature window "
                f"({longest} days): every windowed feature is empty"]
    return []


def _unseen_names(es: EventStore, run: Run) -> list[str]:
    """Attributes of the spec that the store holds for nobody: a misspelt one (devise) makes a
    column that is always empty. (An action missing from the log may just not be used yet.)"""
    held = {str(n) for (n,) in es.con.execute("SELECT DISTINCT name FROM attributes").fetchall()}
    attrs = [a for a in run.spec.attributes if a not in held]
    if not attrs:
        return []
    return [f"warning: the feature spec's attributes {', '.join(attrs)} have no value in the "
            f"store (it holds: {', '.join(sorted(held)) or 'none'}; `journey attributes` loads "
            "them): their attr_ columns are empty"]


@app.command()
@friendly_errors
def labels(
    as_of: Annotated[str, typer.Option("--as-of", help="Cutoff T: labels look at [T, T+H).")],
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
    from features.snapshot import check_root, data_fingerprint, write_snapshot
    from features.store import EventStore

    run = _resolve(as_of, store, spec, taxonomy, out)
    cutoff = run.cutoff
    doing = f"computing the labels of {run.store} for [{cutoff.isoformat()}, +{horizon}d)"
    with memory_errors(doing, run.store_memory), \
            EventStore(run.store, read_only=True, memory_limit=run.store_memory) as es:
        check_root(run.snapshots, "labels")
        latest = es.time_range()[1]
        table = make_labels(es, run.spec, cutoff, horizon, churn_gap_days)
        data = data_fingerprint(es, cutoff + timedelta(days=horizon))
    snap = write_snapshot(run.snapshots, "labels", table, run.spec, cutoff, horizon,
                          churn_gap_days=churn_gap_days, store=str(run.store), data=data)
    counts = table.column("next_stage").value_counts().to_pylist()
    typer.echo(
        f"{table.num_rows:,} customers labelled for [{cutoff.isoformat()}, +{horizon}d) "
        f"-> {snap.path}"
    )
    typer.echo("next stage: " + ", ".join(f"{c['values']} {c['counts']:,}" for c in counts))
    from training.dataset import unobserved_warning  # training's imports: only when labelling

    warning = unobserved_warning(cutoff, horizon, latest)
    if warning:
        typer.echo(warning)


@app.command()
@friendly_errors
def attributes(
    source: Annotated[Path, typer.Argument(
        help="CSV/TSV/JSON lines/Parquet file (.gz ok) or a directory of customers.")],
    id_column: Annotated[str, typer.Option(help="The customer id column.")] = "customer_id",
    store: StoreOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Load customer attributes (region, device, acquisition channel...) into the store."""
    from features.read_base import text_format
    from features.store import EventStore
    from features.store_attributes import INTERNAL_COLUMNS, read_attribute_file

    text = text_format(delimiter, encoding, "--")
    if not source.exists():
        raise ConfigError(f"{source}: no such file or directory")
    table, unreadable = read_attribute_file(source, text)  # as text: ids keep leading zeros
    settings = Settings()
    target = store or settings.store_path
    with EventStore(target, memory_limit=settings.store_memory) as es:
        loaded = es.load_attributes(table, id_column)
    attrs = [c for c in table.column_names if c != id_column and c not in INTERNAL_COLUMNS]
    typer.echo(f"attributes {attrs} of {loaded.customers:,} customers -> {target}")
    for line in _attribute_notes(source, id_column, loaded, unreadable):
        typer.echo(line)


def _attribute_notes(source: Path, id_column: str, loaded: AttributeLoad,
                     unreadable: list[Reject]) -> list[str]:
    """How the customers matched the store, and every row that was not loaded as is."""
    unknown = f" (first: {', '.join(map(repr, loaded.unknown_ids))})" if loaded.unknown else ""
    out = [f"  {loaded.known:,} of them with events in the store, {loaded.unknown:,} without"
           f"{unknown}"]
    if loaded.customers and not loaded.known:
        out.append(f"warning: no customer of {source} has events in the store; ids match only "
                   "as spelled ('00001' is not '1'): load the events first, or check the ids")
    if loaded.duplicates:
        out.append(f"  {_rows(loaded.duplicates)} replaced by a later row of the same customer "
                   "(the last row wins)")
    if loaded.missing_id:
        out.append(f"warning: {_rows(loaded.missing_id)} without a customer id "
                   f"({id_column!r}) not loaded: {_where(loaded.missing_id_at, loaded.missing_id)}")
    if unreadable:
        first = "; ".join(f"{r.source} line {r.line}: {r.reason}" for r in unreadable[:3])
        more = ", ..." if len(unreadable) > 3 else ""
        out.append(f"warning: {_rows(len(unreadable))} could not be read, not loaded: "
                   f"{first}{more}")
    return out


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _where(at: tuple[tuple[str, int], ...], total: int) -> str:
    """"lines 4, 9" in one file, "a.csv line 4, b.csv line 2" across several."""
    more = ", ..." if total > len(at) else ""
    if len({source for source, _ in at}) == 1:
        word = "line" if len(at) == 1 else "lines"
        return f"{word} {', '.join(str(line) for _, line in at)}{more}"
    return ", ".join(f"{source} line {line}" for source, line in at) + more
