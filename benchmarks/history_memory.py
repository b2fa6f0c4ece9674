"""The service's in-memory histories: how much memory they take, how fast they load and read.

Full run: 200k simulated customers over 365 days (~17.4M events); --quick: 20k (~1.7M).
The histories are loaded as the service loads them (``HistoryIndex.load``) after a warm-up
load of a tiny store (numba's kernels and the libraries are not part of the figure). Figures:
index_mb and bytes_per_event (the narrowed columns), wide_mb and wide_bytes_per_event (the
batch engine's arrays, what the index held before), rss_growth_mb (the process's growth for
the load), load_seconds, read_us (one customer's events, as /v1/predict reads them),
many_all_seconds (every customer at once, as a scoring run reads them), load_peak_growth_mb
and load_peak_bytes_per_event (the process's peak during the load over its size before it:
what a load needs on top of the running service), peak_rss_mb.

    python benchmarks/history_memory.py [--quick]
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.history_memory")

import gc
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import parser, peak_rss_mb, write_result
from benchmarks.lib.simstore import build_sim_store
from features.compact_events import WIDE
from features.history import HistoryIndex
from features.spec import load_spec
from features.store import EventStore

AS_OF_US = 1_767_225_600_000_000  # 2026-01-01: after every simulated event
CUST_BYTES = 4  # the wide arrays' per-event customer code (int32)


def measure(store: Path, warm: Path) -> dict[str, Any]:
    """The figures, in a fresh process (its peak is the load's, not the store's build)."""
    spec = load_spec()
    process = psutil.Process()
    with EventStore(warm, read_only=True) as es:
        HistoryIndex.load(es, spec)
    gc.collect()
    before = process.memory_info().rss
    with EventStore(store, read_only=True) as es:
        started = time.perf_counter()
        index = HistoryIndex.load(es, spec)
        load_s = time.perf_counter() - started
    gc.collect()
    growth = process.memory_info().rss - before
    peak_growth = peak_rss_mb()["self"] * 2**20 - before  # the warm-up load peaked far lower
    events = len(index.loaded)
    wide = CUST_BYTES + sum(WIDE[name]().itemsize for name in WIDE)
    ids = index.customer_ids()
    started = time.perf_counter()
    for cid in ids[:5000]:
        index.arrays(cid, AS_OF_US)
    read_us = (time.perf_counter() - started) / min(5000, len(ids)) * 1e6
    started = time.perf_counter()
    index.many(ids, AS_OF_US)
    many_s = time.perf_counter() - started
    return {
        "customers": len(ids),
        "events": events,
        "index_mb": round(index.loaded.nbytes / 2**20, 1),
        "bytes_per_event": round(index.loaded.nbytes / max(events, 1), 2),
        "wide_mb": round(wide * events / 2**20, 1),
        "wide_bytes_per_event": wide,
        "index_vs_wide": round(index.loaded.nbytes / max(wide * events, 1), 3),
        "rss_growth_mb": round(growth / 2**20, 1),
        "load_peak_growth_mb": round(peak_growth / 2**20, 1),
        "load_peak_bytes_per_event": round(peak_growth / max(events, 1), 1),
        "load_seconds": round(load_s, 2),
        "read_us": round(read_us, 1),
        "many_all_seconds": round(many_s, 2),
        "peak_rss_mb": peak_rss_mb()["self"],
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--customers", type=int, default=None)
    args = p.parse_args(argv)
    customers = args.customers or (20_000 if args.quick else 200_000)
    store = build_sim_store(args.work / f"history-{customers}", customers, 365, seed=42)
    warm = build_sim_store(args.work / "history-warm", 200, 30, seed=1)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        figures = pool.submit(measure, store.resolve(), warm.resolve()).result()
    write_result("history_memory", {**figures,
                                    "data": {"customers": customers, "days": 365, "seed": 42}},
                 args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
