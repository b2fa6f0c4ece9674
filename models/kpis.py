"""Journey KPIs per group of customers (persona, stage, acquisition channel, ...) and per
calendar month, with 95 % intervals. The whole population is one group: the journey map's KPIs
are this code's answer for "everyone", so the figures agree by construction.

Everything but retention is counted on cells: one per (customer, period) with an event in the
period. The whole history before as_of is one period (a cell per customer; a grouping labels
each); the months are periods of their own (the month labels the cell). Definitions, per
period:

- customers: with any event in the period.
- conversion rate: of those, the ones with a conversion (purchase) in the period.
- retention rate, a survival rate over a window (``models.kpis_retention``): of the buyers
  active at the window's start (converted before it, with customer activity - an event mapped
  to a stage; marketing contacts are not - in the ``retention_days`` before it), the share
  still active at its end. The whole history and its groups: the last ``retention_days``
  before as_of, customers labelled as now; a month: the month itself. Its base need not have
  an event in the period (a lapsed buyer has none), so it is counted from each customer's
  activity around the window's edges, not from the cells. No base (no buyer yet at the
  window's start, as when the history is shorter than the window): null, as is the CLV.
- repeat-purchase rate: of the period's converters, those who converted on 2+ occasions (at
  different times) before its end.
- stage conversion: customers whose period events reach stage k (or a later one) over those
  reaching k - 1 (as in the journey map's funnel).
- CLV estimate = V x L (``models.kpis_retention``), what an active buyer is expected to spend
  over the rest of their lifetime. V: revenue per active buyer-year, the group's revenue in
  the period over the years its buyers were active in it (as retention defines active; counted
  from every customer's activity, not from the cells). L: an active buyer's expected lifetime,
  (window / 365) / (1 - retention rate) years, capped at ``clv_years``, the window the
  retention's (``retention_days``; a month's length for a month). A point estimate; V and the
  CLV are null when no conversion before as_of carries a value (no revenue known) or the group
  had no active buyer in the period, and the lifetime and CLV when the retention is.
- CSAT: every scored ticket in the period; mean with a normal-approximation interval
  (mean +- 1.96 sd / sqrt(n)), and the satisfied share (score >= satisfied_min).
- NPS: each customer's latest answer in the period (frequent answerers must not count more):
  100 x (promoters - detractors) / answers, normal-approximation interval
  100 x 1.96 x sqrt((p + d - (p - d)^2) / n) with p, d the promoter and detractor shares.
- Rates carry Wilson 95 % intervals (sound near 0 and 1 and for small groups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.events import EventArrays
from features.spec import DAY_US, FeatureSpec
from models.journey_events import (
    I64,
    Z95,
    Bool,
    Rate,
    StageEvents,
)
from models.journey_kernels import period_runs
from models.kpis_definitions import DEFINITIONS
from models.kpis_retention import (
    ActiveSpans,
    Survival,
    active_at,
    active_spans,
    by_group,
    by_window,
    clv,
)

if TYPE_CHECKING:
    from models.journey_map import JourneyMapParams

F64 = npt.NDArray[np.float64]
NO_START = np.iinfo(np.int64).min  # a period with no start: the whole history
NONE = "(none)"  # the group of customers without a value (no stage yet, no attribute)


@dataclass(frozen=True)
class Grouping:
    """A group per customer: ``codes`` index ``labels`` (-1: no value, grouped as NONE).
    ``ids``: each label's stable id (persona ids: a persona renamed later is found by it),
    written in its rows as ``id``."""

    codes: I64
    labels: tuple[str, ...]
    ids: tuple[int, ...] | None = None

    @classmethod
    def everyone(cls, n: int, label: str = "all") -> Grouping:
        return cls(np.zeros(n, np.int64), (label,))


@dataclass(frozen=True)
class Cells:
    """One cell per (customer, period) with an event in the period: what the rates but
    retention count (``models.kpis_retention`` counts it from the customers). The
    whole history is one period; months are several. Scored tickets and each cell's latest
    NPS answer point at their cell."""

    cust: I64
    period: I64
    converted: Bool  # a conversion in the period
    repeat: Bool  # converted, with conversions at 2+ different times before the end
    revenue: F64  # 0 where no conversion carries a value: read ``valued`` too
    furthest: I64  # furthest stage reached in the period (-1 none)
    csat_cell: I64
    csat: F64
    nps_cell: I64
    nps: F64
    # Some conversion before as_of carries a value. Without one the store knows no revenue (a
    # track export without it): revenue figures are unknown, not 0.
    valued: bool


def period_cells(e: StageEvents, spec: FeatureSpec, params: JourneyMapParams,
                 bounds: Sequence[int]) -> Cells:
    """The cells of the periods [bounds[i], bounds[i+1]) (bounds[0] may be ``NO_START``).
    Events are grouped by customer and in time order, so (customer, period) keys come sorted:
    cells are runs (one compiled pass finds them and their furthest stage), and the rarer
    events (conversions, scores) find their cell by binary search on the cells' first
    positions."""
    ev, n = e.ev, e.ev.n_customers
    lo, hi = int(bounds[0]), int(bounds[-1])
    starts, cell_cust, cell_period, furthest = period_runs(
        ev.cust, ev.ts, e.stage, np.asarray(bounds[1:-1], np.int64), lo, hi)
    cells = len(starts)

    def cells_of(mask: Bool) -> tuple[I64, I64]:
        """(position in the arrays, cell) of the events in the periods where ``mask`` holds.
        A period's events of a customer are contiguous, so an event's cell is the last one
        starting at or before it."""
        pos = np.flatnonzero(mask)
        t = ev.ts[pos]
        pos = pos[(t >= lo) & (t < hi)]
        return pos, np.searchsorted(starts, pos, side="right") - 1

    conv_pos, conv_cell = cells_of(e.conversion)
    converted = np.bincount(conv_cell, minlength=cells) >= 1
    revenue = np.bincount(conv_cell, np.nan_to_num(ev.value[conv_pos]), cells).astype(np.float64)
    occasions = e.occasion
    conv_in = np.bincount(cells_of(occasions)[1], minlength=cells).astype(np.int64)
    conv_upto = _within(cell_cust, conv_in) + _prior(e, occasions, bounds[0], n)[cell_cust]
    csat_cell, csat = _scored(e, spec, params.csat_score, cells_of, last_only=False)
    nps_cell, nps = _scored(e, spec, params.nps_score, cells_of, last_only=True)
    return Cells(
        cell_cust, cell_period, converted, converted & (conv_upto >= 2), revenue,
        furthest, csat_cell, csat, nps_cell, nps, bool(np.isfinite(ev.value[e.conversion]).any()))


def _prior(e: StageEvents, occasions: Bool, start: int, n: int) -> I64:
    """Per customer: conversion occasions before ``start``."""
    if start == NO_START:
        return np.zeros(n, np.int64)
    return np.bincount(e.ev.cust[(e.ev.ts < start) & occasions], minlength=n).astype(np.int64)


def _within(cust: I64, values: I64) -> I64:
    """Running sum over each customer's cells (in period order)."""
    if not len(cust) or (np.diff(cust) > 0).all():  # one cell a customer: nothing runs
        return values
    out: I64 = pd.Series(values).groupby(cust, sort=False).cumsum().to_numpy()
    return out


def _scored(e: StageEvents, spec: FeatureSpec, name: str,
            cells_of: Callable[[Bool], tuple[I64, I64]], last_only: bool) -> tuple[I64, F64]:
    """The cell of each scored event of ``name`` in the periods (``last_only``: only each
    cell's latest), and its score; empty when there is no such score."""
    mask = e.score_mask(spec, name)
    if mask is None:
        return np.zeros(0, np.int64), np.zeros(0)
    pos, cell = cells_of(mask)
    if last_only and len(cell):
        keep = np.concatenate([cell[1:] != cell[:-1], [True]])
        pos, cell = pos[keep], cell[keep]
    return cell.astype(np.int64), e.ev.score[pos]


def aggregate(cells: Cells, group: I64, labels: Sequence[str], survival: Survival,
              spec: FeatureSpec, params: JourneyMapParams, keep_empty: bool = False,
              ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One row per group of cells (``group``: each cell's index into ``labels``, -1 for
    NONE), for groups with customers (``keep_empty``: all of them); with ``ids``, each row
    names its label's id (None for NONE). ``survival``: each group's retention counts and
    active years (the last slot NONE's), counted apart from the cells; a group with a
    retention base but no customers has a row too."""
    n_groups = len(labels) + 1
    g = np.where(group >= 0, group, n_groups - 1).astype(np.int64)

    def count(mask: Bool | None = None) -> I64:
        return np.bincount(g if mask is None else g[mask], minlength=n_groups)

    customers, converted = count(), count(cells.converted)
    repeat = count(cells.repeat)
    revenue = np.bincount(g, cells.revenue, n_groups)
    reached = _reached(cells.furthest, g, n_groups, len(spec.stages))
    csat = _csat(cells, params, g, n_groups) if spec_has(spec, params.csat_score) else None
    nps = _nps(cells, params, g, n_groups) if spec_has(spec, params.nps_score) else None
    rows = []
    for k in range(n_groups):
        # A month without events may still have a base (buyers active at its start, who all
        # lapsed or are between visits): its retention is a real figure.
        if not customers[k] and not survival.base[k] and not (keep_empty and k < n_groups - 1):
            continue
        retention = Rate(int(survival.kept[k]), int(survival.base[k]))
        rows.append({
            "group": labels[k] if k < n_groups - 1 else NONE,
            **({} if ids is None else {"id": ids[k] if k < n_groups - 1 else None}),
            "customers": int(customers[k]),
            "conversion_rate": Rate(int(converted[k]), int(customers[k])).to_dict(),
            "retention_rate": retention.to_dict(),
            "repeat_purchase_rate": Rate(int(repeat[k]), int(converted[k])).to_dict(),
            "clv": clv(float(revenue[k]) if cells.valued else None,
                       float(survival.active_years[k]),
                       retention.value, float(survival.days[k]), params.clv_years),
            "csat": None if csat is None else csat[k],
            "nps": None if nps is None else nps[k],
            "funnel": [{"stage": stage, "reached": int(reached[k, s]),
                        "conversion_from_previous": Rate(int(reached[k, s]),
                                                         int(reached[k, s - 1])).to_dict()
                        if s else None}
                       for s, stage in enumerate(spec.stages)],
        })
    return rows


def spec_has(spec: FeatureSpec, score: str) -> bool:
    return any(s.name == score for s in spec.scores)


def group_kpis(e: StageEvents, spec: FeatureSpec, params: JourneyMapParams,
               grouping: Grouping, as_of_us: int, keep_empty: bool = False
               ) -> list[dict[str, Any]]:
    """KPIs of each group over the whole history before ``as_of_us``."""
    cells = period_cells(e, spec, params, [NO_START, as_of_us])
    window, _, spans = _active(e, params, as_of_us, [])
    years = spans.years_by_customer(e.ev.n_customers)
    return aggregate(cells, grouping.codes[cells.cust], grouping.labels,
                     _survival(window, grouping, params, years), spec, params, keep_empty)


def _active(e: StageEvents, params: JourneyMapParams, as_of_us: int, bounds: Sequence[int]
            ) -> tuple[Bool, Bool, ActiveSpans]:
    """Buyers active at the start and end of the last ``retention_days`` before as_of, and
    at each of ``bounds`` (the months' edges): one pass over the events serves both. And
    when buyers were active before as_of (the CLV's value per year reads it)."""
    window = [as_of_us - params.retention_days * DAY_US, as_of_us]
    times = np.unique(np.asarray([*window, *bounds], np.int64))
    active = active_at(e, times.tolist(), params.retention_days)
    return (active[:, np.searchsorted(times, window)],
            active[:, np.searchsorted(times, np.asarray(bounds, np.int64))],
            active_spans(e, params.retention_days, as_of_us))


def _survival(window: Bool, grouping: Grouping, params: JourneyMapParams, years: F64
              ) -> Survival:
    """Each group's retention over the last ``retention_days`` (``window``: the buyers active
    at its start and end), customers labelled as now, and its buyers' active years
    (``years``: each customer's, before as_of)."""
    return by_group(window, grouping.codes, len(grouping.labels), params.retention_days,
                    years)


def _reached(furthest: I64, g: I64, n_groups: int, n_stages: int) -> I64:
    """(groups, stages): cells whose furthest stage is k or later."""
    has = furthest >= 0
    flat = np.bincount(g[has] * n_stages + furthest[has], minlength=n_groups * n_stages)
    at = flat.reshape(n_groups, n_stages)
    out: I64 = np.cumsum(at[:, ::-1], axis=1)[:, ::-1]
    return out


def _csat(cells: Cells, params: JourneyMapParams, g: I64, n_groups: int
          ) -> list[dict[str, Any]]:
    grp, s = g[cells.csat_cell], cells.csat
    n = np.bincount(grp, minlength=n_groups)
    total = np.bincount(grp, s, n_groups)
    squares = np.bincount(grp, s * s, n_groups)
    satisfied = np.bincount(grp[s >= params.satisfied_min], minlength=n_groups)
    out = []
    for k in range(n_groups):
        m = int(n[k])
        mean = total[k] / m if m else None
        ci = None
        if mean is not None and m >= 2:
            sd = np.sqrt(max(squares[k] / m - mean * mean, 0.0) * m / (m - 1))
            half = float(Z95 * sd / np.sqrt(m))
            # Absurd scores (1e308) overflow the squares: no interval rather than [None, None].
            ci = [_r(mean - half, 4), _r(mean + half, 4)] if np.isfinite(half) else None
        out.append({"mean": _r(mean, 4), "mean_ci95": ci, "count": m,
                    "satisfied": Rate(int(satisfied[k]), m).to_dict()})
    return out


def _nps(cells: Cells, params: JourneyMapParams, g: I64, n_groups: int
         ) -> list[dict[str, Any]]:
    grp, s = g[cells.nps_cell], cells.nps
    n = np.bincount(grp, minlength=n_groups)
    pro = np.bincount(grp[s >= params.promoter_min], minlength=n_groups)
    det = np.bincount(grp[s <= params.detractor_max], minlength=n_groups)
    out = []
    for k in range(n_groups):
        m, p, d = int(n[k]), int(pro[k]), int(det[k])
        score = ci = None
        if m:
            score = round(100.0 * (p - d) / m, 2)
            ps, ds = p / m, d / m
            half = float(100 * Z95 * np.sqrt(max(ps + ds - (ps - ds) ** 2, 0.0) / m))
            ci = [round(max(-100.0, score - half), 2), round(min(100.0, score + half), 2)]
        out.append({"score": score, "ci95": ci, "count": m, "promoters": p,
                    "passives": m - p - d, "detractors": d})
    return out


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def overall_kpis(e: StageEvents, spec: FeatureSpec, params: JourneyMapParams,
                 as_of_us: int) -> dict[str, Any]:
    """The whole population's KPIs (the journey map's): the group of everyone."""
    row = group_kpis(e, spec, params, Grouping.everyone(e.ev.n_customers), as_of_us,
                     keep_empty=True)[0]
    return {k: v for k, v in row.items() if k not in ("group", "funnel")}


def month_windows(as_of_us: int, months: int) -> list[tuple[str, int, int, bool]]:
    """(label, start, end, partial) of the ``months`` calendar months up to ``as_of``, oldest
    first; the month holding as_of ends there (partial)."""
    at = datetime.fromtimestamp(as_of_us / 1e6, UTC)
    y, m = at.year, at.month
    out = []
    for _ in range(months + 1):
        start = datetime(y, m, 1, tzinfo=UTC)
        nxt = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
        s_us, e_us = round(start.timestamp() * 1e6), round(nxt.timestamp() * 1e6)
        if s_us < as_of_us:
            out.append((f"{y:04d}-{m:02d}", s_us, min(e_us, as_of_us), e_us > as_of_us))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[:months][::-1]


def journey_kpis(arrays: EventArrays, spec: FeatureSpec, as_of_us: int,
                 params: JourneyMapParams, groups: Mapping[str, Grouping]) -> dict[str, Any]:
    """KPIs overall, by each grouping, and by month, as of ``as_of_us`` (what ``kpis.json``
    holds; ``models.journey_map.journey_map_and_kpis`` gives the map too)."""
    return kpis_of(StageEvents.before(arrays, spec, as_of_us), spec, as_of_us, params, groups)


def kpis_of(e: StageEvents, spec: FeatureSpec, as_of_us: int, params: JourneyMapParams,
            groups: Mapping[str, Grouping]) -> dict[str, Any]:
    """``journey_kpis`` of events already read: one pass over the whole history serves every
    grouping and the overall row; one more serves the months."""
    cells = period_cells(e, spec, params, [NO_START, as_of_us])
    months = month_windows(as_of_us, params.kpi_months)
    bounds = [start for _, start, _, _ in months] + [months[-1][2]] if months else []
    window, at_bounds, spans = _active(e, params, as_of_us, bounds)
    years = spans.years_by_customer(e.ev.n_customers)
    by = {name: aggregate(cells, grouping.codes[cells.cust], grouping.labels,
                          _survival(window, grouping, params, years), spec, params,
                          ids=grouping.ids)
          for name, grouping in groups.items()}
    everyone = Grouping.everyone(e.ev.n_customers)
    overall = aggregate(cells, np.zeros(len(cells.cust), np.int64), everyone.labels,
                        _survival(window, everyone, params, years), spec, params,
                        keep_empty=True)[0]
    if months:
        monthly = period_cells(e, spec, params, bounds)
        rows = aggregate(monthly, monthly.period, [m[0] for m in months],
                         by_window(at_bounds, bounds, spans.years_by_window(bounds)), spec,
                         params)
        partial = {m[0]: m[3] for m in months}
        by["month"] = [{**r, "partial": partial[r["group"]]} for r in rows]
    else:
        by["month"] = []
    keep = ("retention_days", "csat_score", "satisfied_min", "nps_score", "promoter_min",
            "detractor_max", "kpi_months", "clv_years")
    return {
        "as_of": datetime.fromtimestamp(as_of_us / 1e6, UTC).isoformat(),
        "params": {k: v for k, v in asdict(params).items() if k in keep},
        "definitions": DEFINITIONS,
        "overall": overall,
        "by": by,
    }
