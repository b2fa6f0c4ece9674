"""The journey at a glance from the event store: customers per stage and the stage funnel."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime

from features.stage_sql import staged_events
from features.store import EventStore
from features.taxonomy import Taxonomy


@dataclass(frozen=True)
class StageRow:
    stage: str
    customers_at: int  # furthest stage reached is this one
    reached: int  # reached this stage or a later one
    conversion_from_previous: float | None
    median_days_from_first_touch: float | None


@dataclass(frozen=True)
class JourneySummary:
    as_of: datetime | None
    customers: int
    events: int
    no_stage: int  # customers whose events signal no stage (e.g. only contacts)
    stages: list[StageRow]
    # Read without repeat_conversion_stage, and nobody past the conversions' stage: these
    # customers converted again later, which the taxonomy then shows as no further stage.
    unstaged_repeats: int = 0
    conversions: int = 0  # conversion events (purchases)
    valued: int = 0  # of them, those carrying a value (revenue)
    revenue: float = 0.0  # the values' sum

    def lines(self) -> list[str]:
        when = f" before {self.as_of.isoformat()}" if self.as_of else ""
        out = [f"{self.customers:,} customers, {self.events:,} events{when}", "",
               f"{'stage':<15}{'at stage':>12}{'reached':>12}{'conv. from prev.':>18}"
               f"{'median days to reach':>22}"]
        for r in self.stages:
            conv = "" if r.conversion_from_previous is None else f"{r.conversion_from_previous:.1%}"
            median = r.median_days_from_first_touch
            days = "" if median is None else f"{median:.1f}"
            out.append(f"{r.stage:<15}{r.customers_at:>12,}{r.reached:>12,}{conv:>18}{days:>22}")
        if self.no_stage:
            out.append(f"{'(no stage)':<15}{self.no_stage:>12,}")
        out += self._value_lines()
        if self.unstaged_repeats:
            out += ["", *textwrap.wrap(
                f"{self.unstaged_repeats:,} customers converted again later, but the taxonomy "
                "has no repeat_conversion_stage and no event type past the conversion's stage "
                "was seen, so none of them moves on. To count a repeat purchase as retention, "
                "use a taxonomy with `repeat_conversion_stage: retention` "
                "(examples/purchases_taxonomy.yaml, via JOURNEY_TAXONOMY or --taxonomy).", 92)]
        return out


    def _value_lines(self) -> list[str]:
        """Whether revenue is known: without it every money figure downstream (expected value,
        revenue at risk, CLV) is unknown, and with it on only some conversions it is a lower
        bound; the analyst should learn that here, at the first look, not from the dashboard."""
        n, k = self.conversions, self.valued
        if not n:
            return []
        conversions = f"{n:,} conversion{'s' if n > 1 else ''}"
        if k == n:
            return ["", f"{conversions}, all with a value: revenue {self.revenue:,.2f}"]
        if not k:
            text = (f"{conversions}, none with a value: revenue is unknown, so expected "
                    "value, revenue at risk and CLV will be too. A value column in the source "
                    "(--map value=COLUMN), or a per-event table keyed by the event id "
                    "(--details, as a Segment warehouse's order_completed) supplies it.")
        else:
            text = (f"{conversions}, {k:,} with a value: revenue {self.revenue:,.2f}. The "
                    f"other {n - k:,} count as 0 in revenue figures (expected value, CLV), "
                    "which are lower bounds.")
        return ["", *textwrap.wrap(text, 92)]


def journey_summary(
    store: EventStore, taxonomy: Taxonomy, as_of: datetime | None = None
) -> JourneySummary:
    """Furthest stage per customer from events strictly before ``as_of`` (all events if None)."""
    con = store.con
    con.register("stage_map", store.stage_codes(taxonomy))
    try:
        params = [as_of] if as_of else []
        firsts = ", ".join(f"min(e.ts) FILTER (WHERE e.stage >= {k}) AS reach_{k}"
                           for k in range(len(taxonomy.stages)))
        staged = staged_events(taxonomy, "stage_map", "ev.ts < ?" if as_of else "")
        per_customer = f"""
            SELECT e.customer_key, max(e.stage) FILTER (WHERE e.stage >= 0) AS furthest,
                   min(e.ts) AS first_ts, {firsts}, count(*) AS n,
                   min(e.ts) FILTER (WHERE e.conv) < max(e.ts) FILTER (WHERE e.conv) AS again,
                   count(*) FILTER (WHERE e.conv) AS convs,
                   count(e.value) FILTER (WHERE e.conv) AS valued,
                   sum(e.value) FILTER (WHERE e.conv) AS revenue
            FROM ({staged}) e GROUP BY e.customer_key"""
        medians = ", ".join(
            f"median(epoch(reach_{k} - first_ts) / 86400.0) FILTER (WHERE furthest >= {k})"
            for k in range(len(taxonomy.stages)))
        counts = ", ".join(
            f"count(*) FILTER (WHERE furthest = {k})" for k in range(len(taxonomy.stages)))
        row = con.execute(f"SELECT count(*), count(*) FILTER (WHERE furthest IS NULL), {counts}, "
                          f"{medians}, coalesce(sum(n), 0), "
                          f"count(*) FILTER (WHERE again), coalesce(sum(convs), 0), "
                          f"coalesce(sum(valued), 0), coalesce(sum(revenue), 0) "
                          f"FROM ({per_customer})",
                          params).fetchone()
    finally:
        con.unregister("stage_map")
    assert row is not None
    n = len(taxonomy.stages)
    at = [int(v) for v in row[2:2 + n]]
    reached = [sum(at[k:]) for k in range(n)]
    stages = [
        StageRow(stage, at[k], reached[k],
                 None if k == 0 or reached[k - 1] == 0 else reached[k] / reached[k - 1],
                 None if row[2 + n + k] is None else float(row[2 + n + k]))
        for k, stage in enumerate(taxonomy.stages)
    ]
    # Every event joins stage_map (it holds every stored type's code), so these are all events.
    events, again, conversions, valued = (int(v) for v in row[2 + 2 * n:6 + 2 * n])
    return JourneySummary(as_of, int(row[0]), events, int(row[1]), stages,
                          again if _repeats_unstaged(taxonomy, reached) else 0,
                          conversions, valued, float(row[6 + 2 * n]))


def _repeats_unstaged(taxonomy: Taxonomy, reached: list[int]) -> bool:
    """No repeat rule and nobody past the conversions' stage: a repeat purchase shows as
    nothing (a Segment stream's `Order Completed` twice), and retention stays empty."""
    if taxonomy.repeat_conversion_stage is not None:
        return False
    top = max((taxonomy.stage_index(s) for t in taxonomy.conversion_event_types
               if (s := taxonomy.event_stage.get(t)) is not None), default=len(reached))
    return top + 1 < len(reached) and reached[top + 1] == 0
