"""Behavioural triggers in the running app, on the small world: rules judged as events arrive
and on scoring runs, signed webhooks to local receivers, cool-downs, dead letters, the
firings and dry-run routes, a restart, and an ingest that a slow receiver does not hold up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.keys import Role
from serving.state import ServiceState
from tests.serving.conftest import AS_OF, Served, state_of
from tests.serving.test_app import error
from tests.serving.webhook_receiver import SECRET, Receiver
from tests.training.world import clean_env, one_thread

EARLIER = AS_OF - timedelta(days=30)


def rules_file(folder: Path, urls: dict[str, str], rules: list[dict[str, Any]],
               base_delay: float = 0.05, attempts: int = 3) -> Path:
    raw = {"delivery": {"attempts": attempts, "base_delay_seconds": base_delay,
                        "max_delay_seconds": 0.5},
           "endpoints": {name: {"url": url, "secret": SECRET} for name, url in urls.items()},
           "rules": rules}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "triggers.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def rule(rule_id: str, kind: str, params: dict[str, Any], endpoint: str = "hook",
         cooldown: str = "7d") -> dict[str, Any]:
    return {"id": rule_id, "kind": kind, "params": params, "endpoints": [endpoint],
            "cooldown": cooldown}


RULES = [
    rule("entered_decision", "entered_stage", {"stage": "decision"}),
    rule("loyalty", "became_eligible", {"action": "loyalty_offer"}, cooldown="30d"),
    rule("churn_high", "risk_crossed", {"threshold": 0.5}, cooldown="30d"),
    rule("quiet_14", "inactive_for", {"days": 14}, cooldown="30d"),
    # Judged on events only, so scoring runs send nothing to the failing and slow receivers.
    rule("to_dead", "became_eligible", {"action": "support_outreach"}, endpoint="dead"),
    rule("to_slow", "became_eligible", {"action": "retargeting_ad"}, endpoint="slow"),
    rule("discount_picked", "became_eligible", {"action": "discount_email",
                                                "level": "recommended"}),
]


@dataclass
class Live:
    client: TestClient
    served: Served
    receivers: dict[str, Receiver]

    @property
    def hook(self) -> Receiver:
        return self.receivers["hook"]

    @property
    def state(self) -> ServiceState:
        return state_of(self.client)

    def ingest(self, *events: dict[str, Any]) -> float:
        """Post events; seconds until the answer (the triggers then settle)."""
        started = time.perf_counter()
        r = self.client.post("/events", json={"events": list(events)},
                             headers=self.served.headers(Role.ingest))
        took = time.perf_counter() - started
        assert r.status_code == 200, r.text
        return took

    def settle(self) -> None:
        assert self.state.triggers.idle(20.0), self.state.triggers.status()

    def firings(self, **params: Any) -> list[dict[str, Any]]:
        r = self.client.get("/triggers/firings", params=params,
                            headers=self.served.headers(Role.marketer))
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()["firings"]
        return out


def event(cid: str, event_type: str, when: datetime, tag: str) -> dict[str, Any]:
    return {"event_id": f"trig-{tag}-{cid}-{event_type}", "customer_id": cid,
            "event_type": event_type, "ts": when.isoformat(), "channel": "web"}


@pytest.fixture(scope="module")
def live(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("triggers")
    with Receiver() as hook, Receiver(always_fail=True) as dead, Receiver(delay=3.0) as slow:
        path = rules_file(folder, {"hook": hook.url, "dead": dead.url, "slow": slow.url}, RULES)
        settings = served.settings(served.store_copy(folder / "store"), home=folder / "home",
                                   triggers=path)
        with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
            yield Live(c, served, {"hook": hook, "dead": dead, "slow": slow})


def customers_in(w: Live, stage: str, n: int) -> list[str]:
    """Customers whose current stage is ``stage`` at AS_OF and whose last event is over a day
    old (so an event a minute before AS_OF is their last)."""
    history = w.state.history
    assert history is not None  # the app has loaded
    ids = history.customer_ids()[:600]
    r = w.client.post("/predict/batch", json={"customer_ids": ids},
                      headers=w.served.headers(Role.predict))
    out = []
    for p in r.json()["predictions"]:
        arrays = history.arrays(p["customer_id"], int(AS_OF.timestamp() * 1e6))
        assert arrays is not None
        old = arrays.ts[-1] < (AS_OF - timedelta(days=1)).timestamp() * 1e6
        if p["current_stage"] == stage and old:
            out.append(p["customer_id"])
    assert len(out) >= n
    return out[:n]


def test_entering_a_stage_sends_a_signed_webhook(live: Live) -> None:
    cid = customers_in(live, "consideration", 1)[0]
    live.ingest(event(cid, "add_to_cart", AS_OF - timedelta(minutes=1), "a"))
    live.settle()
    got = [r for r in live.hook.requests if r.json["rule"] == "entered_decision"
           and r.json["customer_id"] == cid]
    assert len(got) == 1 and got[0].signed and got[0].answered == 200
    body = got[0].json
    assert set(body) == {"firing_id", "rule", "customer_id", "fired_at", "details"}
    assert body["details"]["kind"] == "entered_stage" and body["details"]["source"] == "events"
    assert body["details"]["previous_stage"] == "consideration"
    assert body["details"]["as_of"] == AS_OF.isoformat().replace("+00:00", "Z")
    assert body["details"]["reason"] == "stage consideration -> decision"
    (f,) = live.firings(rule="entered_decision", customer_id=cid)
    assert f["firing_id"] == body["firing_id"] and f["status"] == "delivered"
    assert f["deliveries"][0]["attempts"] == 1 and f["source"] == "events"


def test_a_second_entry_inside_the_cool_down_does_not_fire(live: Live) -> None:
    cid = customers_in(live, "consideration", 2)[1]
    live.ingest(event(cid, "add_to_cart", AS_OF - timedelta(minutes=3), "b1"))
    live.ingest(event(cid, "page_view", AS_OF - timedelta(minutes=2), "b2"))  # back out
    live.ingest(event(cid, "checkout", AS_OF - timedelta(minutes=1), "b3"))  # and in again
    live.settle()
    assert len(live.firings(rule="entered_decision", customer_id=cid)) == 1
    later = AS_OF + timedelta(days=8)  # past the 7-day cool-down (the service clock moves on)
    live.state.settings.as_of = later
    try:
        live.ingest(event(cid, "page_view", later - timedelta(minutes=2), "b4"))
        live.ingest(event(cid, "add_to_cart", later - timedelta(minutes=1), "b5"))
        live.settle()
    finally:
        live.state.settings.as_of = AS_OF
    fired = live.firings(rule="entered_decision", customer_id=cid)
    assert [f["as_of"][:10] for f in fired] == [later.date().isoformat(),
                                                AS_OF.date().isoformat()]


def test_a_first_purchase_makes_the_loyalty_offer_eligible(live: Live) -> None:
    live.ingest(event("trig-new-1", "purchase", AS_OF - timedelta(hours=1), "c"))
    live.settle()
    (f,) = live.firings(rule="loyalty", customer_id="trig-new-1")
    assert f["details"]["action"] == "loyalty_offer" and f["status"] == "delivered"
    assert f["details"]["was_blocked_by"] == "new customer"
    assert live.firings(rule="entered_decision", customer_id="trig-new-1") == []


def test_a_receiver_that_always_fails_leaves_a_dead_letter(live: Live) -> None:
    bad = event("trig-new-2", "support_ticket", AS_OF - timedelta(hours=1), "d")
    live.ingest({**bad, "properties": {"csat": 1}})  # a bad experience: a call is eligible
    live.settle()
    (f,) = live.firings(rule="to_dead", customer_id="trig-new-2")
    assert f["status"] == "dead"
    (d,) = f["deliveries"]
    assert (d["endpoint"], d["attempts"], d["http_status"]) == ("dead", 3, 500)
    assert d["last_error"].startswith("HTTP 500")
    assert [x["firing_id"] for x in live.firings(status="dead")] == [f["firing_id"]]
    tries = [r for r in live.receivers["dead"].requests if r.json["customer_id"] == "trig-new-2"]
    assert len(tries) == 3 and all(r.signed for r in tries)


def test_ingest_is_not_held_up_by_a_slow_receiver(live: Live) -> None:
    took = live.ingest(event("trig-new-3", "page_view", AS_OF - timedelta(hours=1), "e"))
    assert took < 1.0  # the receiver takes 3 s per webhook
    (got,) = live.receivers["slow"].wait_for(1, timeout=10.0)
    assert got.json["customer_id"] == "trig-new-3" and got.signed


def test_the_dry_run_route_explains_and_sees_the_cool_down(live: Live) -> None:
    fired = live.firings(rule="entered_decision")[-1]  # the first test's customer
    h = live.served.headers(Role.marketer)
    r = live.client.get("/triggers/test", headers=h, params={
        "rule": "entered_decision", "customer_id": fired["customer_id"],
        "since": EARLIER.isoformat()})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["now"]["stage"] == "decision" and out["last_firing"] is not None
    assert out["cooldown_until"] is not None and out["would_fire"] is False
    picked = live.client.get("/triggers/test", headers=h, params={
        "rule": "discount_picked", "customer_id": fired["customer_id"]}).json()
    why = picked["now"]["blocked"]["discount_email"]  # None: next-best-action picks it
    assert why is None or why.split(":")[0] in ("eligibility", "value", "contact_policy",
                                                "exclusion"), why
    assert picked["compared_with"].startswith("just before the last event")
    error(live.client.get("/triggers/test", headers=h, params={
        "rule": "nope", "customer_id": fired["customer_id"]}), 404, "not_found", "rule")
    error(live.client.get("/triggers/test", headers=h, params={
        "rule": "entered_decision", "customer_id": "nobody"}), 404, "unknown_customer")
    error(live.client.get("/triggers/firings", headers=live.served.headers(Role.predict)),
          403, "forbidden")
    rules = live.client.get("/triggers/rules", headers=h).json()
    assert [x["id"] for x in rules["rules"]] == [x["id"] for x in RULES]
    assert "127.0.0.1" not in str(rules)  # endpoint addresses stay server-side


def test_a_scoring_run_fires_what_changed_since_the_previous_one(live: Live) -> None:
    h = live.served.headers(Role.admin)
    for when in (EARLIER, AS_OF):
        r = live.client.post("/admin/score", json={"as_of": when.isoformat()}, headers=h)
        assert r.status_code == 200, r.text
    live.settle()
    snap = live.state.marketing.book().snapshot
    table = snap.customers().to_pydict()
    recency = np.array(table["recency_days"], dtype=float)
    # Inactivity reached 14 days within (EARLIER, AS_OF]: 14 <= recency now < 14 + 30.
    quiet = {c for c, r in zip(table["customer_id"], recency, strict=True) if 14 <= r < 44}
    fired = {f["customer_id"] for f in live.firings(rule="quiet_14", limit=1000)}
    assert fired == quiet and len(quiet) > 10
    assert {f["source"] for f in live.firings(rule="quiet_14", limit=1000)} == {"scoring run"}
    assert all(r.signed for r in live.hook.requests)
    # Page through them, four at a time: the same firings, each once.
    paged: list[str] = []
    params: dict[str, Any] = {"rule": "quiet_14", "limit": 4}
    while True:
        r = live.client.get("/triggers/firings", params=params,
                            headers=live.served.headers(Role.marketer))
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["matched"] == len(quiet)
        paged += [f["customer_id"] for f in page["firings"]]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert sorted(paged) == sorted(quiet)


def test_a_restart_neither_fires_again_nor_drops_a_delivery(served: Served,
                                                            tmp_path: Path) -> None:
    cid = "trig-restart"
    with Receiver() as hook, Receiver(always_fail=True) as flaky:
        path = rules_file(tmp_path, {"hook": hook.url, "flaky": flaky.url}, [
            RULES[0], rule("to_flaky", "entered_stage", {"stage": "awareness"}, "flaky")],
            base_delay=0.2, attempts=50)
        settings = served.settings(served.store_copy(tmp_path / "store"), home=tmp_path / "home",
                                   triggers=path)
        with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
            first = Live(c, served, {"hook": hook})
            first.ingest(event(cid, "ad_impression", AS_OF - timedelta(hours=3), "r1"))
            first.ingest(event(cid, "add_to_cart", AS_OF - timedelta(hours=2), "r2"))
            hook.wait_for(1)
            flaky.wait_for(1)  # failed: retrying when the service stops
        flaky.always_fail = False
        with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
            again = Live(c, served, {"hook": hook})
            again.ingest(event(cid, "page_view", AS_OF - timedelta(hours=1), "r3"))
            again.ingest(event(cid, "add_to_cart", AS_OF - timedelta(minutes=30), "r4"))
            again.settle()
            assert len(again.firings(rule="entered_decision")) == 1  # held by the cool-down
            (f,) = again.firings(rule="to_flaky")
            assert f["status"] == "delivered" and f["deliveries"][0]["attempts"] >= 2
    assert [r.json["rule"] for r in hook.requests] == ["entered_decision"]
    assert flaky.requests[-1].answered == 200
