"""Contacts (``action_sent`` events) through the service: a prospect known only by a contact is
scored with no stage and gets no stage-ruled action; contacts the policy cannot tie to a catalog
action are stored with a warning; a contact at the decision time counts; and a time before a
customer's first event answers as for an unknown customer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.batch import micros
from models.contacts import sent_after
from serving.app import create_app
from serving.event_checks import contact_warnings
from serving.keys import Role
from serving.recommender import Recommender
from serving.schemas import RecommendOut
from serving.score_job import population_from_history
from tests.serving.conftest import AS_OF, Served, state_of
from tests.serving.test_app import customers, error
from tests.training.world import clean_env, one_thread

KNOWN = ("discount_email", "loyalty_offer")


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = served.store_copy(tmp_path_factory.mktemp("store"))
    settings = served.settings(store, scores=tmp_path_factory.mktemp("scores"))
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def contact(event_id: str, customer_id: str, ts: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer_id, "event_type": "action_sent",
            "channel": "email", "ts": ts.isoformat(), **fields}


def post_events(client: TestClient, served: Served, *events: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/events", json={"events": list(events)}, headers=served.headers(Role.ingest))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def recommend(client: TestClient, served: Served, **body: Any) -> RecommendOut:
    r = client.post("/recommend", json={"explore": False, **body},
                    headers=served.headers(Role.predict))
    assert r.status_code == 200, r.text
    return RecommendOut.model_validate(r.json())


def test_contact_warnings_name_the_event_and_field() -> None:
    events = [contact("a", "c", AS_OF, action="discount_email"),
              contact("b", "c", AS_OF),
              contact("c", "c", AS_OF, action="Discount Email"),
              {"event_type": "page_view", "action": None, "ts": AS_OF}]
    got = contact_warnings(events, KNOWN)
    assert len(got) == 2
    assert got[0].startswith("events[1].action: action_sent without an action")
    assert got[1].startswith("events[2].action: action 'Discount Email' is not in the action "
                             "catalog (discount_email, loyalty_offer)")
    assert "not count for any action's cool-down, caps or exclusions" in got[1]
    assert "global and channel caps" in got[1]
    assert contact_warnings(events[:1] + events[3:], KNOWN) == []


def test_a_contacts_only_prospect_is_scored_without_a_stage(client: TestClient,
                                                            served: Served) -> None:
    sent = post_events(client, served, contact("p1-0", "prospect-1", AS_OF - timedelta(days=2),
                                               action="discount_email"))
    assert sent["inserted"] == 1 and sent["warnings"] == []
    r = client.post("/admin/score", json={"as_of": AS_OF.isoformat()},
                    headers=served.headers(Role.admin))
    assert r.status_code == 200, r.text  # was a 500: stage code -1 indexed no stage
    state = state_of(client)
    models = state.holder.current
    assert models is not None and state.history is not None
    m = state.marketing
    population = population_from_history(state.history, m.config, micros(AS_OF))
    table = m.scorer.score(models, population, AS_OF)
    rows = {r["customer_id"]: r for r in table.select(["customer_id", "stage"]).to_pylist()}
    assert rows["prospect-1"]["stage"] is None
    assert sum(r["stage"] is not None for r in rows.values()) == len(rows) - 1


def test_no_stage_passes_no_stage_rule(client: TestClient, served: Served) -> None:
    # discount_email lists every stage: that is still a stage rule a prospect does not meet.
    rec = recommend(client, served, customer_id="prospect-1", as_of=AS_OF.isoformat())
    out = rec.recommendations[0]
    assert out.current_stage is None and out.actions == []
    why = {s.action: (s.stage, s.reason) for s in out.suppressed}
    assert why["discount_email"][0] == "eligibility"
    assert why["discount_email"][1].startswith("stage unknown; needs one of [awareness, ")


def test_unknown_or_missing_actions_are_stored_with_a_warning(client: TestClient,
                                                              served: Served) -> None:
    when = AS_OF - timedelta(days=1)
    got = post_events(client, served, contact("w-0", "prospect-2", when),
                      contact("w-1", "prospect-2", when, action="Discount Email"))
    assert got["inserted"] == 2
    assert [w.split(":")[0] for w in got["warnings"]] == ["events[0].action", "events[1].action"]
    assert "'Discount Email' is not in the action catalog" in got["warnings"][1]


def test_a_time_before_the_first_event_is_an_unknown_customer(client: TestClient,
                                                              served: Served) -> None:
    first = AS_OF - timedelta(days=3)
    post_events(client, served, {"event_id": "late-0", "customer_id": "late-1",
                                 "event_type": "page_view", "ts": first.isoformat()})
    before = (first - timedelta(days=10)).isoformat()
    r = client.post("/recommend", json={"customer_id": "late-1", "as_of": before},
                    headers=served.headers(Role.predict))
    body = error(r, 404, "unknown_customer", "customer_id")
    utc = before.replace("+00:00", "Z")  # answers say as-ofs in UTC with Z
    assert body["message"] == f"no events for customer 'late-1' before {utc}"
    # the first event itself is not before its own time either
    error(client.post("/recommend", json={"customer_id": "late-1", "as_of": first.isoformat()},
                      headers=served.headers(Role.predict)), 404, "unknown_customer")
    known = customers(served, 1)[0]
    out = recommend(client, served, customer_ids=["late-1", known], as_of=before)
    assert out.unknown_customers == ["late-1"]
    assert [r.customer_id for r in out.recommendations] == [known]
    assert recommend(client, served, customer_id="late-1", as_of=AS_OF.isoformat())


def test_a_contact_at_the_decision_time_counts(client: TestClient, served: Served) -> None:
    out = recommend(client, served, customer_ids=customers(served, 200), as_of=AS_OF.isoformat())
    rec = next((r for r in out.recommendations if r.actions), None)
    assert rec is not None, "no customer got a recommendation"
    first = rec.actions[0]
    event = {**first.report_as.model_dump(), "event_id": "at-t", "customer_id": rec.customer_id,
             "ts": AS_OF.isoformat()}
    post_events(client, served, event)
    again = recommend(client, served, customer_id=rec.customer_id,
                      as_of=AS_OF.isoformat()).recommendations[0]
    assert first.action not in [a.action for a in again.actions]
    why = next(s for s in again.suppressed if s.action == first.action)
    assert why.stage in ("contact_policy", "exclusion"), why


def test_a_scoring_run_s_top_actions_are_the_api_s(client: TestClient, served: Served) -> None:
    """A scoring run decides every customer at once (``models.arbitration_batch``) and
    /recommend one by one (``models.arbitration``): the same top action at the same value.
    As of an hour before AS_OF: a scoring run reads the events before its time, where
    /recommend also counts a contact stamped at the decision time (test above)."""
    when = AS_OF - timedelta(hours=1)
    state = state_of(client)
    models = state.holder.current
    assert models is not None and state.history is not None
    m = state.marketing
    table = m.scorer.score(models, population_from_history(state.history, m.config,
                                                           micros(when)), when)
    rows = {r["customer_id"]: (r["top_action"], r["top_action_value"]) for r in
            table.select(["customer_id", "top_action", "top_action_value"]).to_pylist()}
    out = recommend(client, served, customer_ids=customers(served, 300), as_of=when.isoformat(),
                    top_k=1)
    api = {r.customer_id: (r.actions[0].action, r.actions[0].expected_value) if r.actions else
           (None, None) for r in out.recommendations}
    assert api == {cid: rows[cid] for cid in api}
    assert len({a for a, _ in api.values()}) >= 3, api  # several actions, and none, are chosen


def test_an_action_the_log_never_explored_is_neither_s_top_action(
        client: TestClient, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the served models find that the log almost never sent an action to such a
    customer, neither /recommend nor a scoring run ranks it, and /recommend says why. Here
    the models' floors under discount_email (the most chosen action) are raised out of
    reach, so that no customer's log explored it."""
    when = AS_OF - timedelta(hours=1)
    state = state_of(client)
    models = state.holder.current
    assert models is not None and state.history is not None
    ids = customers(served, 300)
    before = recommend(client, served, customer_ids=ids, as_of=when.isoformat(), top_k=1)
    assert any(r.actions and r.actions[0].action == "discount_email"
               for r in before.recommendations)
    for u in models.uplift.values():
        floors = np.array(u.model.support_floor_)
        floors[list(u.model.actions_).index("discount_email")] = np.inf
        monkeypatch.setattr(u.model, "support_floor_", floors)
    out = recommend(client, served, customer_ids=ids, as_of=when.isoformat(), top_k=1)
    m = state.marketing
    table = m.scorer.score(models, population_from_history(state.history, m.config,
                                                           micros(when)), when)
    rows = {r["customer_id"]: (r["top_action"], r["top_action_value"]) for r in
            table.select(["customer_id", "top_action", "top_action_value"]).to_pylist()}
    api = {r.customer_id: (r.actions[0].action, r.actions[0].expected_value) if r.actions else
           (None, None) for r in out.recommendations}
    assert api == {cid: rows[cid] for cid in api}
    assert "discount_email" not in {a for a, _ in rows.values()}
    unchecked = 0
    for r in out.recommendations:
        why = next(s for s in r.suppressed if s.action == "discount_email")
        if why.stage == "value":
            assert why.reason.startswith("the log almost never sent it to customers like this, "
                                         "so its expected value"), why
            unchecked += 1
    assert unchecked > 0


def test_a_batch_with_no_action_open_asks_no_uplift(client: TestClient) -> None:
    """A scoring run estimates uplift only for the actions open to a customer; with none open
    to anyone (here: no consent recorded, and consent not assumed) it has no rows to score and
    every customer's top action is none."""
    state = state_of(client)
    models = state.holder.current
    assert models is not None and state.history is not None
    m = state.marketing
    rec = m.scorer.recommender
    assert rec is not None
    closed = replace(rec.catalog, policy=replace(rec.catalog.policy, default_consent=False))
    t = micros(AS_OF - timedelta(hours=1))
    pop = population_from_history(state.history, m.config, t)
    codes = {a: (c, vocab) for a, (c, vocab) in pop.attributes.items()}
    vectors = m.scorer.online.vectors_coded(pop.arrays, t, codes)
    n = len(vectors)
    stages = np.zeros(n, np.int64)  # the first stage, which every stage rule allows
    predictions = {"churn": np.full(n, 0.5), "conversion": np.full(n, 0.5)}
    sent = sent_after(pop.arrays, rec.spec, t - closed.horizon_us)
    for catalog, some in ((closed, False), (rec.catalog, True)):
        top, value = Recommender(rec.spec, catalog, 1, 0.0).top_actions(
            models, vectors, stages, predictions, sent, t)
        assert len(top) == n > 100
        assert any(a is not None for a in top) is some
        assert bool(np.isnan(value).all()) is not some
