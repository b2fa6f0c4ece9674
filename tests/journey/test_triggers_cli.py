"""`journey triggers test` (a dry run on the event store) and the triggers `journey score` fires,
through typer's CliRunner on the small world with its champions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.store import EventStore
from serving.firings import FiringStore, NewFiring
from tests.journey.cli_helpers import fails, ok
from tests.serving.conftest import AS_OF, Served, build_served
from tests.serving.webhook_receiver import SECRET, Receiver
from tests.training.world import Trained, UpliftTrained, World, clean_env, one_thread

pytestmark = pytest.mark.slow  # needs the trained world

EARLIER = AS_OF - timedelta(days=30)
LONG_AGO = "2000-01-01"  # before every event: "before" is no history at all


def write_rules(home: Path, url: str, threshold: float = 0.5,
                direction: str = "up") -> None:
    def rule(rid: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": rid, "kind": kind, "params": params, "endpoints": ["hook"],
                "cooldown": "7d"}

    raw = {"delivery": {"attempts": 2, "base_delay_seconds": 0.05},
           "endpoints": {"hook": {"url": url, "secret": SECRET}},
           "rules": [rule("entered_decision", "entered_stage", {"stage": "decision"}),
                     rule("churn", "risk_crossed", {"threshold": threshold,
                                                    "direction": direction}),
                     rule("quiet_14", "inactive_for", {"days": 14})]}
    (home / "triggers.yaml").write_text(yaml.safe_dump(raw))


@pytest.fixture(scope="module")
def served(world: World, trained: Trained, uplift_trained: UpliftTrained,
           tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The small world's champions in a registry copy of this module's own."""
    return build_served(world, trained, uplift_trained, tmp_path_factory.mktemp("cli-served"))


@pytest.fixture(scope="module")
def home(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("triggers-cli")
    with Receiver() as receiver, clean_env(), one_thread(), pytest.MonkeyPatch.context() as mp:
        write_rules(folder, receiver.url)
        mp.setenv("JOURNEY_HOME", str(folder))
        mp.setenv("JOURNEY_STORE", str(served.world.store))
        mp.setenv("JOURNEY_MLFLOW_TRACKING_URI", served.tracking_uri)
        mp.setenv("JOURNEY_TRIGGERS", str(folder / "triggers.yaml"))
        folder.joinpath("receiver").write_text(receiver.url)
        yield folder
        receiver.requests.clear()


@pytest.fixture(scope="module")
def in_decision(home: Path, served: Served) -> str:
    """A customer whose current stage at AS_OF is decision."""
    with EventStore(served.world.store, read_only=True) as es:
        ids: list[str] = [r[0] for r in es.con.execute(
            "SELECT customer_id FROM customers ORDER BY customer_key LIMIT 60").fetchall()]
    for cid in ids:
        lines = dry(cid, "entered_decision", "--since", LONG_AGO)
        if "stage decision" in _line(lines, "now:"):
            return cid
    raise AssertionError("no customer in decision among the first 60")


def dry(cid: str, rule: str, *args: str) -> list[str]:
    return ok("triggers", "test", rule, "--customer", cid, "--as-of", AS_OF.isoformat(), *args)


def _line(lines: list[str], start: str) -> str:
    return next(x.strip() for x in lines if x.strip().startswith(start))


def test_a_dry_run_says_it_would_fire_and_why(in_decision: str) -> None:
    lines = dry(in_decision, "entered_decision", "--since", LONG_AGO)
    assert lines[0].startswith("rule entered_decision (entered_stage {'stage': 'decision'}), "
                               "cool-down 7d; evaluated on events and scoring runs")
    assert _line(lines, "before:") == "before: no events"
    assert _line(lines, "condition:") == "condition: met - stage none -> decision"
    assert _line(lines, "cool-down:") == ("cool-down: no firing stored for this customer "
                                          "(older ones, past their cool-down, are pruned)")
    assert _line(lines, "would fire:").startswith("would fire: yes (dry run")


def _churn_change(cid: str) -> tuple[str, float, float]:
    """A --since at which the customer's calibrated churn differs from now's (isotonic maps
    are steps: a month apart can fall on one step)."""
    for days in (30, 60, 14, 90, 7):
        since = (AS_OF - timedelta(days=days)).isoformat()
        lines = dry(cid, "churn", "--since", since)
        before = float(re.findall(r"churn ([0-9.]+)", _line(lines, "before:"))[0])
        now = float(re.findall(r"churn ([0-9.]+)", _line(lines, "now:"))[0])
        if before != now:
            return since, before, now
    raise AssertionError(f"{cid}: the same churn probability at every --since tried")


def test_a_dry_run_of_a_risk_rule_shows_the_probabilities(home: Path, in_decision: str) -> None:
    since, before, now = _churn_change(in_decision)
    url = (home / "receiver").read_text()
    try:
        write_rules(home, url, (before + now) / 2, "up" if now > before else "down")
        lines = dry(in_decision, "churn", "--since", since)
        assert "crossed" in _line(lines, "condition: met")
        write_rules(home, url, (before + now) / 2, "down" if now > before else "up")
        lines = dry(in_decision, "churn", "--since", since)
        assert "did not cross" in _line(lines, "condition: not met")
        assert _line(lines, "would fire:").startswith("would fire: no")
    finally:
        write_rules(home, url)


def test_a_dry_run_shows_the_cool_down(home: Path, in_decision: str) -> None:
    store = FiringStore(home / "triggers.sqlite")
    at = int((AS_OF - timedelta(days=2)).timestamp() * 1e6)
    store.claim([NewFiring("held-1", "entered_decision", in_decision, at, 7 * 86_400_000_000,
                           "2025-11-13T00:00:00Z", "events", b"{}", ("hook",))])
    store.close()
    lines = dry(in_decision, "entered_decision", "--since", LONG_AGO)
    assert "firing held-1" in _line(lines, "cool-down:")
    assert "held until 2025-11-20T00:00:00Z" in _line(lines, "cool-down:")
    assert _line(lines, "condition:").startswith("condition: met")
    assert _line(lines, "would fire:").startswith("would fire: no")


def test_without_a_snapshot_it_compares_with_just_before_the_last_event(
        in_decision: str) -> None:
    lines = dry(in_decision, "entered_decision")
    assert "just before the last event" in lines[1]


@pytest.mark.parametrize(("args", "says"), [
    (["triggers", "test", "nope", "--customer", "c"], "no rule 'nope' (rules: entered_decision"),
    (["triggers", "test", "quiet_14", "--customer", "nobody-at-all"],
     "no events for customer 'nobody-at-all'"),
    (["triggers", "test", "quiet_14", "--customer", "c", "--as-of", "yesterday"],
     "not an ISO date"),
])
def test_dry_run_errors_say_what_is_wrong(home: Path, args: list[str], says: str) -> None:
    assert says in fails(*args)


def test_journey_score_fires_the_scoring_run_rules(home: Path) -> None:
    ok("score", "--as-of", EARLIER.isoformat(), "--no-actions")
    out = ok("score", "--as-of", AS_OF.isoformat(), "--no-actions")
    fired = [x for x in out if x.startswith("triggers: ")]
    assert fired and re.match(r"triggers: [0-9,]+ fired$", fired[0]), out
    n = int(fired[0].split()[1].replace(",", ""))
    assert n > 0
    store = FiringStore(home / "triggers.sqlite")
    rows = store.firings(limit=10_000).rows
    store.close()
    runs = [r for r in rows if r["source"] == "scoring run"]
    assert len(runs) == n and {r["status"] for r in runs} == {"delivered"}
    # A second run as of the same time compares with itself: nothing more fires.
    assert "triggers: 0 fired" in ok("score", "--as-of", AS_OF.isoformat(), "--no-actions")
