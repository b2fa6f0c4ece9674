"""The action catalog as frozen data: what next-best-action may send, to whom, at what cost.

``models.actions`` builds these from YAML and validates them; ``models.arbitration`` reads them
once per request. Everything the request path needs (windows in microseconds, comparison
functions, the phrases reasons are made of) is computed here at load time, so a request does
no parsing, no regex and no unit conversion.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DAY_US = 86_400_000_000
OUTCOMES = ("convert", "churn")
# What a condition's `on` may read: the two scores the service predicts, or any feature.
PREDICTIONS = ("churn", "conversion")
OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
# How reasons print an operator (a marketer reads "≥", not ">=").
OP_TEXT = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "!=": "≠"}


def fmt(v: float) -> str:
    """A number as a reason prints it: whole numbers bare, fractions to two decimals (or three
    significant digits when smaller than 0.1, so an uplift of 0.004 does not read as 0.00)."""
    if not math.isfinite(v):  # an infinite feature failing a condition: int() would raise
        return str(v)
    if v == int(v) and abs(v) < 1e12:
        return str(int(v))
    return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3g}"


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # derived fields of frozen dataclasses


@dataclass(frozen=True, slots=True)
class OutcomeValue:
    """What one outcome is worth for a customer: a constant, or a feature clipped to bounds."""

    outcome: str
    constant: float | None = None
    feature: str | None = None
    default: float = 0.0
    low: float = -math.inf
    high: float = math.inf

    def of(self, features: Mapping[str, float | str | None]) -> float:
        if self.feature is None:
            return self.constant if self.constant is not None else self.default
        v = features.get(self.feature)
        # A missing, non-numeric or non-positive value (no orders yet: avg_order_value is 0 or
        # NaN) says nothing about what the customer would spend, so the default stands in.
        if not isinstance(v, int | float) or not v > 0:
            return self.default
        return min(max(float(v), self.low), self.high)


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `max` contacts in any `window_days` (counting one channel's, or all)."""

    max: int
    window_days: float
    channel: str | None = None
    scope: str = ""  # the action id for a per-action cap; only for the wording
    window_us: int = field(init=False, compare=False)
    label: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "window_us", round(self.window_days * DAY_US))
        who = self.scope or (f"{self.channel}" if self.channel else "contact")
        _set(self, "label", f"{who} cap {self.max} per {fmt(self.window_days)} days")


@dataclass(frozen=True, slots=True)
class Condition:
    """`on op value`, e.g. prediction.churn >= 0.3; `on` is prediction.<name> or feature.<name>."""

    on: str
    op: str
    value: float | str | bool
    source: str = field(init=False, compare=False)  # "prediction" or "feature"
    name: str = field(init=False, compare=False)
    check: Callable[[Any, Any], Any] = field(init=False, compare=False, repr=False)
    rule: str = field(init=False, compare=False)  # "≥ 0.30", for reasons

    def __post_init__(self) -> None:
        source, _, name = self.on.partition(".")
        _set(self, "source", source)
        _set(self, "name", name)
        _set(self, "check", OPS[self.op])
        shown = fmt(self.value) if isinstance(self.value, float | int) else repr(self.value)
        if isinstance(self.value, bool):
            shown = str(self.value).lower()
        _set(self, "rule", f"{OP_TEXT[self.op]} {shown}")

    def holds(self, raw: float | str | None) -> bool:
        """Whether a customer's value meets the condition: text compares with text and
        numbers with numbers, and a missing value (None or NaN) never passes."""
        if isinstance(raw, str):
            return isinstance(self.value, str) and bool(self.check(raw, self.value))
        x = float("nan") if raw is None else float(raw)
        if x != x or isinstance(self.value, str):
            return False
        return bool(self.check(x, self.value))


@dataclass(frozen=True, slots=True)
class Eligibility:
    stages: tuple[str, ...]  # empty: no stage rule (customers without a stage too)
    conditions: tuple[Condition, ...] = ()
    consent: bool = True  # the action needs the customer's consent for its channel
    stage_set: frozenset[str] = field(init=False, compare=False)
    stage_text: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "stage_set", frozenset(self.stages))
        _set(self, "stage_text", "[" + ", ".join(self.stages) + "]")


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Not recommended together with `action`, nor within `days` after it was sent."""

    action: str
    days: float
    window_us: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "window_us", round(self.days * DAY_US))


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    channel: str
    description: str
    eligibility: Eligibility
    cost: float
    value: Mapping[str, float]  # outcome -> multiplier of the outcome's value (every outcome)
    caps: tuple[Cap, ...] = ()
    cooldown_days: float = 0.0
    excludes: tuple[Exclusion, ...] = ()  # symmetric: B lists A whenever A lists B
    weight: float = 1.0
    cooldown_us: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "cooldown_us", round(self.cooldown_days * DAY_US))


@dataclass(frozen=True, slots=True)
class Policy:
    top_k: int = 1
    exploration: float = 0.05
    min_value: float = 0.0
    default_consent: bool = True
    caps: tuple[Cap, ...] = ()


@dataclass(frozen=True, slots=True)
class Catalog:
    outcomes: tuple[OutcomeValue, ...]
    policy: Policy
    actions: tuple[Action, ...]
    source: str = field(default="<catalog>", compare=False)
    # Derived once: lookup by id, and per action the policy caps that apply to it (global
    # caps and the caps of its channel), so a request never filters caps by channel.
    index: Mapping[str, int] = field(init=False, compare=False, repr=False)
    policy_caps: tuple[tuple[int, ...], ...] = field(init=False, compare=False, repr=False)
    cap_rules: tuple[tuple[int, str | None], ...] = field(init=False, compare=False, repr=False)
    # The longest look-back of any contact rule: older contacts cannot matter to a decision.
    horizon_us: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _set(self, "index", {a.id: i for i, a in enumerate(self.actions)})
        _set(
            self,
            "policy_caps",
            tuple(
                tuple(
                    i
                    for i, c in enumerate(self.policy.caps)
                    if c.channel is None or c.channel == a.channel
                )
                for a in self.actions
            ),
        )

        _set(self, "cap_rules", tuple((c.window_us, c.channel) for c in self.policy.caps))
        windows = [c.window_us for c in self.policy.caps]
        for a in self.actions:
            windows += [c.window_us for c in a.caps] + [e.window_us for e in a.excludes]
            windows.append(a.cooldown_us)
        _set(self, "horizon_us", max(windows, default=0))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.actions)

    def action(self, action_id: str) -> Action:
        try:
            return self.actions[self.index[action_id]]
        except KeyError:
            raise KeyError(f"no action {action_id!r} in {self.source}") from None
