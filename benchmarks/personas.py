"""Persona discovery against the simulator's latent customer types (deal seekers, loyalists,
browsers, at-risk): adjusted Rand index between the personas and the true types.

Full run: 100k simulated customers over 365 days; --quick: 20k (the demo's data). Personas are
fitted as of 2025-09-01 (day 243) on the feature vectors `journey features` computes, with the
shipped settings (models/config/personas.yaml). Target: `ari` >= 0.6 on the customers the model
assigns (those with 20+ events in the last 90 days; `coverage` says how many). `ari_all` puts
every customer, however little history they have, in the nearest persona. Stability: a fit
with another seed against the first (ARI), and the same seed twice (identical labels).

    python benchmarks/personas.py [--quick]
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.personas")

import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_rand_score

from benchmarks.common import parser, peak_rss_mb, write_result
from benchmarks.lib.simstore import build_sim_store

TARGET_ARI = 0.6


def features(store: Any, as_of: datetime) -> pa.Table:
    from features.batch import BatchEngine
    from features.spec import load_spec
    from features.store import EventStore

    with EventStore(store, read_only=True) as es:
        return BatchEngine(es, load_spec()).features(as_of)


def fit(table: pa.Table, seed: int) -> tuple[Any, float]:
    from features.spec import load_spec
    from models.persona_params import load_persona_params
    from models.personas import PersonaModel

    params = replace(load_persona_params(), seed=seed)
    started = time.perf_counter()
    model = PersonaModel.from_params(params, load_spec().stages).fit(table)
    return model, time.perf_counter() - started


def composition(labels: np.ndarray, truth: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Each persona's size and the share of each true type in it."""
    out = {}
    for k, name in enumerate(names):
        mine = pd.Series(truth[labels == k]).value_counts(normalize=True).round(3)
        out[f"{k}: {name}"] = {"customers": int((labels == k).sum()), **mine.to_dict()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="simulated customers")
    p.add_argument("--as-of", default="2025-09-01", help="fit as of this date (UTC)")
    args = p.parse_args(argv)
    customers = args.customers or (20_000 if args.quick else 100_000)
    started = time.perf_counter()
    store = build_sim_store(args.work / f"personas-{customers}", customers, 365, seed=42)
    as_of = datetime.fromisoformat(args.as_of).replace(tzinfo=UTC)
    began = time.perf_counter()
    table = features(store, as_of)
    feature_seconds = time.perf_counter() - began
    types = pq.read_table(store.parent / "sim" / "truth").to_pandas().set_index("customer_id")
    truth = types["latent_type"].reindex(table["customer_id"].to_pylist()).to_numpy()
    known = pd.notna(truth)  # customers from other sources have no true type
    model, fit_seconds = fit(table, seed=0)
    began = time.perf_counter()
    labels = model.predict(table)
    assign_seconds = time.perf_counter() - began
    nearest = model.predict(table, assign_all=True)
    assigned = (labels >= 0) & known
    other, _ = fit(table, seed=1)
    same, _ = fit(table, seed=0)
    figures: dict[str, Any] = {
        "ari": round(float(adjusted_rand_score(truth[assigned], labels[assigned])), 4),
        "ari_all": round(float(adjusted_rand_score(truth[known], nearest[known])), 4),
        "coverage": round(float(assigned.sum() / known.sum()), 4),
        "assigned": int(assigned.sum()),
        "customers": int(known.sum()),
        "k": model.k_,
        "criterion": model.criterion,
        "stability_other_seed_ari": round(float(adjusted_rand_score(
            labels[assigned], other.predict(table)[assigned])), 4),
        "stability_same_seed_identical": bool(np.array_equal(same.predict(table), labels)),
        "features_dropped": model.dropped_,
        "personas": composition(labels, truth, list(model.default_names_)),
        "true_types_assigned": pd.Series(truth[assigned]).value_counts().to_dict(),
        "fit_seconds": round(fit_seconds, 1),
        "assign_us_per_customer": round(assign_seconds / len(table) * 1e6, 3),
        "feature_seconds": round(feature_seconds, 1),
        "data": {"customers": customers, "days": 365, "seed": 42, "as_of": args.as_of,
                 "min_events": model.min_events, "window_days": model.window_days},
        "target_ari": TARGET_ARI,
        "peak_rss_mb": peak_rss_mb(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    figures["meets_target"] = figures["ari"] >= TARGET_ARI
    write_result("personas", figures, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
