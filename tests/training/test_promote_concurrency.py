"""Promotions on one registry at once, and promotions that fail half-way: each target is
promoted once, champions move only after every decision is made and recorded, and never
without their record. On a registry of its own (churn and conversion, baseline only), each
test on a copy of it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.training.world import SMALL, Trained, World, copy_registry, source, train_into
from training import promote
from training.champions import promotion
from training.promote import Decision, promote_all
from training.tracking import PROMOTION_EXPERIMENT, Tracking
from training.train import CHALLENGER, CHAMPION

pytestmark = pytest.mark.slow  # builds the simulated world (if not built yet) and trains

TARGETS = ["churn", "conversion"]
REGISTERED = {"churn": "journey-churn", "conversion": "journey-conversion"}
BASELINES = {**SMALL, "name": "baselines", "targets": TARGETS,
             "models": [{"family": "baseline", "features": ["rfm"], "params": {"C": 1.0}}]}


@pytest.fixture(scope="module")
def baselines(world: World, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_into(world, tmp_path_factory.mktemp("baselines"), BASELINES)


@pytest.fixture
def registry(baselines: Trained, tmp_path: Path) -> Tracking:
    return copy_registry(baselines.tracking, tmp_path / "registry")


def aliases(tracking: Tracking, which: str) -> dict[str, str | None]:
    client = tracking.client()
    found = {name: client.get_registered_model(REGISTERED[name]).aliases.get(which)
             for name in TARGETS}
    return {name: None if v is None else str(v) for name, v in found.items()}


def promoted_runs(tracking: Tracking) -> list[str]:
    """The target of each decision run that says "promoted"."""
    client = tracking.client()
    exp = client.get_experiment_by_name(PROMOTION_EXPERIMENT)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], "tags.`journey.decision` = 'promoted'")
    return sorted(r.data.tags["journey.target"] for r in runs)


def test_two_promotions_at_once_promote_each_target_once(world: World, registry: Tracking
                                                         ) -> None:
    got: dict[str, list[Decision]] = {}
    failed: list[BaseException] = []
    notes: list[str] = []

    def run(name: str) -> None:
        src = source(world)
        try:
            got[name] = promote_all(TARGETS, registry, src, 0.001, note=notes.append)
        except BaseException as exc:  # the thread's failure is the test's
            failed.append(exc)
        finally:
            src.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert failed == [] and sorted(got) == ["a", "b"]
    said = sorted((d.target, d.promoted, d.reason) for ds in got.values() for d in ds)
    assert said == [
        ("churn", False, "the challenger is already the champion"),
        ("churn", True, "no champion yet: the challenger becomes champion"),
        ("conversion", False, "the challenger is already the champion"),
        ("conversion", True, "no champion yet: the challenger becomes champion")]
    assert promoted_runs(registry) == TARGETS  # one promotion record per target
    assert aliases(registry, CHAMPION) == aliases(registry, CHALLENGER)
    client = registry.client()
    for name, version in aliases(registry, CHAMPION).items():
        assert version is not None
        tags = client.get_model_version(REGISTERED[name], version).tags
        assert tags["journey.promotion"] == "no champion yet: the challenger becomes champion"


def test_champions_move_only_after_every_decision(world: World, registry: Tracking,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A service polling the registry would otherwise serve churn's new champion beside
    conversion's old one for as long as conversion takes to decide."""
    events: list[str] = []
    log_decision, set_alias = promote.log_decision, MlflowClient.set_registered_model_alias

    def logged(tracking: Tracking, client: MlflowClient, d: Decision) -> None:
        log_decision(tracking, client, d)
        events.append(f"decided {d.target}")

    def moved(self: MlflowClient, name: str, alias: str, version: Any) -> None:
        set_alias(self, name, alias, version)
        events.append(f"moved {name}")

    monkeypatch.setattr(promote, "log_decision", logged)
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", moved)
    src = source(world)
    try:
        decisions = promote_all(TARGETS, registry, src, 0.001)
    finally:
        src.close()
    assert [d.promoted for d in decisions] == [True, True]
    assert events == ["decided churn", "decided conversion", "moved journey-churn",
                      "moved journey-conversion"]
    assert aliases(registry, CHAMPION) == aliases(registry, CHALLENGER)


def test_a_record_that_fails_moves_no_champion(world: World, registry: Tracking,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision is recorded on the version before the alias moves: a failure in between
    leaves no champion that no record explains."""
    def refused(self: MlflowClient, *args: Any) -> None:
        raise RuntimeError("the tracking store went away")

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", refused)
    src = source(world)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            promote_all(["churn"], registry, src, 0.001, note=lambda _: None)
    finally:
        src.close()
    assert aliases(registry, CHAMPION) == {"churn": None, "conversion": None}


def test_a_promotion_stopped_half_way_moves_nothing(world: World, registry: Tracking,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Churn decided and recorded, then conversion's decision fails: churn's champion does not
    move alone, and the promotion says so in one line."""
    log_decision = promote.log_decision

    def logged(tracking: Tracking, client: MlflowClient, d: Decision) -> None:
        if d.target == "conversion":
            raise RuntimeError("the tracking store went away")
        log_decision(tracking, client, d)

    monkeypatch.setattr(promote, "log_decision", logged)
    notes: list[str] = []
    src = source(world)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            promote_all(TARGETS, registry, src, 0.001, note=notes.append)
    finally:
        src.close()
    assert aliases(registry, CHAMPION) == {"churn": None, "conversion": None}
    churn, conversion = aliases(registry, CHALLENGER).values()
    assert notes == ["no champion moved: the promotion stopped before every target was decided "
                     "and recorded "
                     f"(held back: journey-churn v{churn}, journey-conversion v{conversion}); "
                     "run it again"]
    monkeypatch.undo()
    src = source(world)
    try:  # run again: both promoted together
        assert [d.promoted for d in promote_all(TARGETS, registry, src, 0.001)] == [True, True]
    finally:
        src.close()
    assert aliases(registry, CHAMPION) == aliases(registry, CHALLENGER)


def test_a_promotion_inside_another_moves_with_it(world: World, registry: Tracking) -> None:
    """`journey promote` opens one promotion around both gates (the uplift gate's decisions are
    applied by the same ``apply_decision``): the inner one's champions wait for its end."""
    src = source(world)
    try:
        with promotion(registry.tracking_uri):
            [churn] = promote_all(["churn"], registry, src, 0.001)
            assert churn.promoted and aliases(registry, CHAMPION)["churn"] is None
            [conversion] = promote_all(["conversion"], registry, src, 0.001)
            assert conversion.promoted and aliases(registry, CHAMPION)["churn"] is None
    finally:
        src.close()
    assert aliases(registry, CHAMPION) == aliases(registry, CHALLENGER)
