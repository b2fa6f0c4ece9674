"""Trigger rules: the YAML checked with errors naming the file and the key, each kind's verdict
in words, and the scoring-run comparison of two snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from features.errors import ConfigError
from features.taxonomy import load_taxonomy
from models.actions import load_catalog
from serving.snapshots import write_snapshot
from serving.trigger_config import TriggerConfig, load_trigger_config
from serving.trigger_rules import DAY_US, CustomerState, judge
from serving.trigger_snapshots import snapshot_candidates
from tests.serving.webhook_receiver import SECRET

STAGES = load_taxonomy().stages
ACTIONS = load_catalog().index
T = 1_763_164_800_000_000  # 2025-11-15 in µs


def rule(kind: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": f"{kind}_rule", "kind": kind, "params": params, "endpoints": ["hook"],
            "cooldown": "7d", **extra}


def config(tmp_path: Path, rules: list[dict[str, Any]], **top: Any) -> TriggerConfig:
    raw = {"endpoints": {"hook": {"url": "http://127.0.0.1:9/hook", "secret": SECRET}},
           "rules": rules, **top}
    path = tmp_path / "triggers.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_trigger_config(path, STAGES, ACTIONS)


def test_the_packaged_rules_load_and_start_disabled() -> None:
    cfg = load_trigger_config(None, STAGES, ACTIONS)
    assert {r.kind for r in cfg.rules} == {"entered_stage", "risk_crossed", "became_eligible",
                                           "inactive_for"}
    assert cfg.enabled == ()
    assert cfg.endpoints["automation"].secret is None  # not needed while no rule is enabled


def test_a_rule_is_read_with_its_defaults(tmp_path: Path) -> None:
    cfg = config(tmp_path, [rule("risk_crossed", {"threshold": 0.6}, cooldown="12h"),
                            rule("became_eligible", {"action": "loyalty_offer"})])
    risk, eligible = cfg.rules
    assert risk.params == {"threshold": 0.6, "direction": "up"}
    assert risk.cooldown_us == 12 * 3600 * 1_000_000 and risk.enabled
    assert eligible.params == {"action": "loyalty_offer", "level": "eligible"}
    assert cfg.delivery.attempts == 5


@pytest.mark.parametrize(("rules", "top", "where", "says"), [
    ([rule("entered_stag", {"stage": "decision"})], {}, "rules[0].kind", "unknown kind"),
    ([rule("risk_crossed", {"threshold": 1.5})], {}, "rules[0].params.threshold",
     "probability in (0, 1)"),
    ([rule("risk_crossed", {"threshold": 0.5, "direction": "sideways"})], {},
     "rules[0].params.direction", "directions are up, down"),
    ([rule("entered_stage", {"stage": "checkout"})], {}, "rules[0].params.stage",
     "unknown stage 'checkout'"),
    ([rule("became_eligible", {"action": "free_car"})], {}, "rules[0].params.action",
     "no action 'free_car'"),
    ([rule("inactive_for", {"days": 0})], {}, "rules[0].params.days", "positive number"),
    ([rule("inactive_for", {"days": 14, "hours": 3})], {}, "rules[0].params.hours",
     "unknown key"),
    ([rule("inactive_for", {"days": 14}, cooldown=7)], {}, "rules[0].cooldown",
     "such as 7d"),
    ([rule("inactive_for", {"days": 14}, endpoints=["crm"])], {}, "rules[0].endpoints[0]",
     "no endpoint 'crm'"),
    ([rule("inactive_for", {"days": 14}, cooldwn="7d")], {}, "rules[0].cooldwn",
     "unknown key"),
    ([rule("inactive_for", {"days": 14}, enabled="yes please")], {}, "rules[0].enabled",
     "true or false"),
    ([rule("inactive_for", {"days": 14}), rule("inactive_for", {"days": 30})], {},
     "rules[1].id", "id of an earlier rule"),
    ([], {"delivery": {"attempts": 0}}, "delivery.attempts", "at least 1"),
    ([], {"delivery": {"base_delay_seconds": 100, "max_delay_seconds": 5}},
     "delivery.base_delay_seconds", "must not exceed max_delay_seconds (5)"),
    ([], {"endpoints": {"hook": {"url": "ftp://x", "secret": SECRET}}}, "endpoints.hook.url",
     "http:// or https://"),
    ([], {"endpoints": {"hook": {"url": "http://x", "secret": "short"}}},
     "endpoints.hook.secret", "at least 16"),
    ([rule("inactive_for", {"days": 14})],
     {"endpoints": {"hook": {"url": "http://x", "secret_env": "JOURNEY_TEST_NO_SUCH_VAR"}}},
     "endpoints.hook.secret_env", "JOURNEY_TEST_NO_SUCH_VAR is not set"),
])
def test_a_mistake_names_the_file_and_the_key(tmp_path: Path, rules: list[dict[str, Any]],
                                              top: dict[str, Any], where: str,
                                              says: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, rules, **top)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'triggers.yaml'}: {where}: "), message
    assert says in message


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    """A second ``rules:`` block used to replace the first one's rules without a word."""
    path = tmp_path / "triggers.yaml"
    path.write_text(f"endpoints:\n  hook: {{url: 'http://127.0.0.1:9/h', secret: {SECRET}}}\n"
                    "rules: []\ndelivery:\n  attempts: 3\n  attempts: 4\nrules: []\n")
    with pytest.raises(ConfigError, match=r"triggers\.yaml: line 6: delivery\.attempts: written "
                       r"twice \(first at line 5\)"):
        load_trigger_config(path, STAGES, ACTIONS)
    path.write_text("rules: []\nrules: []\n")
    with pytest.raises(ConfigError, match=r"triggers\.yaml: line 2: rules: written twice "
                       r"\(first at line 1\)"):
        load_trigger_config(path, STAGES, ACTIONS)


def test_a_secret_comes_from_the_environment(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_TEST_HOOK_SECRET", SECRET)
    cfg = config(tmp_path, [rule("inactive_for", {"days": 14})], endpoints={
        "hook": {"url": "https://hooks.example.com/j", "secret_env": "JOURNEY_TEST_HOOK_SECRET"}})
    assert cfg.endpoints["hook"].secret == SECRET
    assert SECRET not in repr(cfg)


def state(at: int = T, stage: str | None = "decision", churn: float | None = 0.5,
          last: int | None = None, blocked: dict[str, str | None] | None = None
          ) -> CustomerState:
    return CustomerState(at, stage, churn, last, blocked or {})


def test_each_kind_says_why_it_fires_or_not(tmp_path: Path) -> None:
    entered, up, down, eligible, quiet = config(tmp_path, [
        rule("entered_stage", {"stage": "decision"}),
        rule("risk_crossed", {"threshold": 0.6}, id="up"),
        rule("risk_crossed", {"threshold": 0.6, "direction": "down"}, id="down"),
        rule("became_eligible", {"action": "loyalty_offer"}),
        rule("inactive_for", {"days": 14})]).rules
    assert judge(entered, state(stage="consideration"), state(), None).why == \
        "stage consideration -> decision"
    assert judge(entered, None, state(), None).fires  # a new customer enters too
    assert not judge(entered, state(), state(), None).fires
    assert "not decision" in judge(entered, None, state(stage="purchase"), None).why
    crossed = judge(up, state(churn=0.55), state(churn=0.62), None)
    assert crossed.fires and crossed.why == "churn 0.550 -> 0.620 crossed 0.6 upward"
    assert crossed.details == {"threshold": 0.6, "direction": "up", "churn_before": 0.55,
                               "churn": 0.62}
    assert not judge(up, state(churn=0.6), state(churn=0.7), None).fires  # already at it
    assert not judge(up, None, state(churn=0.9), None).fires  # nothing to compare with
    assert judge(down, state(churn=0.6), state(churn=0.59), None).fires
    assert "no churn probability" in judge(up, state(), state(churn=None), None).why
    was: dict[str, str | None] = {
        "loyalty_offer": "stage decision not in purchase, retention, advocacy"}
    now: dict[str, str | None] = {"loyalty_offer": None}
    became = judge(eligible, state(blocked=was), state(blocked=now), None)
    assert became.fires and "before: stage decision not in" in became.why
    assert not judge(eligible, state(blocked=now), state(blocked=now), None).fires
    last = T - 15 * DAY_US  # reached 14 days one day before T
    assert judge(quiet, None, state(last=last), T - 2 * DAY_US).fires
    assert "before the previous run" in judge(quiet, None, state(last=last), T - DAY_US // 2).why
    assert "under 14" in judge(quiet, None, state(last=T - 3 * DAY_US), T - DAY_US).why
    assert "no earlier run" in judge(quiet, None, state(last=last), None).why


def _snapshot(root: Path, as_of: datetime, rows: list[tuple[str, str, float, float]],
              churn_model: str = "1") -> None:
    ids, stages, churn, recency = zip(*rows, strict=True)
    table = pa.table({"customer_id": list(ids),
                      "stage": pa.array(list(stages)).dictionary_encode(),
                      "churn": list(churn), "recency_days": list(recency)})
    write_snapshot(root, table, None, {"as_of": as_of.isoformat().replace("+00:00", "Z"),
                                       "models": {"churn": churn_model}}, keep=5)


def test_a_scoring_run_compares_with_the_previous_snapshot(tmp_path: Path) -> None:
    from serving.snapshots import latest

    cfg = config(tmp_path, [rule("entered_stage", {"stage": "decision"}),
                            rule("risk_crossed", {"threshold": 0.6}),
                            rule("inactive_for", {"days": 14})])
    t0 = datetime(2025, 11, 1, tzinfo=UTC)
    root = tmp_path / "scores"
    _snapshot(root, t0, [("a", "consideration", 0.5, 1.0), ("b", "decision", 0.7, 10.0),
                         ("c", "purchase", 0.2, 5.0)])
    first = latest(root)
    assert first is not None and snapshot_candidates(cfg.rules, first, None) == []
    _snapshot(root, t0 + timedelta(days=7), [
        ("a", "decision", 0.65, 0.5),  # entered decision, crossed 0.6
        ("b", "decision", 0.8, 17.0),  # already in decision, above 0.6; 14 days on day 4
        ("c", "purchase", 0.3, 2.0),  # active again: nothing
        ("d", "decision", 0.9, 30.0)])  # new since: entered; its 14 days were before t0
    snap = latest(root)
    assert snap is not None
    found = {(c.rule.kind, c.customer_id) for c in snapshot_candidates(cfg.rules, snap, first)}
    assert found == {("entered_stage", "a"), ("risk_crossed", "a"), ("inactive_for", "b"),
                     ("entered_stage", "d")}
    _snapshot(root, t0 + timedelta(days=8), [("a", "decision", 0.1, 0.5),
                                            ("e", "awareness", 0.9, 0.0)], churn_model="2")
    changed = latest(root)
    assert changed is not None  # a new churn model: crossings would be the model's
    assert {c.rule.kind for c in snapshot_candidates(cfg.rules, changed, snap)} == set()


def test_a_backdated_scoring_run_fires_nothing(tmp_path: Path) -> None:
    """Scored as of an earlier time than the newest (for a backtest), a snapshot is history:
    compared with nothing, every customer would have 'entered' their stage."""
    from serving.snapshots import read_snapshot
    from serving.triggers import Triggers

    cfg = config(tmp_path, [rule("entered_stage", {"stage": "decision"})])
    seen: list[int] = []

    class Judged:  # the part of Triggers evaluate_snapshot uses
        rules = cfg.rules

        def fire(self, candidates: list[object], source: str) -> int:
            seen.append(len(candidates))
            return len(candidates)

    root = tmp_path / "scores"
    t0 = datetime(2025, 11, 1, tzinfo=UTC)
    _snapshot(root, t0, [("a", "consideration", 0.5, 1.0)])
    _snapshot(root, t0 + timedelta(days=7), [("a", "decision", 0.5, 1.0)])
    _snapshot(root, t0 - timedelta(days=30), [("a", "decision", 0.5, 1.0)])
    snaps = sorted(p for p in root.iterdir() if p.is_dir())
    new, old = read_snapshot(snaps[1]), read_snapshot(snaps[2])
    assert old.meta["published"] is False
    assert Triggers.evaluate_snapshot(Judged(), new) == 1  # type: ignore[arg-type]
    assert Triggers.evaluate_snapshot(Judged(), old) == 0  # type: ignore[arg-type]
    assert seen == [1]
