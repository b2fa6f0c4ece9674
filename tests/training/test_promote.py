"""The champion/challenger gate on the shared trained registry. Every test works on its own
copy of the registry (aliases and decisions change), scoring on the snapshots of the shared
world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Run

from features.errors import ConfigError
from features.spec import load_spec
from models.registry import RegistryError, load_alias
from models.targets import TARGETS, target
from tests.training.world import Trained, World, copy_registry, source, train_into
from training import evaluate
from training.dataset import SnapshotSource
from training.promote import Decision, promote_all
from training.tracking import KIND_TAG, PROMOTION_EXPERIMENT, Tracking
from training.train import CHALLENGER, CHAMPION

pytestmark = pytest.mark.slow  # needs the shared training (once per session)

REGISTERED = {"next_stage": "journey-next-stage", "churn": "journey-churn",
              "conversion": "journey-conversion"}
HOLDOUT = "2025-10-01 +30d"
# A deliberately poor model: one stump on the customer attributes only.
WORSE = {
    "name": "worse",
    "horizon_days": 30,
    "cutoffs": {"train": ["2025-07-01", "2025-08-01"], "valid": "2025-09-01",
                "test": "2025-10-01"},
    "targets": ["churn"],
    "models": [{"family": "lightgbm", "features": ["attributes"],
                "params": {"max_rounds": 1, "num_leaves": 2, "min_data_in_leaf": 20}}],
    "seed": 42,
}


@pytest.fixture
def registry(trained: Trained, tmp_path: Path) -> Tracking:
    return copy_registry(trained.tracking, tmp_path / "registry")


@pytest.fixture
def snapshots(world: World) -> Iterator[SnapshotSource]:
    src = source(world)
    yield src
    src.close()


def alias(tracking: Tracking, name: str, which: str) -> str | None:
    aliases = tracking.client().get_registered_model(REGISTERED[name]).aliases
    return str(aliases[which]) if which in aliases else None


def decision_runs(tracking: Tracking) -> list[Run]:
    client = tracking.client()
    exp = client.get_experiment_by_name(PROMOTION_EXPERIMENT)
    assert exp is not None
    return list(client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]))


def test_first_promotion_then_no_op(trained: Trained, world: World, registry: Tracking,
                                    snapshots: SnapshotSource) -> None:
    first = promote_all(list(TARGETS), registry, snapshots, margin=0.001)
    assert [d.target for d in first] == list(TARGETS)
    client = registry.client()
    for d in first:
        t = target(d.target, world.spec.stages)
        challenger = alias(registry, d.target, CHALLENGER)
        assert d.promoted
        assert d.reason == "no champion yet: the challenger becomes champion"
        assert d.challenger_version == challenger
        assert alias(registry, d.target, CHAMPION) == challenger
        assert d.metric == t.primary_metric
        assert d.holdout == HOLDOUT
        assert d.champion_score is None
        # Scored on the challenger's holdout: the same number training logged for its test.
        result = next(r for r in trained.results
                      if r.target == d.target and r.version == challenger)
        assert d.challenger_score == pytest.approx(evaluate.primary(t, result.test), abs=1e-12)
        mv = client.get_model_version(REGISTERED[d.target], str(challenger))
        assert mv.tags["journey.promotion"] == d.reason

    again = promote_all(list(TARGETS), registry, snapshots, margin=0.001)
    for d, before in zip(again, first, strict=True):
        assert not d.promoted
        assert d.reason == "the challenger is already the champion"
        assert alias(registry, d.target, CHAMPION) == before.challenger_version

    runs = decision_runs(registry)
    assert len(runs) == 6
    for run, d in zip(runs, [*first, *again], strict=True):
        tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
        assert tags[KIND_TAG] == "promotion"
        assert tags["journey.target"] == d.target
        assert tags["journey.decision"] == ("promoted" if d.promoted else "kept")
        assert tags["journey.reason"] == d.reason
        assert metrics["promoted"] == float(d.promoted)
        assert metrics["challenger_score"] == pytest.approx(d.challenger_score)
        assert "champion_score" not in metrics
        assert params["holdout"] == HOLDOUT
        assert params["margin"] == "0.001"
    # The shared registry was not touched.
    assert alias(trained.tracking, "churn", CHAMPION) is None


def test_worse_challenger_is_kept_and_force_overrides(
    world: World, registry: Tracking, snapshots: SnapshotSource, tmp_path: Path
) -> None:
    [d] = promote_all(["churn"], registry, snapshots, margin=0.001)
    champion = alias(registry, "churn", CHAMPION)
    assert d.promoted and champion == d.challenger_version

    worse = train_into(world, tmp_path / "worse", WORSE, tracking=registry)
    [result] = worse.results
    assert result.version == "3"
    assert alias(registry, "churn", CHALLENGER) == "3"
    assert result.test["roc_auc"] < 0.9

    [kept] = promote_all(["churn"], registry, snapshots, margin=0.001)
    assert not kept.promoted
    assert "does not beat" in kept.reason
    assert kept.reason.startswith("challenger v3 roc_auc")
    assert f"champion v{champion}" in kept.reason and HOLDOUT in kept.reason
    assert kept.challenger_score == pytest.approx(result.test["roc_auc"], abs=1e-12)
    assert kept.champion_score is not None and kept.challenger_score is not None
    assert kept.champion_score > kept.challenger_score
    assert alias(registry, "churn", CHAMPION) == champion
    run = decision_runs(registry)[-1]
    assert run.data.tags["journey.decision"] == "kept"
    assert "does not beat" in run.data.tags["journey.reason"]
    assert run.data.metrics["challenger_score"] == pytest.approx(kept.challenger_score)
    assert run.data.metrics["champion_score"] == pytest.approx(kept.champion_score)

    [forced] = promote_all(["churn"], registry, snapshots, margin=0.001, force=True)
    assert forced.promoted
    assert "does not beat" in forced.reason
    assert forced.reason.endswith("; promoted by --force")
    assert alias(registry, "churn", CHAMPION) == "3"
    assert decision_runs(registry)[-1].data.tags["journey.decision"] == "promoted"


@pytest.mark.parametrize("name", list(TARGETS))
def test_margin_decides_for_a_better_challenger(
    name: str, trained: Trained, world: World, registry: Tracking, snapshots: SnapshotSource
) -> None:
    """The better model on test is the challenger, the other the champion: it wins with no
    margin, and a margin larger than the gap keeps the champion."""
    t = target(name, world.spec.stages)
    a, b = (r for r in trained.results if r.target == name)
    better, worse = (a, b) if evaluate.better(t, evaluate.primary(t, a.test),
                                              evaluate.primary(t, b.test)) else (b, a)
    gap = abs(evaluate.primary(t, better.test) - evaluate.primary(t, worse.test))
    assert gap > 0.001
    client = registry.client()
    client.set_registered_model_alias(REGISTERED[name], CHAMPION, worse.version)
    client.set_registered_model_alias(REGISTERED[name], CHALLENGER, better.version)

    [blocked] = promote_all([name], registry, snapshots, margin=gap * 2)
    assert not blocked.promoted
    assert "does not beat" in blocked.reason and f"by more than {gap * 2}" in blocked.reason
    assert blocked.challenger_score == pytest.approx(evaluate.primary(t, better.test))
    assert blocked.champion_score == pytest.approx(evaluate.primary(t, worse.test))
    assert alias(registry, name, CHAMPION) == worse.version

    [won] = promote_all([name], registry, snapshots, margin=gap / 2)
    assert won.promoted
    assert f"challenger v{better.version} {t.primary_metric}" in won.reason
    assert " beats champion " in won.reason
    assert alias(registry, name, CHAMPION) == better.version


def test_not_comparable_is_kept_unless_forced(registry: Tracking,
                                              snapshots: SnapshotSource) -> None:
    client = registry.client()
    client.set_registered_model_alias("journey-churn", CHAMPION, "2")
    client.set_registered_model_alias("journey-churn", CHALLENGER, "1")
    client.set_model_version_tag("journey-churn", "2", "journey.horizon_days", "14")
    [d] = promote_all(["churn"], registry, snapshots, margin=0.0)
    assert not d.promoted
    assert d.reason == "not comparable on one holdout (they differ in journey.horizon_days)"
    assert d.champion_score is None
    [forced] = promote_all(["churn"], registry, snapshots, margin=0.0, force=True)
    assert forced.promoted and forced.reason.endswith("; promoted by --force")
    assert alias(registry, "churn", CHAMPION) == "1"


def test_a_champion_is_not_judged_on_outcomes_it_was_fitted_to(
        registry: Tracking, snapshots: SnapshotSource) -> None:
    """The champion's validation window (2025-09-01 +30d) reaches past a holdout that starts
    on 2025-09-15: scored there, it would be judged in-sample. Say so and keep it."""
    client = registry.client()
    client.set_registered_model_alias("journey-churn", CHAMPION, "2")
    client.set_registered_model_alias("journey-churn", CHALLENGER, "1")
    client.set_model_version_tag("journey-churn", "1", "journey.test_cutoff", "2025-09-15")
    [d] = promote_all(["churn"], registry, snapshots, margin=0.0)
    assert not d.promoted and d.champion_score is None
    assert d.reason.startswith("not comparable on one holdout: champion v2 was fitted or "
                               "calibrated on outcomes up to 2025-10-01, after this holdout "
                               "starts (2025-09-15)")
    assert alias(registry, "churn", CHAMPION) == "2"


@pytest.mark.parametrize("margin", [-0.5, float("nan"), float("inf")])
def test_a_margin_must_be_finite_and_not_negative(registry: Tracking, snapshots: SnapshotSource,
                                                  margin: float) -> None:
    """A negative margin promoted a worse model ("beats ... by more than -0.5"), NaN none."""
    with pytest.raises(ConfigError, match="margin must be a finite number >= 0"):
        promote_all(["churn"], registry, snapshots, margin=margin)


def test_no_challenger(registry: Tracking, snapshots: SnapshotSource) -> None:
    registry.client().delete_registered_model_alias("journey-conversion", CHALLENGER)
    decisions = promote_all(["conversion", "churn"], registry, snapshots, margin=0.001)
    assert decisions[0] == Decision("conversion", False,
                                    "no challenger: run `journey train` first", margin=0.001)
    assert decisions[1].promoted
    assert alias(registry, "conversion", CHAMPION) is None
    runs = decision_runs(registry)
    assert [r.data.tags["journey.decision"] for r in runs] == ["kept", "promoted"]


def test_challenger_on_another_feature_definition_is_not_scored(
    world: World, registry: Tracking, tmp_path: Path
) -> None:
    """The current spec (windows 7 and 30 days only) is not the one the models were trained
    on: their holdout cannot be rebuilt, so the gate keeps the champion and says why."""
    path = tmp_path / "features.yaml"
    path.write_text("windows_days: [7, 30]\n", encoding="utf-8")
    other = load_spec(path)
    assert other.hash != world.spec.hash
    src = SnapshotSource(world.store, world.snapshots, other, log=lambda _: None)
    try:
        [d] = promote_all(["churn"], registry, src, margin=0.001)
    finally:
        src.close()
    assert not d.promoted and d.challenger_score is None
    assert f"journey-churn v{alias(registry, 'churn', CHALLENGER)} was trained on" in d.reason
    assert world.spec.hash in d.reason and other.hash in d.reason and "--spec" in d.reason
    assert alias(registry, "churn", CHAMPION) is None


def test_registry_errors(registry: Tracking) -> None:
    client = registry.client()
    with pytest.raises(RegistryError, match="has no version with alias 'champion'"):
        load_alias(client, "journey-churn", CHAMPION)
    with pytest.raises(RegistryError, match="journey-ltv"):
        load_alias(client, "journey-ltv", CHALLENGER)


def test_a_challenger_of_another_feature_definition_is_kept_and_the_rest_decided(
        registry: Tracking, snapshots: SnapshotSource) -> None:
    """It used to stop `journey promote` with an error: the targets after it were never
    decided. Another gap is another time-to-churn label, so it is not comparable either."""
    client = registry.client()
    client.set_model_version_tag("journey-churn", "1", "journey.definition_hash", "0ther")
    client.set_registered_model_alias("journey-churn", CHALLENGER, "1")
    churn, conversion = promote_all(["churn", "conversion"], registry, snapshots, margin=0.25)
    assert not churn.promoted and churn.reason.startswith(
        "not scored: journey-churn v1 was trained on feature definition 0ther, the current "
        f"spec is {snapshots.spec.hash}")
    assert churn.margin == 0.25 and churn.challenger_version == "1"
    assert conversion.challenger_score is not None  # decided after it
    runs = decision_runs(registry)
    assert [r.data.params["margin"] for r in runs[-2:]] == ["0.25", "0.25"]


def test_time_to_churn_gaps_are_another_label() -> None:
    from training.promote import _not_comparable

    tags = {"journey.definition_hash": "d", "journey.label": "churn_days",
            "journey.horizon_days": "91", "journey.target": "time_to_churn"}
    gap7, gap30 = ({**tags, "journey.churn_gap_days": g} for g in ("7", "30"))
    assert _not_comparable(gap30, gap7, "1") == (
        "not comparable on one holdout (they differ in journey.churn_gap_days)")
    churn = {**tags, "journey.target": "churn", "journey.label": "churned_inactive"}
    assert _not_comparable({**churn, "journey.churn_gap_days": "30"},
                           {**churn, "journey.churn_gap_days": "7"}, "1") == ""


def test_a_champion_the_current_spec_cannot_serve_is_replaced(
        registry: Tracking, snapshots: SnapshotSource) -> None:
    """After an upgrade that changes how features are computed, every champion is on other
    definitions and the service refuses it: the gate judged it 'not comparable' and kept it,
    so nothing but --force brought the service back. It is judged as if there were none."""
    client = registry.client()
    client.set_registered_model_alias("journey-churn", CHAMPION, "2")
    client.set_registered_model_alias("journey-churn", CHALLENGER, "1")
    client.set_model_version_tag("journey-churn", "2", "journey.definition_hash", "0ld")
    [d] = promote_all(["churn"], registry, snapshots, margin=0.0)
    assert d.promoted, d.reason
    assert d.reason.startswith(
        f"champion v2 was trained on feature definitions 0ld, which the current spec "
        f"({snapshots.spec.hash}) does not compute, so it cannot be served: judged as if there "
        "were no champion: the challenger becomes champion")
    assert d.champion_version == "2" and d.champion_score is None
    assert d.figures["challenger_log_loss"] < d.figures["trivial_log_loss"]
    assert alias(registry, "churn", CHAMPION) == "1"

