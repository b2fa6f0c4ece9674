"""Triggers against hostile input: a rule's rate cap holds a flood of firings for made-up
customers; a receiver's error page is not stored or shown; the rules route names the rules
file, not where it lies on the server."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from features.errors import ConfigError
from serving.app import create_app
from serving.firings import FiringStore, NewFiring, Pending, wall_clock
from serving.keys import Role
from serving.trigger_config import DEFAULT_MAX_PER_MINUTE, DeliveryPolicy, Endpoint
from serving.webhooks import Sender
from tests.serving.conftest import AS_OF, Served, state_of
from tests.serving.test_triggers_config import config
from tests.serving.test_triggers_config import rule as config_rule
from tests.serving.test_triggers_service import rule, rules_file
from tests.serving.webhook_receiver import SECRET, Receiver
from tests.training.world import clean_env, one_thread

DAY_US = 86_400_000_000
T0 = 1_763_164_800_000_000  # 2025-11-15 in µs


def firing(fid: str, customer: str, cap: int | None, fired_at: str | None = None) -> NewFiring:
    return NewFiring(fid, "r", customer, T0, 7 * DAY_US,
                     fired_at or wall_clock(datetime.now(UTC)), "events", b"{}", ("hook",), cap)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FiringStore]:
    s = FiringStore(tmp_path / "triggers.sqlite")
    yield s
    s.close()


# -- the rate cap ----------------------------------------------------------------------------

def test_firings_over_the_cap_are_held_not_sent(store: FiringStore) -> None:
    got = store.claim_all([firing(f"a{i}", f"c{i}", 3) for i in range(5)])
    assert [f.firing_id for f in got.sent] == ["a0", "a1", "a2"] and got.held == {"r": 2}
    again = store.claim_all([firing("b0", "c9", 3)])  # the same minute: the cap is spent
    assert again.sent == [] and again.held == {"r": 1}
    held = store.firings(status="held").rows
    assert {r["firing_id"] for r in held} == {"a3", "a4", "b0"}
    assert {(r["held_reason"], len(r["deliveries"])) for r in held} == {("rate_cap", 0)}
    assert [p.firing_id for p in store.unfinished()] == ["a0", "a1", "a2"]  # only they go out
    assert store.counts()["held"] == 3
    assert store.last("r", "c3") is None  # a held firing holds no cool-down


def test_the_cap_counts_the_last_minute_only(store: FiringStore) -> None:
    old = wall_clock(datetime.now(UTC) - timedelta(seconds=61))
    assert len(store.claim_all([firing(f"o{i}", f"c{i}", 2, old) for i in range(2)]).sent) == 2
    assert len(store.claim_all([firing(f"n{i}", f"d{i}", 2) for i in range(3)]).sent) == 2
    # No cap (a firing claimed by an older caller): all sent.
    assert len(store.claim_all([firing(f"u{i}", f"e{i}", None) for i in range(5)]).sent) == 5


def test_a_firings_file_from_before_the_cap_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "triggers.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE firings (firing_id TEXT PRIMARY KEY, rule TEXT NOT NULL,
            customer_id TEXT NOT NULL, at_us INTEGER NOT NULL, fired_at TEXT NOT NULL,
            source TEXT NOT NULL, status TEXT NOT NULL, body BLOB NOT NULL);
        INSERT INTO firings VALUES ('x', 'r', 'c', 1, '2025-01-01T00:00:00Z', 'events',
            'delivered', '{}');
    """)
    con.commit()
    con.close()
    s = FiringStore(path)
    try:
        assert s.claim_all([firing("y", "c2", 1)]).sent
        rows = {r["firing_id"]: r for r in s.firings().rows}
        assert rows["x"]["held_reason"] is None and rows["y"]["status"] == "pending"
    finally:
        s.close()


@pytest.mark.parametrize("value", [0, -5, 1.5, "lots", True])
def test_a_bad_cap_names_the_file_and_the_key(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, [config_rule("inactive_for", {"days": 14}, max_per_minute=value)])
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'triggers.yaml'}: rules[0].max_per_minute: ")
    assert "whole number of at least 1" in message


def test_the_cap_defaults(tmp_path: Path) -> None:
    (r,) = config(tmp_path, [config_rule("inactive_for", {"days": 14})]).rules
    assert r.max_per_minute == DEFAULT_MAX_PER_MINUTE == 600


@pytest.fixture(scope="module")
def capped(served: Served, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[TestClient, Receiver, Path]]:
    """The app with one rule capped at 5 firings a minute, its rules file in a folder."""
    folder = tmp_path_factory.mktemp("capped")
    with Receiver() as hook:
        capped_rule = {**rule("entered_decision", "entered_stage", {"stage": "decision"}),
                       "max_per_minute": 5}
        path = rules_file(folder / "private-config", {"hook": hook.url}, [capped_rule])
        settings = served.settings(served.store_copy(folder / "store"), home=folder / "home",
                                   triggers=path)
        with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
            yield c, hook, path


def made_up(n: int, tag: str) -> list[dict[str, Any]]:
    when = (AS_OF - timedelta(minutes=1)).isoformat()
    return [{"event_id": f"flood-{tag}-{i}", "customer_id": f"fake-{tag}-{i}", "ts": when,
             "event_type": "add_to_cart", "channel": "web"} for i in range(n)]


def test_a_flood_of_made_up_customers_fires_at_most_the_cap(
        capped: tuple[TestClient, Receiver, Path], served: Served,
        caplog: pytest.LogCaptureFixture) -> None:
    client, hook, _ = capped
    triggers = state_of(client).triggers
    with caplog.at_level(logging.WARNING, logger="journey.triggers"):
        for tag in ("a", "b"):  # two requests: one warning a minute, not one a batch
            r = client.post("/events", json={"events": made_up(30, tag)},
                            headers=served.headers(Role.ingest))
            assert r.status_code == 200, r.text
            assert triggers.idle(20.0), triggers.status()
    assert len(hook.requests) == 5
    m = served.headers(Role.marketer)
    out = client.get("/triggers/firings", params={"status": "held", "limit": 100},
                     headers=m).json()
    assert out["matched"] == 55 and out["counts"]["held"] == 55
    assert out["counts"]["delivered"] == 5
    assert {(f["held_reason"], len(f["deliveries"])) for f in out["firings"]} == {
        ("rate_cap", 0)}
    warned = [r for r in caplog.records if "max_per_minute" in r.getMessage()]
    assert len(warned) == 1 and "entered_decision" in warned[0].getMessage()


def test_the_rules_route_names_the_file_not_its_folder(
        capped: tuple[TestClient, Receiver, Path], served: Served) -> None:
    client, _, path = capped
    out = client.get("/triggers/rules", headers=served.headers(Role.marketer)).json()
    assert out["source"] == "triggers.yaml"
    assert "private-config" not in json.dumps(out) and str(path.parent) not in json.dumps(out)
    assert out["rules"][0]["max_per_minute"] == 5


# -- the receiver's error page ---------------------------------------------------------------

SECRET_PAGE = b"Traceback ... db_password=hunter2"
FAST = DeliveryPolicy(attempts=1, base_delay_seconds=0.01, max_delay_seconds=0.01, senders=1)


def answer_of(store: FiringStore, handler: Any) -> dict[str, Any]:
    """The stored delivery of one firing sent to ``handler`` (an httpx mock transport)."""
    (f,) = store.claim([firing("w1", "c1", None)])
    client = httpx.Client(transport=httpx.MockTransport(handler))
    sender = Sender(store, {"hook": Endpoint("hook", "http://receiver.test/hook", SECRET, 1.0)},
                    FAST, client)
    sender.start()
    try:
        sender.submit([Pending(f.firing_id, "hook", f.body, 0)])
        assert sender.wait(10.0)
    finally:
        sender.close()
    (row,) = store.firings().rows
    delivery: dict[str, Any] = row["deliveries"][0]
    return delivery


@pytest.mark.parametrize(("status", "said"), [(500, "HTTP 500 Internal Server Error"),
                                              (418, "HTTP 418 I'm a Teapot"),
                                              (599, "HTTP 599")])
def test_a_refusal_keeps_the_status_not_the_receivers_words(
        store: FiringStore, caplog: pytest.LogCaptureFixture, status: int, said: str) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=SECRET_PAGE,
                              extensions={"reason_phrase": b"password hunter2"})

    with caplog.at_level(logging.DEBUG, logger="journey.triggers"):
        d = answer_of(store, handler)
    assert (d["status"], d["http_status"], d["last_error"]) == ("dead", status, said)
    assert "hunter2" not in caplog.text


def test_a_protocol_error_does_not_quote_the_receiver(store: FiringStore) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("illegal status line: b'db_password=hunter2'")

    d = answer_of(store, handler)
    assert d["last_error"].startswith("RemoteProtocolError") and "hunter2" not in d["last_error"]


def test_what_fired_is_logged_once_a_minute(
        capped: tuple[TestClient, Receiver, Path], caplog: pytest.LogCaptureFixture) -> None:
    """A line per evaluation batch was 99 % of a busy service's log (a soak test: 1 MB an
    hour); the counts since the last line are kept."""
    triggers = state_of(capped[0]).triggers
    assert triggers is not None
    triggers._fired, triggers._cooled, triggers._fired_logged = {}, 0, -math.inf
    with caplog.at_level(logging.INFO, logger="journey.triggers"):
        triggers._log_fired("events", 3, 0)
        triggers._log_fired("events", 1, 0)
        triggers._log_fired("scoring", 1, 1)
        triggers._fired_logged -= 61
        triggers._log_fired("events", 0, 0)
    lines = [r.getMessage() for r in caplog.records if "fired" in r.getMessage()]
    assert lines == [
        "triggers: fired 3 from events since the last such line (0 held by cool-downs)",
        "triggers: fired 1 from events, 1 from scoring since the last such line (1 held by "
        "cool-downs)"]
