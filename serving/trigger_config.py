"""Behavioural trigger rules (``serving/config/triggers.yaml`` or ``JOURNEY_TRIGGERS``), checked
when the service starts: every error names the file and the key path
(``triggers.yaml: rules[2].params.threshold: must be a probability in (0, 1), got 1.5``), so a
mistake in a marketer-edited file fails loudly instead of never firing.

Secrets are read from the environment (``secret_env``) or, for local set-ups, from the file
(``secret``); only the endpoints an enabled rule sends to need one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from features.errors import ConfigError
from features.yaml_config import read_mapping

# Kinds compared when events arrive (before and after them) and on scoring runs (a snapshot
# against the previous one): a kind missing from one of these is not evaluated there.
INGEST_KINDS = ("entered_stage", "risk_crossed", "became_eligible")
SNAPSHOT_KINDS = ("entered_stage", "risk_crossed", "inactive_for")
KINDS = ("entered_stage", "risk_crossed", "became_eligible", "inactive_for")
LEVELS = ("eligible", "recommended")
MIN_SECRET = 16  # characters: a short HMAC key is guessable offline from one signed body
# Firings a rule may send a minute. Cool-downs are per customer, so a flood of events for
# made-up customer ids would otherwise fire as many webhooks; over the cap they are held.
DEFAULT_MAX_PER_MINUTE = 600
MAX_KEEP_DAYS = 36_500  # retention.keep_days and keep_held_days: a century is "keep"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: str | None = field(repr=False)  # None: no enabled rule sends here
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 5  # in all, the first included
    base_delay_seconds: float = 2.0  # before the 2nd attempt; doubled before each next one
    max_delay_seconds: float = 300.0
    senders: int = 2  # threads sending, so one slow receiver does not hold up the others
    queue_size: int = 10_000  # ingests waiting for evaluation; beyond it they are dropped

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed."""
        return min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (failed_attempt - 1))


@dataclass(frozen=True)
class RetentionPolicy:
    """Days (wall clock, from ``fired_at``) ``triggers.sqlite`` keeps a firing: nothing was ever
    deleted, and a flood of held firings grew the file by ~23 MB an hour."""

    # Delivered or dead; and in any case while its rule's cool-down still counts it.
    keep_days: float = 90.0
    keep_held_days: float = 7.0  # held (never sent, no cool-down): only for looking into a flood


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    params: Mapping[str, Any]  # checked and completed with defaults (see _PARAMS)
    endpoints: tuple[str, ...]
    cooldown_seconds: float
    enabled: bool = True
    description: str = ""
    max_per_minute: int = DEFAULT_MAX_PER_MINUTE

    @property
    def cooldown_us(self) -> int:
        return round(self.cooldown_seconds * 1_000_000)


@dataclass(frozen=True)
class TriggerConfig:
    rules: tuple[Rule, ...]
    endpoints: Mapping[str, Endpoint]
    delivery: DeliveryPolicy
    source: str = "<triggers>"
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        known = ", ".join(r.id for r in self.rules) or "none"
        raise ConfigError(f"{self.source}: no rule {rule_id!r} (rules: {known})")


class _Check:
    """The file being read, so every check names it and the key path in its error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: Collection[str],
                required: Collection[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {value!r}")
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}", "is required")
        return value

    def number(self, value: Any, path: str, low: float, high: float = math.inf,
               what: str = "a positive number") -> float:
        """A finite number in (low, high)."""
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not low < value < high:
            self.fail(path, f"must be {what}, got {value!r}")
        return float(value)

    def whole(self, value: Any, path: str, low: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            self.fail(path, f"must be a whole number of at least {low}, got {value!r}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty name, got {value!r}")
        return value.strip()

    def choice(self, value: Any, path: str, options: Sequence[str], what: str) -> str:
        if value not in options:
            self.fail(path, f"unknown {what} {value!r}; {what}s are {', '.join(options)}")
        return str(value)

    def duration(self, value: Any, path: str) -> float:
        """Seconds from ``7d``, ``12h``, ``30m`` or ``45s``."""
        m = _DURATION.match(value) if isinstance(value, str) else None
        seconds = float(m.group(1)) * _UNITS[m.group(2)] if m else 0.0
        if seconds <= 0:
            self.fail(path, f"must be a positive duration such as 7d, 12h, 30m or 45s, got "
                      f"{value!r}")
        return seconds


def _params(kind: str, raw: Any, path: str, check: _Check, stages: Sequence[str],
            actions: Collection[str]) -> dict[str, Any]:
    """A rule's params, checked for its kind, with defaults filled in."""
    if kind == "entered_stage":
        p = check.mapping(raw, path, {"stage"}, {"stage"})
        return {"stage": check.choice(p["stage"], f"{path}.stage", stages, "stage")}
    if kind == "risk_crossed":
        p = check.mapping(raw, path, {"threshold", "direction"}, {"threshold"})
        return {"threshold": check.number(p["threshold"], f"{path}.threshold", 0, 1,
                                          "a probability in (0, 1)"),
                "direction": check.choice(p.get("direction", "up"), f"{path}.direction",
                                          ("up", "down"), "direction")}
    if kind == "became_eligible":
        p = check.mapping(raw, path, {"action", "level"}, {"action"})
        action = check.name(p["action"], f"{path}.action")
        if action not in actions:
            check.fail(f"{path}.action", f"no action {action!r} in the action catalog "
                       f"({', '.join(sorted(actions))})")
        return {"action": action,
                "level": check.choice(p.get("level", "eligible"), f"{path}.level", LEVELS,
                                      "level")}
    p = check.mapping(raw, path, {"days"}, {"days"})
    return {"days": check.number(p["days"], f"{path}.days", 0, what="a positive number of days")}


def _rule(raw: Any, path: str, check: _Check, stages: Sequence[str], actions: Collection[str],
          endpoints: Mapping[str, Any]) -> Rule:
    keys = {"id", "kind", "params", "endpoints", "cooldown", "enabled", "description",
            "max_per_minute"}
    r = check.mapping(raw, path, keys, ("id", "kind", "params", "endpoints", "cooldown"))
    kind = check.choice(r["kind"], f"{path}.kind", KINDS, "kind")
    sends = r["endpoints"]
    if not isinstance(sends, list) or not sends:
        check.fail(f"{path}.endpoints", f"must be a non-empty list of endpoint names, got "
                   f"{sends!r}")
    for i, name in enumerate(sends):
        if name not in endpoints:
            check.fail(f"{path}.endpoints[{i}]", f"no endpoint {name!r} under endpoints "
                       f"({', '.join(endpoints) or 'none'})")
    enabled = r.get("enabled", True)
    if not isinstance(enabled, bool):
        check.fail(f"{path}.enabled", f"must be true or false, got {enabled!r}")
    description = r.get("description", "")
    if not isinstance(description, str):
        check.fail(f"{path}.description", f"must be text, got {description!r}")
    return Rule(id=check.name(r["id"], f"{path}.id"), kind=kind,
                params=_params(kind, r["params"], f"{path}.params", check, stages, actions),
                endpoints=tuple(dict.fromkeys(sends)),
                cooldown_seconds=check.duration(r["cooldown"], f"{path}.cooldown"),
                enabled=enabled, description=description,
                max_per_minute=check.whole(r.get("max_per_minute", DEFAULT_MAX_PER_MINUTE),
                                           f"{path}.max_per_minute", 1))


def _endpoint(name: str, raw: Any, check: _Check, needed: bool) -> Endpoint:
    path = f"endpoints.{name}"
    e = check.mapping(raw, path, {"url", "secret", "secret_env", "timeout_seconds"}, ("url",))
    url = check.name(e["url"], f"{path}.url")
    if not re.match(r"^https?://[^/\s]+", url):
        check.fail(f"{path}.url", f"must be an http:// or https:// address, got {url!r}")
    if ("secret" in e) == ("secret_env" in e):
        check.fail(path, "give exactly one of secret_env (an environment variable) or secret")
    secret: str | None
    if "secret_env" in e:
        var = check.name(e["secret_env"], f"{path}.secret_env")
        secret = os.environ.get(var)
        if secret is None and needed:
            check.fail(f"{path}.secret_env", f"environment variable {var} is not set (an "
                       "enabled rule sends to this endpoint)")
    else:
        secret = check.name(e["secret"], f"{path}.secret")
    if secret is not None and len(secret) < MIN_SECRET:
        check.fail(f"{path}.secret", f"must be at least {MIN_SECRET} characters")
    timeout = check.number(e.get("timeout_seconds", 5.0), f"{path}.timeout_seconds", 0, 300,
                           "a number of seconds in (0, 300)")
    return Endpoint(name, url, secret, timeout)


def _delivery(raw: Any, check: _Check) -> DeliveryPolicy:
    keys = {"attempts", "base_delay_seconds", "max_delay_seconds", "senders", "queue_size"}
    d = check.mapping(raw, "delivery", keys)
    default = DeliveryPolicy()
    policy = DeliveryPolicy(
        attempts=check.whole(d.get("attempts", default.attempts), "delivery.attempts", 1),
        base_delay_seconds=check.number(d.get("base_delay_seconds", default.base_delay_seconds),
                                        "delivery.base_delay_seconds", 0),
        max_delay_seconds=check.number(d.get("max_delay_seconds", default.max_delay_seconds),
                                       "delivery.max_delay_seconds", 0),
        senders=check.whole(d.get("senders", default.senders), "delivery.senders", 1),
        queue_size=check.whole(d.get("queue_size", default.queue_size), "delivery.queue_size",
                               1))
    # The cap would win from the first retry on, so the backoff the file asks for never runs.
    if policy.base_delay_seconds > policy.max_delay_seconds:
        check.fail("delivery.base_delay_seconds",
                   f"must not exceed max_delay_seconds ({policy.max_delay_seconds:g}), got "
                   f"{policy.base_delay_seconds:g}")
    return policy


def _retention(raw: Any, check: _Check) -> RetentionPolicy:
    r = check.mapping({} if raw is None else raw, "retention", {"keep_days", "keep_held_days"})
    default = RetentionPolicy()
    # Bounded so that the cut-off stays a date (a timedelta ends at 999,999,999 days).
    what = f"a positive number of days under {MAX_KEEP_DAYS:,}"
    return RetentionPolicy(
        keep_days=check.number(r.get("keep_days", default.keep_days), "retention.keep_days",
                               0, MAX_KEEP_DAYS, what),
        keep_held_days=check.number(r.get("keep_held_days", default.keep_held_days),
                                    "retention.keep_held_days", 0, MAX_KEEP_DAYS, what))


def trigger_config(raw: dict[str, Any], source: str, stages: Sequence[str],
                   actions: Collection[str]) -> TriggerConfig:
    """A validated configuration; ``stages`` and ``actions`` are what rules may name."""
    check = _Check(source)
    check.mapping(raw, "(top level)", {"delivery", "endpoints", "retention", "rules"})
    raw_endpoints = raw.get("endpoints") or {}
    if not isinstance(raw_endpoints, dict):
        check.fail("endpoints", f"must map an endpoint name to its url and secret, got "
                   f"{raw_endpoints!r}")
    raw_rules = raw.get("rules") or []
    if not isinstance(raw_rules, list):
        check.fail("rules", f"must be a list of rules, got {raw_rules!r}")
    rules = tuple(_rule(r, f"rules[{i}]", check, stages, actions, raw_endpoints)
                  for i, r in enumerate(raw_rules))
    for i, r in enumerate(rules):
        if any(o.id == r.id for o in rules[:i]):
            check.fail(f"rules[{i}].id", f"{r.id!r} is the id of an earlier rule")
    needed = {name for r in rules if r.enabled for name in r.endpoints}
    endpoints = {str(k): _endpoint(str(k), v, check, k in needed)
                 for k, v in raw_endpoints.items()}
    return TriggerConfig(rules, endpoints, _delivery(raw.get("delivery") or {}, check), source,
                         _retention(raw.get("retention"), check))


def load_trigger_config(path: Path | None, stages: Sequence[str],
                        actions: Collection[str]) -> TriggerConfig:
    """The rules of ``path`` (None: the packaged ``serving/config/triggers.yaml``)."""
    raw, source = read_mapping(path, "serving.config", "triggers.yaml", "trigger rules",
                               empty_ok=True)
    return trigger_config(raw, source, stages, actions)
