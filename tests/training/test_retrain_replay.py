"""A retraining cycle with a clock before the store's newest event replays the past: its
cutoffs move relative to that clock and it trains on exactly the frames a store holding only
the events up to then would give; cycles go forward; and the training run logs the moved
experiment it really trained (loadable as a spec) beside the retraining spec it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import mlflow
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.errors import ConfigError
from features.mapping import identity_mapping
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from tests.training.test_train_provenance import TinyWorld, build_tiny
from tests.training.world import clean_env, one_thread, write_spec
from training.dataset import SnapshotSource, load_dataset
from training.experiment import Experiment, load_experiment
from training.provenance import frames_fingerprint
from training.retrain import Outcome, RetrainRun, load_cycles, load_retrain, moved
from training.retrain import retrain as run_retrain
from training.tracking import KIND_TAG, RETRAIN_EXPERIMENT, Tracking

pytestmark = pytest.mark.slow  # a tiny world and two tiny cycles: ~15-25 s

SPEC: dict[str, Any] = {
    "name": "tiny-retrain",
    "horizon_days": 30,
    "targets": ["churn"],
    "cutoffs": {"train": ["2025-03-01"], "valid": "2025-03-31", "test": "2025-04-30"},
    "models": [{"family": "lightgbm",
                "params": {"learning_rate": 0.1, "max_rounds": 40, "min_data_in_leaf": 20,
                           "num_threads": 1}}],
    "seed": 1,
}
CONFIG = {"name": "cycle", "experiment": "tiny-retrain.yaml", "every_days": 14, "margin": 0.0}
REPLAY = datetime(2025, 6, 15, tzinfo=UTC)  # the tiny store's events run to 2025-07-19


@dataclass(frozen=True)
class Home:
    root: Path
    config: Path
    tracking: Tracking
    log: list[str]


def cycle(tiny: TinyWorld, home: Home, now: datetime, force: bool = False) -> Outcome:
    rs, exp = load_retrain(home.config)
    spec = load_spec()
    source = SnapshotSource(tiny.store, home.root / "snapshots", spec, log=home.log.append)
    run = RetrainRun(source, home.tracking, spec, home.root / "retrain", 0.0, home.log.append)
    try:
        with clean_env(), one_thread(), pytest.MonkeyPatch.context() as mp:
            mp.chdir(home.root)  # MLflow's Default experiment resolves ./mlruns against it
            return run_retrain(rs, exp, run, now, force, config_file=home.config)
    finally:
        source.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyWorld:
    return build_tiny(tmp_path_factory.mktemp("tiny-retrain-world"))


@pytest.fixture(scope="module")
def replayed(tiny: TinyWorld, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Home, Outcome]:
    root = tmp_path_factory.mktemp("replay-home")
    write_spec(root / "spec", SPEC)
    home = Home(root, write_spec(root / "spec", CONFIG), Tracking.local(root), [])
    return home, cycle(tiny, home, REPLAY)


def test_a_replay_uses_only_the_events_up_to_its_clock(tiny: TinyWorld,
                                                       replayed: tuple[Home, Outcome],
                                                       tmp_path: Path) -> None:
    home, outcome = replayed
    c = outcome.cycle
    assert c is not None and outcome.why == "first cycle"
    assert tiny.last_event > REPLAY
    assert (c.ran_at, c.data_until) == ("2025-06-15T00:00:00Z", "2025-06-15T00:00:00Z")
    # 2025-06-15 - 30 days: the newest test window closed by the clock, spacing kept.
    assert c.cutoffs == {"train": ["2025-03-17"], "valid": "2025-04-16", "test": "2025-05-16"}
    assert any("left out as after --now" in line for line in home.log)
    client = home.tracking.client()
    tags = client.get_run(c.training_run).data.tags
    assert tags["journey.data.newest_event"] <= "2025-06-15"
    # The frames trained on are those of a store that never received the later events.
    clipped = _clipped_store(tiny, tmp_path)
    fresh = moved(load_experiment(home.config.parent / "tiny-retrain.yaml"), REPLAY)
    source = SnapshotSource(clipped, tmp_path / "snapshots", load_spec(), log=lambda _: None)
    try:
        ds = load_dataset(fresh, source)
    finally:
        source.close()
    assert tags["journey.data.fingerprint"] == frames_fingerprint(ds)["journey.data.fingerprint"]
    retrain_run = client.search_runs([home.tracking.experiment_id(client, RETRAIN_EXPERIMENT)],
                                     f"tags.`{KIND_TAG}` = 'retrain'")[0].data
    assert retrain_run.params["data_until"] == REPLAY.isoformat()
    assert retrain_run.params["store_newest_event"] == tiny.last_event.isoformat()
    assert retrain_run.tags["journey.replay"] == "true"


def test_the_training_run_logs_the_moved_experiment_and_the_retraining_spec(
        replayed: tuple[Home, Outcome], tmp_path: Path) -> None:
    home, outcome = replayed
    assert outcome.cycle is not None
    client = home.tracking.client()
    run = client.get_run(outcome.cycle.training_run)
    name = outcome.cycle.experiment
    assert name == "tiny-retrain-retrain-2025-05-16"
    paths = {a.path for d in ("experiment", "retrain")
             for a in client.list_artifacts(run.info.run_id, d)}
    assert paths == {f"experiment/{name}.yaml", "retrain/cycle.yaml", "retrain/tiny-retrain.yaml"}
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/experiment/{name}.yaml")
    (tmp_path / "trained.yaml").write_text(text, encoding="utf-8")
    trained: Experiment = load_experiment(tmp_path / "trained.yaml")
    assert trained.name == name and trained.cutoffs.test == date(2025, 5, 16)
    assert trained == moved(load_experiment(home.config.parent / "tiny-retrain.yaml"), REPLAY)
    config = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/retrain/cycle.yaml")
    assert config == home.config.read_text(encoding="utf-8")


def test_replays_go_forward(tiny: TinyWorld, replayed: tuple[Home, Outcome]) -> None:
    home, _ = replayed
    before = load_cycles(home.root / "retrain")
    with pytest.raises(ConfigError, match=r"--now 2025-06-01T00:00:00Z is before the last "
                       r"recorded cycle, run at 2025-06-15T00:00:00Z .*replays go forward"):
        cycle(tiny, home, datetime(2025, 6, 1, tzinfo=UTC), force=True)
    assert load_cycles(home.root / "retrain") == before
    later = cycle(tiny, home, datetime(2025, 6, 29, tzinfo=UTC))
    assert later.why == "14 days since the last cycle (every 14)"
    assert later.cycle is not None and later.cycle.cutoffs["test"] == "2025-05-30"
    assert [c["ran_at"] for c in load_cycles(home.root / "retrain")] == [
        "2025-06-15T00:00:00Z", "2025-06-29T00:00:00Z"]


def _clipped_store(tiny: TinyWorld, folder: Path) -> Path:
    """The tiny world's events before REPLAY, in a store: what it held at REPLAY."""
    events = pq.read_table(tiny.root / "sim" / "events")
    part = folder / "clipped.parquet"
    pq.write_table(events.filter(pc.less(events["ts"], REPLAY)), part)
    with EventStore(folder / "clipped.duckdb") as es:
        es.ingest(part, identity_mapping(), load_taxonomy())
    return folder / "clipped.duckdb"
