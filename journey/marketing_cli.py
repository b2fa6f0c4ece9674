"""`journey score` and `journey segments`: batch scoring of every customer into a snapshot, and
the churn-risk segments read from it (table, or a CSV export of a segment's customers)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from features.errors import ConfigError
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from journey.common import StoreOpt, app, friendly_errors, parse_when
from journey.triggers_cli import fire_after_scoring
from models.actions import load_catalog
from models.persona_words import names_path
from models.registry import client_for
from serving.champions import load_models
from serving.recommender import Recommender
from serving.score_job import ScoreRun, population_from_store
from serving.scoring import BatchScorer
from serving.segment_config import load_segment_config
from serving.segments import SegmentBook, SegmentQueryError
from serving.settings import ServeSettings
from serving.snapshots import latest, previous_of, read_snapshot


@app.command()
@friendly_errors
def score(
    as_of: Annotated[str | None, typer.Option(help="Score as of this time (default: now, "
                                                   "or JOURNEY_AS_OF).")] = None,
    store: StoreOpt = None,
    actions: Annotated[bool, typer.Option(help="Also each customer's top next-best-action "
                                               "(needs served uplift models).")] = True,
) -> None:
    """Score every customer with the champion models into a new snapshot ($JOURNEY_HOME/scores).

    Churn and conversion probabilities, risk tier, expected value, revenue at risk, top
    action, and the journey map. Segments and the dashboard read the newest snapshot.

    The running service holds the store's write lock: score through it instead
    (POST /v1/admin/score), or stop it first."""
    settings = ServeSettings(store=store) if store else ServeSettings()
    when = parse_when(as_of) if as_of else (settings.as_of or datetime.now(UTC))
    spec = load_spec(settings.feature_spec, load_taxonomy(settings.taxonomy))
    config = load_segment_config(settings.segments_config, spec)
    started = time.perf_counter()
    models = load_models(client_for(settings.tracking_uri), spec, settings.model_alias)
    recommender = (Recommender(spec, load_catalog(settings.action_catalog), 1, 0.0)
                   if actions else None)
    scorer = BatchScorer(spec, config, settings.risk_bands, recommender,
                         names_path(settings.home))
    run = ScoreRun(spec, config, scorer, settings.scores_path, log=typer.echo)
    if not settings.store_path.exists():
        raise ConfigError(f"no event store at {settings.store_path}")
    with EventStore(settings.store_path, read_only=True) as es:
        population = population_from_store(es, spec, config, when)
        newest = es.time_range()[1]
    _warn_if_past_the_data(newest, when)
    snap = run.run(models, population, when, str(settings.store_path))
    fire_after_scoring(settings, spec, snap)  # trigger rules: this snapshot vs the previous
    m = snap.meta
    typer.echo(f"snapshot {snap.id}: {m['customers']:,} customers as of {m['as_of']} in "
               f"{time.perf_counter() - started:.1f}s (scoring {m['score_seconds']}s, journey "
               f"map {m['journey_map_seconds']}s) -> {snap.path}")
    _print_table(SegmentBook(snap, config.dimensions, previous_of(settings.scores_path, snap)),
                 ["tier"], {})


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
                   "looks inactive that long; pass --as-of to score as of the data", err=True)


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
    book = SegmentBook(snap, config.dimensions, previous_of(root, snap))
    filters = parse_filters(where or [])
    dims = [d.strip() for d in by.split(",") if d.strip()]
    try:
        if export is not None:
            with export.open("wb") as f:
                for block in book.csv(filters):
                    f.write(block)
            typer.echo(f"{len(book.rows(filters)):,} customers -> {export}")
            return
        _print_table(book, dims, filters)
    except SegmentQueryError as exc:
        raise ConfigError(f"{exc} (option {exc.field})") from exc


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ConfigError(f"--where {item!r}: write DIM=VALUE[,VALUE…], e.g. tier=high")
        out.setdefault(name.strip(), []).extend(v.strip() for v in values.split(","))
    return out


def _print_table(book: SegmentBook, by: list[str], filters: dict[str, list[str]]) -> None:
    try:
        rows, total = book.segments(by, filters)
    except SegmentQueryError as exc:
        raise ConfigError(f"{exc} (option {exc.field})") from exc
    head = [*by, "customers", "share", "mean risk", "value", "at risk", "Δ at risk",
            "top action"]
    lines = [head]
    for s in [*rows, total]:
        label = [s.key.get(d, "all") for d in by]
        delta = f"{s.change['revenue_at_risk']:+,.0f}" if s.change else "-"
        risk = "-" if math.isnan(s.mean_risk) else f"{s.mean_risk:.3f}"  # nobody: no mean
        lines.append([*label, f"{s.customers:,}", f"{s.share:.1%}", risk,
                      f"{s.expected_value:,.0f}", f"{s.revenue_at_risk:,.0f}", delta,
                      s.top_action or "-"])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    for r in lines:
        typer.echo("  ".join(c.ljust(w) if i < len(by) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))
