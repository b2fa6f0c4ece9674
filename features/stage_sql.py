"""The store's events with the stage each one signals, as SQL the label and summary queries
share, so the taxonomy's repeat_conversion_stage means the same in both (and as in the feature
kernel: a conversion later than the customer's first signals that stage when further on)."""

from __future__ import annotations

from features.taxonomy import Taxonomy


def staged_events(taxonomy: Taxonomy, codes: str, where: str = "") -> str:
    """A SELECT of (customer_key, ts, value, stage, conv) over ``events ev`` joined to ``codes`` (a
    registered ``EventStore.stage_codes`` table), filtered by ``where`` (on ``ev``)."""
    repeat = taxonomy.repeat_stage_index
    where_sql = f"WHERE {where}" if where else ""
    if repeat < 0:
        return f"""SELECT ev.customer_key, ev.ts, ev.value, c.stage, c.conv FROM events ev
                   JOIN {codes} c ON c.code = ev.event_type_code {where_sql}"""
    # The first conversion over all of the customer's events: a filter on ts keeps the earliest
    # ones, so a conversion that passes it is "later" exactly when it is without the filter.
    return f"""SELECT ev.customer_key, ev.ts, ev.value,
                      CASE WHEN c.conv AND c.stage >= 0 AND c.stage < {repeat}
                                AND ev.ts > f.first_ts THEN {repeat}
                           ELSE c.stage END AS stage,
                      c.conv
               FROM events ev JOIN {codes} c ON c.code = ev.event_type_code
               LEFT JOIN (SELECT fe.customer_key, min(fe.ts) AS first_ts FROM events fe
                          JOIN {codes} fc ON fc.code = fe.event_type_code
                          WHERE fc.conv GROUP BY fe.customer_key) f
                   ON f.customer_key = ev.customer_key
               {where_sql}"""
