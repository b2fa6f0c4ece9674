"""The contact policy of next-best-action: caps, cool-downs and exclusions, checked against the
contacts a customer already received and against the list being built.

Caps protect the customer's attention (too many messages raise unsubscribes and make every
message less effective); cool-downs and exclusions stop an action from being repeated or
stacked with a conflicting one (two discounts for one order give the margin away twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from models.catalog import DAY_US, Catalog, fmt

# Where an action was stopped, in the order arbitration checks (see ``models.arbitration``).
Stage = Literal["eligibility", "value", "contact_policy", "exclusion"]


class Sent(Protocol):
    """A contact already sent (``models.arbitration.Contact``)."""

    @property
    def action(self) -> str | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def ts_us(self) -> int: ...


def _ago(age_us: int) -> str:
    return f"{max(age_us, 0) / DAY_US:.1f} days ago"


class History:
    """The customer's past contacts, summarised once per request: the contacts inside each
    policy cap's window, and the ages of each catalog action's sends."""

    __slots__ = ("ages", "counts")

    def __init__(self, catalog: Catalog, contacts: Sequence[Sent], now_us: int) -> None:
        # A contact counts for a window of W days when it was sent less than W days ago.
        # Contacts stamped after `now` (clock skew) count as just sent: the safe side.
        horizon = catalog.horizon_us
        recent = []
        ages: dict[str, list[int]] = {}
        for c in contacts:
            age = now_us - c.ts_us
            if age < horizon:
                recent.append((age, c.channel))
                if c.action is not None:
                    ages.setdefault(c.action, []).append(age)
        self.ages = ages
        # Most customers of a scoring run have no recent contact: nothing to count.
        self.counts = [
            sum(1 for age, ch in recent if age < window and (channel is None or ch == channel))
            for window, channel in catalog.cap_rules
        ] if recent else [0] * len(catalog.cap_rules)

    def blocks(self, catalog: Catalog, index: int) -> tuple[Stage, str] | None:
        """The first rule that catalog action `index` breaks, given what was already sent."""
        action = catalog.actions[index]
        for j in catalog.policy_caps[index]:
            cap, n = catalog.policy.caps[j], self.counts[j]
            if n >= cap.max:
                return "contact_policy", f"{cap.label} reached ({n} sent)"
        ages = self.ages.get(action.id, ())
        for cap in action.caps:
            n = sum(1 for age in ages if age < cap.window_us)
            if n >= cap.max:
                return "contact_policy", f"{cap.label} reached ({n} sent)"
        if ages and min(ages) < action.cooldown_us:
            days = fmt(action.cooldown_days)
            return "contact_policy", f"cool-down {days} days: sent {_ago(min(ages))}"
        for ex in action.excludes:
            other = self.ages.get(ex.action)
            if other and min(other) < ex.window_us:
                why = f"excluded for {fmt(ex.days)} days after {ex.action}"
                return "exclusion", f"{why} (sent {_ago(min(other))})"
        return None

    def headroom(self, catalog: Catalog, index: int) -> list[str]:
        """The caps the action is within, in words, for a recommended action's reasons."""
        out = []
        for j in catalog.policy_caps[index]:
            out.append(f"{catalog.policy.caps[j].label}: {self.counts[j]} sent")
        action = catalog.actions[index]
        ages = self.ages.get(action.id, ())
        for cap in action.caps:
            out.append(f"{cap.label}: {sum(1 for age in ages if age < cap.window_us)} sent")
        return out


def clash(
    catalog: Catalog, history: History, index: int, chosen: Sequence[int]
) -> tuple[Stage, str] | None:
    """Whether action `index` conflicts with the actions already in the list (`chosen`, catalog
    indexes): an exclusion, or a cap the list's own earlier entries would push over its limit,
    so a list never holds two emails when only one more is allowed."""
    ids = {catalog.actions[i].id for i in chosen}
    for ex in catalog.actions[index].excludes:
        if ex.action in ids:
            return "exclusion", f"not sent together with {ex.action} (earlier in this list)"
    for j in catalog.policy_caps[index]:
        cap = catalog.policy.caps[j]
        m = sum(1 for i in chosen if cap.channel in (None, catalog.actions[i].channel))
        n = history.counts[j]
        if m and n + m >= cap.max:
            return "contact_policy", f"{cap.label} reached ({n} sent, {m} earlier in this list)"
    return None
