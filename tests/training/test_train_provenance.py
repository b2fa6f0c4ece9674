"""What a training run records about how it was made: the search's trials and what ended it
(with a warning when the time budget did), the experiment as trained, and the code (Journey's
version, git commit, dirty tree) and data (event store, frames) it came from.

One tiny training run on a tiny simulated store (400 customers, 200 days): churn only, two
LightGBM candidates, one whose search max_trials ends and one the time budget cuts short.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import journey
from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.snapshot import data_fingerprint
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from tests.training.world import clean_env, one_thread, write_spec
from training.compare import leaderboard
from training.dataset import Dataset, SnapshotSource, load_dataset
from training.experiment import Experiment, load_experiment
from training.provenance import (
    CODE_ROOT,
    code_version,
    data_end,
    frames_fingerprint,
    store_fingerprint,
)
from training.tracking import KIND_TAG, TRAINING_EXPERIMENT, Tracking
from training.train import Context, ModelResult, train_experiment

pytestmark = pytest.mark.slow  # a tiny world and one small training run: ~10-20 s

TINY_LGBM = {"learning_rate": 0.1, "max_rounds": 40, "min_data_in_leaf": 20, "num_threads": 1}
TINY: dict[str, Any] = {
    "name": "tiny",
    "horizon_days": 30,
    "targets": ["churn"],
    "cutoffs": {"train": ["2025-04-01"], "valid": "2025-05-01", "test": "2025-06-01"},
    "models": [
        # Bounded by max_trials: a budget no fit comes near.
        {"family": "lightgbm", "params": TINY_LGBM,
         "search": {"budget_seconds": 100000, "max_trials": 2}},
        # Cut by the budget: the first trial always runs, and no fit takes under a millisecond.
        {"family": "lightgbm", "params": TINY_LGBM,
         "search": {"budget_seconds": 0.001, "max_trials": 5}},
    ],
    "seed": 3,
}


@dataclass(frozen=True)
class TinyWorld:
    root: Path
    store: Path
    last_event: datetime


def build_tiny(root: Path, customers: int = 400, days: int = 200, seed: int = 5) -> TinyWorld:
    """A small simulated store (events from 2025-01-01 for ``days`` days)."""
    simulate(SimSpec(customers, days, seed=seed), root / "sim", workers=1)
    store = root / "events.duckdb"
    with EventStore(store) as es:
        es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        last = es.time_range()[1]
    assert last is not None
    return TinyWorld(root, store, last.replace(tzinfo=UTC))


@dataclass(frozen=True)
class Run:
    home: Path
    tracking: Tracking
    exp: Experiment
    ds: Dataset
    results: list[ModelResult]
    log: list[str]
    warnings: list[str]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyWorld:
    return build_tiny(tmp_path_factory.mktemp("tiny-world"))


@pytest.fixture(scope="module")
def run(tiny: TinyWorld, tmp_path_factory: pytest.TempPathFactory) -> Run:
    home = tmp_path_factory.mktemp("tiny-home")
    exp = load_experiment(write_spec(home / "spec", TINY))
    spec = load_spec()
    log: list[str] = []
    warnings: list[str] = []
    source = SnapshotSource(tiny.store, home / "snapshots", spec, log=log.append)
    try:
        ds = load_dataset(exp, source)
    finally:
        source.close()
    tracking = Tracking.local(home)
    with clean_env(), pytest.MonkeyPatch.context() as mp, one_thread():
        mp.chdir(home)  # MLflow's Default experiment resolves ./mlruns against it
        results = train_experiment(exp, ds, Context(tracking, spec, None, log.append,
                                                    store=tiny.store, warn=warnings.append))
    return Run(home, tracking, exp, ds, results, log, warnings)


def parent_run(run: Run) -> Any:
    client = run.tracking.client()
    found = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    assert found is not None
    parents = client.search_runs([found.experiment_id], f"tags.`{KIND_TAG}` = 'training'")
    assert len(parents) == 1
    return parents[0]


def test_search_trials_and_stop_reason_are_logged_and_shown(run: Run) -> None:
    client = run.tracking.client()
    bounded, cut = (client.get_run(r.run_id).data for r in run.results)
    assert bounded.params["search_trials"] == "2"
    assert bounded.params["search_max_trials"] == "2"
    assert bounded.params["search_stopped_by"] == "max_trials"
    assert bounded.tags["journey.search.trials"] == "2/2"
    assert bounded.tags["journey.search.reproducible"] == "true"
    assert "journey.search.warning" not in bounded.tags
    assert cut.params["search_trials"] == "1"
    assert cut.params["search_max_trials"] == "5"
    assert cut.params["search_budget_seconds"] == "0.001"
    assert cut.params["search_stopped_by"] == "budget"
    assert cut.tags["journey.search.trials"] == "1/5"
    assert cut.tags["journey.search.reproducible"] == "false"
    assert "machine's speed" in cut.tags["journey.search.warning"]
    # Only the first trial, the base params, ran: the line says no search happened.
    assert cut.tags["journey.search.defaults_only"] == "true"
    assert "journey.search.defaults_only" not in bounded.tags
    lines = [line for line in run.log if line.startswith("  churn      lightgbm")]
    assert len(lines) == 2
    assert lines[0].endswith("(search 2/2 trials)")
    assert re.search(r"\(search 1/5 trials: budget 0\.001s spent on the default parameters "
                     r"\(\d+\.\ds\); no search happened\)$", lines[1]), lines[1]
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith("warning: churn lightgbm: budget 0.001s spent on the "
                                      "default parameters (")
    assert run.warnings[0].endswith(cut.tags["journey.search.warning"])


def test_the_search_warning_goes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    ctx = Context(Tracking("sqlite:///unused.db"), load_spec())
    ctx.warn("warning: churn lightgbm: cut short")
    captured = capsys.readouterr()
    assert captured.err == "warning: churn lightgbm: cut short\n" and captured.out == ""


def test_every_run_is_tagged_with_its_code_and_data(run: Run, tiny: TinyWorld) -> None:
    client = run.tracking.client()
    until = datetime(2025, 7, 1, tzinfo=UTC)  # test cutoff + horizon
    with EventStore(tiny.store, read_only=True) as es:
        row = es.con.execute("SELECT count(*), max(ts)::TIMESTAMP FROM events WHERE ts < ?",
                             [until]).fetchone()
    assert row is not None
    with EventStore(tiny.store, read_only=True) as es:
        content = data_fingerprint(es, until)["content"]
    expected = {
        "journey.code.version": journey.__version__,
        "journey.data.store": str(tiny.store.resolve()),
        "journey.data.until": until.isoformat(),
        "journey.data.events": str(row[0]),
        "journey.data.newest_event": row[1].isoformat(),
        "journey.data.content": content,
        "journey.data": f"{row[0]} events to {row[1].isoformat()} (content {content[:8]})",
        "journey.data.rows": f"train={len(run.ds.train)},valid={len(run.ds.valid)},"
                             f"test={len(run.ds.test)}",
        "journey.data.fingerprint": frames_fingerprint(run.ds)["journey.data.fingerprint"],
    }
    assert tiny.last_event > until and row[0] > 0  # the store holds later events, not counted
    commit = _git_head(CODE_ROOT)
    if commit is not None:  # tests run from a checkout: its commit and whether it is dirty
        expected["journey.code.git_commit"] = commit
    for run_id in [parent_run(run).info.run_id, *(r.run_id for r in run.results)]:
        tags = client.get_run(run_id).data.tags
        assert {k: tags.get(k) for k in expected} == expected, run_id
        assert tags.get("journey.code.git_dirty") in ((None,) if commit is None
                                                      else ("true", "false"))
    # `journey compare` ranks runs of one holdout only against runs of the same data.
    board = leaderboard(client)
    assert set(board["data"]) == {expected["journey.data"]}


def test_the_experiment_as_trained_is_logged_as_a_loadable_spec(run: Run, tmp_path: Path
                                                                  ) -> None:
    import mlflow

    parent = parent_run(run)
    arts = {a.path for a in run.tracking.client().list_artifacts(parent.info.run_id,
                                                                  "experiment")}
    assert arts == {"experiment/tiny.yaml"}
    text = mlflow.artifacts.load_text(f"{parent.info.artifact_uri}/experiment/tiny.yaml")
    (tmp_path / "tiny.yaml").write_text(text, encoding="utf-8")
    assert load_experiment(tmp_path / "tiny.yaml") == run.exp
    assert yaml.safe_load(text)["models"][1]["search"]["budget_seconds"] == 0.001


def test_the_data_fingerprints_tell_data_apart(run: Run, tiny: TinyWorld) -> None:
    same = frames_fingerprint(replace(run.ds, train=run.ds.train.copy()))
    assert same == frames_fingerprint(run.ds)
    changed = run.ds.train.copy()
    changed.loc[changed.index[0], "churned_inactive"] = not changed["churned_inactive"].iloc[0]
    assert (frames_fingerprint(replace(run.ds, train=changed))["journey.data.fingerprint"]
            != frames_fingerprint(run.ds)["journey.data.fingerprint"])
    early = store_fingerprint(tiny.store, datetime(2025, 3, 1, tzinfo=UTC))
    late = store_fingerprint(tiny.store, data_end(run.exp))
    assert int(early["journey.data.events"]) < int(late["journey.data.events"])
    assert early["journey.data.newest_event"] < "2025-03-01"


def test_a_store_that_cannot_be_read_is_named_not_fatal(tmp_path: Path) -> None:
    tags = store_fingerprint(tmp_path / "missing.duckdb", datetime(2025, 3, 1, tzinfo=UTC))
    assert "journey.data.events" not in tags
    assert "not found" in tags["journey.data.store_error"]


def _git_head(root: Path) -> str | None:
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                    *args], capture_output=True, check=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_and_dirty_flag_of_a_checkout(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    head = _git_head(tmp_path)
    assert code_version(tmp_path) == {"journey.code.version": journey.__version__,
                                      "journey.code.git_commit": head,
                                      "journey.code.git_dirty": "false"}
    (tmp_path / "untracked.txt").write_text("?", encoding="utf-8")
    assert code_version(tmp_path)["journey.code.git_dirty"] == "false"
    (tmp_path / "a.py").write_text("x = 2\n", encoding="utf-8")
    assert code_version(tmp_path)["journey.code.git_dirty"] == "true"
    (tmp_path / "sub").mkdir()  # code installed inside another repository is not its checkout
    assert code_version(tmp_path / "sub") == {"journey.code.version": journey.__version__}


def test_no_checkout_or_no_git_is_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    alone = {"journey.code.version": journey.__version__}
    assert code_version(tmp_path) == alone  # not a checkout
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git at all
    assert code_version(CODE_ROOT) == alone
    assert capfd.readouterr() == ("", "")
