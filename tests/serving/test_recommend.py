"""POST /v1/recommend on the small world's champions and uplift models: ranked actions with
reasons, the contact policy read from the live history, reporting a delivered action back, and
the errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.actions import load_catalog
from models.targets import target
from serving.app import create_app
from serving.keys import Role
from serving.schemas import RecommendOut
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_app import customers, error
from tests.training.world import Trained, clean_env, copy_registry, one_thread

CATALOG = set(load_catalog().ids)


def recommend(client: TestClient, served: Served, **body: Any) -> RecommendOut:
    r = client.post("/recommend", json=body, headers=served.headers(Role.predict))
    assert r.status_code == 200, r.text
    return RecommendOut.model_validate(r.json())


def test_one_customer_gets_ranked_actions_with_reasons(app_client: TestClient,
                                                       served: Served) -> None:
    ids = customers(served, 40)
    out = recommend(app_client, served, customer_ids=ids, explore=False, top_k=3)
    assert len(out.recommendations) == 40 and out.unknown_customers == []
    assert out.model_versions == served.versions
    recommended = 0
    for rec in out.recommendations:
        assert len(rec.actions) <= 3 and not rec.explored
        accounted = [a.action for a in rec.actions] + [s.action for s in rec.suppressed]
        assert sorted(accounted) == sorted(CATALOG)  # every action: chosen or why not
        values = [a.expected_value for a in rec.actions]
        assert values == sorted(values, reverse=True) and all(v > 0 for v in values)
        for a in rec.actions:
            assert a.reasons and set(a.uplift) == {"convert", "churn"}
            gained = sum(a.uplift[o] * a.outcome_values[o] for o in a.uplift)
            assert a.expected_value_unweighted == pytest.approx(gained - a.giveaway - a.cost)
            # Only a discount gives value away, on the orders the control arm expects anyway.
            assert (a.giveaway > 0) == (a.action == "discount_email")
            assert a.report_as.action == a.action and a.report_as.channel == a.channel
            assert a.report_as.properties["recommendation_id"] == rec.recommendation_id
        if rec.actions:
            recommended += 1
            assert rec.actions[0].report_as.properties["propensity"] == rec.propensity == 1.0
        else:
            assert rec.no_action_reason
    assert recommended > 0


def test_single_customer_and_errors(app_client: TestClient, served: Served) -> None:
    cid = customers(served, 1)[0]
    out = recommend(app_client, served, customer_id=cid)
    assert [r.customer_id for r in out.recommendations] == [cid]
    headers = served.headers(Role.predict)
    error(app_client.post("/recommend", json={"customer_id": "nobody"}, headers=headers),
          404, "unknown_customer", "customer_id")
    error(app_client.post("/recommend", json={"customer_id": cid, "customer_ids": [cid]},
                          headers=headers), 422, "bad_request")
    error(app_client.post("/recommend", json={}, headers=headers), 422, "bad_request")
    error(app_client.post("/recommend", json={"customer_id": cid, "top_k": 0},
                          headers=headers), 422, "bad_request", "top_k")
    # Lax parsing would read these as top_k 1 and explore false.
    error(app_client.post("/recommend", json={"customer_id": cid, "top_k": True},
                          headers=headers), 422, "bad_request", "top_k")
    error(app_client.post("/recommend", json={"customer_id": cid, "explore": "no"},
                          headers=headers), 422, "bad_request", "explore")
    batch = recommend(app_client, served, customer_ids=[cid, "nobody"])
    assert batch.unknown_customers == ["nobody"] and len(batch.recommendations) == 1


def test_a_reported_delivery_is_seen_by_the_contact_policy(app_client: TestClient,
                                                           served: Served) -> None:
    """Deliver the first recommendation and report it: the next answer must respect its
    cool-down (the policy reads the history the ingest just updated)."""
    for cid in customers(served, 200):
        rec = recommend(app_client, served, customer_id=cid, explore=False).recommendations[0]
        if rec.actions:
            break
    else:
        pytest.fail("no customer got a recommendation")
    first = rec.actions[0]
    event = {**first.report_as.model_dump(), "event_id": f"deliver-{rec.recommendation_id}",
             "customer_id": cid, "ts": (AS_OF - timedelta(hours=1)).isoformat()}
    r = app_client.post("/events", json={"events": [event]}, headers=served.headers(Role.ingest))
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    again = recommend(app_client, served, customer_id=cid, explore=False).recommendations[0]
    assert first.action not in [a.action for a in again.actions]
    why = next(s for s in again.suppressed if s.action == first.action)
    assert why.stage in ("contact_policy", "exclusion") and why.reason


def test_exploration_reports_its_propensity(served: Served, tmp_path: Any) -> None:
    settings = served.settings(served.store_copy(tmp_path), nba_exploration=0.5, nba_seed=1)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        out = recommend(c, served, customer_ids=customers(served, 60))
    explored = [r for r in out.recommendations if r.explored]
    assert explored, "with a share of 0.5 some of 60 decisions explore"
    for r in out.recommendations:
        assert 0 < r.propensity <= 1
        if r.actions:
            assert r.actions[0].report_as.properties["propensity"] == r.propensity


@pytest.fixture
def no_uplift_client(served: Served, trained: Trained, tmp_path: Any) -> Iterator[TestClient]:
    """Champions for the predictive targets only: no uplift model registered."""
    home = tmp_path / "home"
    tracking = copy_registry(trained.tracking, home)
    client = tracking.client()
    for name, version in served.versions.items():
        if not name.startswith("journey-uplift"):
            registered = target(name, served.world.spec.stages).registered_name
            client.set_registered_model_alias(registered, "champion", version)
    settings = served.settings(served.store_copy(tmp_path), mlflow_tracking_uri=(
        tracking.tracking_uri))
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def test_without_uplift_models_predictions_work_and_recommend_says_why(
        no_uplift_client: TestClient, served: Served) -> None:
    cid = customers(served, 1)[0]
    headers = served.headers(Role.predict)
    assert no_uplift_client.post("/predict", json={"customer_id": cid},
                                 headers=headers).status_code == 200
    body = error(no_uplift_client.post("/recommend", json={"customer_id": cid},
                                       headers=headers), 503, "not_ready")
    assert "uplift" in body["message"]
