from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping
from features.simulator.params import load_params
from features.simulator.run import SimResult, SimSpec, simulate
from features.taxonomy import load_taxonomy
from tests.simulator.conftest import SIM_CUSTOMERS, SIM_DAYS


def _sorted_events(out: Path) -> pa.Table:
    return pq.read_table(out / "events").sort_by("event_id")


def test_same_seed_same_data_whatever_the_chunking_and_workers(tmp_path: Path) -> None:
    a = simulate(SimSpec(700, 90, 5, chunk_customers=700), tmp_path / "a", workers=1)
    b = simulate(SimSpec(700, 90, 5, chunk_customers=123), tmp_path / "b", workers=2)
    assert a.events == b.events > 0
    assert len(list((tmp_path / "b" / "events").glob("part-*.parquet"))) == 6
    ta, tb = _sorted_events(tmp_path / "a"), _sorted_events(tmp_path / "b")
    assert ta.cast(tb.schema).equals(tb)
    pd.testing.assert_frame_equal(
        pq.read_table(tmp_path / "a" / "truth").to_pandas(),
        pq.read_table(tmp_path / "b" / "truth").to_pandas(),
    )


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    simulate(SimSpec(300, 60, 1), tmp_path / "a", workers=1)
    simulate(SimSpec(300, 60, 2), tmp_path / "b", workers=1)
    a, b = (pq.read_table(tmp_path / x / "truth").column("latent_type").to_pylist() for x in "ab")
    assert a != b


def test_rerun_replaces_earlier_parts(tmp_path: Path) -> None:
    simulate(SimSpec(500, 30, 1, chunk_customers=100), tmp_path, workers=1)
    simulate(SimSpec(150, 30, 1, chunk_customers=100), tmp_path, workers=1)
    assert len(list((tmp_path / "events").glob("part-*.parquet"))) == 2
    assert pq.read_table(tmp_path / "customers").num_rows == 150


def test_invalid_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        simulate(SimSpec(0, 10, 1), tmp_path)


def test_output_honours_the_event_contract(sim: SimResult) -> None:
    report = LoadReport()
    rows = sum(
        b.num_rows
        for b in load_events(Path(sim.out) / "events", identity_mapping(), load_taxonomy(), report)
    )
    assert rows == sim.events == report.valid and report.rejected_total == 0
    manifest = json.loads((Path(sim.out) / "simulation.json").read_text())
    assert manifest["customers"] == SIM_CUSTOMERS and manifest["events"] == sim.events
    assert (Path(sim.out) / "params.yaml").read_text().startswith("# Journey simulator")


def test_events_are_well_formed(sim: SimResult, events: pd.DataFrame) -> None:
    assert events.event_id.is_unique
    start = pd.Timestamp(sim.start, tz="UTC")
    assert events.ts.min() >= start and events.ts.max() < start + pd.Timedelta(days=SIM_DAYS)
    buys = events.event_type == "purchase"
    assert (events.loc[buys, "value"] > 0).all() and events.loc[~buys, "value"].isna().all()
    sent = events.event_type == "action_sent"
    assert events.loc[sent, "action"].notna().all() and events.loc[~sent, "action"].isna().all()
    propensity = events.loc[sent, "properties"].map(lambda s: json.loads(s)["propensity"])
    p = load_params()
    assert propensity.between(0, p.contact_rate).all()
    assert set(events.event_type) <= set(load_taxonomy().event_stage)
    tickets = events.loc[events.event_type == "support_ticket", "properties"].map(json.loads)
    assert tickets.map(lambda d: 1 <= d["csat"] <= 5).all()


def test_behaviour_differs_by_latent_type(sim: SimResult, events: pd.DataFrame) -> None:
    truth = pq.read_table(Path(sim.out) / "truth").to_pandas().set_index("customer_id")
    buys = events[events.event_type == "purchase"].groupby("customer_id").size()
    per_type = buys.reindex(truth.index, fill_value=0).groupby(truth.latent_type).mean()
    assert per_type["loyalist"] > 3 * per_type["deal_seeker"] > 3 * per_type["browser"]
    baskets = events[events.event_type == "purchase"].join(truth, on="customer_id")
    mean_basket = baskets.groupby("latent_type").value.mean()
    assert mean_basket["loyalist"] > mean_basket["deal_seeker"]
    customers = pq.read_table(Path(sim.out) / "customers").to_pandas()
    assert set(customers.columns) == {
        "customer_id",
        "region",
        "device",
        "acquisition_channel",
        "first_seen",
    }
    assert "latent_type" not in customers.columns


def test_logged_propensities_match_the_assignment_frequencies(events: pd.DataFrame) -> None:
    """Within each logged propensity value, the observed action shares follow the weights."""
    sent = events[events.event_type == "action_sent"].copy()
    sent["propensity"] = sent.properties.map(lambda s: json.loads(s)["propensity"])
    p = load_params()
    # Customers in consideration/decision are eligible for discount_email and retargeting_ad
    # only (weights 3:2), so among those contacts the discount share must be 3/5.
    pair = sent[
        sent.propensity.round(6).isin(
            [round(p.contact_rate * 3 / 5, 6), round(p.contact_rate * 2 / 5, 6)]
        )
    ]
    share = (pair.action == "discount_email").mean()
    assert abs(share - 0.6) < 4 * np.sqrt(0.24 / len(pair))
