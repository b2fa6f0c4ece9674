"""Shared data for engine tests: a simulated store, and a local Spark session stopped by PID."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.store import EventStore
from features.taxonomy import load_taxonomy

SIM_START = datetime(2025, 1, 1, tzinfo=UTC)
SIM_CUTOFF = SIM_START + timedelta(days=90)
# The JVM's quick compiler only: the tests' logs are small, so the JVM spends most of a query
# compiling, and the optimising compiler's faster code never pays back its compile time here
# (benchmarks/spark_query.py --quick: first query 19.5 -> 13.1 s, later ones 3.9 -> 3.3 s).
# On a larger log it would (2,000 customers: later queries 4.3 s with it, 6.5 s without), so
# Journey's own sessions keep it.
QUICK_JIT = ("-XX:TieredStopAtLevel=1",)


def simulated_store(root: Path, customers: int = 1500, days: int = 120) -> Path:
    simulate(SimSpec(customers, days, seed=3), root / "sim", workers=1)
    path = root / "events.duckdb"
    with EventStore(path) as store:
        store.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        store.load_attributes(pq.read_table(root / "sim" / "customers"))
    return path


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated_store(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local-mode Spark session on 127.0.0.1; its JVM is stopped by PID afterwards."""
    pytest.importorskip("pyspark")
    from features.spark import local_session

    session = local_session("journey-tests", java_options=QUICK_JIT)
    jvm = getattr(session.sparkContext._gateway, "proc", None)
    yield session
    session.stop()
    if jvm is not None and jvm.poll() is None:
        os.kill(jvm.pid, signal.SIGTERM)
        jvm.wait(timeout=30)
