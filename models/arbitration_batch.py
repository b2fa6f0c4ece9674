"""Every customer's top action at once: what ``arbitrate(..., top_k=1, exploration=0)`` decides
for each customer of a scoring run, computed as arrays over customers x actions.

A scoring run keeps each customer's top action and its value. Deciding them one Python call
at a time cost ~55 µs a customer (the scoring step of a million-customer run took 128 s with
it, 89-94 s without); here each rule is one array operation per catalog action. The rules
are ``models.arbitration``'s and ``models.contact_policy``'s, in their exact arithmetic:
eligibility (stage, conditions, the catalog's default consent: a scoring run has no consent
record), the expected value, caps, cool-downs and exclusions against the contacts already
sent. With one slot and no exploration the rules about the list being built never apply, so
the top action is the first (in catalog order) of the most valuable candidates, if worth
more than the policy's minimum. A customer with a candidate whose value is not a number (an
infinite feature times a zero) has no array form of ``sorted``'s answer, and is decided by
``arbitrate`` itself. Tests compare both on random catalogs, customers and contact
histories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.catalog import Action, Catalog, Condition, OutcomeValue
from models.recommendation import Contact, Ranked

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Column = npt.NDArray[Any]  # float64, or objects (text, or None where missing)


@dataclass(frozen=True)
class Sent:
    """The contacts already sent to a batch of customers, one entry per contact: the
    customer's row, the action's code into ``actions`` (None there: not a known action, which
    counts toward caps only) and the channel's into ``channels``, and when."""

    row: I64
    action: I64
    channel: I64
    ts_us: I64
    actions: Sequence[str | None]
    channels: Sequence[str]

    def contacts(self, row: int | None = None) -> list[Contact]:
        """Every contact, or one customer's (``row``), as ``arbitrate`` takes them, in order."""
        action, channel, ts = self.action, self.channel, self.ts_us
        if row is not None:
            at = np.flatnonzero(self.row == row)
            action, channel, ts = action[at], channel[at], ts[at]
        actions, channels = self.actions, self.channels
        return [Contact(actions[a], channels[c], t) for a, c, t in
                zip(action.tolist(), channel.tolist(), ts.tolist(), strict=True)]


@dataclass(frozen=True)
class Batch:
    """Customers as ``arbitrate`` sees them, one array entry each. ``stages``: each one's
    code into ``stage_vocab`` (-1: no stage); ``features(name)``: a column of values as
    ``Customer.features`` gives them; ``uplift[action][outcome]`` and ``baseline[outcome]``
    as ``arbitrate``'s ``uplift`` and ``Customer.baseline``, an array each."""

    stages: I64
    stage_vocab: Sequence[str]
    predictions: Mapping[str, F64]
    features: Callable[[str], Column]
    baseline: Mapping[str, F64]
    uplift: Mapping[str, Mapping[str, F64]]
    sent: Sent

    def __len__(self) -> int:
        return len(self.stages)


def candidates(catalog: Catalog, batch: Batch, now_us: int) -> Bools:
    """(n, actions): where an action is open to a customer, whatever it is worth: eligible
    (stage, conditions, consent) and within the contact policy's caps, cool-downs and
    exclusions. Reads no uplift or baseline, so a scoring run asks its uplift models only for
    these pairs."""
    n = len(batch)
    history = _History(catalog, batch.sent, n, now_us)
    out = np.zeros((n, len(catalog.actions)), bool)
    for i, action in enumerate(catalog.actions):
        out[:, i] = _eligible(action, batch, catalog.policy.default_consent)
        out[:, i] &= ~history.blocked(catalog, i)
    return out


def top_actions(catalog: Catalog, batch: Batch, now_us: int,
                exact: Callable[[int], Ranked | None], open_: Bools | None = None
                ) -> tuple[I64, F64]:
    """Each customer's top action (its index in ``catalog.actions``, -1 for none) and that
    action's value (NaN for none). ``exact(row)``: ``arbitrate``'s top action for one
    customer, asked only for a customer with a candidate valued NaN. ``open_``: the batch's
    ``candidates``, when already computed; only their uplift is read."""
    n, k = len(batch), len(catalog.actions)
    if k == 0:
        return np.full(n, -1, np.int64), np.full(n, np.nan)
    base = [_outcome_value(ov, batch.features, n) for ov in catalog.outcomes]
    if open_ is None:
        open_ = candidates(catalog, batch, now_us)
    values = np.full((n, k), -np.inf)
    odd = np.zeros(n, bool)
    for i, action in enumerate(catalog.actions):
        effects = batch.uplift.get(action.id)
        if effects is None:  # no estimate: never a candidate
            continue
        value, valued = _value(catalog, action, base, effects, batch.baseline, n)
        ok = valued & open_[:, i]
        odd |= ok & np.isnan(value)
        values[:, i] = np.where(ok, value, -np.inf)
    best = np.argmax(values, axis=1)  # the first of equals, as the stable sort keeps them
    top = values[np.arange(n), best]
    chosen = top > catalog.policy.min_value
    index, value = np.where(chosen, best, -1), np.where(chosen, top, np.nan)
    for row in np.flatnonzero(odd).tolist():
        ranked = exact(row)
        index[row] = -1 if ranked is None else catalog.index[ranked.action]
        value[row] = np.nan if ranked is None else ranked.value
    return index.astype(np.int64), value


def _outcome_value(ov: OutcomeValue, features: Callable[[str], Column], n: int) -> F64:
    """``OutcomeValue.of`` for every customer: a constant, or the feature where it is a
    positive number (clipped to the bounds), else the default."""
    if ov.feature is None:
        return np.full(n, ov.of({}), np.float64)
    column = features(ov.feature)
    if column.dtype == object:
        return np.array([ov.of({ov.feature: v}) for v in column.tolist()], np.float64)
    with np.errstate(invalid="ignore"):
        positive = column > 0  # NaN is not
    clipped = np.minimum(np.maximum(column, ov.low), ov.high)
    out: F64 = np.where(positive, clipped, ov.default)
    return out


def _value(catalog: Catalog, action: Action, base: Sequence[F64],
           effects: Mapping[str, F64], baseline: Mapping[str, F64], n: int
           ) -> tuple[F64, Bools]:
    """``arbitration._value`` for every customer, in its order of operations (so the values
    are its values to the bit), and where the action can be valued at all: every uplift a
    number, and for a discount the probability without it in [0, 1]."""
    total, giveaway = np.zeros(n), np.zeros(n)
    valued = np.ones(n, bool)
    zeros = np.zeros(n)
    with np.errstate(invalid="ignore", over="ignore"):  # inf x 0: NaN, as in Python floats
        for ov, v in zip(catalog.outcomes, base, strict=True):
            u = effects.get(ov.outcome, zeros)
            valued &= ~np.isnan(u)
            m = action.value[ov.outcome]
            total = total + u * (v * m)
            if m != 1.0:
                p0 = baseline.get(ov.outcome)
                if p0 is None:
                    valued[:] = False
                    continue
                valued &= (p0 >= 0.0) & (p0 <= 1.0)
                giveaway = giveaway + p0 * v * (1.0 - m)
        value: F64 = (total - giveaway - action.cost) * action.weight
    return value, valued


def _eligible(action: Action, batch: Batch, default_consent: bool) -> Bools:
    """``arbitration._ineligible(...) is None`` for every customer."""
    e = action.eligibility
    ok = np.ones(len(batch), bool)
    if e.stages:
        allowed = [c for c, s in enumerate(batch.stage_vocab) if s in e.stage_set]
        ok &= np.isin(batch.stages, allowed)
    for c in e.conditions:
        if c.source == "prediction":
            column = batch.predictions.get(c.name)
            ok &= False if column is None else _holds(c, column)
        else:
            ok &= _holds(c, batch.features(c.name))
    if e.consent and not default_consent:
        ok[:] = False
    return ok


def _holds(c: Condition, column: Column) -> Bools:
    """``Condition.holds`` for every value of a column."""
    if column.dtype == object:
        return np.fromiter((c.holds(v) for v in column.tolist()), bool, len(column))
    if isinstance(c.value, str):
        return np.zeros(len(column), bool)
    with np.errstate(invalid="ignore"):
        out: Bools = np.asarray(c.check(column, float(c.value)), bool) & ~np.isnan(column)
    return out


class _History:
    """``contact_policy.History`` for every customer of a batch: per policy cap, how many
    contacts each customer had inside its window, from one pass over the contacts each."""

    def __init__(self, catalog: Catalog, sent: Sent, n: int, now_us: int) -> None:
        age = now_us - sent.ts_us
        keep = age < catalog.horizon_us
        self.n, self.row, self.age, self.action = n, sent.row[keep], age[keep], sent.action[keep]
        self.codes: dict[str, list[int]] = {}
        for code, name in enumerate(sent.actions):
            if name is not None:
                self.codes.setdefault(name, []).append(code)
        channel = sent.channel[keep]
        channels = {name: code for code, name in enumerate(sent.channels)}
        self.counts = []
        for window, name in catalog.cap_rules:
            mask = self.age < window
            if name is not None:
                mask &= channel == channels.get(name, -1)
            self.counts.append(self._count(mask))

    def _count(self, mask: Bools) -> I64:
        return np.bincount(self.row[mask], minlength=self.n)

    def _sends(self, action_id: str) -> Bools:
        return np.isin(self.action, self.codes.get(action_id, []))

    def _within(self, action_id: str, window_us: int) -> Bools:
        """Customers sent ``action_id`` less than ``window_us`` ago."""
        return self._count(self._sends(action_id) & (self.age < window_us)) > 0

    def blocked(self, catalog: Catalog, index: int) -> Bools:
        """Where ``History.blocks(catalog, index)`` is not None."""
        action = catalog.actions[index]
        out = np.zeros(self.n, bool)
        for j in catalog.policy_caps[index]:
            out |= self.counts[j] >= catalog.policy.caps[j].max
        mine = self._sends(action.id)
        for cap in action.caps:
            out |= self._count(mine & (self.age < cap.window_us)) >= cap.max
        out |= self._within(action.id, action.cooldown_us)
        for ex in action.excludes:
            out |= self._within(ex.action, ex.window_us)
        return out
