"""The journey map from data: stage funnel, drop-offs, stage flows, KPIs and attribution.

Everything is computed from the encoded, customer-sorted event arrays (``features.events``),
vectorised over customers, from the events strictly before ``as_of``. The population is the
customers with at least one event before ``as_of``. Definitions (why, where it is a choice):

- A customer *reaches* stage k when any of their events maps to stage k **or a later one**: a
  customer who buys straight from an ad has passed consideration and decision, so "reached"
  never shrinks with later stages and the funnel's conversions are at most 1 (as in
  ``journey summary``). The time they reach k is the first event of stage >= k, so the median
  days between stages are never negative (0 for a skipped stage).
- *Customer activity* is an event of a type mapped to a stage; marketing contacts
  (``action_sent``) and unknown types are not: the company sending mail says nothing about the
  customer. A customer whose furthest stage is S and who has had no activity for
  ``drop_off_days`` before ``as_of`` has *dropped* at S; the others are *active*.
- Flows (a Sankey, so links only go forward): a link from ``entered`` to the stage each
  customer was first seen at (many arrive at consideration, say, with no ad or email before),
  then their stages in the order they were first entered, keeping those that move the furthest
  stage on (an ``email_open`` after a page view is a step back, not a new stage), then a link
  from the furthest stage to dropped/active. Every stage's inflow therefore equals its
  outflow, and ``entered`` holds every customer with a stage.
- KPIs (conversion, retention, repeat purchase, CLV, CSAT, NPS): ``models.kpis``, the same
  code that computes them per persona, stage, channel and month.
- Attribution paths: see :func:`touchpoint_paths`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from features.errors import ConfigError
from features.events import EventArrays
from features.spec import DAY_US, FeatureSpec
from features.yaml_config import read_mapping
from models.attribution import Attribution, Paths, markov_attribution
from models.journey_events import I64, Bool, StageEvents, first_ts
from models.journey_kernels import NEVER, first_by_stage, path_events
from models.kpis import NO_START, Grouping, kpis_of, overall_kpis

ENTERED, DROPPED, ACTIVE = "entered", "dropped", "active"
Label = Literal["channel", "event_type"]


@dataclass(frozen=True)
class JourneyMapParams:
    drop_off_days: int = 30
    retention_days: int = 90
    lookback_days: int | None = 90  # None: the whole history
    include_contacts: bool = True
    csat_score: str = "csat"
    satisfied_min: float = 4.0
    nps_score: str = "nps"
    promoter_min: float = 9.0
    detractor_max: float = 6.0
    kpi_months: int = 12  # KPIs by month: this many calendar months up to as_of
    clv_years: int = 3  # CLV estimate: expected lifetime capped at this many years
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        for name in ("drop_off_days", "retention_days", "lookback_days", "kpi_months",
                     "clv_years"):
            value = getattr(self, name)
            if value is None and name == "lookback_days":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{self.source}: {name} must be a positive whole number, "
                                  f"got {value!r}")
        if not isinstance(self.include_contacts, bool):
            raise ConfigError(f"{self.source}: include_contacts must be true or false, "
                              f"got {self.include_contacts!r}")
        for name in ("csat_score", "nps_score"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{self.source}: {name} must name a score in features.yaml")
        for name in ("satisfied_min", "promoter_min", "detractor_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{self.source}: {name} must be a number, got {value!r}")
        if self.detractor_max >= self.promoter_min:
            raise ConfigError(f"{self.source}: detractor_max ({self.detractor_max}) must be "
                              f"below promoter_min ({self.promoter_min})")


def params_from_dict(raw: dict[str, Any], source: str) -> JourneyMapParams:
    known = {f.name for f in fields(JourneyMapParams)} - {"source"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    return JourneyMapParams(**raw, source=source)


def load_params(path: str | Path | None = None) -> JourneyMapParams:
    """Journey-map parameters (None: the shipped ``models/config/journey_map.yaml``)."""
    raw, source = read_mapping(path, "models.config", "journey_map.yaml",
                               "journey map parameters", empty_ok=True)
    return params_from_dict(raw, source)


@dataclass(frozen=True)
class StageRow:
    stage: str
    reached: int  # had an event of this stage or a later one
    share: float | None  # of all customers
    conversion_from_previous: float | None  # reached / reached the previous stage
    median_days_from_previous: float | None  # reaching the previous stage -> reaching this one
    at_stage: int  # furthest stage is this one
    dropped: int  # ... and no activity for drop_off_days


@dataclass(frozen=True)
class JourneyMap:
    as_of_us: int
    customers: int
    events: int
    no_stage: int  # customers with events but none mapped to a stage (e.g. contacts only)
    funnel: tuple[StageRow, ...]
    flows: tuple[tuple[str, str, int], ...]  # (source, target, customers)
    kpis: dict[str, Any]
    by_channel: Attribution
    by_touchpoint: Attribution
    params: JourneyMapParams

    @property
    def drop_offs(self) -> list[StageRow]:
        """Stages where customers stopped, most dropped customers first."""
        rows = [r for r in self.funnel if r.dropped > 0]
        return sorted(rows, key=lambda r: (-r.dropped, r.stage))

    def to_dict(self) -> dict[str, Any]:
        params = {k: v for k, v in asdict(self.params).items() if k != "source"}
        when = datetime.fromtimestamp(self.as_of_us / 1e6, UTC).isoformat().replace("+00:00", "Z")
        return {
            "as_of": when, "customers": self.customers, "events": self.events,
            "no_stage": self.no_stage, "params": params,
            "funnel": [{**asdict(r), "share": _round(r.share),
                        "conversion_from_previous": _round(r.conversion_from_previous),
                        "median_days_from_previous": _round(r.median_days_from_previous, 3)}
                       for r in self.funnel],
            "drop_offs": [{"stage": r.stage, "dropped": r.dropped,
                           "share_of_reached": _round(r.dropped / r.reached)}
                          for r in self.drop_offs],
            "flows": [{"source": s, "target": t, "customers": n} for s, t, n in self.flows],
            "kpis": copy.deepcopy(self.kpis),  # the map stays as computed whatever callers do
            "attribution": {"lookback_days": self.params.lookback_days,
                            "include_contacts": self.params.include_contacts,
                            "by_channel": self.by_channel.to_dict(),
                            "by_touchpoint": self.by_touchpoint.to_dict()},
        }


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def journey_map(arrays: EventArrays, spec: FeatureSpec, as_of_us: int,
                params: JourneyMapParams | None = None) -> JourneyMap:
    """The journey map of every customer in ``arrays`` from their events before ``as_of_us``."""
    params = params or JourneyMapParams()
    e = StageEvents.before(arrays, spec, as_of_us)
    return _map(e, spec, as_of_us, params, overall_kpis(e, spec, params, as_of_us))


def journey_map_and_kpis(arrays: EventArrays, spec: FeatureSpec, as_of_us: int,
                         params: JourneyMapParams, groups: Mapping[str, Grouping]
                         ) -> tuple[JourneyMap, dict[str, Any]]:
    """The journey map and the KPIs by group and month (``models.kpis.kpis_of``) from one
    reading of the events: what a scoring run writes. The map's KPIs are the overall row."""
    e = StageEvents.before(arrays, spec, as_of_us)
    kpis = kpis_of(e, spec, as_of_us, params, groups)
    overall = {k: v for k, v in kpis["overall"].items() if k not in ("group", "funnel")}
    return _map(e, spec, as_of_us, params, overall), kpis


def _map(e: StageEvents, spec: FeatureSpec, as_of_us: int, params: JourneyMapParams,
         kpis: dict[str, Any]) -> JourneyMap:
    n_stages = len(spec.stages)
    first = first_by_stage(e.ev.cust, e.ev.ts, e.stage, e.ev.n_customers, n_stages)
    # reach[:, k]: first event of stage k or later (a reverse running minimum over stages).
    reach = np.minimum.accumulate(first[:, ::-1], axis=1)[:, ::-1]
    furthest = (reach < NEVER).sum(axis=1) - 1
    last_active = first_ts(e, e.activity, last=True)
    inactive = (furthest >= 0) & (last_active < as_of_us - params.drop_off_days * DAY_US)
    funnel = _funnel(spec, reach, furthest, inactive, int(e.present.sum()))
    rows = _PathRows.of(e, as_of_us, params)
    return JourneyMap(
        as_of_us=as_of_us, customers=int(e.present.sum()), events=len(e.ev),
        no_stage=int((e.present & (furthest < 0)).sum()), funnel=funnel,
        flows=_flows(spec, first, reach, furthest, inactive), kpis=kpis,
        by_channel=markov_attribution(_labelled(e, spec, rows, "channel")),
        by_touchpoint=markov_attribution(_labelled(e, spec, rows, "event_type")),
        params=params)


def _funnel(spec: FeatureSpec, reach: I64, furthest: I64, inactive: Bool,
            customers: int) -> tuple[StageRow, ...]:
    rows = []
    for k, stage in enumerate(spec.stages):
        got = reach[:, k] < NEVER
        reached = int(got.sum())
        previous = int((reach[:, k - 1] < NEVER).sum()) if k else 0
        median = None
        if k and reached:
            median = float(np.median(reach[got, k] - reach[got, k - 1])) / DAY_US
        at = furthest == k
        rows.append(StageRow(
            stage, reached, reached / customers if customers else None,
            reached / previous if previous else None, median,
            int(at.sum()), int((at & inactive).sum())))
    return tuple(rows)


def _flows(spec: FeatureSpec, first: I64, reach: I64, furthest: I64,
           inactive: Bool) -> tuple[tuple[str, str, int], ...]:
    n_stages = len(spec.stages)
    later = np.concatenate([reach[:, 1:], np.full((len(reach), 1), NEVER)], axis=1)
    # A stage moves the customer on when it is entered before any later stage was.
    # np.nonzero is row-major, so each customer's kept stages come in stage order, which is
    # also the order they were entered in (a kept stage precedes every later one).
    rows, cols = np.nonzero((first < NEVER) & (first < later))
    step = rows[1:] == rows[:-1]
    entry = np.bincount(cols[np.concatenate([[True], ~step])] if len(rows) else cols,
                        minlength=n_stages)
    pairs = np.bincount(cols[:-1][step] * n_stages + cols[1:][step], minlength=n_stages ** 2)
    links = [(ENTERED, spec.stages[k], int(entry[k])) for k in np.flatnonzero(entry)]
    links += [(spec.stages[s // n_stages], spec.stages[s % n_stages], int(pairs[s]))
              for s in np.flatnonzero(pairs)]
    for k, stage in enumerate(spec.stages):
        at = furthest == k
        for target, count in ((DROPPED, int((at & inactive).sum())),
                              (ACTIVE, int((at & ~inactive).sum()))):
            if count:
                links.append((stage, target, count))
    return tuple(links)


def touchpoint_paths(arrays: EventArrays, spec: FeatureSpec, as_of_us: int,
                     params: JourneyMapParams, by: Label) -> Paths:
    """Every customer's attribution path, labelled by channel or by event type.

    A path holds the customer's touchpoints in ``[as_of - lookback_days, as_of)`` (the whole
    history when lookback_days is None) up to their first conversion in that window, exclusive;
    it converts when there is such a conversion. Touchpoints are customer activity and, with
    ``include_contacts``, marketing contacts (on the action's channel). A fixed window before
    as_of (rather than one before each conversion) gives converters and non-converters the same
    observation time. Customers with no touchpoint before converting have no path to credit
    and are left out.
    """
    e = StageEvents.before(arrays, spec, as_of_us)
    return _labelled(e, spec, _PathRows.of(e, as_of_us, params), by)


@dataclass(frozen=True)
class _PathRows:
    """Which events are on a path, and per path whether it converts: shared by the labellings."""

    keep: Bool
    offsets: I64
    converted: npt.NDArray[np.float64]

    @classmethod
    def of(cls, e: StageEvents, as_of_us: int, params: JourneyMapParams) -> _PathRows:
        start = NO_START if params.lookback_days is None else \
            as_of_us - params.lookback_days * DAY_US
        touch = e.activity | e.contact if params.include_contacts else e.activity
        keep, lengths, converted = path_events(e.ev.cust, e.ev.ts, e.conversion, touch, start,
                                               e.ev.n_customers)
        has = lengths > 0
        return cls(keep, np.concatenate([[0], np.cumsum(lengths[has])]).astype(np.int64),
                   converted[has].astype(np.float64))


def _labelled(e: StageEvents, spec: FeatureSpec, rows: _PathRows, by: Label) -> Paths:
    codes, labels = (e.ev.channel, spec.channel_vocab) if by == "channel" else (
        e.ev.etype, spec.event_types)
    return Paths(labels=tuple(labels), offsets=rows.offsets,
                 codes=codes[rows.keep].astype(np.int32), conversions=rows.converted,
                 nulls=1.0 - rows.converted)
