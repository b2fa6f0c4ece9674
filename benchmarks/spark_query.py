"""The Spark engine's fixed cost: how long the feature query takes to describe (the plan PySpark
builds before Spark runs anything) and to run, on a small simulated log.

A local session (2 cores) computes the vectors of 2,000 simulated customers over 120 days
(--quick: 500 over 60) `--repeats` times (5; --quick 3), as `journey features --engine spark`
does once per cutoff. Figures: session_s, read_s_first (the log's schema), plan_s_first,
plan_s (median of the later runs), run_s_first, run_s (median), columns, customers, events.

    python benchmarks/spark_query.py [--quick] [--repeats N]
"""

from __future__ import annotations

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.spark_query")

import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from benchmarks.common import parser, write_result
from features.simulator.run import SimSpec, simulate
from features.spec import load_spec

START = datetime(2025, 1, 1, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--repeats", type=int, default=None, help="queries described and run")
    args = p.parse_args(argv)
    customers, days = (500, 60) if args.quick else (2000, 120)
    repeats = max(2, args.repeats or (3 if args.quick else 5))
    work = args.work / "spark_query"
    shutil.rmtree(work, ignore_errors=True)
    simulate(SimSpec(customers, days, seed=5), work / "sim", workers=1)
    events_dir = work / "sim" / "events"
    events = sum(pq.ParquetFile(f).metadata.num_rows for f in events_dir.glob("*.parquet"))

    from features.spark import local_session, spark_features

    started = time.perf_counter()
    spark = local_session("journey-bench")
    session_s = time.perf_counter() - started
    spec, cutoff = load_spec(), START + timedelta(days=days - 7)
    reads, plans, runs, rows, columns = [], [], [], 0, 0
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            log = spark.read.parquet(str(events_dir))
            t0 = time.perf_counter()
            query = spark_features(log, spec, cutoff)
            t1 = time.perf_counter()
            table = query.toArrow()
            reads.append(t0 - t)
            plans.append(t1 - t0)
            runs.append(time.perf_counter() - t1)
            rows, columns = table.num_rows, table.num_columns
    finally:
        spark.stop()
    figures = {
        "session_s": round(session_s, 2),
        "read_s_first": round(reads[0], 2),
        "plan_s_first": round(plans[0], 2),
        "plan_s": round(statistics.median(plans[1:]), 2),
        "run_s_first": round(runs[0], 2),
        "run_s": round(statistics.median(runs[1:]), 2),
        "plans_s": [round(x, 2) for x in plans],
        "runs_s": [round(x, 2) for x in runs],
        "columns": columns,
        "customers": rows,
        "events": events,
        "data": {"customers": customers, "days": days, "seed": 5, "cutoff": cutoff.isoformat(),
                 "repeats": repeats},
    }
    write_result("spark_query", figures, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
