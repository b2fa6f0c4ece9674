"""A dry run of one trigger rule for one customer: whether it would fire now and why or why
not (the values compared, the cool-down), without claiming or sending anything. The command
line runs it on the event store (``journey triggers test``), the service on its histories
(``GET /v1/triggers/test``).

What "before" means: the customer as of ``since`` when given, else as of the newest score
snapshot (what the next scoring run compares with), else just before their last event (what
the service compared when that event arrived)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from features.batch import micros
from features.errors import ConfigError
from features.events import EventArrays
from serving.champions import ModelSet
from serving.firings import FiringStore
from serving.snapshots import latest
from serving.trigger_config import INGEST_KINDS, SNAPSHOT_KINDS, Rule
from serving.trigger_rules import CustomerState, Verdict, iso_us, judge
from serving.trigger_states import Attrs, StateReader

History = Callable[[int], EventArrays | None]  # the customer's events before a time (µs)


@dataclass(frozen=True)
class DryRun:
    rule: Rule
    customer_id: str
    as_of_us: int
    compared_with: str  # what "before" is, in words
    before: CustomerState | None
    after: CustomerState | None
    verdict: Verdict
    last_firing: dict[str, Any] | None
    cooldown_until_us: int | None  # set while a firing holds the rule back
    would_fire: bool

    def to_dict(self) -> dict[str, Any]:
        def state(s: CustomerState | None) -> dict[str, Any] | None:
            if s is None:
                return None
            last = s.last_activity_us
            return {"as_of": iso_us(s.at_us), "stage": s.stage, "churn": s.churn,
                    "last_activity": iso_us(last) if last is not None else None,
                    "blocked": dict(s.blocked)}

        return {
            "rule": self.rule.id, "kind": self.rule.kind, "enabled": self.rule.enabled,
            "customer_id": self.customer_id, "as_of": iso_us(self.as_of_us),
            "compared_with": self.compared_with, "before": state(self.before),
            "now": state(self.after), "condition_met": self.verdict.fires,
            "reason": self.verdict.why, "details": self.verdict.details,
            "last_firing": self.last_firing, "cooldown_until":
                iso_us(self.cooldown_until_us) if self.cooldown_until_us else None,
            "would_fire": self.would_fire,
            "evaluated_on": [w for w, kinds in (("events", INGEST_KINDS),
                                                ("scoring runs", SNAPSHOT_KINDS))
                             if self.rule.kind in kinds],
        }

    def lines(self) -> list[str]:
        d, r = self.to_dict(), self.rule
        out = [f"rule {r.id} ({r.kind} {dict(r.params)}), cool-down {_span(r.cooldown_us)}"
               f"{'' if r.enabled else ', DISABLED'}; evaluated on "
               f"{' and '.join(d['evaluated_on'])}",
               f"customer {self.customer_id} as of {d['as_of']}, compared with "
               f"{self.compared_with}"]
        for label, s in (("before", d["before"]), ("now", d["now"])):
            out.append(f"  {label + ':':8}" + (_state_text(s) if s else "no events"))
        out.append(f"condition: {'met' if self.verdict.fires else 'not met'} - "
                   f"{self.verdict.why}")
        last = self.last_firing
        # Firings past their cool-down are pruned (the retention): "never" could be untrue.
        cool = NO_FIRING if last is None else (
            f"last fired as of {iso_us(last['at_us'])} (firing {last['firing_id']}, "
            f"{last['status']})" + (f"; held until {d['cooldown_until']}"
                                    if self.cooldown_until_us else "; cool-down over"))
        out.append(f"cool-down: {cool}")
        verdict = "yes" if self.would_fire else "no"
        out.append(f"would fire: {verdict} (dry run: nothing stored, nothing sent)")
        return out


NO_FIRING = "no firing stored for this customer (older ones, past their cool-down, are pruned)"


def _span(us: int) -> str:
    seconds = us / 1e6
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _state_text(s: dict[str, Any]) -> str:
    churn = "unknown" if s["churn"] is None else f"{s['churn']:.3f}"
    parts = [f"stage {s['stage'] or 'none'}", f"churn {churn}",
             f"last activity {s['last_activity'] or 'none'}"]
    parts += [f"{a} {'allowed' if why is None else 'blocked: ' + why}"
              for a, why in s["blocked"].items()]
    return ", ".join(parts)


def dry_run(rule: Rule, customer_id: str, history: History, attributes: Attrs,
            reader: StateReader, models: ModelSet | None, firings: FiringStore,
            when: datetime, since: datetime | None, scores: Path) -> DryRun:
    """Judge ``rule`` for the customer as of ``when`` (see the module's note on "before")."""
    t = micros(when)
    after_arrays = history(t)
    before_at, before_arrays, since_us, compared = _before(history, after_arrays, when, since,
                                                           scores)
    states = reader.states(models, [before_arrays], [attributes], before_at)
    before = states[0]
    after = reader.states(models, [after_arrays], [attributes], when)[0]
    verdict = (judge(rule, before, after, since_us) if after is not None
               else Verdict(False, "no events before this time", {}))
    last = firings.last(rule.id, customer_id)
    held = None
    if last is not None and last["at_us"] > t - rule.cooldown_us:
        held = last["at_us"] + rule.cooldown_us
    return DryRun(rule, customer_id, t, compared, before, after, verdict, last, held,
                  rule.enabled and verdict.fires and held is None)


def _before(history: History, now: EventArrays | None, when: datetime, since: datetime | None,
            scores: Path) -> tuple[datetime, EventArrays | None, int | None, str]:
    """(the time "before" is judged at, its events, the previous evaluation's time or None, and
    what it is in words)."""
    t = micros(when)
    label = ""
    if since is not None:
        if micros(since) >= t:
            raise ConfigError(f"since ({since.isoformat()}) must be before as of "
                              f"({when.isoformat()})")
        label = f"{iso_us(micros(since))} (given)"
    elif (snap := latest(scores)) is not None:
        since = datetime.fromisoformat(snap.meta["as_of"].replace("Z", "+00:00"))
        label = f"the newest score snapshot {snap.id} (as of {snap.meta['as_of']})"
    if since is not None and micros(since) < t:
        return since, history(micros(since)), micros(since), label
    if now is None or len(now) == 0:
        return when, None, None, "nothing (no events before this time)"
    last = int(now.ts[-1])
    label = f"just before the last event ({iso_us(last)}), as when it arrived"
    return when, history(last), None, label
