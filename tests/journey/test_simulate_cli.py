"""`journey simulate` and `journey oracle`: output, determinism, probabilities, bad cut-offs."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.journey.cli_helpers import fails, ok, run

pytestmark = pytest.mark.usefixtures("isolated")

SIM_ARGS = ("--customers", "300", "--days", "60", "--seed", "1", "--workers", "1")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "sim"
    result = run("simulate", *SIM_ARGS, "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    return out


def manifest(sim: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((sim / "simulation.json").read_text())
    return data


def test_simulate_writes_parquet_and_manifest(sim_dir: Path) -> None:
    for part in ("events", "customers", "truth"):
        assert [p.name for p in (sim_dir / part).iterdir()] == ["part-00000.parquet"], part
    m = manifest(sim_dir)
    assert (m["customers"], m["days"], m["seed"]) == (300, 60, 1)
    events = pq.read_table(sim_dir / "events")
    assert m["events"] == events.num_rows > 0
    assert events.column_names == ["event_id", "customer_id", "ts", "event_type", "channel",
                                   "value", "action", "properties"]
    assert pq.read_table(sim_dir / "customers").num_rows == 300
    assert pq.read_table(sim_dir / "truth").num_rows == 300
    assert pc.count_distinct(events["customer_id"]).as_py() <= 300
    start = date.fromisoformat(m["start"])
    days = pc.min_max(events["ts"]).as_py()
    assert start <= days["min"].date() and days["max"].date() < start + timedelta(days=60)


def test_simulate_is_deterministic_by_seed(tmp_path: Path, sim_dir: Path) -> None:
    again = tmp_path / "again"
    lines = ok("simulate", *SIM_ARGS, "--out", again)
    m = manifest(sim_dir)
    [line] = lines
    assert line.startswith(
        f"simulated 300 customers over 60 days from {m['start']}: {m['events']:,} events in ")
    assert line.endswith(f"s -> {again}")
    for part in ("events", "customers", "truth"):
        assert pq.read_table(again / part).equals(pq.read_table(sim_dir / part)), part
    events = "events/part-00000.parquet"
    assert (again / events).read_bytes() == (sim_dir / events).read_bytes()

    other = tmp_path / "other"
    ok("simulate", "--customers", "300", "--days", "60", "--seed", "2", "--workers", "1",
       "--out", other)
    assert not pq.read_table(other / "events").equals(pq.read_table(sim_dir / "events"))


def test_oracle_probabilities_for_customers_who_arrived(tmp_path: Path, sim_dir: Path) -> None:
    start = date.fromisoformat(manifest(sim_dir)["start"])
    as_of = (start + timedelta(days=40)).isoformat()
    target = tmp_path / "x.parquet"
    lines = ok("oracle", "--sim", sim_dir, "--as-of", as_of, "--horizon", "14",
               "--replicas", "20", "--out", target)

    frame = pq.read_table(target).to_pandas()
    truth = pq.read_table(sim_dir / "truth").to_pandas()
    arrived = set(truth.loc[truth.arrival_day < 40, "customer_id"])
    assert 0 < len(arrived) < 300
    assert set(frame.customer_id) == arrived and frame.customer_id.is_unique
    assert frame.p_convert.notna().all()
    assert frame.p_convert.between(0, 1).all()
    assert frame.p_inactive.between(0, 1).all()
    # 20 replicas: every probability is a multiple of 1/20.
    assert ((frame.p_convert * 20).round(9) % 1 == 0).all()
    assert lines == [
        f"oracle for {len(arrived):,} customers at {as_of} + 14d: "
        f"mean P(convert) {frame.p_convert.mean():.3f}, "
        f"mean P(no activity) {frame.p_inactive.mean():.3f} -> {target}"
    ]


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("{start}T12:00:00", "the oracle works on whole days; give a date (midnight UTC)"),
        ("{start}", "outside the simulated days"),
        ("{day61}", "outside the simulated days"),
        ("next tuesday", "'next tuesday' is not an ISO date or timestamp"),
    ],
    ids=["not-midnight", "first-day", "after-the-end", "not-a-date"],
)
def test_oracle_bad_cutoff(tmp_path: Path, sim_dir: Path, as_of: str, message: str) -> None:
    start = date.fromisoformat(manifest(sim_dir)["start"])
    when = as_of.format(start=start, day61=start + timedelta(days=61))
    err = fails("oracle", "--sim", sim_dir, "--as-of", when, "--horizon", "14",
                "--replicas", "1", "--out", tmp_path / "x.parquet")
    assert err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "x.parquet").exists()


def test_oracle_on_a_directory_that_is_no_simulation(tmp_path: Path) -> None:
    err = fails("oracle", "--sim", tmp_path, "--as-of", "2025-02-01", "--horizon", "14",
                "--out", tmp_path / "x.parquet")
    assert f"error: {tmp_path}: not a simulation output (no simulation.json)" in err
