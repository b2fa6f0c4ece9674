"""The action catalog: the shipped default loads and mirrors the simulator, and every mistake in
a catalog file is an error naming the file and the key path."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.errors import ConfigError
from features.layout import layout
from features.spec import load_spec
from models.actions import load_catalog
from models.catalog import OutcomeValue

BASE: dict[str, Any] = {
    "outcomes": {
        "convert": {"value": {"feature": "aov", "default": 40.0, "min": 5, "max": 100}},
        "churn": {"value": -50.0},
    },
    "policy": {"caps": [{"max": 3, "window_days": 7}]},
    "actions": {
        "a": {"channel": "email", "cost": 0.1, "caps": [{"max": 1, "window_days": 30}]},
        "b": {"channel": "display", "cost": 0.5},
    },
}


def write(tmp_path: Path, raw: dict[str, Any] | str) -> Path:
    path = tmp_path / "actions.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw), encoding="utf-8")
    return path


def changed(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    edit(raw)
    return raw


def test_default_catalog_mirrors_the_simulator() -> None:
    catalog = load_catalog()
    text = resources.files("features.simulator").joinpath("default.yaml").read_text()
    sim = yaml.safe_load(text)["actions"]
    assert catalog.ids == tuple(sim)
    for action in catalog.actions:
        assert action.channel == sim[action.id]["channel"]
        stages = set(action.eligibility.stages) or set(load_spec().stages)
        assert stages == set(sim[action.id]["stages"]), action.id
    outreach = catalog.action("support_outreach").eligibility.conditions
    assert [(c.on, c.op, c.value) for c in outreach] == [("feature.csat_low", ">=", 1.0)]
    # discount_email excludes loyalty_offer: made symmetric at load time.
    assert [(e.action, e.days) for e in catalog.action("loyalty_offer").excludes] == [
        ("discount_email", 14.0)
    ]
    assert catalog.action("discount_email").value["convert"] == pytest.approx(0.85)
    assert {(c.max, c.window_days, c.channel) for c in catalog.policy.caps} == {
        (3, 7.0, None),
        (2, 7.0, "email"),
    }


def test_default_catalog_names_real_features() -> None:
    names = layout(load_spec()).all_names
    load_catalog(features=names)  # raises if a condition or outcome names no feature


def test_defaults_fill_in(tmp_path: Path) -> None:
    raw = changed(lambda r: r.pop("policy"))
    catalog = load_catalog(write(tmp_path, raw))
    p = catalog.policy
    assert (p.top_k, p.exploration, p.min_value, p.default_consent, p.caps) == (
        1,
        0.05,
        0.0,
        True,
        (),
    )
    a = catalog.action("a")
    assert a.value == {"convert": 1.0, "churn": 1.0}
    assert (a.cooldown_days, a.weight, a.excludes, a.eligibility.stages) == (0.0, 1.0, (), ())
    assert a.eligibility.consent is True


def test_yaml_1_2_booleans_keep_on_a_key(tmp_path: Path) -> None:
    # Under YAML 1.1 the unquoted condition key `on` would load as True, and `yes` as true.
    text = """
outcomes: {churn: {value: -50}}
actions:
  c:
    channel: email
    cost: 1
    eligibility:
      conditions:
        - {on: prediction.churn, op: ">=", value: 0.3}
        - on: feature.vip
          op: "=="
          value: yes
"""
    catalog = load_catalog(write(tmp_path, text))
    first, second = catalog.action("c").eligibility.conditions
    assert (first.source, first.name, first.value) == ("prediction", "churn", 0.3)
    assert (second.source, second.name, second.value) == ("feature", "vip", "yes")


def test_exclusions_are_symmetric_with_the_longer_window(tmp_path: Path) -> None:
    def edit(r: dict[str, Any]) -> None:
        r["actions"]["a"]["excludes"] = {"actions": ["b"], "days": 7}
        r["actions"]["b"]["excludes"] = {"actions": ["a"], "days": 14}

    catalog = load_catalog(write(tmp_path, changed(edit)))
    assert [(e.action, e.days) for e in catalog.action("a").excludes] == [("b", 14.0)]
    assert [(e.action, e.days) for e in catalog.action("b").excludes] == [("a", 14.0)]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit that sets a dotted path (list items by index) in the raw catalog."""

    def edit(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[int(last) if isinstance(node, list) else last] = value

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def _cond(on: str, op: str, value: Any) -> dict[str, Any]:
    return {"conditions": [{"on": on, "op": op, "value": value}]}


# fmt: off
CAP2 = [{"max": 1, "window_days": 30}, {"max": 2, "window_days": 0}]
BAD = [
    (_set("actions.a.caps", CAP2), "actions.a.caps[1].window_days: must be a positive number"),
    (_set("actions.a.caps", [{"max": -1, "window_days": 3}]), "actions.a.caps[0].max:"),
    (_set("actions.a.caps", [{"max": 1, "window_days": 3, "channel": "email"}]),
     "actions.a.caps[0].channel: unknown key"),
    (_set("actions.a.cooldown_day", 7), "actions.a.cooldown_day: unknown key"),
    (_set("extras", 1), "extras: unknown key"),
    (_set("actions.a.eligibility", {"stages": ["checkout"]}),
     "actions.a.eligibility.stages[0]: unknown stage 'checkout'"),
    (_set("actions.a.eligibility", {"stages": ["purchase", "purchase"]}),
     "actions.a.eligibility.stages[1]: 'purchase' is listed twice"),
    (_set("actions.a.eligibility", _cond("prediction.churn", "=>", 0.3)),
     "actions.a.eligibility.conditions[0].op: unknown operator '=>'"),
    (_set("actions.a.eligibility", _cond("prediction.ltv", ">=", 0.3)),
     "actions.a.eligibility.conditions[0].on: unknown prediction 'ltv'"),
    (_set("actions.a.eligibility", _cond("segment", ">=", 0.3)),
     "actions.a.eligibility.conditions[0].on: must be prediction.<name> or feature.<name>"),
    (_set("actions.a.eligibility", _cond("feature.region", ">=", "north")),
     "actions.a.eligibility.conditions[0].op: >= needs a number"),
    (_set("actions.a.eligibility", _cond("prediction.churn", "==", "high")),
     "actions.a.eligibility.conditions[0].value: a prediction compares with a number"),
    (_set("actions.a.eligibility", {"consent": "yes"}),
     "actions.a.eligibility.consent: must be true or false"),
    (_set("actions.a.cost", -0.1), "actions.a.cost: must be a cost of 0 or more"),
    (_drop("actions.a.channel"), "actions.a.channel: is required"),
    (_set("actions.a.weight", 0), "actions.a.weight: must be a positive weight"),
    (_set("actions.a.value", {"revenue": 0.9}), "actions.a.value.revenue: unknown key"),
    (_set("actions.a.value", {"convert": "most"}), "actions.a.value.convert: must be a number"),
    (_set("actions.a.cooldown_days", -1), "actions.a.cooldown_days:"),
    (_set("actions.a.excludes", {"actions": ["zzz"], "days": 3}),
     "actions.a.excludes.actions[0]: no action 'zzz' in the catalog"),
    (_set("actions.a.excludes", {"actions": ["a"]}),
     "actions.a.excludes.actions[0]: an action cannot exclude itself"),
    (_set("actions.a.excludes", {"actions": ["b"], "days": -2}), "actions.a.excludes.days:"),
    (_set("actions", {}), "actions: is required and must not be empty"),
    (_set("outcomes.revenue", {"value": 1}), "outcomes.revenue: unknown key"),
    (_set("outcomes.convert.value", {"feature": "aov"}),
     "outcomes.convert.value.default: is required"),
    (_set("outcomes.convert.value.min", 500), "outcomes.convert.value.min: min 500.0 is above"),
    (_set("outcomes.churn.value", math.nan), "outcomes.churn.value: must be a number"),
    (_set("policy.top_k", 0), "policy.top_k: must be a whole number of at least 1"),
    (_set("policy.exploration", 1.0), "policy.exploration: must be a share in [0, 1)"),
    (_set("policy.default_consent", 1), "policy.default_consent: must be true or false"),
    (_set("policy.caps", [{"max": 1, "window_days": 7, "channel": "sms"}]),
     "policy.caps[0].channel: no action uses channel 'sms'"),
]
# fmt: on


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_mistakes_name_the_file_and_key(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = write(tmp_path, changed(edit))
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)


def test_duplicate_action_ids_are_errors(tmp_path: Path) -> None:
    text = "outcomes: {churn: {value: -50}}\nactions:\n"
    text += "  a: {channel: email, cost: 1}\n  b: {channel: app, cost: 1}\n"
    text += "  a: {channel: display, cost: 2}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"actions\.yaml: actions\.a: written twice \(line 5\)"):
        load_catalog(path)


def test_unknown_feature_names_are_errors_when_features_are_given(tmp_path: Path) -> None:
    path = write(tmp_path, changed(_set("actions.a.eligibility", _cond("feature.csat", "<", 1))))
    load_catalog(path)  # without a feature list any name goes
    with pytest.raises(ConfigError, match=r"conditions\[0\]\.on: no feature named 'csat'"):
        load_catalog(path, features={"aov", "recency"})
    with pytest.raises(ConfigError, match=r"no feature named 'csat' \(did you mean 'csat_low'\?\)"):
        load_catalog(path, features={"aov", "csat_low"})
    with pytest.raises(ConfigError, match=r"outcomes\.convert\.value\.feature: no feature"):
        load_catalog(path, features={"csat"})


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_catalog(tmp_path / "missing.yaml")
    path = write(tmp_path, "actions: [unclosed\n")
    with pytest.raises(ConfigError, match=r"actions\.yaml: not valid YAML"):
        load_catalog(path)
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(62.0, 62.0), (1000.0, 100.0), (1.0, 5.0), (None, 40.0), (math.nan, 40.0), (0.0, 40.0),
     (-3.0, 40.0), ("n/a", 40.0)],
)  # fmt: skip
def test_outcome_value_clips_a_feature_or_falls_back(value: Any, expected: float) -> None:
    ov = OutcomeValue("convert", feature="aov", default=40.0, low=5.0, high=100.0)
    assert ov.of({"aov": value}) == expected
    assert ov.of({}) == 40.0
    assert OutcomeValue("churn", constant=-60.0).of({"aov": 3.0}) == -60.0


def test_listing_every_stage_keeps_the_stage_rule(tmp_path: Path) -> None:
    # Listing every stage still needs the customer to be at one: a prospect with contacts only
    # has none, and must not pass as if the action had no stage rule.
    every = list(load_spec().stages)
    catalog = load_catalog(write(tmp_path, changed(_set("actions.a.eligibility.stages", every))))
    assert catalog.action("a").eligibility.stages == tuple(every)
    assert catalog.action("b").eligibility.stages == ()


def test_a_catalog_action_outside_the_spec_vocabulary_is_refused(tmp_path: Path) -> None:
    # Sends of an action the feature spec does not list are stored as "other", so its own
    # cool-down, caps and exclusions would never see them.
    spec = dataclasses.replace(load_spec(), actions=("a",))
    path = write(tmp_path, BASE)
    wanted = (r"actions\.yaml: actions\.b: not in the feature spec's action vocabulary "
              r"\(<default features\.yaml>: actions: \[a\]\)")
    with pytest.raises(ConfigError, match=wanted):
        load_catalog(path, spec=spec)
    load_catalog(path)  # without a spec, nothing to compare with
    shipped = load_spec()
    assert load_catalog(spec=shipped).ids == shipped.actions  # the shipped pair agrees
