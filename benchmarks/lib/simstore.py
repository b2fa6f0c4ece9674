"""A simulated event store built once per (customers, days, seed) and reused by benchmarks."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from features.mapping import identity_mapping
from features.simulator.run import SimSpec, params_text, simulate
from features.store import EventStore
from features.taxonomy import load_taxonomy


def build_sim_store(root: Path, customers: int, days: int, seed: int) -> Path:
    """``root``/events.duckdb with the simulation's events and customer attributes; the
    simulation itself stays in ``root``/sim (the oracle replays it)."""
    store = root / "events.duckdb"
    done = root / "built.json"
    # The default parameters' digest: a change to the simulator's defaults rebuilds the store.
    params = hashlib.sha256(params_text(None).encode()).hexdigest()[:16]
    key = {"customers": customers, "days": days, "seed": seed, "params": params}
    if done.is_file() and json.loads(done.read_text()).get("key") == key:
        return store
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    simulate(SimSpec(customers, days, seed=seed), root / "sim")
    store.unlink(missing_ok=True)
    with EventStore(store) as es:
        es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        es.load_attributes(pq.read_table(root / "sim" / "customers"))
    done.write_text(json.dumps({"key": key, "seconds": round(time.perf_counter() - started, 1)}))
    return store
