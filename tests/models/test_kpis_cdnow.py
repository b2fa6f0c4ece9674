"""The CLV on the real CDNOW purchase log (../shared/data/cdnow, skipped when absent): V, L and
the CLV of the KPI code against the same figures worked out with plain pandas from the CSV on
a grid of days (a purchase log has whole-day dates, so a buyer is active from day d to d + 1
when they bought on one of the 90 days up to d), and against what the buyers active at an
earlier date then spent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.batch import BatchEngine, micros
from features.events import EventArrays
from features.mapping import load_preset
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from models.journey_map import load_params
from models.kpis import journey_kpis
from tests.features.test_shared_data import CDNOW_MASTER, require

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

PARAMS = load_params(None)  # the packaged settings: retention_days 90, clv_years 3
END = datetime(1998, 7, 1, tzinfo=UTC)  # the day after the log's last
DAY0 = pd.Timestamp("1997-01-01")  # the log's first day


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """The CSV: customer, day index from 1997-01-01, dollars."""
    df = pd.read_csv(require(CDNOW_MASTER), dtype={"customer_id": str})
    day = (pd.to_datetime(df["date"].astype(str), format="%Y%m%d") - DAY0).dt.days
    return pd.DataFrame({"customer": df["customer_id"], "day": day, "value": df["dollar_value"]})


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> EventArrays:
    """The log as `journey score` reads it: ingested into an event store, then encoded."""
    taxonomy = load_taxonomy()
    with EventStore(tmp_path_factory.mktemp("cdnow") / "events.duckdb") as store:
        store.ingest(require(CDNOW_MASTER), load_preset("purchases"), taxonomy)
        arrays, _ = BatchEngine(store, load_spec(None, taxonomy)).encoded(END)
    return arrays


def day_of(when: datetime) -> int:
    return (pd.Timestamp(when).tz_localize(None) - DAY0).days


@pytest.fixture(scope="module")
def grid(log: pd.DataFrame) -> pd.DataFrame:
    """(customers, days to the log's end): active from day d to d + 1, a purchase on a day in
    [d - 89, d] (what happens later does not change it: any earlier as_of reads its days)."""
    bought = pd.crosstab(log["customer"], log["day"]).reindex(
        columns=range(day_of(END)), fill_value=0).to_numpy() > 0
    within = np.cumsum(bought, axis=1, dtype=np.int64)
    span = PARAMS.retention_days
    within[:, span:] -= within[:, :-span].copy()
    return pd.DataFrame(within > 0, index=np.sort(log["customer"].unique()))


def expected(log: pd.DataFrame, grid: pd.DataFrame, start: int, end: int,
             window: tuple[int, int]) -> dict[str, float]:
    """V, L and the CLV of the period [start, end) (days) with the retention over ``window``,
    from the log alone."""
    log, active = log[log["day"] < end], grid.to_numpy()
    years = active[:, start:end].sum() / 365
    revenue = log.loc[log["day"] >= start, "value"].sum()
    # Active at day s: a purchase in [s - 90, s), that is active from day s - 1 to s.
    base, at_end = active[:, window[0] - 1], active[:, window[1] - 1]
    retention = (base & at_end).sum() / base.sum()
    lifetime = min(PARAMS.clv_years, (window[1] - window[0]) / 365 / (1 - retention))
    annual = revenue / years
    return {"annual": annual, "lifetime": lifetime, "value": annual * lifetime}


def assert_agrees(clv: dict[str, Any], want: dict[str, float]) -> None:
    assert clv["annual_revenue_per_customer"] == pytest.approx(want["annual"], abs=0.006)
    assert clv["expected_lifetime_years"] == pytest.approx(want["lifetime"], abs=6e-4)
    assert clv["value"] == pytest.approx(want["value"], abs=0.006)


@pytest.fixture(scope="module")
def kpis(events: EventArrays) -> dict[str, Any]:
    return journey_kpis(events, load_spec(), micros(END), PARAMS, {})


def test_overall_clv_agrees_with_pandas(kpis: dict[str, Any], log: pd.DataFrame,
                                        grid: pd.DataFrame) -> None:
    end = day_of(END)
    want = expected(log, grid, 0, end, (end - PARAMS.retention_days, end))
    assert_agrees(kpis["overall"]["clv"], want)
    # An active buyer's CLV is now above what the average customer has spent so far (it was
    # a third of it when lapsed years diluted the value per year).
    assert want["value"] > log["value"].sum() / log["customer"].nunique()


@pytest.mark.parametrize("month", ["1997-07", "1997-11", "1998-03", "1998-06"])
def test_monthly_clv_agrees_with_pandas(kpis: dict[str, Any], log: pd.DataFrame,
                                        grid: pd.DataFrame, month: str) -> None:
    start = day_of(datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC))
    end = day_of((pd.Timestamp(f"{month}-01") + pd.offsets.MonthBegin(1)).to_pydatetime()
                 .replace(tzinfo=UTC))
    row = next(r for r in kpis["by"]["month"] if r["group"] == month)
    assert_agrees(row["clv"], expected(log, grid, start, end, (start, end)))


def test_clv_between_what_active_buyers_then_spent(events: EventArrays, log: pd.DataFrame,
                                                   grid: pd.DataFrame) -> None:
    """As of 1997-10-01, nine months before the log ends: the CLV of an active buyer lies
    between what the buyers active then went on to spend before they first lapsed (what the
    lifetime counts) and all they spent until the log's end (lapsed buyers coming back too)."""
    as_of = datetime(1997, 10, 1, tzinfo=UTC)
    clv = journey_kpis(events, load_spec(), micros(as_of), PARAMS, {})["overall"]["clv"]
    d = day_of(as_of)
    active = grid[d - 1]
    later = log[(log["day"] >= d) & log["customer"].map(active)]
    # A purchase is in the buyer's current run of activity when they were active on every
    # day from as_of to it.
    still = np.minimum.accumulate(grid.to_numpy()[:, d:], axis=1)
    row, day = active.index.get_indexer(pd.Index(later["customer"])), later["day"].to_numpy()
    in_run = np.where(day > d, still[row, np.maximum(day - d - 1, 0)], True)
    buyers = int(active.sum())
    assert later.loc[in_run, "value"].sum() / buyers < clv["value"] \
        < later["value"].sum() / buyers
