"""The action catalog from YAML: every rule checked at load time, every error naming the file and
the key path (``actions.yaml: actions.discount_email.caps[1].window_days: must be a positive
number``), so a mistake in a marketer-edited file fails loudly instead of silently not applying.

Unknown keys are errors (a misspelt ``cooldown_day`` would otherwise do nothing), and so are
duplicate keys, which plain YAML loading resolves silently by keeping the last one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from features.errors import ConfigError
from features.layout import layout
from features.spec import FeatureSpec
from features.taxonomy import Taxonomy, load_taxonomy
from models.catalog import (
    OPS,
    OUTCOMES,
    PREDICTIONS,
    Action,
    Cap,
    Catalog,
    Condition,
    Eligibility,
    Exclusion,
    OutcomeValue,
    Policy,
)
from models.strict_yaml import StrictLoader, Where, reject_duplicate_keys

__all__ = [
    "Action",
    "Cap",
    "Catalog",
    "Condition",
    "Eligibility",
    "Exclusion",
    "OutcomeValue",
    "Policy",
    "catalog_from_dict",
    "check_action_vocabulary",
    "load_catalog",
    "spec_features",
]

DEFAULT_CATALOG = "actions.yaml"


def _no_feature(name: str, features: Collection[str]) -> str:
    """The message for a misspelt feature, with the nearest name: the spec has ~160 of them."""
    close = difflib.get_close_matches(name, sorted(features), n=1)
    return f"no feature named {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _outcome(name: str, raw: Any, where: Where, features: Collection[str] | None) -> OutcomeValue:
    path = f"outcomes.{name}"
    if name not in OUTCOMES:
        where.fail(path, f"unknown outcome; outcomes are {', '.join(OUTCOMES)}")
    spec = where.mapping(raw, path, {"value"}, {"value"})["value"]
    path += ".value"
    if not isinstance(spec, dict):
        return OutcomeValue(name, constant=where.number(spec, path))
    spec = where.mapping(spec, path, {"feature", "default", "min", "max"}, {"feature", "default"})
    feature = where.name(spec["feature"], f"{path}.feature")
    if features is not None and feature not in features:
        where.fail(f"{path}.feature", _no_feature(feature, features))
    low = where.number(spec["min"], f"{path}.min") if "min" in spec else -math.inf
    high = where.number(spec["max"], f"{path}.max") if "max" in spec else math.inf
    if low > high:
        where.fail(f"{path}.min", f"min {low} is above max {high}")
    default = where.number(spec["default"], f"{path}.default")
    return OutcomeValue(name, feature=feature, default=default, low=low, high=high)


def _caps(
    raw: Any, path: str, where: Where, scope: str = "", channels: Collection[str] | None = None
) -> tuple[Cap, ...]:
    """Contact caps; `channels` given: policy caps, which may name a channel the catalog uses."""
    if not isinstance(raw, list):
        where.fail(path, f"must be a list of caps, got {raw!r}")
    allowed = {"max", "window_days"} | ({"channel"} if channels is not None else set())
    out = []
    for i, item in enumerate(raw):
        here = f"{path}[{i}]"
        cap = where.mapping(item, here, allowed, ("max", "window_days"))
        top = cap["max"]
        if not isinstance(top, int) or isinstance(top, bool) or top < 0:
            where.fail(
                f"{here}.max", f"must be a whole number of contacts (0 or more), got {top!r}"
            )
        window = where.number(
            cap["window_days"], f"{here}.window_days", low=0, strict=True, what="a positive number"
        )
        channel = cap.get("channel")
        if channel is not None:
            channel = where.name(channel, f"{here}.channel")
            if channels is not None and channel not in channels:
                where.fail(f"{here}.channel", f"no action uses channel {channel!r}")
        out.append(Cap(top, window, channel, scope))
    return tuple(out)


def _policy(raw: Any, where: Where, channels: Collection[str]) -> Policy:
    keys = {"top_k", "exploration", "min_value", "default_consent", "caps"}
    p = where.mapping(raw, "policy", keys)
    top_k = p.get("top_k", 1)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        where.fail("policy.top_k", f"must be a whole number of at least 1, got {top_k!r}")
    return Policy(
        top_k=top_k,
        exploration=where.number(
            p.get("exploration", 0.05),
            "policy.exploration",
            low=0,
            high=1,
            what="a share in [0, 1)",
        ),
        min_value=where.number(p.get("min_value", 0.0), "policy.min_value"),
        default_consent=where.flag(p.get("default_consent", True), "policy.default_consent"),
        caps=_caps(p.get("caps", []), "policy.caps", where, channels=channels),
    )


def _condition(raw: Any, path: str, where: Where, features: Collection[str] | None) -> Condition:
    c = where.mapping(raw, path, {"on", "op", "value"}, ("on", "op", "value"))
    on = where.name(c["on"], f"{path}.on")
    source, _, name = on.partition(".")
    if source == "prediction" and name not in PREDICTIONS:
        where.fail(
            f"{path}.on", f"unknown prediction {name!r}; predictions are " + ", ".join(PREDICTIONS)
        )
    if source not in ("prediction", "feature") or not name:
        where.fail(f"{path}.on", f"must be prediction.<name> or feature.<name>, got {on!r}")
    if source == "feature" and features is not None and name not in features:
        where.fail(f"{path}.on", _no_feature(name, features))
    op = c["op"]
    if op not in OPS:
        where.fail(f"{path}.op", f"unknown operator {op!r}; use one of {' '.join(OPS)}")
    value = c["value"]
    if isinstance(value, str | bool):
        if source == "prediction":
            where.fail(f"{path}.value", f"a prediction compares with a number, got {value!r}")
        if op not in ("==", "!="):
            where.fail(f"{path}.op", f"{op} needs a number; {value!r} allows only == or !=")
    else:
        value = where.number(value, f"{path}.value", what="a number, a string or true/false")
    return Condition(on, op, value)


def _eligibility(
    raw: Any, path: str, where: Where, stages: tuple[str, ...], features: Collection[str] | None
) -> Eligibility:
    e = where.mapping(raw, path, {"stages", "conditions", "consent"})
    chosen: tuple[str, ...] = ()
    if "stages" in e:
        chosen = where.names(e["stages"], f"{path}.stages")
        for i, s in enumerate(chosen):
            if s not in stages:
                where.fail(
                    f"{path}.stages[{i}]", f"unknown stage {s!r}; stages are " + ", ".join(stages)
                )
    conditions = e.get("conditions", [])
    if not isinstance(conditions, list):
        where.fail(f"{path}.conditions", f"must be a list of conditions, got {conditions!r}")
    return Eligibility(
        stages=chosen,
        conditions=tuple(
            _condition(c, f"{path}.conditions[{i}]", where, features)
            for i, c in enumerate(conditions)
        ),
        consent=where.flag(e.get("consent", True), f"{path}.consent"),
    )


# An action's YAML keys are its dataclass fields (the id is the key it is listed under).
_ACTION_KEYS = frozenset(f.name for f in dataclasses.fields(Action) if f.init) - {"id"}


def _action(
    action_id: str,
    raw: Any,
    where: Where,
    stages: tuple[str, ...],
    outcomes: tuple[str, ...],
    features: Collection[str] | None,
    excludes: tuple[Exclusion, ...],
) -> Action:
    path = f"actions.{action_id}"
    a = where.mapping(raw, path, _ACTION_KEYS, ("channel", "cost"))
    description = a.get("description", "")
    if not isinstance(description, str):
        where.fail(f"{path}.description", f"must be text, got {description!r}")
    multipliers = where.mapping(a.get("value", {}), f"{path}.value", outcomes)
    return Action(
        id=action_id,
        channel=where.name(a["channel"], f"{path}.channel"),
        description=description,
        eligibility=_eligibility(
            a.get("eligibility", {}), f"{path}.eligibility", where, stages, features
        ),
        cost=where.number(a["cost"], f"{path}.cost", low=0, what="a cost of 0 or more"),
        value={o: where.number(multipliers.get(o, 1.0), f"{path}.value.{o}") for o in outcomes},
        caps=_caps(a.get("caps", []), f"{path}.caps", where, scope=action_id),
        excludes=excludes,
        cooldown_days=where.number(
            a.get("cooldown_days", 0),
            f"{path}.cooldown_days",
            low=0,
            what="a number of days (0 or more)",
        ),
        weight=where.number(
            a.get("weight", 1.0), f"{path}.weight", low=0, strict=True, what="a positive weight"
        ),
    )


def _exclusions(raw_actions: dict[str, Any], where: Where) -> dict[str, tuple[Exclusion, ...]]:
    """Exclusions made symmetric: if A excludes B, B excludes A, over the longer of the two
    windows, so the rule holds whichever of the two was sent first."""
    days: dict[frozenset[str], float] = {}
    for action_id, raw in raw_actions.items():
        if "excludes" not in raw:
            continue
        path = f"actions.{action_id}.excludes"
        ex = where.mapping(raw["excludes"], path, {"actions", "days"}, ("actions",))
        others = where.names(ex["actions"], f"{path}.actions")
        window = where.number(
            ex.get("days", 0), f"{path}.days", low=0, what="a number of days (0 or more)"
        )
        for i, other in enumerate(others):
            if other not in raw_actions:
                where.fail(f"{path}.actions[{i}]", f"no action {other!r} in the catalog")
            if other == action_id:
                where.fail(
                    f"{path}.actions[{i}]", "an action cannot exclude itself (use cooldown_days)"
                )
            pair = frozenset((action_id, other))
            days[pair] = max(days.get(pair, 0.0), window)
    order = list(raw_actions)
    return {
        a: tuple(
            Exclusion(b, d)
            for b in order
            for pair, d in days.items()
            if a in pair and b in pair and a != b
        )
        for a in order
    }


def catalog_from_dict(
    raw: Any,
    source: str,
    *,
    taxonomy: Taxonomy | None = None,
    features: Collection[str] | None = None,
) -> Catalog:
    """A validated catalog. `features` given: condition and outcome features must be in it."""
    where = Where(source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with outcomes, policy and actions")
    where.mapping(raw, "", {"outcomes", "policy", "actions"})
    for key in ("outcomes", "actions"):
        if not raw.get(key):
            where.fail(key, "is required and must not be empty")
    stages = (taxonomy or load_taxonomy()).stages
    raw_outcomes = where.mapping(raw["outcomes"], "outcomes", OUTCOMES)
    outcomes = tuple(_outcome(str(k), v, where, features) for k, v in raw_outcomes.items())
    raw_actions = raw["actions"]
    if not isinstance(raw_actions, dict):
        where.fail("actions", f"must map an action id to its rules, got {raw_actions!r}")
    for action_id in raw_actions:
        where.name(action_id, f"actions.{action_id}")
        where.mapping(raw_actions[action_id], f"actions.{action_id}", _ACTION_KEYS)
    excludes = _exclusions(raw_actions, where)
    names = tuple(o.outcome for o in outcomes)
    actions = tuple(
        _action(k, v, where, stages, names, features, excludes[k]) for k, v in raw_actions.items()
    )
    policy = _policy(raw.get("policy", {}), where, {a.channel for a in actions})
    return Catalog(outcomes, policy, actions, source)


def check_action_vocabulary(catalog: Catalog, spec: FeatureSpec) -> None:
    """Refuse a catalog action the feature spec's ``actions:`` lacks. Events store an action as
    its code in that vocabulary, anything else as "other", so such an action's sends would
    never count toward its own cool-down, caps or exclusions and it could be sent again and
    again."""
    for action in catalog.actions:
        if action.id not in spec.actions:
            Where(catalog.source).fail(
                f"actions.{action.id}",
                f"not in the feature spec's action vocabulary ({spec.source}: actions: "
                f"[{', '.join(spec.actions)}]); its sends would be recorded as 'other' and never "
                "count toward its own cool-down, caps or exclusions: add it there",
            )


def spec_features(spec: FeatureSpec) -> tuple[str, ...]:
    """Every feature a condition or an outcome value may read (``load_catalog``'s
    ``features``): the vector's numeric and categorical columns, and the customer attributes
    as ``attr_<name>``, as a scored customer's row offers them (serving/recommender.py)."""
    return (*layout(spec).all_names, *(f"attr_{a}" for a in spec.attributes))


def load_catalog(
    path: str | Path | None = None,
    *,
    taxonomy: Taxonomy | None = None,
    features: Collection[str] | None = None,
    spec: FeatureSpec | None = None,
) -> Catalog:
    """The action catalog (None: the one shipped, ``models/config/actions.yaml``); `spec`
    given, every action must be in its action vocabulary (``check_action_vocabulary``)."""
    if path is None:
        text = resources.files("models.config").joinpath(DEFAULT_CATALOG).read_text()
        source = f"<default {DEFAULT_CATALOG}>"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"action catalog not found: {p}")
        text, source = p.read_text(encoding="utf-8"), str(p)
    try:
        node = yaml.compose(text, Loader=StrictLoader)
        raw = yaml.load(text, Loader=StrictLoader)  # safe: StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if node is not None:
        reject_duplicate_keys(node, Where(source))
    catalog = catalog_from_dict(raw, source, taxonomy=taxonomy, features=features)
    if spec is not None:
        check_action_vocabulary(catalog, spec)
    return catalog
