"""POST /v1/recommend latency over HTTP: the serving benchmark's store and champions, plus uplift
models trained and promoted there with `journey uplift` / `journey promote`, then a paced
open-loop run against `journey serve`."""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.lib.loadgen import paced
from benchmarks.serving import (
    free_port,
    last_event,
    latency_figures,
    prepare,
    run_journey,
    wait_ready,
)

# Decision windows on the serving store's calendar (its simulation starts 2025-01-01).
UPLIFT = {
    "name": "nba-bench",
    "horizon_days": 30,
    "control_rate": 0.1,
    "windows": {"train": {"start": "2025-04-01", "end": "2025-07-01"},
                "valid": {"start": "2025-07-31", "end": "2025-08-31"},
                "test": {"start": "2025-09-30", "end": "2025-10-15"}},
    "learners": [{"kind": "x"}],
    "seed": 0,
}
# Bumped when the uplift models learn something new that serving reads, so that the world's
# models are trained again (the support floors: models.uplift_support).
MODELS = "support-floors"


def prepare_with_uplift(work: Path, customers: int) -> tuple[Path, dict[str, str]]:
    store, env = prepare(work, customers)
    root = work / f"serving-{customers}"
    marker = root / "uplift.json"
    saved = json.loads(marker.read_text()) if marker.is_file() else {}
    if saved.get("spec") != UPLIFT or saved.get("models") != MODELS:
        started = time.perf_counter()
        spec = root / "uplift.yaml"
        spec.write_text(yaml.safe_dump(UPLIFT, sort_keys=False))
        run_journey(["uplift", "--experiment", str(spec)], env)
        run_journey(["promote", "--target", "uplift-convert", "--target", "uplift-churn"], env)
        marker.write_text(json.dumps({"spec": UPLIFT, "models": MODELS,
                                      "seconds": round(time.perf_counter() - started, 1)}))
    return store, env


def recommend_latency(work: Path, customers: int, rate: float, seconds: float) -> dict[str, Any]:
    store, env = prepare_with_uplift(work, customers)
    ids, last = last_event(store)
    as_of = (last + timedelta(hours=1)).replace(tzinfo=UTC)
    env = {**env, "JOURNEY_AS_OF": as_of.isoformat()}
    port = free_port()
    headers = {"X-API-Key": env["JOURNEY_API_KEY"]}
    rng = random.Random(21)
    picks = [rng.choice(ids) for _ in range(100_000)]

    def recommend(i: int) -> tuple[str, str, object]:
        return "POST", "/v1/recommend", {"customer_id": picks[i % len(picks)]}

    run_journey(["serve", "--detach", "--port", str(port)], env)
    pid = os.getpid()
    os.nice(10)  # as in benchmarks/serving.py: the generator yields the CPU to the server
    try:
        wait_ready(port, "/readyz")
        paced("127.0.0.1", port, rate, 3, recommend, headers)  # warm-up
        run = paced("127.0.0.1", port, rate, seconds, recommend, headers)
    finally:
        run_journey(["stop"], env)
    return {"recommend": latency_figures(run), "rate_rps": rate, "seconds": seconds,
            "customers": customers, "generator_pid": pid}
