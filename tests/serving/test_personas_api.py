"""Personas at scoring time and the journey KPIs on the small world: a persona model fitted,
tracked and registered as champion beside the served models, each scored customer's persona
(the model's answer on the batch feature snapshot: the same vectors), the persona segment
dimension with the marketer's names, and GET /kpis by persona, stage, channel and month."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from features.batch import BatchEngine
from features.store import EventStore
from models.persona_params import REGISTERED_NAME, PersonaParams
from models.persona_words import UNASSIGNED_NAME, names_path, write_name
from serving.app import create_app
from serving.keys import Role
from serving.marketing_schemas import KpisOut, PersonasOut, ScoreOut, SegmentsOut
from serving.snapshots import read_snapshot
from tests.serving.conftest import AS_OF, Served, build_served, state_of
from tests.serving.test_app import error
from tests.training.world import Trained, UpliftTrained, World, clean_env, one_thread
from training.personas import PersonaRun, fit_and_track
from training.tracking import Tracking

FAST = replace(PersonaParams(), k_max=4, n_init=2, silhouette_sample=1000)


@pytest.fixture(scope="module")
def home(world: World, trained: Trained, uplift_trained: UpliftTrained,
         tmp_path_factory: pytest.TempPathFactory) -> Served:
    return build_served(world, trained, uplift_trained, tmp_path_factory.mktemp("persona-home"))


@pytest.fixture(scope="module")
def features(home: Served) -> pa.Table:
    with EventStore(home.world.store, read_only=True) as es:
        return BatchEngine(es, home.world.spec).features(AS_OF)


@pytest.fixture(scope="module")
def personas(home: Served, features: pa.Table) -> PersonaRun:
    with clean_env(), one_thread():
        run = fit_and_track(features, FAST, home.world.spec, Tracking.local(home.home), AS_OF)
    write_name(names_path(home.home), run.version, 0, "first persona",
               run.model.default_names_)
    return run


@pytest.fixture(scope="module")
def client(home: Served, personas: PersonaRun,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = home.store_copy(tmp_path_factory.mktemp("store"))
    settings = home.settings(store, scores=tmp_path_factory.mktemp("scores"))
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


@pytest.fixture(scope="module")
def scored(client: TestClient, home: Served) -> ScoreOut:
    r = client.get("/kpis", headers=home.headers(Role.marketer))
    error(r, 404, "no_snapshot")
    r = client.post("/admin/score", json={"as_of": AS_OF.isoformat()},
                    headers=home.headers(Role.admin))
    assert r.status_code == 200, r.text
    return ScoreOut.model_validate(r.json())


def test_the_fit_is_tracked_registered_and_champion(personas: PersonaRun, home: Served) -> None:
    client = Tracking.local(home.home).client()
    run = client.get_run(personas.run_id)
    assert run.data.tags["journey.kind"] == "personas"
    assert run.data.metrics["k"] == personas.model.k_ and 3 <= personas.model.k_ <= 4
    assert {"silhouette_k3", "silhouette_k4", "coverage"} <= set(run.data.metrics)
    arts = {a.path for a in client.list_artifacts(personas.run_id)}
    assert {"personas.json", "personas.md"} <= arts  # the model is a logged model of its own
    champion = client.get_model_version_by_alias(REGISTERED_NAME, "champion")
    assert str(champion.version) == personas.version and personas.champion
    assert champion.tags["journey.definition_hash"] == home.world.spec.hash


def test_each_customer_gets_the_persona_of_its_vector(scored: ScoreOut, client: TestClient,
                                                      personas: PersonaRun,
                                                      features: pa.Table) -> None:
    assert scored.snapshot.models[REGISTERED_NAME] == personas.version
    assert "persona" in scored.snapshot.dimensions
    state = state_of(client)
    snap = read_snapshot(state.marketing.root / scored.snapshot.id)
    table = snap.customers()
    names = ["first persona", *personas.model.default_names_[1:], UNASSIGNED_NAME]
    got = dict(zip(table["customer_id"].to_pylist(), table["persona"].to_pylist(), strict=True))
    ids = personas.model.predict(features)
    want = {c: names[i] for c, i in zip(features["customer_id"].to_pylist(), ids, strict=True)}
    assert got == want  # scoring's vectors path == the batch snapshot's frame path
    assert set(got.values()) == set(names)
    # The id beside the name (what readers key on), and every id's name in the meta.
    got_ids = dict(zip(table["customer_id"].to_pylist(), table["persona_id"].to_pylist(),
                       strict=True))
    assert got_ids == dict(zip(features["customer_id"].to_pylist(), ids.tolist(), strict=True))
    assert snap.meta["persona_names"] == names


def get(client: TestClient, home: Served, path: str, **params: Any) -> Any:
    r = client.get(path, params=params, headers=home.headers(Role.marketer))
    assert r.status_code == 200, r.text
    return r.json()


def test_persona_is_a_segment_dimension(scored: ScoreOut, client: TestClient,
                                        home: Served) -> None:
    out = SegmentsOut.model_validate(get(client, home, "/segments", by="persona,tier"))
    assert {s.key["persona"] for s in out.segments} >= {"first persona", UNASSIGNED_NAME}
    one = SegmentsOut.model_validate(get(client, home, "/segments", by="tier",
                                         persona="first persona"))
    assert 0 < one.total.customers < out.total.customers


def test_kpis_by_persona(scored: ScoreOut, client: TestClient, home: Served) -> None:
    out = KpisOut.model_validate(get(client, home, "/kpis", by="persona"))
    assert out.by == "persona" and out.snapshot.id == scored.snapshot.id
    assert KpisOut.model_validate(get(client, home, "/kpis")).by == "persona"  # the default
    assert {"persona", "stage", "acquisition_channel", "month"} <= set(out.available)
    assert sum(g.customers for g in out.groups) == out.overall.customers
    assert out.overall.customers == scored.snapshot.customers
    first = next(g for g in out.groups if g.group == "first persona")
    r = first.conversion_rate
    assert r.value is not None and r.ci95 is not None and r.ci95[0] <= r.value <= r.ci95[1]
    assert first.nps is not None and first.csat is not None and "nps" in out.definitions


@pytest.mark.parametrize("by", ["stage", "acquisition_channel", "month"])
def test_kpis_by_other_groups(scored: ScoreOut, client: TestClient, home: Served,
                              by: str) -> None:
    out = KpisOut.model_validate(get(client, home, "/kpis", by=by))
    assert out.groups
    if by == "month":
        assert [g.group for g in out.groups] == sorted(g.group for g in out.groups)
        assert out.groups[-1].partial and not out.groups[0].partial
    else:
        assert sum(g.customers for g in out.groups) == out.overall.customers
    stages = [s.stage for s in out.overall.funnel]
    assert stages == list(home.world.spec.stages)


def test_kpis_errors_and_roles(scored: ScoreOut, client: TestClient, home: Served) -> None:
    r = client.get("/kpis", params={"by": "colour"}, headers=home.headers(Role.marketer))
    assert "month" in error(r, 422, "bad_request", "by")["message"]
    assert client.get("/kpis").status_code == 401


def test_without_a_persona_model_the_column_is_empty(home: Served) -> None:
    from features.kernels import FeatureMatrix
    from features.online import Vectors
    from serving.champions import ModelSet
    from serving.scoring import _personas

    empty = ModelSet({})
    assert empty.persona is None and empty.versions() == {}
    three = Vectors(FeatureMatrix(["a", "b", "c"], (), np.zeros((3, 0)), {}), [{}, {}, {}])
    names, ids = _personas(empty, three, [])
    assert names.null_count == 3 and len(names.dictionary) == 0 and ids.null_count == 3


def test_personas_route_describes_the_served_model(client: TestClient, home: Served,
                                                   personas: PersonaRun) -> None:
    out = PersonasOut.model_validate(get(client, home, "/personas"))
    model = personas.model
    assert out.version == personas.version and out.k == model.k_ == len(out.personas)
    assert out.assigned == model.n_active_ and out.unassigned_name == UNASSIGNED_NAME
    assert [p.name for p in out.personas] == ["first persona", *model.default_names_[1:]]
    for p, prof in zip(out.personas, model.profiles_, strict=True):
        assert p.id == prof["id"] and p.customers == prof["customers"]
        assert p.summary[0].startswith(f"{prof['customers']:,} customers")
        assert p.traits and p.traits[0] in p.summary  # what distinguishes it, in words
        assert p.top_features and p.channels
    assert sum(p.customers for p in out.personas) == model.n_active_


def test_persona_churn_and_value_come_from_the_newest_snapshot(
        scored: ScoreOut, client: TestClient, home: Served, personas: PersonaRun) -> None:
    """Personas are fitted before scoring: their fitting-time churn risk is unknown. The route
    fills it (and the expected value) from the snapshot, as GET /segments?by=persona has it."""
    assert all(p["churn_mean"] is None for p in personas.model.profiles_)
    out = PersonasOut.model_validate(get(client, home, "/personas"))
    assert out.scores_as_of == scored.snapshot.as_of
    segs = {s.key["persona"]: s for s in SegmentsOut.model_validate(
        get(client, home, "/segments", by="persona")).segments}
    model = personas.model
    for p in out.personas:
        seg = segs[p.name]
        assert p.churn_mean == pytest.approx(seg.mean_risk)
        assert seg.expected_value is not None  # the simulator's purchases carry values
        assert p.expected_value_mean == pytest.approx(seg.expected_value / seg.customers)
        assert p.share == p.customers / model.n_active_  # unrounded
        assert p.summary[0] == f"{p.customers:,} customers ({p.customers / model.n_active_:.1%})"
        assert f"churn risk {p.churn_mean:.1%} (mean)" in p.summary[-1]  # as on the card


def test_without_a_snapshot_personas_keep_their_fitting_time_figures(
        home: Served, personas: PersonaRun, tmp_path: Path) -> None:
    from serving.champions import ModelSet, ServedPersona

    marketing = _marketing(home, scores=tmp_path)  # no snapshot there
    out = marketing.personas(ModelSet({}, persona=ServedPersona(personas.model,
                                                                personas.version)))
    assert out["scores_as_of"] is None
    assert [p["churn_mean"] for p in out["personas"]] == \
        [p["churn_mean"] for p in personas.model.profiles_]


def test_personas_route_without_a_persona_model(home: Served) -> None:
    from serving.champions import ModelSet
    from serving.errors import NotFoundError

    with pytest.raises(NotFoundError, match="journey personas"):
        _marketing(home).personas(ModelSet({}))
    with pytest.raises(NotFoundError):
        _marketing(home).personas(None)


def _marketing(home: Served, scores: Path | None = None) -> Any:
    from models.actions import load_catalog
    from serving.marketing import Marketing

    settings = home.settings(home.world.store, **({"scores": scores} if scores else {}))
    return Marketing(settings, home.world.spec, load_catalog(settings.action_catalog))


def test_a_rename_shows_at_once_and_keeps_the_personas_figures(
        scored: ScoreOut, client: TestClient, home: Served, personas: PersonaRun) -> None:
    """Renamed while the service runs: the personas, their churn risk and expected value (by
    id), the segments and filters, and the KPIs all use the new name, with no scoring run."""
    path, version = names_path(home.home), personas.version
    default = personas.model.default_names_[1]
    before = PersonasOut.model_validate(get(client, home, "/personas")).personas[1]
    write_name(path, version, 1, "Bargain & email fans", personas.model.default_names_)
    try:
        out = PersonasOut.model_validate(get(client, home, "/personas"))
        now = out.personas[1]
        assert (now.id, now.name) == (1, "Bargain & email fans")
        assert now.churn_mean == before.churn_mean is not None
        assert now.expected_value_mean == before.expected_value_mean is not None
        segs = SegmentsOut.model_validate(get(client, home, "/segments", by="persona"))
        keys = {s.key["persona"] for s in segs.segments}
        assert "Bargain & email fans" in keys and default not in keys
        one = SegmentsOut.model_validate(get(client, home, "/segments", by="tier",
                                             persona="bargain & email FANS"))
        assert one.filters == {"persona": ["Bargain & email fans"]}
        assert one.total.customers == next(s.customers for s in segs.segments
                                           if s.key["persona"] == "Bargain & email fans")
        kpis = KpisOut.model_validate(get(client, home, "/kpis", by="persona"))
        assert ("Bargain & email fans", 1) in {(g.group, g.id) for g in kpis.groups}
    finally:  # the module's other tests expect the model's name back
        write_name(path, version, 1, default, personas.model.default_names_)
