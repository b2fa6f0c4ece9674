"""Decision points for uplift models and off-policy evaluation, from the logged action history.

A decision point is a (customer, day) pair: the logging policy either sent the customer an
action that day (the first ``action`` event of the day, with the ``propensity`` it logged in
``properties``) or did not. Features are the customer's vector as of the day's midnight (the
same kernel as batch and online, so nothing the day's action caused can leak in); outcomes are
labelled in [midnight, midnight + H) with the label definitions of ``features.labels``.

Every contacted customer-day is kept; customer-days without a contact are sampled at a fixed
rate (their ``weight`` is 1 / rate), which keeps the control arm large enough to model while
the frame stays small, and lets estimates reweight back to the whole population.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from features.batch import micros
from features.errors import ConfigError
from features.history import HistoryIndex
from features.labels import point_labels
from features.online import OnlineFeatures, Vectors
from features.spec import FeatureSpec
from features.store import EventStore
from features.taxonomy import TRIMMED

DAY_US = 86_400_000_000
NO_ACTION = ""  # the action column's value on control rows (pandas-friendly, unlike None)


@dataclass(frozen=True)
class DecisionWindow:
    """Decision days [start, end) (midnights, UTC) and the control sampling rate."""

    start: datetime
    end: datetime
    control_rate: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ConfigError(f"decision window {self.start} .. {self.end} is empty")
        if not 0 < self.control_rate <= 1:
            raise ConfigError(f"control_rate {self.control_rate}: must be in (0, 1]")
        for when in (self.start, self.end):
            if micros(when) % DAY_US:
                raise ConfigError(f"decision window bound {when}: must be a midnight (UTC)")


def treatments(store: EventStore, start: datetime, end: datetime) -> pd.DataFrame:
    """The first logged action of each customer-day in [start, end): customer_id, day (its
    midnight, microseconds), action, channel, propensity (NaN where none was logged)."""
    got = store.con.execute(
        """
        SELECT customer_id, day, action, channel, propensity FROM (
            SELECT customer_id, trim(action, $ws) AS action, channel,
                   (epoch_us(ts) // $day) * $day AS day,
                   TRY_CAST(json_extract_string(properties, '$.propensity') AS DOUBLE)
                       AS propensity,
                   row_number() OVER (PARTITION BY customer_key, epoch_us(ts) // $day
                                      ORDER BY ts, event_id) AS k
            FROM events
            -- by the engines' rule (normal_action): a blank action the service stored
            -- before it cleaned them is no action, a padded one its trimmed name
            WHERE trim(action, $ws) <> '' AND ts >= $start AND ts < $end)
        WHERE k = 1 ORDER BY day, customer_id
        """,
        {"day": DAY_US, "start": start, "end": end, "ws": TRIMMED},
    ).df()
    got["propensity"] = got["propensity"].astype(float)
    return got


def _first_seen(store: EventStore) -> tuple[np.ndarray, np.ndarray]:
    got = store.con.execute(
        "SELECT k.customer_id, epoch_us(min(e.ts)) AS first FROM events e "
        "JOIN customers k USING (customer_key) GROUP BY k.customer_id ORDER BY k.customer_id"
    ).fetchnumpy()
    return np.asarray(got["customer_id"], dtype=object), np.asarray(got["first"], np.int64)


def decision_points(store: EventStore, window: DecisionWindow) -> pd.DataFrame:
    """Treated customer-days plus sampled controls: customer_id, cutoff (microseconds), action
    (``NO_ACTION`` for controls), channel, propensity, weight. Only customers seen before the
    day are decision points (nobody can target a customer they have never seen)."""
    treated = treatments(store, window.start, window.end)
    ids, first = _first_seen(store)
    rng = np.random.default_rng(window.seed)
    parts = [treated.rename(columns={"day": "cutoff"}).assign(weight=1.0)]
    by_day = dict(tuple(treated.groupby("day")["customer_id"]))
    for day in range(micros(window.start), micros(window.end), DAY_US):
        known = ids[first < day]
        pick = known[rng.random(len(known)) < window.control_rate]
        if day in by_day:
            pick = pick[~np.isin(pick, by_day[day].to_numpy())]
        parts.append(pd.DataFrame({
            "customer_id": pick, "cutoff": day, "action": NO_ACTION, "channel": None,
            "propensity": np.nan, "weight": 1.0 / window.control_rate,
        }))
    points = pd.concat(parts, ignore_index=True)
    seen = dict(zip(ids.tolist(), first.tolist(), strict=True))
    points = points[points["customer_id"].map(seen).lt(points["cutoff"])]
    return points.sort_values(["cutoff", "customer_id"], kind="stable").reset_index(drop=True)


def vectors_frame(vectors: Vectors) -> pd.DataFrame:
    """A feature frame as snapshots hold it: numeric columns as floats, categoricals and
    attributes as strings (None where missing)."""
    fm = vectors.matrix
    data: dict[str, object] = {"customer_id": list(fm.customer_ids)}
    for j, name in enumerate(fm.names):
        data[name] = fm.values[:, j]
    for name, (codes, vocab) in fm.categorical.items():
        values = np.asarray([*vocab, None], dtype=object)
        data[name] = values[np.where(codes >= 0, codes, len(vocab))]
    for key in vectors.attributes[0] if len(vectors) else ():
        data[f"attr_{key}"] = [a.get(key) for a in vectors.attributes]
    return pd.DataFrame(data)


def point_features(index: HistoryIndex, spec: FeatureSpec, points: pd.DataFrame) -> pd.DataFrame:
    """Each point's feature vector as of its cutoff, in the points' order (one kernel pass per
    decision day)."""
    online = OnlineFeatures(spec)
    frames = []
    for _, group in points.groupby("cutoff", sort=True):
        cutoff = int(group["cutoff"].iloc[0])
        ids = group["customer_id"].tolist()
        arrays = index.many(ids, cutoff)
        attrs = [index.attributes.of(c) for c in ids]
        frame = vectors_frame(online.vectors(arrays, cutoff, attrs))
        frames.append(frame.set_index(group.index))
    if not frames:
        raise ConfigError("no decision points: the window holds no known customers")
    return pd.concat(frames).loc[points.index].drop(columns="customer_id")


def check_outcomes_observed(store: EventStore, window: DecisionWindow, horizon_days: int) -> None:
    """Refuse a window whose last decisions' outcomes the store has not seen yet."""
    latest = store.time_range()[1]
    last_end = window.end + timedelta(days=horizon_days - 1)
    if latest is None or latest < last_end.replace(tzinfo=None):
        raise ConfigError(
            f"the store's events end at {latest}: outcomes of decisions up to {window.end.date()} "
            f"need {horizon_days} more days; end the decision window earlier"
        )


def decision_frame(
    store: EventStore,
    index: HistoryIndex,
    spec: FeatureSpec,
    window: DecisionWindow,
    horizon_days: int,
) -> pd.DataFrame:
    """Points, their outcomes in [cutoff, cutoff + H) and their features, one row per point."""
    check_outcomes_observed(store, window, horizon_days)
    points = decision_points(store, window)
    labels = point_labels(store, spec, points[["customer_id", "cutoff"]], horizon_days)
    feats = point_features(index, spec, points)
    return pd.concat([points, labels, feats], axis=1)


def as_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)
