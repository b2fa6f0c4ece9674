"""Reason codes in plain words: a feature and its value as a phrase a marketer reads ("no
activity in 23 days", "last purchase 69 days ago"), by rules on the feature's name."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence

Value = float | str | None


def _num(v: float) -> str:
    """A number as people write it: whole numbers bare, small ones to one decimal."""
    if not math.isfinite(v):  # never from a feature (they drop non-finite inputs): no crash
        return str(v)
    if abs(v - round(v)) < 1e-9 or abs(v) >= 100:
        return f"{round(v):,}"
    if abs(v) >= 10:
        return f"{v:,.0f}" if abs(v - round(v)) < 0.05 else f"{v:,.1f}"
    return f"{v:.1f}" if round(v, 1) != 0 else f"{v:.2g}"


def _count(v: float, singular: str, plural: str | None = None) -> str:
    plural = plural if plural is not None else singular + "s"
    if v == 0:
        return f"no {plural}"
    return f"{_num(v)} {singular if v == 1 else plural}"


def _times(v: float) -> str:
    return {1.0: "once", 2.0: "twice"}.get(v, f"{_num(v)} times")


def _days(v: float) -> str:
    if v < 1:
        return "less than a day"
    d = round(v)
    return f"{d:,} day" if d == 1 else f"{d:,} days"


def _money(v: float) -> str:
    return f"{v:,.2f}"


def _pct(v: float) -> str:
    return f"{round(100 * v)}%"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _window(w: str) -> str:
    return "in the last day" if w == "1" else f"in the last {w} days"


SCORES = {"csat": "CSAT", "rating": "review rating", "nps": "NPS score"}
ACTIONS = {
    "discount_email": ("discount email", "discount emails"),
    "retargeting_ad": ("retargeting ad", "retargeting ads"),
    "loyalty_offer": ("loyalty offer", "loyalty offers"),
    "support_outreach": ("support outreach contact", "support outreach contacts"),
    "review_request": ("review request", "review requests"),
    "other": ("other marketing contact", "other marketing contacts"),
}


def _action(name: str) -> tuple[str, str]:
    label = _words(name)
    return ACTIONS.get(name, (f"{label} contact", f"{label} contacts"))


def _staged(template: str, missing: str) -> Rule:
    """Stage indexes (taxonomy order) as stage names; -1 means no customer event yet."""

    def rule(m: re.Match[str], v: float | None, stages: Sequence[str]) -> str:
        if v is None or round(v) < 0:
            return missing
        i = round(v)
        return template.format(stages[i]) if i < len(stages) else ""  # "": the fallback

    return rule


def _per_day(rate: float, singular: str, plural: str) -> str:
    if rate <= 0:
        return f"no {plural} yet"
    if rate >= 1:
        return f"about {_num(rate)} {plural} a day"
    return f"about one {singular} every {_days(1 / rate)}"


def _trend(v: float, w: str) -> str:
    if abs(v - 1) < 0.05:
        return f"activity steady over the last {w} days"
    if v > 1:
        return f"{_num(v)} times more activity in the last {w} days than the {w} days before"
    return f"activity down {_pct(1 - v)} in the last {w} days vs the {w} days before"


Rule = Callable[[re.Match[str], float | None, Sequence[str]], str]
CategoryRule = Callable[[re.Match[str], str | None, Sequence[str]], str]


def _fixed(fmt: Callable[[float], str], missing: str) -> Rule:
    return lambda m, v, s: missing if v is None else fmt(v)


def _windowed(fmt: Callable[[re.Match[str], float], str], missing: str = "") -> Rule:
    return lambda m, v, s: (missing or f"{m[0]} unknown") if v is None else fmt(m, v)


def _score(m: re.Match[str], v: float | None, stages: Sequence[str]) -> str:
    name, stat = m[1], m[2]
    label = SCORES.get(name, name.upper())
    if stat == "count":
        return _count(v or 0.0, f"{label} response")
    if stat == "low":
        if name == "csat":
            return _count(v or 0.0, "poor support experience (CSAT)",
                          "poor support experiences (CSAT)")
        return _count(v or 0.0, f"low {label}")
    if v is None:
        return f"no {label} yet"
    return f"average {label} {_num(v)}" if stat == "mean" else f"last {label} {_num(v)}"


def _categorical(label: str) -> CategoryRule:
    return lambda m, v, s: f"{label}: unknown" if v is None else f"{label}: {_words(str(v))}"


# (pattern, rule), first match wins. Numeric rules get float | None (None: missing).
NUMERIC: list[tuple[re.Pattern[str], Rule]] = [
    (re.compile(p), r)
    for p, r in [
        ("tenure_days", _fixed(lambda v: f"customer for {_days(v)}", "new customer")),
        ("recency_days", _fixed(
            lambda v: "active in the last day" if v < 1 else f"no activity in {_days(v)}",
            "no activity on record")),
        ("purchase_recency_days", _fixed(
            lambda v: f"last purchase {_days(v)} ago", "has never purchased")),
        (r"events_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, 'touchpoint')} {_window(m[1])}")),
        (r"purchases_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, 'purchase')} {_window(m[1])}")),
        (r"revenue_(\d+)d", _windowed(
            lambda m, v: (f"spent {_money(v)} " if v else "no spend ") + _window(m[1]))),
        ("events_total", _fixed(
            lambda v: f"{_count(v, 'touchpoint')} in total" if v else "no touchpoints yet", "")),
        ("purchases_total", _fixed(
            lambda v: f"{_count(v, 'purchase')} in total" if v else "no purchases yet", "")),
        ("revenue_total", _fixed(
            lambda v: f"spent {_money(v)} in total" if v else "no spend yet", "no spend yet")),
        ("avg_order_value", _fixed(
            lambda v: f"average order value {_money(v)}", "no orders yet")),
        (r"n_(\w+)_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, f'{_words(m[1])} event')} {_window(m[2])}")),
        (r"st_(\w+)_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, f'{_words(m[1])}-stage event')} {_window(m[2])}")),
        (r"ch_(\w+)_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, 'event')} via {_words(m[1])} {_window(m[2])}")),
        ("stage_current", _staged("currently in the {} stage", "no stage yet")),
        ("stage_furthest", _staged("has reached the {} stage", "no stage reached yet")),
        ("days_in_stage", _fixed(lambda v: f"{_days(v)} in the current stage", "no stage yet")),
        ("stage_regressions", _fixed(
            lambda v: "never moved back a stage" if v == 0
            else f"moved back a stage {_times(v)}", "never moved back a stage")),
        ("gap_mean_days", _fixed(
            lambda v: f"on average {_days(v)} between touchpoints", "fewer than two touchpoints")),
        ("gap_std_days", _fixed(
            lambda v: f"gaps between touchpoints vary by {_days(v)}",
            "fewer than two touchpoints")),
        ("gap_max_days", _fixed(
            lambda v: f"longest gap between touchpoints {_days(v)}", "fewer than two touchpoints")),
        ("gap_last_days", _fixed(
            lambda v: f"last gap between touchpoints {_days(v)}", "fewer than two touchpoints")),
        ("sessions_total", _fixed(lambda v: f"{_count(v, 'session')} in total", "no sessions")),
        (r"sessions_(\d+)d", _windowed(lambda m, v: f"{_count(v, 'session')} {_window(m[1])}")),
        ("session_events_mean", _fixed(
            lambda v: f"{_num(v)} touchpoints per session on average", "no sessions")),
        ("session_minutes_mean", _fixed(
            lambda v: f"sessions last {_num(v)} minutes on average", "no sessions")),
        ("days_between_sessions", _fixed(
            lambda v: f"{_days(v)} between sessions on average", "only one session")),
        (r"trend_events_(\d+)d", _windowed(lambda m, v: _trend(v, m[1]))),
        (r"actions_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, 'marketing contact')} {_window(m[1])}")),
        (r"act_(\w+)_(\d+)d", _windowed(
            lambda m, v: f"{_count(v, *_action(m[1]))} {_window(m[2])}")),
        ("days_since_action", _fixed(
            lambda v: f"last marketing contact {_days(v)} ago", "never contacted by marketing")),
        ("action_responses", _fixed(
            lambda v: "never responded to marketing" if v == 0
            else f"responded to marketing {_times(v)}", "never responded to marketing")),
        ("action_response_rate", _fixed(
            lambda v: f"responds to {_pct(v)} of marketing contacts",
            "no marketing contacts yet")),
        (r"([a-z]+)_(count|mean|last|low)", _score),
        ("rate_purchases", _fixed(lambda v: _per_day(v, "purchase", "purchases"), "")),
        ("rate_events", _fixed(lambda v: _per_day(v, "touchpoint", "touchpoints"), "")),
        ("recency_share", _fixed(
            lambda v: f"quiet for the last {_pct(v)} of their time as a customer",
            "no activity on record")),
        ("purchase_recency_share", _fixed(
            lambda v: f"no purchase in the last {_pct(v)} of their time as a customer",
            "has never purchased")),
    ]
]
CATEGORICAL: list[tuple[re.Pattern[str], CategoryRule]] = [
    (re.compile("last_channel"), lambda m, v, s: (
        "no last touch recorded" if v is None else f"last touch via {_words(str(v))}")),
    (re.compile("last_event_type"), lambda m, v, s: (
        "no last event recorded" if v is None else f"last event: {_words(str(v))}")),
    (re.compile(r"attr_(\w+)"), lambda m, v, s: _categorical(_words(m[1]))(m, v, s)),
]


def phrase(feature: str, value: Value, stages: tuple[str, ...]) -> str:
    """``describe``, remembered where values repeat across customers (counts, categories,
    missing: give missing as None). Continuous values rarely repeat: remembering them would
    only grow a long-lived cache that every full garbage collection then walks."""
    if isinstance(value, float) and not value.is_integer():
        return describe(feature, value, stages)
    return _remembered(feature, value, stages)


@functools.lru_cache(maxsize=8192)
def _remembered(feature: str, value: Value, stages: tuple[str, ...]) -> str:
    return describe(feature, value, stages)


def describe(feature: str, value: Value, stages: Sequence[str]) -> str:
    """``feature`` at ``value`` in plain words; unknown features as ``feature = value``.

    Never raises: anything a rule cannot render falls back to the generic form.
    """
    try:
        found = _rule(feature)
        if found is not None:
            m, category_rule, rule = found
            if category_rule is not None:
                return category_rule(m, None if _missing(value) else str(value), stages)
            if rule is not None and not isinstance(value, str):
                number = None if _missing(value) else float(value)  # type: ignore[arg-type]
                return rule(m, number, stages) or _fallback(feature, value)
    except Exception:  # a reason must never break a prediction
        pass
    return _fallback(feature, value)


@functools.lru_cache(maxsize=4096)
def _rule(feature: str) -> tuple[re.Match[str], CategoryRule | None, Rule | None] | None:
    """The rule for a feature name (the match depends on the name alone: matched once, not
    for every reason of every request)."""
    for pattern, category_rule in CATEGORICAL:
        if m := pattern.fullmatch(feature):
            return m, category_rule, None
    for pattern, rule in NUMERIC:
        if m := pattern.fullmatch(feature):
            return m, None, rule
    return None


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fallback(feature: str, value: Value) -> str:
    if _missing(value):
        return f"{feature} = missing"
    if isinstance(value, float):
        return f"{feature} = {_num(value)}"
    return f"{feature} = {value}"
