"""Webhook delivery of trigger firings against local receivers: the signature, retries with
back-off until a failing receiver recovers, the dead letter after the last attempt, the
cool-down claim (restarts included) and deliveries resumed after a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.firings import FiringStore, NewFiring, Pending
from serving.trigger_config import DeliveryPolicy, Endpoint
from serving.webhooks import Sender, sign, verify
from tests.serving.webhook_receiver import SECRET, Receiver

DAY_US = 86_400_000_000
T0 = 1_763_164_800_000_000  # 2025-11-15 in µs
FAST = DeliveryPolicy(attempts=4, base_delay_seconds=0.02, max_delay_seconds=0.1, senders=2)


def firing(fid: str, at_us: int = T0, customer: str = "c1", cooldown_days: float = 7,
           endpoints: tuple[str, ...] = ("hook",)) -> NewFiring:
    body = json.dumps({"firing_id": fid, "rule": "r", "customer_id": customer,
                       "fired_at": "2025-11-15T00:00:00Z", "details": {}}).encode()
    return NewFiring(fid, "r", customer, at_us, round(cooldown_days * DAY_US),
                     "2025-11-15T00:00:00Z", "events", body, endpoints)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FiringStore]:
    s = FiringStore(tmp_path / "triggers.sqlite")
    yield s
    s.close()


def send(store: FiringStore, receiver: Receiver, fid: str,
         policy: DeliveryPolicy = FAST) -> None:
    """Claim one firing, deliver it and wait until the sender has nothing left."""
    (f,) = store.claim([firing(fid)])
    sender = Sender(store, {"hook": Endpoint("hook", receiver.url, SECRET, 2.0)}, policy)
    sender.start()
    try:
        sender.submit([Pending(f.firing_id, "hook", f.body, 0)])
        assert sender.wait(10.0)
    finally:
        sender.close()


def test_a_delivery_is_signed_over_timestamp_and_raw_body(store: FiringStore) -> None:
    with Receiver() as receiver:
        send(store, receiver, "f1")
    (got,) = receiver.requests
    assert got.signed and got.answered == 200
    assert got.json["firing_id"] == "f1" and got.headers["x-journey-firing"] == "f1"
    assert got.headers["content-type"] == "application/json"
    ts, sig = got.headers["x-journey-timestamp"], got.headers["x-journey-signature"]
    assert verify(SECRET, got.body, ts, sig)
    assert not verify(SECRET, got.body + b" ", ts, sig)  # a changed body
    assert not verify("another-secret-0123456789", got.body, ts, sig)
    assert not verify(SECRET, got.body, str(int(ts) + 1), sig)  # a changed timestamp
    # The same signed request replayed ten minutes later is refused for its timestamp.
    assert not verify(SECRET, got.body, ts, sig, now=int(ts) + 600)
    assert sign(SECRET, int(ts), got.body) == sig
    (row,) = store.firings().rows
    assert row["status"] == "delivered"
    assert row["deliveries"][0]["attempts"] == 1


def test_a_failing_receiver_that_recovers_gets_it_after_retries(store: FiringStore) -> None:
    with Receiver(fail_first=2) as receiver:
        started = time.monotonic()
        send(store, receiver, "f2")
        took = time.monotonic() - started
    assert [r.answered for r in receiver.requests] == [500, 500, 200]
    assert [r.headers["x-journey-attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert all(r.signed for r in receiver.requests)
    assert {r.body for r in receiver.requests} == {receiver.requests[0].body}  # same firing
    assert took >= 0.02 + 0.04  # waited the back-off: base delay, then twice it
    (row,) = store.firings().rows
    assert row["status"] == "delivered"
    d = row["deliveries"][0]
    assert (d["status"], d["attempts"], d["http_status"]) == ("delivered", 3, 200)


def test_a_receiver_that_always_fails_leaves_a_dead_letter(store: FiringStore) -> None:
    with Receiver(always_fail=True) as receiver:
        send(store, receiver, "f3")
    assert len(receiver.requests) == FAST.attempts
    (row,) = store.firings(status="dead").rows
    d = row["deliveries"][0]
    assert (d["status"], d["attempts"], d["http_status"]) == ("dead", FAST.attempts, 500)
    assert d["last_error"].startswith("HTTP 500")
    assert store.unfinished() == []
    assert store.counts()["dead"] == 1


def test_a_refused_connection_is_retried_then_dead(store: FiringStore) -> None:
    with Receiver() as receiver:
        url = receiver.url
    (f,) = store.claim([firing("f4")])  # the receiver is gone: connections are refused
    sender = Sender(store, {"hook": Endpoint("hook", url, SECRET, 1.0)}, FAST)
    sender.start()
    sender.submit([Pending(f.firing_id, "hook", f.body, 0)])
    assert sender.wait(10.0)
    sender.close()
    (row,) = store.firings().rows
    assert row["status"] == "dead"
    assert "ConnectError" in row["deliveries"][0]["last_error"]


def test_back_off_doubles_up_to_the_cap() -> None:
    p = DeliveryPolicy(attempts=8, base_delay_seconds=2, max_delay_seconds=10)
    assert [p.delay(k) for k in range(1, 6)] == [2, 4, 8, 10, 10]


def test_a_rule_fires_once_per_customer_per_cool_down(tmp_path: Path) -> None:
    path = tmp_path / "triggers.sqlite"
    store = FiringStore(path)
    assert [f.firing_id for f in store.claim([firing("a"), firing("b", T0 + DAY_US)])] == ["a"]
    assert store.claim([firing("c", customer="c2")])  # another customer: its own cool-down
    assert not store.claim([firing("d", T0 + 6 * DAY_US)])  # inside the 7 days
    store.close()
    again = FiringStore(path)  # a restart: the cool-down is read from the file
    assert not again.claim([firing("e", T0 + 7 * DAY_US - 1)])
    assert not again.claim([firing("f", T0 - DAY_US)])  # a run back in time fires nothing
    assert [f.firing_id for f in again.claim([firing("g", T0 + 7 * DAY_US)])] == ["g"]
    last = again.last("r", "c1")
    assert last is not None and last["firing_id"] == "g"
    assert [r["firing_id"] for r in again.firings(customer_id="c1").rows] == ["g", "a"]
    again.close()


def test_a_restart_resumes_unfinished_deliveries(store: FiringStore) -> None:
    store.claim([firing("p1", endpoints=("hook", "other"))])
    pending = store.unfinished()
    assert {(p.firing_id, p.endpoint, p.attempts) for p in pending} == {
        ("p1", "hook", 0), ("p1", "other", 0)}
    with Receiver() as receiver, Receiver() as other:
        sender = Sender(store, {"hook": Endpoint("hook", receiver.url, SECRET, 2.0),
                                "other": Endpoint("other", other.url, SECRET, 2.0)}, FAST)
        sender.start()
        sender.submit(pending)
        assert sender.wait(10.0)
        sender.close()
    assert len(receiver.requests) == len(other.requests) == 1
    assert store.firings().rows[0]["status"] == "delivered"


def test_a_slow_receiver_does_not_hold_up_another(store: FiringStore) -> None:
    with Receiver(delay=1.5) as slow, Receiver() as quick:
        store.claim([firing("s1", endpoints=("slow",)), firing("q1", customer="c2",
                                                            endpoints=("quick",))])
        sender = Sender(store, {"slow": Endpoint("slow", slow.url, SECRET, 5.0),
                                "quick": Endpoint("quick", quick.url, SECRET, 5.0)}, FAST)
        sender.start()
        started = time.monotonic()
        sender.submit(store.unfinished())
        quick.wait_for(1, timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert sender.wait(10.0)
        sender.close()


def test_firings_page_by_the_order_stored(store: FiringStore) -> None:
    """Every firing is reachable page by page, newest first; one stored meanwhile neither
    repeats nor hides one."""
    # A day apart with a half-day cool-down: every one fires.
    store.claim([firing(f"f{i}", T0 + i * DAY_US, f"c{i % 2}", 0.5) for i in range(7)])
    page = store.firings(limit=3)
    ids, pages = [r["firing_id"] for r in page.rows], 1
    assert (ids, page.matched, page.more) == (["f6", "f5", "f4"], 7, True)
    store.claim([firing("late", T0 + 9 * DAY_US, "c9")])
    while page.more:
        page = store.firings(limit=3, before=page.rows[-1]["seq"])
        ids, pages = ids + [r["firing_id"] for r in page.rows], pages + 1
    assert (ids, pages) == ([f"f{i}" for i in range(6, -1, -1)], 3)
    odd = store.firings(customer_id="c1", limit=2)
    assert ([r["firing_id"] for r in odd.rows], odd.matched, odd.more) == (["f5", "f3"], 3, True)
    last = store.firings(customer_id="c1", limit=2, before=odd.rows[-1]["seq"])
    assert ([r["firing_id"] for r in last.rows], last.more) == (["f1"], False)


def test_no_firings_yet_is_an_empty_page(tmp_path: Path) -> None:
    """Before anything fires the file does not exist: an empty page, not an error."""
    store = FiringStore(tmp_path / "none" / "triggers.sqlite")
    try:
        page = store.firings(rule="r")
        assert (page.rows, page.matched, page.more) == ([], 0, False)
    finally:
        store.close()
