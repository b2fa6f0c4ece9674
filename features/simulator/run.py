"""Run the simulator to Parquet: customers in fixed chunks, each chunk streamed day by day.

Output directory layout:
  events/part-NNNNN.parquet     touchpoint events (the event contract)
  customers/part-NNNNN.parquet  observable attributes (region, device, acquisition, first seen)
  truth/part-NNNNN.parquet      hidden ground truth (latent type, starting engagement)
  simulation.json               seed, size, dates, parameter hash: all the oracle needs
  params.yaml                   the exact parameters used
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.simulator.emit import Emitter, customer_ids
from features.simulator.engine import Engine, Population, State, draw_population
from features.simulator.params import (
    SimParams,
    late_shifts,
    load_params,
    params_from_text,
    resolved_text,
)
from features.simulator.params_check import read_file

CHUNK_CUSTOMERS = 20_000
ROW_GROUP_ROWS = 1_000_000
MANIFEST = "simulation.json"
# Without logging set up (the CLI), Python prints a warning's bare message on stderr.
log = logging.getLogger("journey.simulator")


@dataclass(frozen=True)
class SimSpec:
    customers: int
    days: int
    seed: int
    params_path: str | None = None
    chunk_customers: int = CHUNK_CUSTOMERS


@dataclass(frozen=True)
class SimResult:
    out: str
    customers: int
    events: int
    days: int
    seed: int
    start: str


def params_text(path: str | None) -> str:
    if path is None:
        from importlib import resources

        return resources.files("features.simulator").joinpath("default.yaml").read_text("utf-8")
    return resolved_text(read_file(Path(path)), path)


def _run_chunk(args: tuple[SimSpec, str, int, str]) -> int:
    spec, out, chunk, text = args
    params = params_from_text(text, spec.params_path or "<default simulator>")
    lo = chunk * spec.chunk_customers
    index = np.arange(lo, min(lo + spec.chunk_customers, spec.customers), dtype=np.int64)
    pop = draw_population(params, spec.seed, index, spec.days)
    _write_people(Path(out), chunk, pop, params)
    engine, emitter, state = Engine(params), Emitter(params, spec.seed), State.initial(pop)
    path = Path(out) / "events" / f"part-{chunk:05d}.parquet"
    pending: list[pa.Table] = []
    rows = written = 0
    with pq.ParquetWriter(path, _events_schema(emitter), compression="zstd") as writer:
        for day in range(spec.days):
            table = emitter.events(engine.step(day, pop, state), pop.index)
            if table.num_rows:
                pending.append(table)
                rows += table.num_rows
            if pending and (rows >= ROW_GROUP_ROWS or day == spec.days - 1):
                batch = pa.concat_tables(pending).cast(_events_schema(emitter))
                writer.write_table(batch, row_group_size=ROW_GROUP_ROWS)
                written += batch.num_rows
                pending, rows = [], 0
    return written


def _events_schema(emitter: Emitter) -> pa.Schema:
    dict8 = pa.dictionary(pa.int8(), pa.string())
    return pa.schema(
        [
            ("event_id", pa.string()),
            ("customer_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("event_type", dict8),
            ("channel", dict8),
            ("value", pa.float64()),
            ("action", dict8),
            ("properties", pa.string()),
        ]
    )


def _write_people(out: Path, chunk: int, pop: Population, p: SimParams) -> None:
    ids = customer_ids(pop.index)
    first_seen = [p.start + timedelta(days=int(d)) for d in pop.arrival]
    customers = pa.table(
        {
            "customer_id": ids,
            "region": pa.array(np.array(p.regions)[pop.region]),
            "device": pa.array(np.array(p.devices)[pop.device]),
            "acquisition_channel": pa.array(np.array(p.acquisition_channels)[pop.acquisition]),
            "first_seen": pa.array(first_seen, pa.date32()),
        }
    )
    truth = pa.table(
        {
            "customer_id": ids,
            "latent_type": pa.array(np.array(p.types)[pop.type]),
            "arrival_day": pa.array(pop.arrival),
            "start_engagement": pa.array(pop.e0),
        }
    )
    pq.write_table(customers, out / "customers" / f"part-{chunk:05d}.parquet")
    pq.write_table(truth, out / "truth" / f"part-{chunk:05d}.parquet")


def simulate(spec: SimSpec, out: str | Path, workers: int | None = None) -> SimResult:
    """Simulate ``spec`` into ``out`` (replacing earlier parts there); deterministic by seed."""
    if spec.customers < 1 or spec.days < 1:
        raise ValueError("customers and days must be at least 1")
    params = load_params(spec.params_path)  # validates before any work starts
    for warning in late_shifts(params, spec.days):  # on stderr, as the CLI's warnings are
        log.warning(warning)
    text = params_text(spec.params_path)
    out = Path(out)
    for sub in ("events", "customers", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob("part-*.parquet"):
            old.unlink()
    chunks = range((spec.customers + spec.chunk_customers - 1) // spec.chunk_customers)
    jobs = [(spec, str(out), c, text) for c in chunks]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        events = sum(map(_run_chunk, jobs))
    else:
        with ProcessPoolExecutor(workers) as pool:
            events = sum(pool.map(_run_chunk, jobs))
    (out / "params.yaml").write_text(text, encoding="utf-8")
    result = SimResult(
        str(out), spec.customers, events, spec.days, spec.seed, params.start.isoformat()
    )
    manifest = {
        **asdict(spec),
        **asdict(result),
        "params_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return result
