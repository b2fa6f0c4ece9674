"""Simulator and ingest throughput, with peak memory.

Full run: 1M customers over 365 days streamed to Parquet in chunks (bounded memory), then the
first parts (100k customers) ingested into a fresh event store. --quick: 20k customers, all
ingested. Figures: customers_per_s, events_per_s, ingest_events_per_s, peak_rss_mb.

    python benchmarks/simulate.py [--quick]
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.simulate")

import shutil
import sys
import time

import pyarrow.parquet as pq

from benchmarks.common import parser, peak_rss_mb, write_result
from features.mapping import identity_mapping
from features.simulator.run import CHUNK_CUSTOMERS, SimSpec, simulate
from features.store import EventStore
from features.taxonomy import load_taxonomy
from journey.settings import Settings


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--customers", type=int, default=None)
    p.add_argument("--days", type=int, default=365)
    p.add_argument(
        "--ingest-customers",
        type=int,
        default=100_000,
        help="customers whose events are ingested (full run)",
    )
    args = p.parse_args(argv)
    customers = args.customers or (20_000 if args.quick else 1_000_000)
    work = args.work / "simulate"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    started = time.perf_counter()
    result = simulate(SimSpec(customers, args.days, seed=2026), work / "sim")
    sim_s = time.perf_counter() - started
    sim_rss = peak_rss_mb()

    parts = sorted((work / "sim" / "events").glob("part-*.parquet"))
    n_parts = len(parts) if args.quick else max(1, args.ingest_customers // CHUNK_CUSTOMERS)
    sample = work / "ingest"
    sample.mkdir()
    for part in parts[:n_parts]:
        (sample / part.name).symlink_to(part.resolve())
    sample_events = sum(pq.ParquetFile(p).metadata.num_rows for p in parts[:n_parts])
    started = time.perf_counter()
    memory = Settings().store_memory  # as `journey ingest` opens the store
    with EventStore(work / "events.duckdb", memory_limit=memory) as store:
        report = store.ingest(sample, identity_mapping(), load_taxonomy())
    ingest_s = time.perf_counter() - started
    assert report.append.inserted == sample_events == report.load.rows_read
    rss = peak_rss_mb()

    write_result(
        "simulate",
        {
            "customers": customers,
            "days": args.days,
            "events": result.events,
            "simulate_seconds": round(sim_s, 2),
            "customers_per_s": round(customers / sim_s),
            "events_per_s": round(result.events / sim_s),
            "ingest_events": sample_events,
            "ingest_seconds": round(ingest_s, 2),
            "ingest_events_per_s": round(sample_events / ingest_s),
            "peak_rss_mb": max(rss["self"], rss["children"]),
            "simulate_worker_peak_rss_mb": sim_rss["children"],
            "ingest_process_peak_rss_mb": rss["self"],
            "ingest_store_memory_limit": memory,
        },
        args.quick,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
