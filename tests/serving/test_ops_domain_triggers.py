"""Triggers and webhooks as an operator sees them: firings and deliveries counted per rule in
the service's registry, the queue's depth and drops, retries and dead letters logged at most
once a minute per endpoint with the count of those held back, every firing counted in a
"fired" line within the interval (not only when a later one fires), the stop saying what it
leaves pending, and the firings route filtered by the firing id a log line names."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from features.spec import load_spec
from models.actions import load_catalog
from serving.app import create_app
from serving.firings import FiringStore, NewFiring, Pending
from serving.keys import Role
from serving.ops_metrics import TriggerMetrics
from serving.predictor import Predictor
from serving.snapshots import Snapshot
from serving.trigger_config import DeliveryPolicy, Endpoint, TriggerConfig
from serving.trigger_rules import Verdict
from serving.trigger_snapshots import Candidate
from serving.trigger_states import StateReader
from serving.triggers import Triggers
from serving.webhooks import Sender
from tests.serving.conftest import Served, state_of
from tests.serving.test_triggers_config import config
from tests.serving.test_triggers_config import rule as config_rule
from tests.serving.webhook_receiver import SECRET
from tests.training.world import clean_env, one_thread

URL = "http://receiver.test/hook"  # answered by an httpx mock transport: no socket
AT_US = 1_763_164_800_000_000  # 2025-11-15


def refused(_: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def accepted(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def firing(fid: str, rule: str = "r") -> NewFiring:
    body = json.dumps({"firing_id": fid, "rule": rule, "customer_id": f"c-{fid}",
                       "fired_at": "2025-11-15T00:00:00Z", "details": {}}).encode()
    return NewFiring(fid, rule, f"c-{fid}", AT_US, 7 * 86_400_000_000, "2025-11-15T00:00:00Z",
                     "events", body, ("hook",))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FiringStore]:
    s = FiringStore(tmp_path / "triggers.sqlite")
    yield s
    s.close()


def sender_of(store: FiringStore, answer: Callable[[httpx.Request], httpx.Response],
              registry: CollectorRegistry, attempts: int) -> Sender:
    policy = DeliveryPolicy(attempts=attempts, base_delay_seconds=0.01, max_delay_seconds=0.01,
                            senders=1)
    return Sender(store, {"hook": Endpoint("hook", URL, SECRET, 1.0)}, policy,
                  httpx.Client(transport=httpx.MockTransport(answer)),
                  metrics=TriggerMetrics(registry))


def deliver(sender: Sender, store: FiringStore, fids: list[str]) -> None:
    sent = store.claim([firing(f) for f in fids])
    sender.start()
    try:
        sender.submit(Pending(f.firing_id, "hook", f.body, 0, f.rule) for f in sent)
        assert sender.wait(20.0)
    finally:
        sender.close()


def test_dead_letters_and_retries_are_counted_and_logged_once_a_minute(
        store: FiringStore, caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    sender = sender_of(store, refused, registry, attempts=2)
    fids = [f"dead{i}" for i in range(5)]
    with caplog.at_level(logging.INFO, logger="journey.triggers"):
        deliver(sender, store, fids)  # close() says what was held back
    lines = [r for r in caplog.records if r.name == "journey.triggers"]
    dead = [r.getMessage() for r in lines if re.search(r"dead (after|since)", r.getMessage())]
    assert len(dead) == 2, dead  # the first, then the count of the others at close
    first = re.fullmatch(r"firing (\w+) to hook dead after 2 attempts: HTTP 503 Service "
                         r"Unavailable", dead[0])
    assert first is not None and first.group(1) in fids
    assert dead[1] == ("4 more firing(s) to hook dead since the last such line "
                       "(GET /v1/triggers/firings?status=dead lists them)")
    assert all(r.levelno == logging.WARNING for r in lines
               if re.search(r"dead (after|since)", r.getMessage()))
    retries = [r for r in lines if "attempt 1 of 2 failed" in r.getMessage()]
    assert len(retries) == 1 and retries[0].levelno == logging.INFO
    assert "(HTTP 503 Service Unavailable); trying again in 0.01s" in retries[0].getMessage()
    said = [r.getMessage() for r in lines if "more failed attempt(s)" in r.getMessage()]
    assert said == ["4 more failed attempt(s) to hook since the last such line, each retried "
                    "later"]
    assert URL not in caplog.text  # the receiver's address may hold a token
    total = "journey_webhook_deliveries_total"
    assert sample(registry, total, rule="r", outcome="dead") == 5
    assert sample(registry, total, rule="r", outcome="retry") == 5
    assert sample(registry, total, rule="r", outcome="delivered") == 0


def test_a_line_held_back_carries_the_count_in_the_next_one(
        store: FiringStore, caplog: pytest.LogCaptureFixture) -> None:
    sender = sender_of(store, refused, CollectorRegistry(), attempts=1)
    sender.flush_logs = lambda force=False: None  # type: ignore[method-assign]  # not at close
    deliver(sender, store, ["a1", "a2", "a3"])
    caplog.clear()
    later = sender_of(store, refused, CollectorRegistry(), attempts=1)
    later.throttle = sender.throttle
    later.throttle.every = 0.0  # the minute is over
    with caplog.at_level(logging.WARNING, logger="journey.triggers"):
        deliver(later, store, ["b1"])
    (line,) = [r.getMessage() for r in caplog.records if "dead after" in r.getMessage()]
    assert line == "firing b1 to hook dead after 1 attempts: HTTP 503 Service Unavailable " \
                   "(+2 more dead since the last such line)"


def test_deliveries_are_counted_per_rule(store: FiringStore) -> None:
    registry = CollectorRegistry()
    deliver(sender_of(store, accepted, registry, attempts=1), store, ["ok1", "ok2"])
    assert sample(registry, "journey_webhook_deliveries_total", rule="r",
                  outcome="delivered") == 2


def triggers_of(cfg: TriggerConfig, store: FiringStore, registry: CollectorRegistry
                ) -> Triggers:
    spec, catalog = load_spec(), load_catalog()
    reader = StateReader(spec, Predictor(spec.stages, 0, (0.3, 0.6)), catalog, cfg.enabled)
    t = Triggers(cfg, store, reader, lambda: None, lambda: datetime.now(UTC),
                 TriggerMetrics(registry))
    t.sender.client = httpx.Client(transport=httpx.MockTransport(accepted))
    t.prune_first_seconds = 3600.0
    return t


def candidates(t: Triggers, *customers: str) -> list[Candidate]:
    rule = t.rules[0]
    return [Candidate(rule, c, AT_US, Verdict(True, "entered decision", {})) for c in customers]


def fired_counts(caplog: pytest.LogCaptureFixture) -> int:
    found = [re.search(r"fired (\d+) from events", r.getMessage()) for r in caplog.records]
    return sum(int(m.group(1)) for m in found if m is not None)


def test_every_firing_is_in_a_fired_line_within_the_interval(
        tmp_path: Path, store: FiringStore, caplog: pytest.LogCaptureFixture) -> None:
    """Three firings from three events: the first line said 1, the other two waited for a
    later firing, a minute on or never."""
    cfg = config(tmp_path, [config_rule("entered_stage", {"stage": "decision"})])
    t = triggers_of(cfg, store, CollectorRegistry())
    t.fired_log_seconds = 2.0
    with caplog.at_level(logging.INFO, logger="journey.triggers"):
        t.start()
        try:
            for who in ("c1", "c2", "c3"):
                assert t.fire(candidates(t, who), "events") == 1
            assert fired_counts(caplog) == 1  # the first at once, the others held
            deadline = time.monotonic() + 10
            while fired_counts(caplog) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fired_counts(caplog) == 3  # without any later firing
        finally:
            t.close()


def test_firings_are_counted_per_rule_and_state(
        tmp_path: Path, store: FiringStore) -> None:
    cfg = config(tmp_path, [config_rule("entered_stage", {"stage": "decision"},
                                        max_per_minute=2)])
    registry = CollectorRegistry()
    t = triggers_of(cfg, store, registry)
    rule = t.rules[0].id
    total = "journey_trigger_firings_total"
    assert sample(registry, total, rule=rule, state="sent") == 0
    assert registry.get_sample_value(total, {"rule": rule, "state": "held"}) == 0  # exposed
    try:
        assert t.fire(candidates(t, "c1", "c2"), "events") == 2
        assert t.fire(candidates(t, "c1", "c3"), "events") == 0  # c1 cooled, c3 over the cap
    finally:
        t.close()
    assert sample(registry, total, rule=rule, state="sent") == 2
    assert sample(registry, total, rule=rule, state="cooled") == 1
    assert sample(registry, total, rule=rule, state="held") == 1


def test_the_queue_depth_and_drops_are_metrics_and_drops_warn_once_a_minute(
        tmp_path: Path, store: FiringStore, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(tmp_path, [config_rule("inactive_for", {"days": 14})],
                 delivery={"queue_size": 1})
    registry = CollectorRegistry()
    t = triggers_of(cfg, store, registry)  # not started: nothing takes from the queue
    snap = Snapshot(tmp_path / "scores" / "s1", {})
    with caplog.at_level(logging.WARNING, logger="journey.triggers"):
        for _ in range(4):
            t.after_scoring(snap)
    t.close()
    assert sample(registry, "journey_trigger_queue_depth") == 1
    assert sample(registry, "journey_trigger_queue_dropped_total") == 3
    full = [r for r in caplog.records if "evaluation queue full" in r.getMessage()]
    assert len(full) == 1 and t.status()["dropped"] == 3


def test_a_stop_says_what_it_leaves_pending(
        tmp_path: Path, store: FiringStore, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(tmp_path, [config_rule("entered_stage", {"stage": "decision"})],
                 delivery={"attempts": 5, "base_delay_seconds": 60})
    t = triggers_of(cfg, store, CollectorRegistry())
    t.sender.client = httpx.Client(transport=httpx.MockTransport(refused))
    with caplog.at_level(logging.INFO, logger="journey.triggers"):
        t.start()
        t.fire(candidates(t, "c1", "c2"), "events")
        deadline = time.monotonic() + 10
        while store.counts()["retrying"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        t.close()
    assert ("triggers: stopped; 2 webhook delivery(ies) unsent, kept pending in "
            "triggers.sqlite for the next start") in caplog.messages
    assert "triggers: fired 2 from events since the last such line (0 held by cool-downs)" \
        in caplog.messages


def test_the_firings_page_finds_one_firing_by_its_id(store: FiringStore) -> None:
    store.claim([firing("one"), firing("two"), firing("three", rule="other")])
    page = store.firings(firing_id="two")
    assert [r["firing_id"] for r in page.rows] == ["two"] and page.matched == 1
    assert store.firings(firing_id="two", rule="other").matched == 0
    assert store.firings(firing_id="nope").rows == []


def test_the_firings_route_takes_a_firing_id(served: Served, tmp_path: Path) -> None:
    settings = served.settings(served.store_copy(tmp_path / "store"), home=tmp_path / "home")
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        state_of(c).triggers.firings.claim([firing("route-1"), firing("route-2")])
        h = served.headers(Role.marketer)
        r = c.get("/triggers/firings", params={"firing_id": " route-2 "}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [f["firing_id"] for f in body["firings"]] == ["route-2"] and body["matched"] == 1
