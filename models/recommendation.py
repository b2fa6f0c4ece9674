"""What next-best-action arbitration takes and gives: the customer as the catalog's rules see
them (predictions, features, contacts already sent, consent) and the decision, with every
catalog action either ranked or suppressed with the stage and reason that stopped it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from models.contact_policy import Stage


@dataclass(frozen=True, slots=True)
class Contact:
    """One action already sent to the customer (from the event store)."""

    action: str | None  # None: a contact not from the catalog (counts toward channel/global caps)
    channel: str
    ts_us: int  # microseconds since the epoch, UTC


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    stage: str | None
    predictions: Mapping[str, float]  # e.g. {"churn": 0.42, "conversion": 0.08}
    features: Mapping[str, float | str | None]
    contacts: Sequence[Contact]
    consent: Mapping[str, bool] = field(default_factory=dict)  # missing: catalog default
    # P(outcome | no action), e.g. {"convert": 0.12}: what an action that keeps only part of an
    # outcome's value (a discount) gives away on the outcomes that would happen anyway.
    baseline: Mapping[str, float] = field(default_factory=dict)
    # Actions the log almost never sent to customers like this one (``models.uplift_support``):
    # their uplift is the model's extrapolation, so they are never ranked, only explored.
    unsupported: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Ranked:
    action: str
    channel: str
    rank: int  # 1-based
    value: float  # weighted expected incremental value: what the ranking uses
    value_unweighted: float  # in money: sum(uplift x outcome value) - giveaway - cost
    uplift: Mapping[str, float]  # outcome -> change in its probability
    outcome_values: Mapping[str, float]  # outcome -> its value for this customer and action
    giveaway: float  # value given away on outcomes expected without the action (a discount)
    cost: float
    weight: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suppressed:
    action: str
    stage: Stage
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    customer_id: str
    actions: tuple[Ranked, ...]
    suppressed: tuple[Suppressed, ...]
    explored: bool
    propensity: float  # probability of the first slot's action (or of no action), to be logged
    no_action_reason: str | None
