"""Trigger rules on a scoring run: each customer of the new snapshot against the previous
snapshot (stage, churn probability, days since the last customer event). Array masks pick the
candidates of each rule over every customer; ``judge`` then decides each candidate, as it does
for events, so a firing's reason reads the same whichever path fired it."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.batch import micros
from serving.firings import NewFiring
from serving.ids import random_ids
from serving.snapshots import Snapshot
from serving.trigger_config import SNAPSHOT_KINDS, Rule
from serving.trigger_rules import DAY_US, CustomerState, Verdict, iso_us, judge

log = logging.getLogger("journey.triggers")
COLUMNS = ("customer_id", "stage", "churn", "recency_days")


@dataclass(frozen=True)
class Candidate:
    rule: Rule
    customer_id: str
    at_us: int
    verdict: Verdict


def new_firings(candidates: Sequence[Candidate], source: str, fired_at: str
                ) -> list[NewFiring]:
    """A firing for each candidate, with a fresh id and the webhook's body."""
    new = []
    for c, fid in zip(candidates, random_ids(len(candidates)), strict=True):
        details = {"kind": c.rule.kind, "as_of": iso_us(c.at_us), "source": source,
                   "reason": c.verdict.why, **c.verdict.details}
        body = json.dumps({"firing_id": fid, "rule": c.rule.id, "customer_id": c.customer_id,
                           "fired_at": fired_at, "details": details},
                          separators=(",", ":")).encode()
        new.append(NewFiring(fid, c.rule.id, c.customer_id, c.at_us, c.rule.cooldown_us,
                             fired_at, source, body, c.rule.endpoints, c.rule.max_per_minute))
    return new


@dataclass(frozen=True)
class _Side:
    """One snapshot's columns, aligned to the current snapshot's customers."""

    at_us: int
    present: npt.NDArray[np.bool_]
    stage: npt.NDArray[np.object_]
    churn: npt.NDArray[np.float64]
    last_us: npt.NDArray[np.int64]  # last customer event; int64 min when none
    has_last: npt.NDArray[np.bool_]

    def state(self, i: int) -> CustomerState | None:
        if not self.present[i]:
            return None
        churn = float(self.churn[i])
        return CustomerState(self.at_us, self.stage[i], churn if np.isfinite(churn) else None,
                             int(self.last_us[i]) if self.has_last[i] else None)


def _as_of_us(snap: Snapshot) -> int:
    return micros(datetime.fromisoformat(snap.meta["as_of"].replace("Z", "+00:00")))


def _side(table: pa.Table, at_us: int, ids: pa.Array | None = None) -> _Side:
    """The columns of ``table``; with ``ids``, row i is customer ``ids[i]`` (or absent)."""
    if ids is not None:
        pos = pc.index_in(ids, value_set=table["customer_id"].combine_chunks())
        present = pos.is_valid().to_numpy(zero_copy_only=False)
        if not present.any():
            n = len(ids)
            return _Side(at_us, present, np.full(n, None, object), np.full(n, np.nan),
                         np.zeros(n, np.int64), np.zeros(n, bool))
        table = table.take(pos.fill_null(0))
    else:
        present = np.ones(len(table), bool)
    stage = pc.cast(table["stage"], pa.string()).to_numpy(zero_copy_only=False)
    churn = table["churn"].to_numpy(zero_copy_only=False).astype(np.float64)
    recency = table["recency_days"].to_numpy(zero_copy_only=False).astype(np.float64)
    has_last = np.isfinite(recency) & present
    last = np.where(has_last, at_us - np.round(np.nan_to_num(recency) * DAY_US), 0)
    return _Side(at_us, present, stage, churn, last.astype(np.int64), has_last)


def _mask(rule: Rule, now: _Side, was: _Side, since_us: int) -> npt.NDArray[np.bool_]:
    """The customers for whom ``rule`` may fire: a superset of what ``judge`` accepts."""
    p = rule.params
    if rule.kind == "entered_stage":
        return np.asarray((now.stage == p["stage"]) & ~(was.present & (was.stage == p["stage"])))
    if rule.kind == "risk_crossed":
        t = p["threshold"]
        if p["direction"] == "up":
            return np.asarray(was.present & (was.churn < t) & (now.churn >= t))
        return np.asarray(was.present & (was.churn >= t) & (now.churn < t))
    reached = now.last_us + round(p["days"] * DAY_US)
    return np.asarray(now.has_last & (reached > since_us) & (reached <= now.at_us))


def snapshot_candidates(rules: Sequence[Rule], current: Snapshot,
                        previous: Snapshot | None) -> list[Candidate]:
    """The firings a scoring run calls for (cool-downs aside): none without a previous
    snapshot to compare with, or when this run is not later than it."""
    rules = [r for r in rules if r.enabled and r.kind in SNAPSHOT_KINDS]
    if not rules:
        return []
    if previous is None:
        log.info("triggers: snapshot %s has no previous snapshot to compare with", current.id)
        return []
    at, since = _as_of_us(current), _as_of_us(previous)
    if at <= since:
        log.info("triggers: snapshot %s is not later than the previous one; not compared",
                 current.id)
        return []
    if current.meta.get("models", {}).get("churn") != previous.meta.get("models", {}).get("churn"):
        # A new churn model moves every probability at once: crossings would be the model's.
        log.warning("triggers: the churn model changed since the previous snapshot; "
                    "risk_crossed rules skip this run")
        rules = [r for r in rules if r.kind != "risk_crossed"]
    table = current.customers().select(list(COLUMNS))
    now = _side(table, at, None)
    was = _side(previous.customers().select(list(COLUMNS)), since,
                table["customer_id"].combine_chunks())
    ids = table["customer_id"]
    out = []
    for rule in rules:
        for i in np.flatnonzero(_mask(rule, now, was, since)).tolist():
            after = now.state(i)
            assert after is not None
            verdict = judge(rule, was.state(i), after, since)
            if verdict.fires:
                out.append(Candidate(rule, ids[i].as_py(), at, verdict))
    return out
