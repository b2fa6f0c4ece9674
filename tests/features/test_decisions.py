"""Decision points for uplift: treatments from the action log, sampled controls, labels that
match the snapshot labels, and vectors that match the batch engine's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.batch import BatchEngine, micros
from features.decisions import (
    NO_ACTION,
    DecisionWindow,
    decision_frame,
    decision_points,
    point_features,
    treatments,
)
from features.errors import ConfigError
from features.history import HistoryIndex
from features.labels import labels, point_labels
from features.store import EventStore
from tests.training.world import World

START, END = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(world: World) -> Iterator[EventStore]:
    with EventStore(world.store, read_only=True) as es:
        yield es


@pytest.fixture(scope="module")
def index(store: EventStore, world: World) -> HistoryIndex:
    return HistoryIndex.load(store, world.spec)


def test_treatments_are_the_first_logged_action_of_each_customer_day(store: EventStore) -> None:
    got = treatments(store, START, END)
    assert len(got) > 0 and not got.duplicated(["customer_id", "day"]).any()
    assert set(got["action"]) <= {"discount_email", "retargeting_ad", "loyalty_offer",
                                  "support_outreach", "review_request"}
    assert got["propensity"].between(0, 1, inclusive="neither").all()  # the simulator logs it
    assert (got["day"] % 86_400_000_000 == 0).all()
    assert got["day"].between(micros(START), micros(END) - 1).all()


def test_points_keep_every_treatment_and_sample_controls(store: EventStore) -> None:
    window = DecisionWindow(START, END, control_rate=0.2, seed=3)
    points = decision_points(store, window)
    treated = points[points["action"] != NO_ACTION]
    # every treatment of a customer already seen by the day's midnight (the simulator may
    # contact a customer on the day they arrive: nobody could have decided that beforehand)
    first = dict(store.con.execute(
        "SELECT customer_id, epoch_us(min(ts)) FROM events GROUP BY customer_id").fetchall())
    logged = treatments(store, START, END)
    known = logged[logged["customer_id"].map(first) < logged["day"]]
    assert len(treated) == len(known) > 0.9 * len(logged)
    controls = points[points["action"] == NO_ACTION]
    assert (controls["weight"] == 5.0).all() and (treated["weight"] == 1.0).all()
    assert not points.duplicated(["customer_id", "cutoff"]).any()  # a treated day is no control
    # about 20 % of the known customers each day
    customers = store.con.execute(
        "SELECT count(DISTINCT customer_key) FROM events WHERE ts < ?", [END]).fetchone()
    assert customers is not None
    per_day = controls.groupby("cutoff").size()
    assert 0.1 * customers[0] < per_day.mean() < 0.25 * customers[0]
    assert decision_points(store, window).equals(points)  # seeded


def test_point_labels_match_the_snapshot_labels(store: EventStore, world: World) -> None:
    cutoff = datetime(2025, 8, 1, tzinfo=UTC)
    snap = labels(store, world.spec, cutoff, 30).to_pandas()
    points = pd.DataFrame({"customer_id": snap["customer_id"], "cutoff": micros(cutoff)})
    got = point_labels(store, world.spec, points, 30)
    assert (got["converted"].to_numpy() == snap["converted"].to_numpy()).all()
    assert (got["churned_inactive"].to_numpy() == snap["churned_inactive"].to_numpy()).all()
    assert snap["converted"].any() and snap["churned_inactive"].any()


def test_point_features_match_the_batch_engine(store: EventStore, index: HistoryIndex,
                                               world: World) -> None:
    cutoff = datetime(2025, 6, 3, tzinfo=UTC)
    batch = BatchEngine(store, world.spec).features(cutoff).to_pandas().set_index("customer_id")
    ids = batch.index[::37].tolist()
    points = pd.DataFrame({"customer_id": ids, "cutoff": micros(cutoff)},
                          index=range(5, 5 + len(ids)))
    got = point_features(index, world.spec, points)
    assert list(got.index) == list(points.index)
    want = batch.loc[ids]
    for col in ("recency_days", "purchases_total", "avg_order_value", "act_discount_email_90d",
                "stage_current", "days_since_action"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float))
    assert (got["last_channel"].to_numpy() == want["last_channel"].astype(object).to_numpy()).all()
    assert (got["attr_region"].to_numpy() == want["attr_region"].astype(object).to_numpy()).all()


def test_decision_frame_joins_points_labels_and_features(store: EventStore, index: HistoryIndex,
                                                         world: World) -> None:
    frame = decision_frame(store, index, world.spec, DecisionWindow(START, END, 0.1), 30)
    assert {"action", "propensity", "weight", "converted", "churned_inactive",
            "recency_days"} <= set(frame.columns)
    treated = frame[frame["action"] != NO_ACTION]
    # the day's action is not a feature of its own decision: features stop at midnight
    assert (treated["days_since_action"].fillna(np.inf) >= 0).all()
    assert treated["converted"].mean() > 0


def test_decisions_whose_outcomes_are_not_observed_yet_are_refused(
        store: EventStore, index: HistoryIndex, world: World) -> None:
    late = DecisionWindow(datetime(2025, 12, 1, tzinfo=UTC), datetime(2025, 12, 20, tzinfo=UTC))
    with pytest.raises(ConfigError, match="more days"):
        decision_frame(store, index, world.spec, late, 30)


@pytest.mark.parametrize(("start", "end", "rate", "match"), [
    (END, START, 0.1, "empty"),
    (START, END, 0.0, "control_rate"),
    (START, datetime(2025, 6, 15, 12, tzinfo=UTC), 0.1, "midnight"),
])
def test_window_validation(start: datetime, end: datetime, rate: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DecisionWindow(start, end, rate)


def test_blank_and_padded_actions_read_as_the_engines_read_them(tmp_path: Path) -> None:
    # Stored as the service stored them before it cleaned actions: "" is no action (the
    # customer-day's first real one is the treatment), " discount_email " is discount_email.
    from tests.features.test_labels import ev, fill

    day = datetime(2025, 3, 3, tzinfo=UTC)
    with EventStore(tmp_path / "d.duckdb") as s:
        fill(s, [ev("a", day.replace(hour=8), "email_open", action=""),
                 ev("a", day.replace(hour=9), "email_open", action=" discount_email "),
                 ev("b", day.replace(hour=8), "email_open", action="\t"),
                 ev("c", day.replace(hour=8), "email_open", action=None)])
        got = treatments(s, day, day.replace(day=4))
    assert got[["customer_id", "action"]].to_dict("records") == [
        {"customer_id": "a", "action": "discount_email"}]
