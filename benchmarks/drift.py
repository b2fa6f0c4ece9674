"""Drift detection on the simulator: a shifted scenario (new session channel mix, prices up
30 %, purchase probability down 30 % from 2025-06-01) against the same world without the shift,
over several seeds.

Each world runs 300 days, so customers keep arriving (over the first 225) through every
window: once arrivals stop the active population ages, a real drift the check reports too.
The reference is the customers active in the 14 days before 2025-06-01, the live windows the
following 14-day windows
(``training.drift.drift_between`` with the shipped models/config/drift.yaml). Figures:
detection rate and windows to detection (1 = the first window after the shift) on the shifted
worlds, false alarm rate over every window of the unshifted ones, and the largest PSI seen
without a shift. Full run: 20k customers x 5 seeds; --quick: 3k x 3.

    python benchmarks/drift.py [--quick]
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.drift")

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from benchmarks.common import parser, peak_rss_mb, write_result

DAYS = 300
SHIFT_DAY = datetime(2025, 6, 1, tzinfo=UTC)
WINDOW = timedelta(days=14)
WINDOWS = 4
SHIFT = {"from": "2025-06-01", "session_channels": [0.05, 0.5, 0.05, 0.1, 0.1, 0.15, 0.05],
         "price_factor": 1.3, "buy_factor": 0.7}


def build(root: Path, customers: int, seed: int, shifted: bool) -> Path:
    from features.mapping import identity_mapping
    from features.simulator.run import SimSpec, simulate
    from features.store import EventStore
    from features.taxonomy import load_taxonomy

    params = None
    if shifted:
        params = root / "shift.yaml"
        root.mkdir(parents=True, exist_ok=True)
        params.write_text(yaml.safe_dump({"extends": "default", "shifts": [SHIFT]}))
    simulate(SimSpec(customers, DAYS, seed, str(params) if params else None), root / "sim")
    store = root / "events.duckdb"
    store.unlink(missing_ok=True)
    with EventStore(store) as es:
        es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        es.load_attributes(pq.read_table(root / "sim" / "customers"))
    return store


def windows(store: Path) -> list[dict[str, Any]]:
    """Each live window's alarm and largest PSI against the pre-shift reference."""
    from features.spec import load_spec
    from features.store import EventStore
    from models.drift import fit_profile, load_drift_settings, reference_rows
    from training.drift import active_features, drift_between

    spec, settings = load_spec(), load_drift_settings()
    out = []
    with EventStore(store, read_only=True) as es:
        ref = active_features(es, spec, SHIFT_DAY, WINDOW.days)
        profile = fit_profile(reference_rows(ref, settings), settings)
        for k in range(WINDOWS):
            start = SHIFT_DAY + k * WINDOW
            r = drift_between(es, SHIFT_DAY, start, start + WINDOW, spec=spec,
                              settings=settings, reference=profile)
            out.append({"alarm": r.alarm, "max_psi": round(max(x.psi for x in r.rows), 4),
                        "alarms": len(r.alarms()), "rows": r.window_size})
    return out


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    customers, seeds = (3_000, (1, 2, 3)) if args.quick else (20_000, (1, 2, 3, 4, 5))
    started = time.perf_counter()
    runs: dict[str, list[list[dict[str, Any]]]] = {"shift": [], "none": []}
    for seed in seeds:
        for kind in runs:
            root = args.work / "drift" / f"{kind}-{customers}-{seed}"
            runs[kind].append(windows(build(root, customers, seed, kind == "shift")))
            print(f"seed {seed} {kind}: {runs[kind][-1]}")
    first = [next((k + 1 for k, w in enumerate(ws) if w["alarm"]), None) for ws in runs["shift"]]
    quiet = [w for ws in runs["none"] for w in ws]
    write_result("drift", {
        "customers": customers,
        "seeds": list(seeds),
        "window_days": WINDOW.days,
        "windows_per_world": WINDOWS,
        "detection_rate": sum(f is not None for f in first) / len(first),
        "windows_to_detection": first,
        "detected_in_first_window": sum(f == 1 for f in first) / len(first),
        "false_alarm_rate": sum(w["alarm"] for w in quiet) / len(quiet),
        "max_psi_without_shift": max(w["max_psi"] for w in quiet),
        "min_max_psi_with_shift": min(ws[0]["max_psi"] for ws in runs["shift"]),
        "live_rows_per_window": min(w["rows"] for w in quiet),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }, args.quick)


if __name__ == "__main__":
    main()
