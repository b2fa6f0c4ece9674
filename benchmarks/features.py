"""Feature pipeline throughput against a floor and featuretools, online latency, Spark parity.

Full run: 1M simulated customers over 100 days; vectors as of 2025-03-15 from the ~20M events
before it. --quick: 50k customers. The event store is built once per size and reused.
Figures: events_per_s, peak_rss_mb, x_featuretools, x_floor, online_p99_ms, spark_parity.

    python benchmarks/features.py [--quick]
"""

from __future__ import annotations

import sys

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.features")

import json
import multiprocessing as mp
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from benchmarks.common import own_peak_rss_mb, parser, write_result
from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.store import EventStore
from features.taxonomy import load_taxonomy

CUTOFF = datetime(2025, 3, 15, tzinfo=UTC)
PEERS = Path(__file__).resolve().parent / "peers"
PEER_PYTHON = Path(__file__).resolve().parent / ".venv-peers" / "bin" / "python"


def build_store(root: Path, customers: int) -> Path:
    """Simulate and ingest once per size; later runs reuse the store."""
    store = root / "events.duckdb"
    done = root / "built.json"
    if done.is_file() and json.loads(done.read_text()).get("customers") == customers:
        return store
    started = time.perf_counter()
    simulate(SimSpec(customers, 100, seed=2026), root / "sim")
    store.unlink(missing_ok=True)
    with EventStore(store) as es:
        es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        es.load_attributes(pq.read_table(root / "sim" / "customers"))
    done.write_text(
        json.dumps({"customers": customers, "seconds": round(time.perf_counter() - started, 1)})
    )
    return store


def _pipeline(store: str, queue: Any) -> None:
    """In a fresh process (cold DuckDB buffers, like a batch job): peak RSS is its own."""
    from features.batch import BatchEngine
    from features.spec import load_spec

    with EventStore(store, read_only=True) as es:
        engine = BatchEngine(es, load_spec())
        started = time.perf_counter()
        engine.kernel(engine.enc.one_customer("warm-up", []), 1)  # load the compiled kernel
        load = time.perf_counter() - started
        started = time.perf_counter()
        table = engine.features(CUTOFF)
        cold = time.perf_counter() - started
        rss = own_peak_rss_mb()
        started = time.perf_counter()
        engine.features(CUTOFF)
        warm = time.perf_counter() - started
    queue.put(
        {
            "seconds": cold,
            "warm_seconds": warm,
            "kernel_load_seconds": load,
            "customers": table.num_rows,
            "features": table.num_columns - 1,
            "peak_rss_mb": rss,
        }
    )


def _floor(store: str, queue: Any) -> None:
    """The floor, also cold in a fresh process: one scan computing per-customer counts."""
    with EventStore(store, read_only=True) as es:
        started = time.perf_counter()
        es.con.execute(
            "SELECT customer_id, count(*) FROM events WHERE ts < ? GROUP BY ALL", [CUTOFF]
        ).to_arrow_table()
        cold = time.perf_counter() - started
        started = time.perf_counter()
        es.con.execute(
            "SELECT customer_id, count(*) FROM events WHERE ts < ? GROUP BY ALL", [CUTOFF]
        ).to_arrow_table()
        queue.put({"seconds": cold, "warm_seconds": time.perf_counter() - started})


def in_fresh_process(target: Any, store: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(str(store), queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def online_p99(store: Path) -> tuple[float, int]:
    from features.online import OnlineFeatures
    from features.spec import load_spec

    with EventStore(store, read_only=True) as es:
        row = es.con.execute(
            "SELECT customer_id, count(*) AS n FROM events WHERE ts < ? GROUP BY 1 "
            "ORDER BY abs(count(*) - 200) LIMIT 1",
            [CUTOFF],
        ).fetchone()
        assert row is not None
        history = es.customer_history(row[0], CUTOFF)
    online = OnlineFeatures(load_spec())
    for _ in range(100):
        online.vector(row[0], history, CUTOFF)
    lat = []
    for _ in range(3000):
        started = time.perf_counter()
        online.vector(row[0], history, CUTOFF)
        lat.append(time.perf_counter() - started)
    return float(np.percentile(np.array(lat) * 1000, 99)), history.num_rows


def sample_events(store: Path, out: Path, max_events: int) -> int:
    """Events before T of the first customers (by key) up to about ``max_events``."""
    with EventStore(store, read_only=True) as es:
        row = es.con.execute(
            """
            SELECT max(customer_key) FROM (
                SELECT customer_key, sum(count(*)) OVER (ORDER BY customer_key) AS running
                FROM events WHERE ts < ? GROUP BY customer_key) WHERE running <= ?""",
            [CUTOFF, max_events],
        ).fetchone()
        last_key = row[0] if row and row[0] is not None else 0
        es.con.execute(
            f"""COPY (SELECT event_id, customer_id, ts, event_type, channel, value,
                                  action, properties FROM events
                           WHERE ts < ? AND customer_key <= {int(last_key)})
                           TO '{out}' (FORMAT parquet)""",
            [CUTOFF],
        )
    rows: int = pq.ParquetFile(out).metadata.num_rows
    return rows


def spark_parity(sample: Path, work: Path) -> bool:
    from features.batch import BatchEngine
    from features.spark import local_session, spark_features
    from features.spec import load_spec

    spec = load_spec()
    small = work / "sample.duckdb"
    small.unlink(missing_ok=True)
    with EventStore(small) as es:
        es.ingest(sample, identity_mapping(), load_taxonomy())
        batch = {
            r.pop("customer_id"): r for r in BatchEngine(es, spec).features(CUTOFF).to_pylist()
        }
    spark = local_session("journey-bench")
    try:
        got = spark_features(spark.read.parquet(str(sample)), spec, CUTOFF).toArrow()
    finally:
        spark.stop()
    other = {r.pop("customer_id"): r for r in got.to_pylist()}
    if other.keys() != batch.keys():
        return False
    for cid, vec in batch.items():
        for k, v in vec.items():
            if k.startswith("attr_"):
                continue
            w = other[cid][k]
            if isinstance(v, float):
                if not (np.isnan(v) and np.isnan(w)) and abs(v - w) > 1e-9 * max(1.0, abs(v)):
                    return False
            elif v != w:
                return False
    return True


def featuretools_events_per_s(sample: Path, work: Path) -> dict[str, Any]:
    subprocess.run(["bash", str(PEERS / "setup.sh")], check=True)
    out = work / "featuretools.json"
    subprocess.run(
        [
            str(PEER_PYTHON),
            str(PEERS / "featuretools_dfs.py"),
            str(sample),
            CUTOFF.isoformat(),
            "7,30,90",
            str(out),
        ],
        check=True,
    )
    peer: dict[str, Any] = json.loads(out.read_text())
    peer["events_per_s"] = peer["events"] / peer["seconds"]
    return peer


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__ or "").parse_args(argv)
    customers = 50_000 if args.quick else 1_000_000
    root = args.work / f"features-{customers}"
    root.mkdir(parents=True, exist_ok=True)
    store = build_store(root, customers)
    with EventStore(store, read_only=True) as es:
        before = es.con.execute("SELECT count(*) FROM events WHERE ts < ?", [CUTOFF]).fetchone()
    events = int(before[0]) if before else 0
    batch = in_fresh_process(_pipeline, store)
    floor_run = in_fresh_process(_floor, store)
    floor = floor_run["seconds"]
    p99, online_events = online_p99(store)
    sample = root / "sample.parquet"
    sample_n = sample_events(store, sample, 30_000 if args.quick else 1_000_000)
    peer = featuretools_events_per_s(sample, root)
    parity = spark_parity(sample, root)
    ours = events / batch["seconds"]
    write_result(
        "features",
        {
            "events": events,
            "customers": batch["customers"],
            "features": batch["features"],
            "seconds": round(batch["seconds"], 2),
            "events_per_s": round(ours),
            "peak_rss_mb": round(batch["peak_rss_mb"]),
            "floor_seconds": round(floor, 3),
            "x_floor": round(batch["seconds"] / floor, 2),
            "warm_seconds": round(batch["warm_seconds"], 2),
            "floor_warm_seconds": round(floor_run["warm_seconds"], 3),
            "x_floor_warm": round(batch["warm_seconds"] / floor_run["warm_seconds"], 2),
            "featuretools_events": peer["events"],
            "featuretools_seconds": round(peer["seconds"], 2),
            "featuretools_events_per_s": round(peer["events_per_s"]),
            "x_featuretools": round(ours / peer["events_per_s"], 1),
            "online_p99_ms": round(p99, 3),
            "online_events": online_events,
            "spark_parity": parity,
            "spark_sample_events": sample_n,
            "kernel_load_seconds": round(batch["kernel_load_seconds"], 2),
        },
        args.quick,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
