"""The marketer's routes on the small world: scoring runs, churn-risk segments with filters and
changes, drill-down, CSV export, the journey map, the dashboard's data, page and assets, and
their errors and roles."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.keys import Role
from serving.marketing_schemas import (
    CustomersOut,
    DashboardOut,
    JourneyMapOut,
    KpisOut,
    ScoreOut,
    SegmentsOut,
)
from tests.serving.conftest import AS_OF, Served, state_of
from tests.serving.test_app import error
from tests.training.world import clean_env, one_thread

EARLIER = AS_OF - timedelta(days=30)


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scores")


@pytest.fixture(scope="module")
def client(served: Served, scores: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = served.store_copy(tmp_path_factory.mktemp("store"))
    settings = served.settings(store, scores=scores)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def get(client: TestClient, served: Served, path: str, role: Role = Role.marketer,
        **params: Any) -> Any:
    r = client.get(path, params=params, headers=served.headers(role))
    assert r.status_code == 200, r.text
    return r


def score(client: TestClient, served: Served, when: Any) -> ScoreOut:
    r = client.post("/admin/score", json={"as_of": when.isoformat()},
                    headers=served.headers(Role.admin))
    assert r.status_code == 200, r.text
    return ScoreOut.model_validate(r.json())


@pytest.fixture(scope="module")
def scored(client: TestClient, served: Served) -> tuple[ScoreOut, ScoreOut]:
    """Two snapshots: a month before AS_OF, then at AS_OF (changes are measured between)."""
    r = client.get("/segments", headers=served.headers(Role.marketer))
    error(r, 404, "no_snapshot")
    return score(client, served, EARLIER), score(client, served, AS_OF)


def test_scoring_writes_a_snapshot_of_every_customer(scored: tuple[ScoreOut, ScoreOut],
                                                     served: Served) -> None:
    before, now = scored
    assert now.snapshot.previous == before.snapshot.id
    assert now.snapshot.as_of.startswith(AS_OF.date().isoformat())
    assert now.snapshot.models == served.versions and now.snapshot.actions
    assert now.snapshot.customers >= before.snapshot.customers > 0
    assert now.snapshot.risk_bands == [0.3, 0.6]


def test_segments_by_tier_add_up_and_report_changes(client: TestClient, served: Served,
                                                   scored: tuple[ScoreOut, ScoreOut]) -> None:
    out = SegmentsOut.model_validate(get(client, served, "/segments", by="tier").json())
    assert {s.key["tier"] for s in out.segments} <= {"low", "medium", "high"}
    assert sum(s.customers for s in out.segments) == out.total.customers
    assert out.total.customers == scored[1].snapshot.customers
    assert sum(s.share for s in out.segments) == pytest.approx(1.0)
    ras = [known(s.revenue_at_risk) for s in out.segments]
    assert ras == sorted(ras, reverse=True)
    assert out.total.revenue_at_risk == pytest.approx(sum(ras))
    # Change = now minus the previous snapshot's same segment.
    old = _by_key(_segments_of_previous(client, served, scored))
    for s in out.segments:
        assert s.change is not None
        prev = old.get(s.key["tier"], (0, 0.0))
        assert s.change.customers == s.customers - prev[0]
        assert s.change.revenue_at_risk == pytest.approx(known(s.revenue_at_risk) - prev[1])
    high = next(s for s in out.segments if s.key["tier"] == "high")
    assert high.mean_risk is not None and high.mean_risk >= 0.6
    assert high.top_action is not None


def _segments_of_previous(client: TestClient, served: Served,
                          scored: tuple[ScoreOut, ScoreOut]) -> SegmentsOut:
    """The previous snapshot's segments, read through the CLI's book (the API serves the
    newest)."""
    from serving.segments import SegmentBook
    from serving.snapshots import read_snapshot
    state = state_of(client)
    snap = read_snapshot(state.marketing.root / scored[0].snapshot.id)
    rows, total = SegmentBook(snap, state.marketing.config.dimensions).segments(["tier"], {})
    return SegmentsOut.model_validate({
        "snapshot": scored[0].snapshot.model_dump(), "by": ["tier"], "filters": {},
        "segments": [r.__dict__ for r in rows], "total": total.__dict__})


def _by_key(out: SegmentsOut) -> dict[str, tuple[int, float]]:
    return {s.key["tier"]: (s.customers, known(s.revenue_at_risk)) for s in out.segments}


def known(value: float | None) -> float:
    """A money figure the simulator's store knows (its purchases carry values)."""
    assert value is not None
    return value


def test_filters_narrow_the_segments(client: TestClient, served: Served,
                                     scored: object) -> None:
    everyone = SegmentsOut.model_validate(
        get(client, served, "/segments", by="stage,acquisition_channel").json())
    high = SegmentsOut.model_validate(
        get(client, served, "/segments", by="stage", tier="high").json())
    assert high.filters == {"tier": ["high"]}
    assert high.total.customers < everyone.total.customers
    both = SegmentsOut.model_validate(
        client.get("/segments?by=region&tier=high&tier=medium",
                   headers=served.headers(Role.marketer)).json())
    comma = SegmentsOut.model_validate(
        get(client, served, "/segments", by="region", tier="high,medium").json())
    assert both.total.customers == comma.total.customers > high.total.customers
    by_stage = {s.key["stage"]: s.customers for s in high.segments}
    for stage, n in by_stage.items():
        one = SegmentsOut.model_validate(
            get(client, served, "/segments", by="tier", tier="high", stage=stage).json())
        assert one.total.customers == n


def test_drill_down_lists_the_segment_sorted(client: TestClient, served: Served,
                                             scored: object) -> None:
    seg = SegmentsOut.model_validate(
        get(client, served, "/segments", by="tier", tier="high").json()).total
    page = CustomersOut.model_validate(
        get(client, served, "/segments/customers", tier="high", limit=25).json())
    assert page.total == seg.customers and len(page.customers) == min(25, seg.customers)
    assert all(c.tier == "high" for c in page.customers)
    ras = [known(c.revenue_at_risk) for c in page.customers]
    assert ras == sorted(ras, reverse=True)
    nxt = CustomersOut.model_validate(
        get(client, served, "/segments/customers", tier="high", limit=25, offset=25).json())
    assert not {c.customer_id for c in nxt.customers} & {c.customer_id for c in page.customers}
    by_churn = CustomersOut.model_validate(
        get(client, served, "/segments/customers", sort="churn", limit=5).json())
    top = [c.churn for c in by_churn.customers]
    assert top == sorted(top, reverse=True)


def test_export_returns_exactly_the_segments_customers(client: TestClient, served: Served,
                                                       scored: object) -> None:
    r = get(client, served, "/segments/export", tier="high", stage="awareness,consideration")
    assert r.headers["content-type"].startswith("text/csv")
    as_of = AS_OF.date().isoformat()
    assert r.headers["content-disposition"] == (
        f'attachment; filename="segment-{as_of}-stage=awareness+consideration-tier=high.csv"')
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {row["as_of"] for row in rows} == {as_of}
    assert all(len(row["churn"].partition(".")[2]) <= 4 for row in rows)
    assert rows and all(row["tier"] == "high" for row in rows)
    assert {row["stage"] for row in rows} <= {"awareness", "consideration"}
    listed = CustomersOut.model_validate(
        get(client, served, "/segments/customers", tier="high",
            stage="awareness,consideration", limit=1000).json())
    assert listed.total == len(rows)
    assert [row["customer_id"] for row in rows][:len(listed.customers)] == \
        [c.customer_id for c in listed.customers]
    assert {"churn", "conversion", "revenue_at_risk", "region", "top_action"} <= set(rows[0])


def test_snapshot_scores_equal_the_served_prediction(client: TestClient, served: Served,
                                                     scored: object) -> None:
    page = CustomersOut.model_validate(
        get(client, served, "/segments/customers", limit=5).json())
    for c in page.customers:
        r = client.post("/predict", json={"customer_id": c.customer_id,
                                          "as_of": AS_OF.isoformat()},
                        headers=served.headers(Role.predict))
        p = r.json()
        assert p["churn"] == pytest.approx(c.churn, abs=1e-9)
        assert p["conversion"] == pytest.approx(c.conversion, abs=1e-9)
        assert p["risk_tier"] == c.tier and p["current_stage"] == c.stage


def test_journey_map_and_dashboard_data(client: TestClient, served: Served,
                                        scored: object) -> None:
    jm = JourneyMapOut.model_validate(get(client, served, "/journey-map").json())
    assert jm.journey_map is not None
    assert {"funnel", "flows", "kpis", "attribution"} <= set(jm.journey_map)
    data = DashboardOut.model_validate(get(client, served, "/dashboard/data").json())
    assert set(data.dimensions) == {"tier", "stage", "persona", "acquisition_channel", "region",
                                    "device"}
    assert sum(s.customers for s in data.tiers) == data.snapshot.customers
    assert sum(s.customers for s in data.stage_tiers) == data.snapshot.customers
    assert data.journey_map == jm.journey_map
    # Only values some customer has are offered as filters.
    for dim, values in data.dimensions.items():
        for value in values:
            r = client.get("/segments", params={"by": "tier", dim: value},
                           headers=served.headers(Role.marketer))
            assert r.json()["total"]["customers"] > 0, (dim, value)


def test_an_empty_filter_result_has_no_mean_risk(client: TestClient, served: Served,
                                                 scored: object) -> None:
    # Every customer has a tier: "(none)" is still a valid filter value, matching nobody.
    out = get(client, served, "/segments", by="stage", tier="(none)").json()
    assert out["segments"] == [] and out["total"]["customers"] == 0
    assert out["total"]["mean_risk"] is None  # not 0.0, which reads as "no risk"


@pytest.mark.parametrize(("params", "field"), [
    ({"by": "colour"}, "by[0]"),
    ({"by": "tier,tier"}, "by"),
    ({"tier": "extreme"}, "tier"),
    ({"planet": "mars"}, "planet"),
    ({"tier": ""}, "tier"),
])
def test_bad_segment_queries_name_the_parameter(client: TestClient, served: Served,
                                                scored: object, params: dict[str, str],
                                                field: str) -> None:
    r = client.get("/segments", params=params, headers=served.headers(Role.marketer))
    body = error(r, 422, "bad_request", field)
    if params.get("tier") == "extreme":  # an unknown value: the message lists the known ones
        assert "low" in body["message"] and "high" in body["message"]
        assert "(none)" not in body["message"]  # every customer has a tier


def test_filter_values_ignore_case(client: TestClient, served: Served, scored: object) -> None:
    """The dashboard shows tiers capitalised: a marketer writes tier=High."""
    exact = SegmentsOut.model_validate(get(client, served, "/segments", tier="high").json())
    upper = SegmentsOut.model_validate(get(client, served, "/segments", tier="High").json())
    assert upper.filters == {"tier": ["high"]}  # as the snapshot spells it
    assert upper.total.customers == exact.total.customers > 0
    r = get(client, served, "/segments/export", tier="HIGH")
    assert "tier=high" in r.headers["content-disposition"]
    page = CustomersOut.model_validate(
        get(client, served, "/segments/customers", tier="High", limit=5).json())
    assert page.total == exact.total.customers


def test_bad_drill_down_and_export_queries(client: TestClient, served: Served,
                                           scored: object) -> None:
    h = served.headers(Role.marketer)
    error(client.get("/segments/customers", params={"sort": "name"}, headers=h), 422,
          "bad_request", "sort")
    error(client.get("/segments/export", params={"region": "atlantis"}, headers=h), 422,
          "bad_request", "region")
    error(client.get("/segments/customers", params={"limit": 0}, headers=h), 422,
          "bad_request")


@pytest.mark.parametrize("path", ["/segments", "/segments/customers", "/segments/export",
                                  "/journey-map", "/dashboard/data"])
def test_marketer_routes_need_a_marketer_or_admin_key(client: TestClient, served: Served,
                                                      scored: object, path: str) -> None:
    error(client.get(path), 401, "missing_key")
    error(client.get(path, headers={"X-API-Key": "jk_nope"}), 401, "invalid_key")
    for role in (Role.predict, Role.ingest):
        error(client.get(path, headers=served.headers(role)), 403, "forbidden")
    for role in (Role.marketer, Role.admin):
        assert client.get(path, headers=served.headers(role)).status_code == 200


def test_scoring_needs_an_admin_key(client: TestClient, served: Served) -> None:
    r = client.post("/admin/score", json={}, headers=served.headers(Role.marketer))
    error(r, 403, "forbidden")
    r = client.post("/admin/score", json={"as_of": "yesterday"},
                    headers=served.headers(Role.admin))
    error(r, 422, "bad_request")


def test_dashboard_page_and_assets_are_served_without_data(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "dashboard.js" in page.text
    js = client.get("/dashboard/assets/dashboard.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    for name in ("nope.js", "..%2Fapp.py", "%2E%2E%2Fstate.py"):
        assert client.get(f"/dashboard/assets/{name}").status_code == 404


def test_store_and_service_histories_score_the_same(client: TestClient, served: Served) -> None:
    """`journey score` reads the store, the service its histories: same customers, scores and
    attributes."""
    from features.batch import micros
    from features.store import EventStore
    from serving.score_job import population_from_history, population_from_store

    state = state_of(client)
    m, models = state.marketing, state.holder.current
    assert models is not None and state.history is not None  # the app has loaded
    with EventStore(served.world.store, read_only=True) as es:
        from_store = population_from_store(es, m.spec, m.config, AS_OF)
    from_history = population_from_history(state.history, m.config, micros(AS_OF))
    a = m.scorer.score(models, from_store, AS_OF).sort_by("customer_id")
    b = m.scorer.score(models, from_history, AS_OF).sort_by("customer_id")
    assert a.num_rows == b.num_rows > 0
    for col in ("customer_id", "churn", "conversion", "expected_value", "region", "stage",
                "top_action"):
        assert a[col].to_pylist() == b[col].to_pylist(), col


def test_kpis_group_by_stage_without_a_persona_model(client: TestClient, served: Served,
                                                     scored: object) -> None:
    out = KpisOut.model_validate(get(client, served, "/kpis").json())
    assert out.by == "stage" and "persona" not in out.available and "month" in out.available
    assert sum(g.customers for g in out.groups) == out.overall.customers


def test_kpis_by_persona_without_a_persona_model_say_what_to_run(
        client: TestClient, served: Served, scored: object) -> None:
    r = client.get("/kpis", params={"by": "persona"}, headers=served.headers(Role.marketer))
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["field"] == "by"
    assert "no personas (it was scored without a persona model)" in error["message"]
    assert "fit one with `journey personas`, then score again" in error["message"]
    assert "POST /v1/admin/score" in error["message"] and "stage" in error["message"]
