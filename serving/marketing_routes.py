"""The marketer's routes: churn-risk segments, drill-down and CSV export, the journey map, the
dashboard page and its data, and scoring runs (admin)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from serving.deps import Admin, Watcher, gate_principal, not_found, open_query
from serving.errors import NotFoundError
from serving.marketing_schemas import (
    CustomersOut,
    DashboardOut,
    JourneyMapOut,
    KpisOut,
    PersonasOut,
    ScoreIn,
    ScoreOut,
    SegmentOut,
    SegmentsOut,
    SnapshotOut,
)
from serving.route_table import RouteTable
from serving.schemas import ErrorOut
from serving.segments import SORTABLE, Segment, SegmentBook
from serving.snapshots import Snapshot

STATIC = Path(__file__).parent / "static"
# What the page may load: the files shipped in serving/static, by name (no path from a request
# ever reaches the file system).
ASSETS = {p.name: p for p in STATIC.glob("*") if p.is_file()} if STATIC.is_dir() else {}
MEDIA = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
         ".svg": "image/svg+xml"}
OCTETS = "application/octet-stream"
NO_SNAPSHOT = not_found("No score snapshot yet (or it cannot be read).")
FILTER_DOC = ("Filters: any segment dimension as a query parameter, e.g. `tier=high&stage="
              "decision,purchase` (values comma-separated or repeated).")


def snapshot_out(book: SegmentBook | Snapshot) -> SnapshotOut:
    snap = book.snapshot if isinstance(book, SegmentBook) else book
    m = snap.meta
    return SnapshotOut(id=snap.id, as_of=m["as_of"], scored_at=m["scored_at"],
                       customers=m["customers"], previous=m.get("previous"),
                       previous_as_of=m.get("previous_as_of"),
                       models=m.get("models", {}), risk_bands=m.get("risk_bands", []),
                       dimensions=m.get("dimensions", []), actions=bool(m.get("actions")))


def segment_out(s: Segment) -> SegmentOut:
    return SegmentOut.model_validate(s, from_attributes=True)


def export_filename(as_of: str, filters: Mapping[str, Sequence[str]]) -> str:
    """The export's file name: the snapshot's as-of date (what the scores describe; the
    scoring time says nothing to a marketer) and the filters. Filter values are the customers'
    attribute values, so only ASCII letters, digits and ``-_=+.`` are kept: no quote, line
    break or path separator reaches the header or the marketer's disk, and no character a
    header cannot encode (``isalnum`` alone keeps "東", which failed the response)."""
    name = "-".join(f"{k}={'+'.join(v)}" for k, v in sorted(filters.items())) or "all"
    return f"segment-{_safe(as_of)[:40]}-{_safe(name)[:120]}.csv"


def _safe(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_=+.") else "_" for c in text)


def _by(text: str) -> list[str]:
    return [d.strip() for d in text.split(",") if d.strip()]


api = RouteTable()


@api.get("/segments", tags=["segments"], description=FILTER_DOC, responses=NO_SNAPSHOT)
@open_query  # filters by any dimension; unknown names refused there
def segments(request: Request, state: Watcher,
                   by: Annotated[str, Query(description="Dimensions to cut by, "
                                            "comma-separated.")] = "tier") -> SegmentsOut:
    """Churn-risk segments of the newest score snapshot: size, mean risk, expected value,
    revenue at risk, change since the previous snapshot and the most recommended action."""
    m = state.marketing
    filters = m.filters(request.query_params.multi_items(), ("by",))
    book, rows, total = m.segments(_by(by), filters)
    return SegmentsOut(snapshot=snapshot_out(book), by=_by(by), filters=filters,
                       segments=[segment_out(s) for s in rows], total=segment_out(total))


@api.get("/segments/customers", tags=["segments"], description=FILTER_DOC,
         responses=NO_SNAPSHOT)
@open_query  # filters by any dimension; unknown names refused there
def customers(
    request: Request, state: Watcher,
    sort: Annotated[str, Query(description=f"One of {', '.join(SORTABLE)} "
                               "(largest first).")] = SORTABLE[0],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # as every int the API takes
) -> CustomersOut:
    """A segment's customers with their scores (drill-down), a page at a time."""
    m = state.marketing
    filters = m.filters(request.query_params.multi_items(), ("sort", "limit", "offset"))
    book, total, rows = m.customers(filters, sort, limit, offset)
    # pydantic validates the rows (plain dicts, read in one pass) into CustomerScoreOut.
    return CustomersOut(snapshot=snapshot_out(book), filters=filters, sort=sort,
                        total=total, offset=offset, limit=limit,
                        customers=rows)  # type: ignore[arg-type]


@api.get("/segments/export", tags=["segments"], description=FILTER_DOC,
         response_class=StreamingResponse,
         responses={200: {"content": {"text/csv": {}}}, **NO_SNAPSHOT})
@open_query  # filters by any dimension; unknown names refused there
def export(
    request: Request, state: Watcher,
    sort: Annotated[str, Query(description=f"One of {', '.join(SORTABLE)}.")] = SORTABLE[0],
) -> StreamingResponse:
    """Every customer of a segment with their scores and the snapshot's as-of date, as CSV
    (UTF-8 with a byte-order mark; probabilities to 4 decimals, money to 2, days to 1)."""
    m = state.marketing
    filters = m.filters(request.query_params.multi_items(), ("sort",))
    book, blocks = m.export(filters, sort)
    name = export_filename(book.as_of_date, filters)
    return StreamingResponse(blocks, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@api.get("/journey-map", tags=["segments"], responses=NO_SNAPSHOT)
def journey_map(state: Watcher) -> JourneyMapOut:
    """Stage funnel, transition flows, KPIs and touchpoint attribution of the newest
    snapshot."""
    book = state.marketing.book()
    return JourneyMapOut(snapshot=snapshot_out(book),
                         journey_map=book.snapshot.journey_map())


@api.get("/kpis", tags=["segments"], responses=NO_SNAPSHOT)
def kpis(state: Watcher,
               by: Annotated[str | None, Query(
                   description="Group by persona, stage, a customer attribute (e.g. "
                   "acquisition_channel) or month; default persona (stage when no persona "
                   "model scored the snapshot).")] = None) -> KpisOut:
    """Journey KPIs of the newest snapshot per group: conversion between stages, retention,
    repeat purchase, CLV estimate, CSAT and NPS, with 95 % intervals (definitions in the
    answer). Computed when the snapshot was scored, not per request."""
    book, data, by = state.marketing.kpis(by)
    return KpisOut(snapshot=snapshot_out(book), by=by, available=list(data["by"]),
                   definitions=data["definitions"], params=data["params"],
                   overall=data["overall"], groups=data["by"][by])


@api.get("/personas", tags=["segments"],
         responses=not_found("No persona model is served."))
def personas(state: Watcher) -> PersonasOut:
    """The discovered personas of the served persona model: each with its name and what
    distinguishes it (top features against the population, typical stage, channels,
    value and churn risk), and how their number was chosen."""
    return PersonasOut.model_validate(state.marketing.personas(state.holder.current))


@api.get("/dashboard/data", tags=["dashboard"], responses=NO_SNAPSHOT)
def dashboard_data(state: Watcher) -> DashboardOut:
    """Everything the dashboard's first view shows, pre-aggregated, in one answer."""
    m = state.marketing
    book, tiers, _ = m.segments(["tier"], {})
    _, stage_tiers, _ = m.segments(["stage", "tier"], {})
    dims = book.present
    return DashboardOut(snapshot=snapshot_out(book), dimensions=dims,
                        tiers=[segment_out(s) for s in tiers],
                        stage_tiers=[segment_out(s) for s in stage_tiers],
                        journey_map=book.snapshot.journey_map())


@api.get("/dashboard", tags=["dashboard"], response_class=FileResponse,
         responses={200: {"content": {"text/html": {}}}})
async def dashboard() -> FileResponse:
    """The marketer's dashboard page. It holds no data: it asks for a marketer key (or
    reads it from the URL fragment, `#key=…`, which browsers never send) and calls the
    routes above with it."""
    return _asset("dashboard.html")


@api.get("/dashboard/assets/{name}", tags=["dashboard"], response_class=FileResponse,
         responses={200: {"content": {t: {} for t in (*MEDIA.values(), OCTETS)}},
                    **not_found("No such asset.")})
async def asset(name: str) -> FileResponse:
    """The page's scripts and styles, shipped with the service (no CDN)."""
    return _asset(name)


@api.post("/admin/score", tags=["admin"], responses={409: {
    "model": ErrorOut, "description": "A scoring run is in progress (`scoring_in_progress`)."}})
async def score(request: Request, state: Admin, body: ScoreIn | None = None) -> ScoreOut:
    """Score every customer from the service's histories into a new snapshot (no body, or
    `{}`: as of the service's clock)."""
    started = time.perf_counter()
    who = gate_principal(request.scope)  # the run's log lines name the key that asked
    snap = await anyio.to_thread.run_sync(state.score_all, body.as_of if body else None,
                                          who.name if who else None)
    return ScoreOut(snapshot=snapshot_out(snap),
                    seconds=round(time.perf_counter() - started, 3))


def _asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None or name.startswith("."):
        raise NotFoundError(f"no dashboard asset named {name!r}", "name")
    headers: dict[str, Any] = {"Cache-Control": "no-cache"}
    return FileResponse(path, media_type=MEDIA.get(path.suffix, OCTETS),
                        headers=headers)
