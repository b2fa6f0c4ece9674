"""Labels for a cutoff T and horizon H, from events in [T, T+H): features see the events
before T and labels those from T on, so an event exactly at T (a date-only log's whole cutoff
day, at midnight) is a label and never lost between the two. One row per customer with an
event before T.

- next_stage: the furthest stage among the customer's own events in [T, T+H), else "inactive";
- converted: a conversion event (purchase) in [T, T+H);
- churned_inactive: no customer event in [T, T+H);
- churned_no_purchase: for customers who converted before T, no conversion in [T, T+H);
  empty for the others;
- churn_days / churn_observed: time to churn, where churn is dated when an inactivity gap
  reaches G days (``churn_gap_days``), counting from the last customer event before T. A
  customer already inactive for G days at T has 0 (churned at T, observed). Churn at T+H or
  later is outside [T, T+H) and right-censored: churn_days = H, churn_observed = false (the
  next window, from T+H, has it at 0). A customer without a customer event before T (only
  contacts, or event types without a stage) has no gap to count from: both are empty, as
  churned_no_purchase is for those it does not apply to, and survival fitting and scoring
  leave them out (the model and the service answer survival 0, status no_activity).

Customer events (activity) are those whose type maps to a stage, in every label: a contact
(``action_sent``) is something done to the customer, not by them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from features.spec import FeatureSpec
from features.stage_sql import staged_events
from features.store import EventStore

INACTIVE = "inactive"


def labels(
    store: EventStore,
    spec: FeatureSpec,
    cutoff: datetime,
    horizon_days: int,
    churn_gap_days: int = 30,
) -> pa.Table:
    if horizon_days < 1 or churn_gap_days < 1:
        raise ValueError("horizon_days and churn_gap_days must be at least 1")
    con = store.con
    con.register("label_codes", store.stage_codes(spec.taxonomy))
    end = cutoff + timedelta(days=horizon_days)
    gap = f"INTERVAL {int(churn_gap_days)} DAY"
    stage_names = "[" + ", ".join(f"'{s}'" for s in spec.stages) + "]"
    try:
        return con.execute(
            f"""
            WITH e AS ({staged_events(spec.taxonomy, "label_codes", "ev.ts < $end")}
            ), before AS (
                SELECT customer_key, max(ts) FILTER (WHERE stage >= 0) AS last_act,
                       bool_or(conv) AS bought_before
                FROM e WHERE ts < $cutoff GROUP BY customer_key
            ), after AS (
                SELECT customer_key, max(stage) FILTER (WHERE stage >= 0) AS furthest,
                       bool_or(conv) AS converted
                FROM e WHERE ts >= $cutoff GROUP BY customer_key
            ), acts AS (
                SELECT customer_key, ts FROM e WHERE ts >= $cutoff AND stage >= 0
                UNION ALL SELECT customer_key, last_act FROM before WHERE last_act IS NOT NULL
            ), gaps AS (
                SELECT customer_key, ts,
                       lead(ts) OVER (PARTITION BY customer_key ORDER BY ts) AS nxt FROM acts
            ), churn AS (
                SELECT customer_key, min(ts + {gap}) AS churn_at FROM gaps
                WHERE ts + {gap} > $cutoff AND (nxt IS NULL OR nxt > ts + {gap})
                GROUP BY customer_key
            )
            SELECT k.customer_id,
                   coalesce({stage_names}[a.furthest + 1], '{INACTIVE}') AS next_stage,
                   coalesce(a.converted, false) AS converted,
                   a.furthest IS NULL AS churned_inactive,
                   CASE WHEN b.bought_before THEN NOT coalesce(a.converted, false) END
                       AS churned_no_purchase,
                   CASE WHEN b.last_act IS NULL THEN NULL
                        WHEN b.last_act + {gap} <= $cutoff THEN 0.0
                        ELSE least(epoch(ch.churn_at - $cutoff), epoch($end - $cutoff)) / 86400.0
                   END AS churn_days,
                   -- [T, T+H) is half-open: a churn dated exactly at T+H is the next window's.
                   CASE WHEN b.last_act IS NOT NULL
                        THEN b.last_act + {gap} <= $cutoff OR ch.churn_at < $end
                   END AS churn_observed
            FROM before b
            JOIN customers k USING (customer_key)
            LEFT JOIN after a USING (customer_key)
            LEFT JOIN churn ch USING (customer_key)
            ORDER BY k.customer_id""",
            {"cutoff": cutoff, "end": end},
        ).to_arrow_table()
    finally:
        con.unregister("label_codes")


def point_labels(
    store: EventStore, spec: FeatureSpec, points: pd.DataFrame, horizon_days: int
) -> pd.DataFrame:
    """``converted`` and ``churned_inactive`` (as ``labels`` defines them) for many
    (customer_id, cutoff) points at once, each cutoff in microseconds since the epoch; rows in
    the points' order and index. One range join instead of one query per cutoff."""
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    con = store.con
    con.register("label_codes", store.stage_codes(spec.taxonomy))
    con.register("label_points", pa.table({
        "row": pa.array(np.arange(len(points), dtype=np.int64)),
        "customer_id": pa.array(points["customer_id"].astype(str).tolist(), pa.string()),
        "cutoff": pa.array(points["cutoff"].to_numpy(np.int64)),
    }))
    try:
        got = con.execute(
            """
            WITH p AS (SELECT p.row, k.customer_key,
                              TIMESTAMPTZ '1970-01-01 00:00:00+00' + to_microseconds(p.cutoff)
                                  AS t0
                       FROM label_points p LEFT JOIN customers k USING (customer_id))
            SELECT p.row, coalesce(bool_or(c.conv), false) AS converted,
                   NOT coalesce(bool_or(c.stage >= 0), false) AS churned_inactive
            FROM p LEFT JOIN events e ON e.customer_key = p.customer_key
                AND e.ts >= p.t0 AND e.ts < p.t0 + to_days($h)
            LEFT JOIN label_codes c ON c.code = e.event_type_code
            GROUP BY p.row ORDER BY p.row
            """,
            {"h": int(horizon_days)},
        ).fetchnumpy()
    finally:
        con.unregister("label_codes")
        con.unregister("label_points")
    return pd.DataFrame(
        {"converted": np.asarray(got["converted"], bool),
         "churned_inactive": np.asarray(got["churned_inactive"], bool)},
        index=points.index,
    )
