"""`journey score` and `journey segments`: batch scoring of every customer into a snapshot, and
the churn-risk segments read from it (table, or a CSV export of a segment's customers)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from features.errors import ConfigError
from features.memory_errors import memory_errors
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from journey.common import StoreOpt, app, friendly_errors, parse_when
from journey.service_process import read_pid_file
from journey.triggers_cli import fire_after_scoring, scoring_triggers
from models.actions import Catalog
from models.persona_words import names_path
from models.registry import client_for
from serving.memory import freeze_loaded
from serving.segment_config import SegmentConfig, load_segment_config
from serving.segments import SegmentBook, SegmentQueryError
from serving.settings import ServeSettings
from serving.snapshots import Snapshot, latest, previous_of, read_snapshot

# Scoring's modules (scikit-learn, LightGBM, numba) are imported by the commands that score:
# loading them here made every command, `journey --help` included, wait ~2 s for them.


@app.command()
@friendly_errors
def score(
    as_of: Annotated[str | None, typer.Option(help="Score as of this time (default: now, "
                                                   "or JOURNEY_AS_OF).")] = None,
    store: StoreOpt = None,
    actions: Annotated[bool, typer.Option(help="Also each customer's top next-best-action "
                                               "(needs served uplift models).")] = True,
    publish: Annotated[bool, typer.Option(
        help="Make this the snapshot segments, KPIs and the dashboard show even when it is as "
             "of an earlier time than the newest one's (which is otherwise kept for backtests "
             "only).")] = False,
) -> None:
    """Score every customer with the champion models into a new snapshot ($JOURNEY_HOME/scores).

    Churn and conversion probabilities, risk tier, expected value, revenue at risk, top
    action, and the journey map. Segments and the dashboard read the newest snapshot.

    The running service holds the store's write lock: score through it instead
    (POST /v1/admin/score), or stop it first."""
    from serving.service_files import loading, served_catalog, served_spec

    settings = ServeSettings(store=store) if store else ServeSettings()
    refuse_live_scores(settings)
    when = (parse_when(as_of) if as_of else (settings.as_of or datetime.now(UTC))).astimezone(UTC)
    # Every file is loaded and checked before anything is scored: a run that fails after it
    # has published its snapshot leaves that snapshot the newest, older ones pruned.
    spec = served_spec(settings)
    config = loading("segments_config", settings.segments_config,
                     lambda: load_segment_config(settings.segments_config, spec))
    catalog = served_catalog(settings, spec)  # the triggers read it too, --no-actions or not
    if not settings.store_path.exists():
        raise ConfigError(f"no event store at {settings.store_path}")
    triggers = scoring_triggers(settings, spec, catalog)
    started = time.perf_counter()
    try:
        snap = _score_run(settings, spec, config, catalog if actions else None, when, publish)
    except BaseException:
        triggers.close()
        raise
    fire_after_scoring(triggers, snap)  # trigger rules: this snapshot vs the previous
    m = snap.meta
    typer.echo(f"snapshot {snap.id}: {m['customers']:,} customers as of {m['as_of']} in "
               f"{time.perf_counter() - started:.1f}s (scoring {m['score_seconds']}s, journey "
               f"map {m['journey_map_seconds']}s) -> {snap.path}")
    _print_table(SegmentBook(snap, config.dimensions, previous_of(settings.scores_path, snap),
                             names_path(settings.home)), ["tier"], {})
    if m.get("published") is False:
        shown = latest(settings.scores_path)
        typer.echo(f"note: as of {m['as_of']}, before the newest snapshot's "
                   f"({shown.meta.get('as_of') if shown else '?'}): kept for `journey "
                   "backtest`, but segments, KPIs, the dashboard and the triggers stay on the "
                   "newest; to show this one instead, score again with --publish")


def refuse_live_scores(settings: ServeSettings) -> None:
    """Refuse to publish a snapshot of another store (a copy) into the scores folder a running
    service of this home reads: it would become the service's newest, and the service's own
    run its "previous". The service's own store is not refused here: the service holds it,
    and opening it says so. The folders compared are those the service recorded when it
    started (a JOURNEY_SCORES in a shared .env names the live folder too); a record from
    before it did so is taken to read the home's defaults."""
    home = settings.home
    recorded = read_pid_file(home / "serve.pid", home)
    if recorded is None or recorded.pid is None or recorded.stale is not None:
        return
    live_scores = recorded.scores or (home / "scores").resolve()
    live_store = recorded.store or (home / "events.duckdb").resolve()
    if settings.scores_path.resolve() != live_scores or \
            settings.store_path.resolve() == live_store:
        return
    raise ConfigError(
        f"the service running on {home} (PID {recorded.pid}) reads its snapshots from "
        f"{settings.scores_path}: this run of {settings.store_path} would replace its newest; "
        "set JOURNEY_SCORES to another folder, or stop the service first (`journey stop`)")


def _score_run(settings: ServeSettings, spec: FeatureSpec, config: SegmentConfig,
               catalog: Catalog | None, when: datetime, publish: bool = False) -> Snapshot:
    """Score every customer of the store with the served models into a new snapshot (with
    each one's top action when ``catalog`` is given)."""
    from serving.champions import load_models
    from serving.recommender import Recommender
    from serving.score_job import ScoreRun, population_from_store
    from serving.scoring import BatchScorer
    from serving.service_files import journey_map_params

    models = load_models(client_for(settings.tracking_uri), spec, settings.model_alias)
    recommender = Recommender(spec, catalog, 1, 0.0) if catalog is not None else None
    scorer = BatchScorer(spec, config, settings.risk_bands, recommender,
                         names_path(settings.home))
    run = ScoreRun(spec, config, scorer, settings.scores_path, log=typer.echo,
                   params=journey_map_params(settings))
    path, memory = settings.store_path, settings.store_memory
    with memory_errors(f"reading the customers of {path} as of {when.isoformat()}", memory), \
            EventStore(path, read_only=True, memory_limit=memory) as es:
        population = population_from_store(es, spec, config, when)
        newest = es.time_range()[1]
    _warn_if_past_the_data(newest, when)
    if settings.freeze_heap:
        freeze_loaded()
    snap = run.run(models, population, when, str(settings.store_path), publish)
    if not snap.meta["values_known"]:
        typer.echo(NO_VALUE)
    return snap


NO_VALUE = ("no conversion in the store carries a value (revenue): expected value, revenue at "
            "risk and CLV are left empty (-)")


def _warn_if_past_the_data(newest: datetime | None, when: datetime) -> None:
    """Scoring days after the newest event makes every customer look inactive that long (all
    in the high tier), and the snapshot becomes the one segments and the dashboard show."""
    if newest is None:
        typer.echo("warning: the event store has no events: every customer is unknown", err=True)
        return
    gap = when - newest.replace(tzinfo=UTC)
    if gap > timedelta(days=2):
        typer.echo(f"warning: the store's newest event is {newest:%Y-%m-%d %H:%M}, "
                   f"{gap.days} days before the as-of time {when:%Y-%m-%d}: every customer "
                   "looks inactive that long; pass --as-of to score as of the data (with "
                   "--publish, to show it in place of this run's snapshot)", err=True)


@app.command()
@friendly_errors
def segments(
    by: Annotated[str, typer.Option(help="Dimensions to cut by, comma-separated (tier, stage "
                                         "and customer attributes).")] = "tier,stage",
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="A filter DIM=VALUE[,VALUE…]; repeat for several.")] = None,
    export: Annotated[Path | None, typer.Option(help="Write the matching customers with "
                                                     "their scores to this CSV file.")] = None,
    snapshot: Annotated[str | None, typer.Option(help="A snapshot id (default: the newest).")]
    = None,
) -> None:
    """Churn-risk segments of the newest score snapshot.

    Per segment: size, mean risk, revenue at risk, change since the previous snapshot and
    the most recommended action."""
    settings = ServeSettings()
    spec = load_spec(settings.feature_spec, load_taxonomy(settings.taxonomy))
    config = load_segment_config(settings.segments_config, spec)
    root = settings.scores_path
    snap = read_snapshot(root / snapshot) if snapshot else latest(root)
    if snap is None:
        raise ConfigError(f"no score snapshot in {root}: run `journey score` first")
    # Persona names as they are now (a rename shows at once), from this home's names file.
    book = SegmentBook(snap, config.dimensions, previous_of(root, snap), names_path(settings.home))
    filters = parse_filters(where or [], {name: d.values for name, d in book.dims.items()})
    dims = [d.strip() for d in by.split(",") if d.strip()]
    try:
        if export is not None:
            _export(book, filters, export)
            typer.echo(f"{len(book.rows(filters)):,} customers -> {export}")
            return
        _print_table(book, dims, filters)
    except SegmentQueryError as exc:
        raise ConfigError(f"{_option(exc.field)}: {exc}") from exc


def _export(book: SegmentBook, filters: dict[str, list[str]], path: Path) -> None:
    """The segment's customers as CSV: written beside ``path`` and moved onto it once whole,
    so a refused filter or a failed write leaves a file already there as it was. A missing
    folder is refused, not created (a mistyped path would scatter exports)."""
    folder = path.parent
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise ConfigError(f"--export {path}: the directory {folder} {what}")
    if path.is_dir():
        raise ConfigError(f"--export {path}: is a directory; name a CSV file in it")
    tmp = folder / f".{path.name}.tmp"
    try:
        with tmp.open("wb") as f:
            for block in book.csv(filters):
                f.write(block)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"--export {path}: cannot be written: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _option(field: str) -> str:
    """The command-line option a segment query's field came from (the API's by[0], tier)."""
    return "--by" if field == "by" or field.startswith("by[") else f"--where {field}"


def parse_filters(items: list[str], known: Mapping[str, Sequence[str]] | None = None
                  ) -> dict[str, list[str]]:
    """``--where`` filters; as in the API's query, a value that itself holds a comma is taken
    whole when the snapshot has it (``known``), else commas separate values."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ConfigError(f"--where {item!r}: write DIM=VALUE[,VALUE…], e.g. tier=high")
        whole = values.strip()
        split = ([whole] if known is not None and whole in known.get(name.strip(), ())
                 else [v.strip() for v in values.split(",")])
        out.setdefault(name.strip(), []).extend(split)
    return out


def _print_table(book: SegmentBook, by: list[str], filters: dict[str, list[str]]) -> None:
    try:
        rows, total = book.segments(by, filters)
    except SegmentQueryError as exc:
        raise ConfigError(f"{_option(exc.field)}: {exc}") from exc
    # The dashboard's words and units, so a figure reads the same in both.
    head = [*by, "customers", "share", "mean risk", "expected value", "revenue at risk",
            "Δ revenue at risk", "top action"]
    lines = [head]
    for s in [*rows, total]:
        label = [s.key.get(d, "all") for d in by]
        # NaN: no previous snapshot, or either one knows no value (no conversion carried one).
        change = s.change["revenue_at_risk"] if s.change else math.nan
        # round() first: a change of -0.3 would print "-0" (an unchanged rescore showed it).
        delta = "-" if math.isnan(change) else f"{round(change):+,d}"
        risk = "-" if math.isnan(s.mean_risk) else f"{s.mean_risk:.1%}"  # nobody: no mean
        lines.append([*label, f"{s.customers:,}", f"{s.share:.1%}", risk,
                      _money(s.expected_value), _money(s.revenue_at_risk), delta,
                      s.top_action or "-"])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    for r in lines:
        typer.echo("  ".join(c.ljust(w) if i < len(by) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def _money(amount: float) -> str:
    """Money as the table prints it; NaN (no value known) as "-", not 0."""
    return "-" if math.isnan(amount) else f"{amount:,.0f}"
