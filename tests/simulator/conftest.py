from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.simulator.run import SimResult, SimSpec, simulate

SIM_CUSTOMERS = 6_000
SIM_DAYS = 150
SIM_SEED = 11


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimResult:
    out = tmp_path_factory.mktemp("sim")
    return simulate(
        SimSpec(SIM_CUSTOMERS, SIM_DAYS, SIM_SEED, chunk_customers=2_500), out, workers=2
    )


@pytest.fixture(scope="session")
def events(sim: SimResult) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(Path(sim.out) / "events").to_pandas()
    for col in ("event_type", "channel", "action"):
        frame[col] = frame[col].astype(object)
    return frame
