"""Sustained mixed load on the real service: does it hold its latency and memory for ten minutes?

The serving benchmark's world (full: 20k simulated customers; --quick: 3k) with its champion
models and uplift models (trained and promoted there once, as benchmarks/nba.py does), on a
fresh copy of its event store (the run ingests into it). `journey serve` (BentoML) on
127.0.0.1; a bounded open-loop generator (benchmarks/lib/loadgen.py: 8 keep-alive
connections, latency from each request's scheduled time) sends 200 req/s for 10 minutes
(--quick: 40 s): 70 % POST /v1/predict (random stored customers), 20 % POST /v1/events (one
new event of a random customer, some new customers), 10 % POST /v1/recommend. Per window (a
minute; --quick: 10 s): requests, errors, p50/p99 overall and per route, and the service's
resident memory as its own /v1/metrics reports it.

Targets: 0 errors; the last window's p99 within 20 % of the first's; RSS growth (end of the
run against the end of an unmeasured warm-up of the same traffic: 120 s, --quick 5 s) at most
5 %.

    python benchmarks/load.py [--quick] [--seconds S] [--window W]
    python benchmarks/load.py --store EVENTS.duckdb --home HOME   # your store and champions

With --store and --home the run serves that store (a copy: the run ingests) and the champions
of that home's registry (predictive and uplift) instead of the simulated world; neither is
written to, and the run's API key is its own.
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.load")

import argparse
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import finish_on_signals, parser, write_result
from benchmarks.lib.loadgen import Connection, Request, Sample, open_loop
from benchmarks.lib.nba_latency import prepare_with_uplift
from benchmarks.serving import free_port, last_event, run_journey, wait_ready
from features.store import EventStore
from serving.keys import Role, create_key

TARGETS = {"errors": 0, "p99_last_vs_first_max": 1.2, "rss_growth_pct_max": 5.0}
RATE = 200.0
MIX = {"predict": 0.7, "ingest": 0.2, "recommend": 0.1}
EVENT_TYPES = {"page_view": 40, "product_view": 25, "email_open": 15, "add_to_cart": 10,
               "purchase": 5, "support_ticket": 5}
# Unmeasured traffic first (numba, LightGBM and DuckDB caches warm, the first touched
# customers' events kept, a first store checkpoint behind); the start RSS is read after it.
# The store's index memory (now only the customer-id index; DuckDB keeps the index blocks
# lookups read) is reported beside RSS (store_index_growth_mb).
WARMUP_S = {"quick": 5.0, "full": 120.0}


def service_env(store: Path, env: dict[str, str], root: Path, as_of: datetime) -> dict[str, str]:
    """The prepared registry, a fresh copy of the store, and a home of its own (its PID file,
    log and API key), so neither the prepared store nor the prepared home is written to."""
    prepared = Path(env["JOURNEY_HOME"]).resolve()
    if root.exists():
        shutil.rmtree(root)
    (root / "home").mkdir(parents=True)
    copy = root / "events.duckdb"
    shutil.copy(store, copy)
    # Opened for writing once, as a long-running service's store was: indexes older stores
    # kept are dropped and the change checkpointed (0.25 s, once), not inside the measurement.
    EventStore(copy).close()
    keys = root / "home" / "api_keys.yaml"
    return {**env, "JOURNEY_HOME": str(root / "home"), "JOURNEY_STORE": str(copy),
            "JOURNEY_MLFLOW_TRACKING_URI": f"sqlite:///{prepared / 'mlflow' / 'mlflow.db'}",
            "JOURNEY_API_KEYS": str(keys), "JOURNEY_API_KEY": create_key(keys, "load", Role.admin),
            "JOURNEY_AS_OF": as_of.isoformat()}


def world(args: argparse.Namespace, customers: int) -> tuple[Path, dict[str, str], dict[str, Any]]:
    """The store, an environment naming the home whose champions serve, and what they are."""
    if args.store is None:
        store, env = prepare_with_uplift(args.work, customers)
        return store, env, {"customers": customers, "days": 365, "seed": 11}
    for path in (args.store, args.home / "mlflow" / "mlflow.db"):
        if not path.is_file():
            raise SystemExit(f"load.py: {path} does not exist (--store is an event store, "
                             "--home a Journey home whose registry has champions)")
    env = {**os.environ, "JOURNEY_HOME": str(args.home.resolve()), "BENTOML_DO_NOT_TRACK": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    return args.store.resolve(), env, {"store": str(args.store), "home": str(args.home)}


def requests(ids: list[str], as_of: datetime, tag: str,
             seed: int) -> Callable[[int], tuple[str, Request]]:
    """Request ``i`` of the mix: the same for a given seed whichever generator thread asks
    (event ids unique per ``tag``)."""
    kinds, weights = list(MIX), list(MIX.values())
    types, type_weights = list(EVENT_TYPES), list(EVENT_TYPES.values())

    def make(i: int) -> tuple[str, Request]:
        rng = random.Random(seed * 1_000_003 + i)
        kind = rng.choices(kinds, weights)[0]
        if kind != "ingest":
            return kind, ("POST", f"/v1/{kind}", {"customer_id": rng.choice(ids)})
        customer = rng.choice(ids) if rng.random() < 0.95 else f"load-{tag}-{rng.randrange(10**6)}"
        event_type = rng.choices(types, type_weights)[0]
        when = as_of - timedelta(seconds=rng.uniform(60, 20 * 86_400))
        event = {"event_id": f"load-{tag}-{i}", "customer_id": customer,
                 "ts": when.isoformat(), "event_type": event_type,
                 "channel": rng.choice(["web", "app", "email", "search"]),
                 "value": round(rng.uniform(5, 150), 2) if event_type == "purchase" else None}
        return kind, ("POST", "/v1/events", {"events": [event]})

    return make


def drift_worker_mb() -> float | None:
    """The drift comparisons' child process's resident memory (models/drift_worker.py; not
    part of the service's RSS), None when it is not running."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if "models.drift_worker" in " ".join(proc.info["cmdline"] or []):
            try:
                return round(float(proc.memory_info().rss) / 2**20, 1)
            except psutil.NoSuchProcess:  # replaced meanwhile
                return None
    return None


def rss_mb(port: int, headers: dict[str, str]) -> tuple[float, float]:
    """The service process's resident memory and, of it, the event store's index memory
    (journey_store_memory_bytes{component="art_index"}), both from its own /v1/metrics."""
    conn = Connection("127.0.0.1", port)
    try:
        status, body = conn.request("GET", "/v1/metrics", None, headers)
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"/v1/metrics answered {status}")
    found: dict[str, float] = {}
    for line in body.decode().splitlines():
        for name in ("process_resident_memory_bytes ",
                     'journey_store_memory_bytes{component="art_index"} '):
            if line.startswith(name):
                found[name] = round(float(line.split()[-1]) / 2**20, 1)
    if len(found) < 2:
        raise RuntimeError("/v1/metrics lacks the process or store memory")
    rss, index = found.values()
    return rss, index


class RssMonitor:
    """The service's RSS at the end of each window, read on a connection of its own."""

    def __init__(self, port: int, headers: dict[str, str], window: float, windows: int):
        self.readings: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._args = (port, headers, window, windows)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        port, headers, window, windows = self._args
        start = time.perf_counter()
        for k in range(1, windows + 1):
            if self._stop.wait(max(0.0, start + k * window - time.perf_counter())):
                return
            self.readings.append(rss_mb(port, headers))


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def window_figures(samples: list[Sample], window: float, windows: int,
                   rss: list[tuple[float, float]]) -> list[dict[str, Any]]:
    out = []
    for k in range(windows):
        mine = [s for s in samples if k * window <= s.due_s < (k + 1) * window]
        lat = [s.latency_ms for s in mine]
        by_kind = {}
        for kind in MIX:
            kl = [s.latency_ms for s in mine if s.kind == kind]
            by_kind[kind] = {"requests": len(kl), "p50_ms": pct(kl, 50), "p99_ms": pct(kl, 99),
                             "errors": sum(1 for s in mine if s.kind == kind and _failed(s))}
        out.append({"window": k + 1, "from_s": round(k * window, 1), "requests": len(mine),
                    "errors": sum(1 for s in mine if _failed(s)), "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99), "max_ms": round(max(lat), 3) if lat else None,
                    "rss_mb": rss[k][0] if k < len(rss) else None,
                    "store_index_mb": rss[k][1] if k < len(rss) else None,
                    "by_route": by_kind})
    return out


def stalls(samples: list[Sample], top: int = 10) -> list[dict[str, Any]]:
    """The seconds with the slowest requests (when in the run, how slow, how many over 50 ms):
    a p99 that moves is a few such seconds, and their timing says what caused them."""
    per_second: dict[int, list[float]] = {}
    for s in samples:
        per_second.setdefault(int(s.due_s), []).append(s.latency_ms)
    worst = sorted(per_second.items(), key=lambda kv: -max(kv[1]))[:top]
    return [{"at_s": at, "max_ms": round(max(lat), 1), "over_50ms": sum(x > 50 for x in lat)}
            for at, lat in sorted(worst)]


def _failed(s: Sample) -> bool:
    return s.status == 0 or s.status >= 400


def measure(env: dict[str, str], ids: list[str], as_of: datetime, seconds: float,
            window: float, warmup: float) -> dict[str, Any]:
    port = free_port()
    headers = {"X-API-Key": env["JOURNEY_API_KEY"]}
    tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    windows = max(1, round(seconds / window))
    started = time.perf_counter()
    run_journey(["serve", "--detach", "--port", str(port)], env)
    out: dict[str, Any] = {"service_startup_s": round(time.perf_counter() - started, 1),
                           "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    os.nice(10)  # as in benchmarks/serving.py: the generator yields the CPU to the service
    try:
        wait_ready(port, "/readyz")
        warm = open_loop("127.0.0.1", port, RATE, warmup, requests(ids, as_of, tag + "w", 1),
                         headers)
        out["warmup_errors"] = sum(1 for s in warm if _failed(s))
        out["rss_start_mb"], out["store_index_start_mb"] = rss_mb(port, headers)
        out["drift_worker_rss_start_mb"] = drift_worker_mb()
        out["measured_from"] = datetime.now(UTC).isoformat()  # stalls' at_s count from here
        with RssMonitor(port, headers, window, windows) as monitor:
            samples = open_loop("127.0.0.1", port, RATE, windows * window,
                                requests(ids, as_of, tag, 2), headers)
        out["rss_end_mb"], out["store_index_end_mb"] = rss_mb(port, headers)
        out["drift_worker_rss_end_mb"] = drift_worker_mb()
        out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        run_journey(["stop"], env)
    out["windows"] = window_figures(samples, window, windows, monitor.readings)
    out["stalls"] = stalls(samples)
    out["requests"] = len(samples)
    out["errors"] = sum(1 for s in samples if _failed(s))
    out["achieved_rps"] = round(len(samples) / (windows * window), 1)
    out["statuses"] = {str(k): v for k, v in
                       sorted(Counter(s.status for s in samples).items())}
    return out


def main(argv: list[str] | None = None) -> int:
    finish_on_signals()
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="simulated customers")
    p.add_argument("--seconds", type=float, default=None, help="measured duration")
    p.add_argument("--window", type=float, default=None, help="seconds per window")
    p.add_argument("--results", type=Path, default=None, help="where load.json goes")
    p.add_argument("--store", type=Path, default=None, help="serve this event store (with --home)")
    p.add_argument("--home", type=Path, default=None,
                   help="serve the champions of this Journey home's registry (with --store)")
    args = p.parse_args(argv)
    if (args.store is None) != (args.home is None):
        p.error("--store and --home go together")
    customers = args.customers or (3000 if args.quick else 20_000)
    seconds = args.seconds or (40.0 if args.quick else 600.0)
    window = args.window or (10.0 if args.quick else 60.0)
    warmup = WARMUP_S["quick" if args.quick else "full"]
    started = time.perf_counter()
    store, env, data = world(args, customers)
    ids, last = last_event(store)
    as_of = (last + timedelta(hours=1)).replace(tzinfo=UTC)
    run = f"load-{customers}" if args.store is None else "load-own"
    env = service_env(store, env, args.work / run, as_of)
    m = measure(env, ids, as_of, seconds, window, warmup)
    first, last_w = m["windows"][0], m["windows"][-1]
    figures: dict[str, Any] = {
        "errors": m["errors"],
        "p99_first_ms": first["p99_ms"],
        "p99_last_ms": last_w["p99_ms"],
        "p99_last_vs_first": round(last_w["p99_ms"] / first["p99_ms"], 3),
        "rss_start_mb": m["rss_start_mb"],
        "rss_end_mb": m["rss_end_mb"],
        "rss_growth_pct": round(100 * (m["rss_end_mb"] / m["rss_start_mb"] - 1), 2),
        # Of the growth, the event store's index read in from disk as ingests reach it.
        "store_index_growth_mb": round(m["store_index_end_mb"] - m["store_index_start_mb"], 1),
        "requests": m["requests"],
        "achieved_rps": m["achieved_rps"],
        "windows": m["windows"],
        "stalls": m["stalls"],
        "detail": {k: v for k, v in m.items()
                   if k not in ("windows", "stalls", "requests", "errors")},
        "data": {**data, "stored_customers": len(ids), "as_of": as_of.isoformat(),
                 "rate_rps": RATE, "mix": MIX, "seconds": seconds, "window_s": window,
                 "warmup_s": warmup},
        "targets": TARGETS,
        "seconds": round(time.perf_counter() - started, 1),
    }
    figures["meets_targets"] = bool(
        figures["errors"] <= TARGETS["errors"]
        and figures["p99_last_vs_first"] <= TARGETS["p99_last_vs_first_max"]
        and figures["rss_growth_pct"] <= TARGETS["rss_growth_pct_max"])
    write_result("load", figures, args.quick, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
