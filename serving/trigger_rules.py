"""Whether a trigger rule fires for one customer: the customer's state before (as of the
previous evaluation, or just before the new events) and after, judged by the rule's kind, with
the reason in words either way. The service (events, scoring runs) and the dry run
(``journey triggers test``) all decide here, so a dry run explains what the service does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from serving.trigger_config import Rule

DAY_US = 86_400_000_000


@dataclass(frozen=True)
class CustomerState:
    """What the rules compare, for one customer as of ``at_us`` (events before it count)."""

    at_us: int
    stage: str | None  # None: no customer event yet
    churn: float | None  # calibrated churn probability; None: no churn model served
    last_activity_us: int | None  # the last customer event (contacts are not activity)
    # Per action a became_eligible rule watches: why it may not be sent now (None: it may).
    blocked: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    fires: bool
    why: str  # in words, for the dry run, the logs and the webhook
    details: dict[str, Any]  # the values compared, for the webhook body


def iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def _p(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.3f}"


def judge(rule: Rule, before: CustomerState | None, after: CustomerState,
          since_us: int | None) -> Verdict:
    """Whether ``rule`` fires given the customer's state ``before`` (None: not known then)
    and ``after``; ``since_us`` is when the previous evaluation happened (inactive_for counts
    the customers whose inactivity reached its length since then; None: no earlier run)."""
    if rule.kind == "entered_stage":
        return _entered(rule, before, after)
    if rule.kind == "risk_crossed":
        return _risk(rule, before, after)
    if rule.kind == "became_eligible":
        return _eligible(rule, before, after)
    return _inactive(rule, after, since_us)


def _entered(rule: Rule, before: CustomerState | None, after: CustomerState) -> Verdict:
    stage = rule.params["stage"]
    was = before.stage if before is not None else None
    details = {"stage": stage, "previous_stage": was}
    if after.stage != stage:
        return Verdict(False, f"current stage is {after.stage or 'none'}, not {stage}", details)
    if was == stage:
        return Verdict(False, f"already in {stage} before", details)
    return Verdict(True, f"stage {was or 'none'} -> {stage}", details)


def _risk(rule: Rule, before: CustomerState | None, after: CustomerState) -> Verdict:
    threshold, up = rule.params["threshold"], rule.params["direction"] == "up"
    was = before.churn if before is not None else None
    details = {"threshold": threshold, "direction": rule.params["direction"],
               "churn_before": was, "churn": after.churn}
    if after.churn is None:
        return Verdict(False, "no churn probability (no churn model is served)", details)
    if was is None:
        return Verdict(False, f"churn {_p(after.churn)}, but no earlier churn probability to "
                       "compare with (a new customer, or no earlier run)", details)
    moved = f"churn {_p(was)} -> {_p(after.churn)}"
    if up and was < threshold <= after.churn:
        return Verdict(True, f"{moved} crossed {threshold:g} upward", details)
    if not up and after.churn < threshold <= was:
        return Verdict(True, f"{moved} crossed {threshold:g} downward", details)
    where = "at or above" if was >= threshold else "below"
    return Verdict(False, f"{moved}: did not cross {threshold:g} "
                   f"{'upward' if up else 'downward'} (was {where} it)", details)


def _eligible(rule: Rule, before: CustomerState | None, after: CustomerState) -> Verdict:
    action, level = rule.params["action"], rule.params["level"]
    now = after.blocked.get(action, "not evaluated")
    was = before.blocked.get(action, "not evaluated") if before is not None else "new customer"
    details = {"action": action, "level": level, "was_blocked_by": was}
    if now is not None:
        return Verdict(False, f"{action} is not {level} now: {now}", details)
    if was is None:
        return Verdict(False, f"{action} was already {level} before", details)
    return Verdict(True, f"{action} became {level} (before: {was})", details)


def _inactive(rule: Rule, after: CustomerState, since_us: int | None) -> Verdict:
    days = rule.params["days"]
    last = after.last_activity_us
    details: dict[str, Any] = {"days": days, "last_activity": None, "inactive_days": None}
    if last is None:
        return Verdict(False, "no customer activity at all", details)
    idle = (after.at_us - last) / DAY_US
    reached = last + round(days * DAY_US)
    details.update(last_activity=iso_us(last), inactive_days=round(idle, 3))
    if reached > after.at_us:
        return Verdict(False, f"last activity {idle:.1f} days ago, under {days:g}", details)
    if since_us is None:
        return Verdict(False, f"inactive for {idle:.1f} days, but no earlier run to tell when "
                       f"it reached {days:g}", details)
    if reached <= since_us:
        return Verdict(False, f"inactive for {idle:.1f} days: it reached {days:g} days at "
                       f"{iso_us(reached)}, before the previous run ({iso_us(since_us)})",
                       details)
    return Verdict(True, f"no activity for {idle:.1f} days (last {iso_us(last)}); reached "
                   f"{days:g} days at {iso_us(reached)}", details)
