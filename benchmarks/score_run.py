"""Requests while the service scores every customer: do personalization calls wait for it?

A scoring run (POST /v1/admin/score: every customer's scores, top action, journey map and
KPIs) runs in the service process beside the requests. The serving benchmark's world (full:
20k simulated customers; --quick: 3k) with its champions and uplift models (as
benchmarks/nba.py trains them), `journey serve` on 127.0.0.1, and an open-loop generator
(benchmarks/lib/loadgen.py: 8 keep-alive connections, latency from each request's scheduled
time, so a stalled server shows as latency) sending 200 POST /v1/predict a second. In each
round a scoring run starts one second in; the requests due while it ran are "during", those
due before it or more than a second after it are "idle".

Figures: during and idle p50/p99/max (ms), the scoring runs' seconds, and p99 during / idle.
Target: p99 during a scoring run at most 50 ms (a personalization call's budget) and no
errors.

    python benchmarks/score_run.py [--quick] [--rounds N]
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.score_run")

import json
import os
import random
import sys
import threading
import time
from datetime import UTC, timedelta
from typing import Any

import numpy as np

from benchmarks.common import finish_on_signals, parser, write_result
from benchmarks.lib.loadgen import Connection, Sample, open_loop
from benchmarks.lib.nba_latency import prepare_with_uplift
from benchmarks.serving import free_port, last_event, run_journey, wait_ready

TARGETS = {"during_p99_ms_max": 50.0, "errors": 0}
RATE = 200.0
LEAD_S = 1.0  # predicts before the scoring run starts, in each round
SETTLE_S = 1.0  # after it ends, requests still queued behind it are not "idle"


def _score(port: int, headers: dict[str, str], out: dict[str, Any], start: float) -> None:
    """One scoring run, timed on the generator's clock (``start``: its round's time 0)."""
    time.sleep(max(0.0, start + LEAD_S - time.perf_counter()))
    conn = Connection("127.0.0.1", port)
    try:
        out["began"] = time.perf_counter() - start
        status, body = conn.request("POST", "/v1/admin/score", {}, headers)
        out["ended"] = time.perf_counter() - start
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"/v1/admin/score answered {status}: {body[:300]!r}")
    reply = json.loads(body)
    out["seconds"] = reply["seconds"]
    out["customers"] = reply["snapshot"]["customers"]


def one_round(port: int, headers: dict[str, str], ids: list[str], seconds: float,
              seed: int) -> tuple[list[Sample], dict[str, Any]]:
    rng = random.Random(seed)
    picks = [rng.choice(ids) for _ in range(int(RATE * seconds) + 1)]
    run: dict[str, Any] = {}
    # open_loop's time 0 is 50 ms after it is called; the scoring thread counts from there.
    start = time.perf_counter() + 0.05
    scorer = threading.Thread(target=_score, args=(port, headers, run, start))
    scorer.start()
    samples = open_loop("127.0.0.1", port, RATE, seconds,
                        lambda i: ("predict", ("POST", "/v1/predict",
                                               {"customer_id": picks[i]})), headers)
    scorer.join()
    if "ended" not in run:
        raise RuntimeError(f"the scoring run did not end within the {seconds:.0f} s round")
    return samples, run


def figures(latencies: list[float]) -> dict[str, float]:
    a = np.asarray(latencies)
    return {"p50": round(float(np.percentile(a, 50)), 2),
            "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2), "requests": int(a.size)}


def measure(env: dict[str, str], ids: list[str], rounds: int, seconds: float
            ) -> dict[str, Any]:
    port = free_port()
    headers = {"X-API-Key": env["JOURNEY_API_KEY"]}
    run_journey(["serve", "--detach", "--port", str(port)], env)
    os.nice(10)  # as in benchmarks/serving.py: the generator yields the CPU to the server
    during: list[float] = []
    idle: list[float] = []
    runs, errors = [], 0
    try:
        wait_ready(port, "/readyz")
        # Warm-up: one scoring run (numba, LightGBM and caches; the first snapshot written)
        # under the same traffic, not measured.
        one_round(port, headers, ids, seconds, seed=0)
        for k in range(rounds):
            samples, run = one_round(port, headers, ids, seconds, seed=k + 1)
            runs.append(run)
            for s in samples:
                errors += s.status != 200
                if run["began"] <= s.due_s <= run["ended"]:
                    during.append(s.latency_ms)
                elif s.due_s < run["began"] or s.due_s > run["ended"] + SETTLE_S:
                    idle.append(s.latency_ms)
    finally:
        run_journey(["stop"], env)
    return {"during": figures(during), "idle": figures(idle), "errors": errors,
            "score_seconds": [round(r["ended"] - r["began"], 2) for r in runs],
            "score_seconds_service": [r["seconds"] for r in runs],
            "customers_scored": runs[0]["customers"]}


def main(argv: list[str] | None = None) -> int:
    finish_on_signals()
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="simulated customers")
    p.add_argument("--rounds", type=int, default=None, help="scoring runs measured")
    args = p.parse_args(argv)
    customers = args.customers or (3000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 8)
    started = time.perf_counter()
    store, env = prepare_with_uplift(args.work, customers)
    ids, last = last_event(store)
    as_of = (last + timedelta(hours=1)).replace(tzinfo=UTC)
    env = {**env, "JOURNEY_AS_OF": as_of.isoformat()}
    # Long enough for the run to end inside its round with idle time after it.
    seconds = 5.0 if customers <= 5000 else 10.0
    m = measure(env, ids, rounds, seconds)
    out: dict[str, Any] = {
        "during_p50_ms": m["during"]["p50"],
        "during_p99_ms": m["during"]["p99"],
        "during_max_ms": m["during"]["max"],
        "idle_p99_ms": m["idle"]["p99"],
        "p99_during_vs_idle": round(m["during"]["p99"] / m["idle"]["p99"], 2),
        "score_seconds": round(float(np.median(m["score_seconds"])), 2),
        "detail": m,
        "data": {"customers": customers, "days": 365, "seed": 11, "as_of": as_of.isoformat(),
                 "rate_rps": RATE, "rounds": rounds, "round_seconds": seconds},
        "targets": TARGETS,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out["meets_targets"] = bool(out["during_p99_ms"] <= TARGETS["during_p99_ms_max"]
                                and m["errors"] == 0)
    write_result("score_run", out, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
