"""A `journey train` moves its challengers together, at its end: a promotion run between two
targets judges the previous run's set, never this run's challenger for one target beside the
previous run's for another; the moves are made in one hold of the registry's lock; a run that
fails part-way moves none and says which it held back. On a registry of its own (churn and
conversion, baseline only), each test on a copy of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.training.world import SMALL, Trained, World, copy_registry, train_into
from training import challengers as challengers_module
from training import train
from training.registry_lock import registry_lock
from training.tracking import Tracking
from training.train import CHALLENGER, ModelResult

pytestmark = pytest.mark.slow  # builds the simulated world (if not built yet) and trains

REGISTERED = {"churn": "journey-churn", "conversion": "journey-conversion"}
BASELINES = {**SMALL, "targets": ["churn", "conversion"],
             "models": [{"family": "baseline", "features": ["rfm"], "params": {"C": 1.0}}]}


@pytest.fixture(scope="module")
def first(world: World, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The previous run: both targets' challengers come from it."""
    return train_into(world, tmp_path_factory.mktemp("first"), {**BASELINES, "name": "first"})


@pytest.fixture
def home(first: Trained, tmp_path: Path) -> Path:
    """A home holding a copy of the previous run's registry."""
    copy_registry(first.tracking, tmp_path / "home")
    return tmp_path / "home"


def challengers(tracking: Tracking) -> dict[str, str | None]:
    client = tracking.client()
    found = {name: client.get_registered_model(name).aliases.get(CHALLENGER)
             for name in REGISTERED.values()}
    return {name: None if v is None else str(v) for name, v in found.items()}


def versions(trained: Trained) -> dict[str, str | None]:
    return {REGISTERED[r.target]: r.version for r in trained.results}


def hook_before_conversion(monkeypatch: pytest.MonkeyPatch, run: str, hook: Any) -> None:
    """``hook()`` when run ``run`` starts training conversion: churn is done and decided."""
    train_one = train.train_one

    def between(t: Any, model: Any, ds: Any, exp: Any, ctx: Any) -> ModelResult:
        if exp.name == run and t.name == "conversion":
            hook()
        return train_one(t, model, ds, exp, ctx)

    monkeypatch.setattr(train, "train_one", between)


def test_a_promotion_between_targets_sees_the_previous_run_s_challengers(
        world: World, first: Trained, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between churn and conversion a promotion reads the challengers. Before, it found
    churn's from this run and conversion's from the previous one: a set never trained
    together. Now it finds the previous run's two until this run ends, then this run's two."""
    registry = Tracking.local(home)
    seen: list[dict[str, str | None]] = []
    hook_before_conversion(monkeypatch, "second", lambda: seen.append(challengers(registry)))
    events: list[str] = []
    real_lock = registry_lock

    @contextmanager
    def recorded(uri: str, doing: str, note: Any) -> Iterator[None]:
        with real_lock(uri, doing, note):
            events.append("lock")
            try:
                yield
            finally:
                events.append("unlock")

    real_set = MlflowClient.set_registered_model_alias

    def set_alias(self: MlflowClient, name: str, alias: str, version: str) -> None:
        events.append(f"{name} v{version}")
        real_set(self, name, alias, version)

    monkeypatch.setattr(challengers_module, "registry_lock", recorded)
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", set_alias)
    second = train_into(world, home, {**BASELINES, "name": "second"}, registry)
    mine = versions(second)
    assert seen == [versions(first)]
    assert challengers(registry) == mine
    # Both moves in one hold of the lock, at the end (before: a hold per target).
    assert events == ["lock", f"journey-churn v{mine['journey-churn']}",
                      f"journey-conversion v{mine['journey-conversion']}", "unlock"]
    # Each target's challenger is still said as that target finishes.
    assert [line for line in second.log if "challenger" in line] == [
        f"  journey-churn v{mine['journey-churn']} (baseline) is the challenger",
        f"  journey-conversion v{mine['journey-conversion']} (baseline) is the challenger"]


def test_a_run_that_fails_part_way_moves_no_challenger(
        world: World, first: Trained, home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Churn is decided, conversion fails: churn's challenger stays the previous run's (before,
    it had moved to the failed run's model), and the run says what it held back."""

    def fail() -> None:
        raise RuntimeError("disk full")

    registry = Tracking.local(home)
    hook_before_conversion(monkeypatch, "broken", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        train_into(world, home, {**BASELINES, "name": "broken"}, registry)
    assert challengers(registry) == versions(first)
    churn = max(int(v.version) for v in
                registry.client().search_model_versions("name = 'journey-churn'"))
    assert churn > int(str(versions(first)["journey-churn"]))  # the failed run's
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"no challenger moved: this journey train stopped before it ended (held back: "
        f"journey-churn v{churn}); each target keeps the challenger it had")
