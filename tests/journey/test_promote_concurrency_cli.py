"""Two `journey promote` processes at once on one home: the audit's case, where one ended with a
458-line traceback (UNIQUE constraint failed on the promotion tag) after moving an alias it
never recorded. Both now wait their turn on the registry lock, saying so, and finish. And one
`journey promote` moves its champions, uplift's included, only once every target is decided."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from models.uplift_model import registered_name
from tests.journey.cli_helpers import ok
from tests.training.world import (
    LEAKY_ENV,
    SMALL,
    SMALL_UPLIFT,
    World,
    clean_env,
    one_thread,
    train_into,
    train_uplift_into,
)
from training import promote, uplift_gate
from training.promote import Decision
from training.registry_lock import registry_lock
from training.tracking import PROMOTION_EXPERIMENT, Tracking
from training.uplift_gate import UPLIFT_TARGETS

pytestmark = pytest.mark.slow  # builds the simulated world (if not built yet) and trains

REGISTERED = ("journey-churn", "journey-conversion")
BASELINES = {**SMALL, "name": "baselines", "targets": ["churn", "conversion"],
             "models": [{"family": "baseline", "features": ["rfm"], "params": {"C": 1.0}}]}


def _env(world: World, home: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items()
            if not k.startswith("JOURNEY_") and k not in LEAKY_ENV}
    return {**kept, "JOURNEY_HOME": str(home), "JOURNEY_STORE": str(world.store),
            "JOURNEY_SNAPSHOTS": str(world.snapshots), "MLFLOW_DISABLE_TELEMETRY": "true",
            "BENTOML_DO_NOT_TRACK": "true", "OMP_NUM_THREADS": "1"}


def _promoted(tracking: Tracking) -> list[str]:
    client = tracking.client()
    exp = client.get_experiment_by_name(PROMOTION_EXPERIMENT)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], "tags.`journey.decision` = 'promoted'")
    return sorted(r.data.tags["journey.target"] for r in runs)


def test_two_journey_promote_at_once(world: World, tmp_path: Path) -> None:
    home = tmp_path / "home"
    tracking = train_into(world, home, BASELINES).tracking
    waiting = f"waiting for another promotion on this registry (pid {os.getpid()}) …"
    logs = [(tmp_path / f"{n}.out", tmp_path / f"{n}.err") for n in ("a", "b")]
    procs = []
    # Held here until both are waiting, so that they then race each other for it.
    with registry_lock(tracking.tracking_uri, "promotion", pytest.fail):
        for out, err in logs:
            with out.open("w") as o, err.open("w") as e:
                procs.append(subprocess.Popen([sys.executable, "-m", "journey", "promote"],
                                              stdout=o, stderr=e, cwd=tmp_path,
                                              env=_env(world, home)))
        deadline = time.monotonic() + 300
        while not all(waiting in err.read_text() for _, err in logs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                [err.read_text() for _, err in logs]
            time.sleep(0.1)
    codes = [p.wait(600) for p in procs]
    outs = sorted(out.read_text() for out, _ in logs)
    errs = [err.read_text() for _, err in logs]
    assert codes == [0, 0], errs
    assert errs == [waiting + "\n"] * 2  # no traceback, nothing else
    kept = ("next_stage: kept — no challenger: run `journey train` first\n"
            "churn: {}\nconversion: {}\n")
    assert outs == sorted([
        kept.format(*["PROMOTED — no champion yet: the challenger becomes champion"] * 2),
        kept.format(*["kept — the challenger is already the champion"] * 2)])
    assert _promoted(tracking) == ["churn", "conversion"]  # one promotion record each
    client = tracking.client()
    for name in REGISTERED:
        aliases = client.get_registered_model(name).aliases
        assert aliases["champion"] == aliases["challenger"]


def test_journey_promote_moves_every_champion_after_every_decision(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The uplift champions too: `journey promote` is one promotion for both gates, so a
    service polling the registry never serves a set that was not promoted together."""
    home = tmp_path / "home"
    tracking = train_into(world, home, BASELINES).tracking
    one_learner = {**SMALL_UPLIFT, "learners": SMALL_UPLIFT["learners"][:1]}
    train_uplift_into(world, home, one_learner, tracking)  # promotes uplift's first champions
    client = tracking.client()
    uplift = [registered_name(t.removeprefix("uplift-")) for t in UPLIFT_TARGETS]
    for name in uplift:
        client.delete_registered_model_alias(name, "champion")
    events: list[str] = []
    real_log, real_move = promote.log_decision, MlflowClient.set_registered_model_alias

    def logged(tracking: Tracking, client: MlflowClient, d: Decision) -> None:
        real_log(tracking, client, d)
        events.append(f"decided {d.target}")

    def moved(self: MlflowClient, name: str, alias: str, version: Any) -> None:
        real_move(self, name, alias, version)
        events.append(f"moved {name}")

    for module in (promote, uplift_gate):
        monkeypatch.setattr(module, "log_decision", logged)
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", moved)
    with clean_env(), pytest.MonkeyPatch.context() as mp, one_thread():
        mp.chdir(tmp_path)
        for key, value in _env(world, home).items():
            mp.setenv(key, value)
        lines = ok("promote")
    assert [line.split(" — ")[0] for line in lines] == [
        "next_stage: kept", "churn: PROMOTED", "conversion: PROMOTED",
        "uplift-convert: PROMOTED", "uplift-churn: PROMOTED"]
    assert events == [f"decided {t}" for t in ("next_stage", "churn", "conversion",
                                               *UPLIFT_TARGETS)] + \
        [f"moved {name}" for name in (*REGISTERED, *uplift)]
