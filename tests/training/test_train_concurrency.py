"""Overlapping `journey train` runs on one registry: every target ends with the challenger of
the run that started last, a run never moves a challenger back to its older model, and what a
run printed last for each target is what the registry holds when it ends."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from models.targets import target
from tests.training.world import SMALL, Trained, World, train_into
from training import train
from training.challengers import choose_challenger
from training.registry_lock import registry_lock
from training.tracking import Tracking
from training.train import CHALLENGER, Context

pytestmark = pytest.mark.slow  # builds the simulated world (if not built yet) and trains

REGISTERED = {"churn": "journey-churn", "conversion": "journey-conversion"}
BASELINES = {**SMALL, "targets": ["churn", "conversion"],
             "models": [{"family": "baseline", "features": ["rfm"], "params": {"C": 1.0}}]}
LINE = re.compile(r"  (journey-\S+) v(\d+) ")


def challengers(tracking: Tracking) -> dict[str, str]:
    client = tracking.client()
    return {name: str(client.get_registered_model(name).aliases[CHALLENGER])
            for name in REGISTERED.values()}


def last_named(log: tuple[str, ...]) -> dict[str, str]:
    """The version each target's last challenger line of a run names."""
    named: dict[str, str] = {}
    for line in log:
        found = LINE.match(line)
        if found and "challenger" in line:
            named[found[1]] = found[2]
    return named


def test_a_later_run_s_challengers_stay_and_the_earlier_run_says_so(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`early` starts first and picks churn's challenger; `late` starts and ends while `early`
    trains conversion. `early` must leave late's conversion challenger, and say that churn's
    is late's now: before, the registry ended with churn from one run and conversion from the
    other while each run printed its own."""
    home = tmp_path / "home"
    tracking = Tracking.local(home)
    late: list[Trained] = []
    train_one = train.train_one

    def overlapped(t: Any, model: Any, ds: Any, exp: Any, ctx: Any) -> train.ModelResult:
        if exp.name == "early" and t.name == "conversion" and not late:
            other = threading.Thread(target=lambda: late.append(
                train_into(world, home, {**BASELINES, "name": "late"}, tracking)))
            other.start()
            other.join(600)
        return train_one(t, model, ds, exp, ctx)

    monkeypatch.setattr(train, "train_one", overlapped)
    early = train_into(world, home, {**BASELINES, "name": "early"}, tracking)
    [later] = late
    theirs = {REGISTERED[r.target]: r.version for r in later.results}
    mine = {REGISTERED[r.target]: r.version for r in early.results}
    assert challengers(tracking) == theirs  # every challenger from the run started last
    assert last_named(later.log) == theirs and last_named(early.log) == theirs
    run = tracking.client().get_run(later.results[0].run_id).data.tags["mlflow.parentRunId"]
    assert early.log[-2:] == (
        f"  journey-conversion v{theirs['journey-conversion']} stays the challenger: it comes "
        f"from a journey train that started after this one (run {run}); this run's "
        f"v{mine['journey-conversion']} (baseline) is not made the challenger",
        f"  journey-churn v{theirs['journey-churn']} is the challenger now, not "
        f"v{mine['journey-churn']}: another journey train moved it while this one ran")


def test_a_challenger_pick_waits_for_a_promotion(world: World, tmp_path: Path) -> None:
    """The pick reads and moves the alias under the registry lock: not while a promotion on
    the same registry is deciding."""
    trained = train_into(world, tmp_path / "home", {**BASELINES, "targets": ["churn"]})
    client = trained.tracking.client()
    client.delete_registered_model_alias("journey-churn", CHALLENGER)
    notes: list[str] = []
    ctx = Context(trained.tracking, world.spec, log=notes.append, warn=notes.append)
    t = target("churn", world.spec.stages)
    picker = threading.Thread(target=choose_challenger,
                              args=(client, t, list(trained.results), ctx))
    with registry_lock(trained.tracking.tracking_uri, "promotion", pytest.fail):
        picker.start()
        picker.join(2)
        assert picker.is_alive()  # waiting: the alias is not touched meanwhile
        assert "challenger" not in client.get_registered_model("journey-churn").aliases
    picker.join(60)
    assert notes == [f"waiting for another promotion on this registry (pid {os.getpid()}) …",
                     f"  journey-churn v{trained.results[0].version} (baseline) is the challenger"]
