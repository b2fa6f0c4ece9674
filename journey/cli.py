"""The `journey` command line: one command per stage of the pipeline."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from features.memory_errors import memory_errors
from features.readers import source_files
from features.taxonomy import UnknownPolicy, load_taxonomy
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
    from features.loaders import LoadReport

__all__ = ["app"]
PROGRESS_SECONDS = 10.0


class UnknownEvents(StrEnum):
    reject = "reject"
    keep = "keep"


@app.command()
@friendly_errors
def simulate(
    out: Annotated[Path, typer.Option(help="Output directory (events/, customers/, truth/).")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Number of simulated days.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 42,
    params: Annotated[Path | None, typer.Option(help="Simulator parameter YAML.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes (default: all cores).")
    ] = None,
) -> None:
    """Generate a journey event log with known ground truth (Parquet, streamed in chunks)."""
    from features.simulator.run import SimSpec
    from features.simulator.run import simulate as run

    started = time.perf_counter()
    spec = SimSpec(customers, days, seed, str(params) if params else None)
    result = run(spec, out, workers)
    took = time.perf_counter() - started
    typer.echo(f"simulated {result.customers:,} customers over {days} days from {result.start}: "
               f"{result.events:,} events in {took:.1f}s -> {out}")


@app.command()
@friendly_errors
def oracle(
    sim: Annotated[Path, typer.Option(help="A `journey simulate` output directory.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Cutoff date T (UTC midnight).")],
    horizon: Annotated[int, typer.Option(min=1, help="Horizon H in days.")],
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")],
    replicas: Annotated[int, typer.Option(min=1, help="Monte Carlo futures per customer.")] = 200,
    effects: Annotated[bool, typer.Option(help="Also the true effect of each action.")] = False,
    sample: Annotated[
        int | None, typer.Option(min=1, help="Only this many random customers.")
    ] = None,
) -> None:
    """True outcome probabilities in [T, T+H) per customer (and action effects)."""
    from features.errors import ConfigError
    from features.simulator.oracle import oracle_for

    kind = out.suffix.lower()
    if kind not in (".parquet", ".csv"):  # the extension chooses the format: say so up front
        raise ConfigError(f"--out {out}: the file must end in .parquet or .csv, the two "
                          "formats the oracle writes")
    frame = oracle_for(sim, parse_when(as_of), horizon, replicas, effects, sample)
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    typer.echo(f"oracle for {len(frame):,} customers at {as_of} + {horizon}d: "
               f"mean P(convert) {frame.p_convert.mean():.3f}, "
               f"mean P(no activity) {frame.p_inactive.mean():.3f} -> {out}")


class LoadProgress:
    """How far a long load has got, on stderr every PROGRESS_SECONDS: the 86.7M-event
    simulation takes five minutes to ingest. Loads shorter than that print nothing."""

    def __init__(self, files: int, started: float) -> None:
        self.files, self.started, self.last = files, started, started

    def __call__(self, report: LoadReport, storing: bool) -> None:
        now = time.perf_counter()
        if storing:
            if now - self.started >= PROGRESS_SECONDS:
                typer.echo(f"storing {report.valid:,} valid rows ...", err=True)
        elif now - self.last >= PROGRESS_SECONDS:
            self.last = now
            typer.echo(f"read {report.rows_read:,} rows ({len(report.files)} of {self.files} "
                       f"file(s)), {report.rejected_total:,} rejected, "
                       f"{now - self.started:.0f} s ...", err=True)


DetailsOpt = Annotated[list[Path] | None, typer.Option(
    "--details",
    help="A per-event table (Segment's order_completed: CSV/TSV/JSONL/Parquet, .gz ok) "
    "whose rows fill the value (and channel) of the event with their id (column `id`); "
    "repeatable. An event's own value wins.",
)]
ExcludeCustomerOpt = Annotated[list[str] | None, typer.Option(
    "--exclude-customer",
    help="A customer id whose rows are left out (a stream's catch-all or test user); "
    "repeatable, added to a mapping's exclude_customers. Counted apart, never stored.",
)]


@app.command()
@friendly_errors
def ingest(
    source: Annotated[
        Path, typer.Argument(help="CSV/TSV/JSONL/Parquet file (.gz ok) or a directory.")
    ],
    map_: Annotated[str | None, typer.Option(
        "--map",
        help="customer_id=COL,ts=COL,event_type=COL"
        "[,event_id=COL,channel=COL,value=COL,action=COL]",
    )] = None,
    mapping: Annotated[Path | None, typer.Option(help="Column mapping YAML file.")] = None,
    preset: Annotated[
        str | None, typer.Option(help="Built-in mapping: segment | purchases.")
    ] = None,
    store: StoreOpt = None,
    taxonomy: TaxonomyOpt = None,
    unknown_events: Annotated[UnknownEvents | None, typer.Option(
        help="Event types the taxonomy does not name (default: the taxonomy's policy).",
    )] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (CSV).")
    ] = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    details: DetailsOpt = None,
    exclude_customer: ExcludeCustomerOpt = None,
) -> None:
    """Load a touchpoint log into the event store; print what was accepted and rejected."""
    from features.details_join import stored_before_note
    from features.ingest_channels import channel_note, future_note, last_rowid
    from features.mapping import choose_mapping, with_text_options
    from features.store_load import load_target, refused_load

    settings = Settings()
    policy: UnknownPolicy | None = unknown_events.value if unknown_events else None
    tax = load_taxonomy(taxonomy or settings.taxonomy).with_policy(policy)
    column_mapping = with_text_options(
        choose_mapping(map_, mapping, preset, details, exclude_customer), delimiter, encoding)
    # A missing or unreadable source fails before the store is created.
    files = len(source_files(source))
    store_path = store or settings.store_path
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    rejects_path = rejects or store_path.parent / "rejects" / f"{source.name}.{stamp}.csv"
    started = time.perf_counter()
    existed = store_path.exists()
    # A load that fails stores nothing; load_target removes a store that it created for it.
    with load_target(store_path, settings.store_memory) as es:
        after = last_rowid(es)
        report = es.ingest(source, column_mapping, tax, rejects_path,
                           progress=LoadProgress(files, started))
        if report.load.accepted_nothing:  # why each row was refused, then the error
            for line in report.load.lines():
                typer.echo(line)
            raise refused_load(es, report.load, source, existed)
        notes = channel_note(es, after, settings.feature_spec, tax) + future_note(es, after)
    notes += stored_before_note(report, after >= 0)
    took = time.perf_counter() - started
    for line in [*report.lines(), *notes]:
        typer.echo(line)
    rate = report.load.rows_read / max(took, 1e-9)
    number = (f"load {report.load_id} (`journey unload {report.load_id}` undoes it), "
              if report.load_id is not None and report.append.inserted else "")
    typer.echo(f"store {store_path}: {number}{rate:,.0f} rows/s ({took:.1f}s)")


@app.command()
@friendly_errors
def summary(
    store: StoreOpt = None,
    taxonomy: TaxonomyOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Only events before this time.")
    ] = None,
    loads: Annotated[int, typer.Option(min=0, help="How many recent loads to list.")] = 5,
) -> None:
    """Journey summary: customers per stage, stage-to-stage conversion, recent loads and rejects."""
    from features.store import EventStore
    from features.summary import journey_summary

    settings = Settings()
    tax = load_taxonomy(taxonomy or settings.taxonomy)
    path, memory = store or settings.store_path, settings.store_memory
    with memory_errors(f"summarising the event store {path}", memory), \
            EventStore(path, read_only=True, memory_limit=memory) as es:
        result = journey_summary(es, tax, parse_when(as_of) if as_of else None)
        recent = es.ingest_log(loads)
    for line in result.lines():
        typer.echo(line)
    if recent:
        typer.echo("\nrecent loads (newest first):")
    for entry in recent:
        where = f" -> {entry['rejects_path']}" if entry["rejects_path"] else ""
        conflicts = entry.get("conflicts")
        clash = f" ({conflicts:,} conflicting)" if isinstance(conflicts, int) and conflicts else ""
        number = f"#{entry['load_id']} " if entry.get("load_id") is not None else ""
        typer.echo(f"  {number}{entry['source']}: read {entry['rows_read']:,}, "
                   f"stored {entry['inserted']:,} new, {entry['duplicates']:,} duplicates{clash}, "
                   f"{entry['rejected']:,} rejected {entry['reject_reasons']}{where}")
        for line in _load_extras(entry):
            typer.echo(f"    {line}")


def _load_extras(entry: dict[str, object]) -> list[str]:
    """A logged load's detail files and excluded rows, when it had any."""
    details, excluded = entry.get("details"), entry.get("excluded")
    out = []
    if isinstance(details, list) and details:
        out.append(f"details joined: {', '.join(map(str, details))}")
    if isinstance(excluded, int) and excluded:
        out.append(f"excluded by customer id: {excluded:,} rows")
    if entry.get("undone_at") is not None:
        removed = entry.get("undone_events")
        count = f"{removed:,}" if isinstance(removed, int) else "its"
        out.append(f"undone at {entry['undone_at']} (`journey unload`): {count} events removed")
    return out


@app.command()
@friendly_errors
def unload(
    load: Annotated[int, typer.Argument(
        help="The load's number, as `journey summary` and `journey ingest` give it.")],
    store: StoreOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Remove them without asking.")] = False,
) -> None:
    """Undo a load: remove the events one `journey ingest` stored, and only those.

    The ingest log keeps the load, marked undone. Events other loads or the API stored stay."""
    import sys

    from features.errors import ConfigError
    from features.store import EventStore
    from features.store_unload import find_load, undo_load, unload_lines

    settings = Settings()
    path, memory = store or settings.store_path, settings.store_memory
    with memory_errors(f"undoing load {load} of {path}", memory), \
            EventStore(path, memory_limit=memory) as es:
        entry = find_load(es.con, load)
        typer.echo(f"load {entry.load_id}: {entry.source}, loaded {entry.loaded_at}: "
                   f"{entry.events:,} of its {entry.inserted:,} events are in the store"
                   + (f" ({entry.emptied:,} customers have no other event)"
                      if entry.emptied else ""))
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(f"journey unload {load}: not removing {entry.events:,} "
                                  "events without a yes: pass --yes")
            typer.confirm("Remove them?", abort=True)
        removed = undo_load(es.con, entry)
    for line in unload_lines(entry, removed):
        typer.echo(line)


def print_version(value: bool) -> None:
    """Eager --version: runs while the options are parsed, so no command is required."""
    if value:
        from journey import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option(
        "--version", callback=print_version, is_eager=True, help="Print the version and exit."
    )] = False,
) -> None:
    """Journey command line."""


# Commands of the feature pipeline and of modelling register themselves on `app` when imported.
from journey import (  # noqa: E402, F401
    home_cli,
    lifecycle_cli,
    marketing_cli,
    modeling,
    personas_cli,
    pipeline,
    serving_cli,
    triggers_cli,
)
