"""Peer: featuretools Deep Feature Synthesis over the same events (run in benchmarks/.venv-peers).

Builds per-customer features as of a cutoff for the families featuretools can express: counts,
sums, means, std, max, time since first/last, average time between events, counts per event
type and per channel (``where`` on interesting values), each over the same 7/30/90-day windows
(one DFS per window, as featuretools takes one training window per call) plus all history.

    python featuretools_dfs.py EVENTS.parquet CUTOFF_ISO WINDOWS(7,30,90) OUT.json
"""

from __future__ import annotations

import json
import sys
import time

import featuretools as ft
import pandas as pd

AGGREGATIONS = ["count", "sum", "mean", "std", "max", "time_since_first", "time_since_last",
                "avg_time_between", "num_unique"]


def _entityset(events: pd.DataFrame) -> ft.EntitySet:
    es = ft.EntitySet("journey")
    es = es.add_dataframe(
        dataframe_name="events",
        dataframe=events,
        index="event_id",
        time_index="ts",
        logical_types={
            "event_type": "Categorical",
            "channel": "Categorical",
            "action": "Categorical",
        },
    )
    es = es.normalize_dataframe("events", "customers", "customer_id")
    es.add_interesting_values(
        dataframe_name="events",
        values={
            "event_type": sorted(events["event_type"].dropna().unique().tolist()),
            "channel": sorted(events["channel"].dropna().unique().tolist()),
        },
    )
    return es


def main() -> int:
    events_path, cutoff_iso, windows, out = sys.argv[1:5]
    events = pd.read_parquet(events_path)
    events["ts"] = pd.to_datetime(events["ts"], utc=True).dt.tz_localize(None)
    for col in ("event_type", "channel", "action"):
        events[col] = events[col].astype("category")
    cutoff = pd.Timestamp(cutoff_iso).tz_convert("UTC").tz_localize(None)
    started = time.perf_counter()
    es = _entityset(events)
    cutoff_times = pd.DataFrame({"customer_id": es["customers"]["customer_id"], "time": cutoff})
    n_features = 0
    for window in [None, *[f"{w} days" for w in windows.split(",")]]:
        matrix = ft.dfs(
            entityset=es,
            target_dataframe_name="customers",
            cutoff_time=cutoff_times,
            agg_primitives=AGGREGATIONS,
            where_primitives=["count"],
            trans_primitives=[],
            max_depth=1,
            training_window=window,
            verbose=False,
            features_only=False,
        )[0]
        n_features += matrix.shape[1]
    seconds = time.perf_counter() - started
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"seconds": seconds, "events": len(events),
                   "customers": int(events["customer_id"].nunique()), "features": n_features,
                   "featuretools": ft.__version__}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
