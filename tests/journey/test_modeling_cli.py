"""`journey train`, `promote` and `compare` through typer's CliRunner, on the simulated world
the training tests share (tests/training/world.py), with JOURNEY_HOME in a temporary folder.

One small experiment (churn, LightGBM) is trained once per module; the commands after it
read the MLflow home that training created."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd
import pytest

from tests.journey.cli_helpers import fails, ok, out, run
from tests.training.world import (
    CUTOFFS,
    FAST_LGBM,
    World,
    build_world,
    clean_env,
    one_thread,
    write_spec,
)

pytestmark = pytest.mark.slow  # builds the simulated world (if not built yet) and trains

CHURN = {
    "name": "cli-churn",
    "horizon_days": 30,
    "cutoffs": CUTOFFS,
    "targets": ["churn"],
    "models": [{"family": "lightgbm", "params": FAST_LGBM}],
    "seed": 42,
}


@dataclass(frozen=True)
class Session:
    root: Path
    world: World
    spec: Path
    empty_compare: list[str]
    train: list[str]
    promote: list[str]
    promote_again: list[str]
    compare: list[str]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    world = build_world(tmp_path_factory)
    root = tmp_path_factory.mktemp("modeling-cli")
    with clean_env(), pytest.MonkeyPatch.context() as mp, one_thread():
        mp.chdir(root)
        mp.setenv("JOURNEY_HOME", str(root / "home"))
        spec = write_spec(root / "experiments", CHURN)
        empty = ok("compare")
        trained = ok("train", "--experiment", spec, "--store", world.store,
                     "--out", world.snapshots)
        # promote finds the store and snapshots through the environment this time
        mp.setenv("JOURNEY_STORE", str(world.store))
        mp.setenv("JOURNEY_SNAPSHOTS", str(world.snapshots))
        promoted = ok("promote")
        again = ok("promote", "--target", "churn")
        board = ok("compare", "--out", "reports")
        yield Session(root, world, spec, empty, trained, promoted, again, board)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path) -> Iterator[Path]:
    """Each test's own folder and home, no JOURNEY_* settings from outside."""
    with clean_env(), pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("JOURNEY_HOME", str(tmp_path / "home"))
        yield tmp_path


def test_compare_before_any_training(session: Session) -> None:
    db = session.root / "home" / "mlflow" / "mlflow.db"
    assert session.empty_compare == [
        f"no MLflow tracking store at {db.resolve()} (JOURNEY_HOME={session.root / 'home'}): "
        "nothing tracked there yet; check the setting, or run `journey train --experiment ...`"]


def test_train(session: Session) -> None:
    lines = session.train
    head = re.fullmatch(
        r"experiment cli-churn: ([\d,]+) training rows, ([\d,]+) validation, ([\d,]+) test "
        rf"\(definition {session.world.spec.hash}\)", lines[0])
    assert head, lines[0]
    n_train, n_valid, n_test = (int(g.replace(",", "")) for g in head.groups())
    assert n_train > n_valid > 0 and n_test == 3000
    assert re.fullmatch(
        r"  churn      lightgbm valid roc_auc 0\.\d{4}  test 0\.\d{4}  v1  \d+\.\ds", lines[1])
    assert lines[2] == "  journey-churn v1 (lightgbm) is the challenger"
    home = session.root / "home"
    assert re.fullmatch(
        rf"1 models trained and registered in \d+\.\ds -> sqlite:///{re.escape(str(home))}"
        r"/mlflow/mlflow\.db", lines[3])
    assert len(lines) == 4  # the snapshots existed: nothing was recomputed
    assert (home / "mlflow" / "mlflow.db").is_file()


def test_promote(session: Session) -> None:
    assert session.promote == [
        "next_stage: kept — no challenger: run `journey train` first",
        "churn: PROMOTED — no champion yet: the challenger becomes champion",
        "conversion: kept — no challenger: run `journey train` first",
    ]  # time to churn is optional: never trained, it is not listed (all three above are needed)
    assert session.promote_again == ["churn: kept — the challenger is already the champion"]


def test_compare(session: Session) -> None:
    db = (session.root / "home" / "mlflow" / "mlflow.db").resolve()
    assert session.compare[0] == f"model runs tracked in sqlite:///{db}"
    lines = session.compare[1:]
    assert lines[0].startswith("| rank | target | ")
    assert "run_id" not in lines[0] and "definition" not in lines[0]
    assert lines[1].startswith("|---|")
    [row] = [line for line in lines if line.startswith("| 1 | churn |")]
    assert "| lightgbm | cli-churn | 1 |" in row and "2025-10-01 +30d" in row
    md, csv = Path("reports") / "leaderboard.md", Path("reports") / "leaderboard.csv"
    assert lines[-2:] == [f"-> {md}", f"-> {csv}"]
    written = session.root / "reports"
    assert (written / "leaderboard.md").read_text(encoding="utf-8").startswith(
        "# Journey leaderboard")
    board = pd.read_csv(written / "leaderboard.csv")
    assert len(board) == 1
    assert board.loc[0, "target"] == "churn" and board.loc[0, "rank"] == 1
    assert 0.85 < cast(float, board.loc[0, "score"]) < 1  # stubs type a cell as any scalar
    assert isinstance(board.loc[0, "run_id"], str)


def test_compare_onto_a_file_fails_before_printing(session: Session, tmp_path: Path) -> None:
    """The audit's case: the table was printed, then a FileExistsError traceback."""
    taken = tmp_path / "leaderboard"
    taken.write_text("mine", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOURNEY_HOME", str(session.root / "home"))
        message = fails("compare", "--out", taken)
    assert f"--out {taken}: {taken} is a file" in message
    assert taken.read_text(encoding="utf-8") == "mine"


def test_compare_default_folder_is_under_home(session: Session) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOURNEY_HOME", str(session.root / "home"))
        lines = ok("compare")
    assert lines[-1] == f"-> {session.root / 'home' / 'reports' / 'leaderboard.csv'}"


def test_bad_experiment_exits_2_naming_the_file(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {**CHURN, "name": "overlap", "horizon_days": 45})
    message = fails("train", "--experiment", spec)
    assert str(spec) in message
    assert "cutoffs" in message and "the last training window" in message
    assert not (tmp_path / "home").exists()  # rejected before anything was created


@pytest.mark.parametrize(
    ("text", "says"),
    [("models: [\n", "not valid YAML"), ("horizon_days: 30\n", "cutoffs: Field required"),
     ("name: x\nbogus: 1\n", "bogus")],
    ids=["yaml", "missing-field", "unknown-key"],
)
def test_invalid_experiment_files(tmp_path: Path, text: str, says: str) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(text, encoding="utf-8")
    message = fails("train", "--experiment", spec)
    assert message.startswith(f"error: {spec}")
    assert says in message


def test_missing_experiment_file(tmp_path: Path) -> None:
    message = fails("train", "--experiment", tmp_path / "nope.yaml")
    assert "experiment spec not found" in message and "nope.yaml" in message


def test_missing_store(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, CHURN)
    result = run("train", "--experiment", spec, "--store", tmp_path / "none.duckdb",
                 "--out", tmp_path / "snaps")
    assert result.exit_code == 2, out(result)
    assert "event store not found" in result.stderr and "journey ingest" in result.stderr
    assert "Traceback" not in out(result)


def test_promote_unknown_target(tmp_path: Path) -> None:
    message = fails("promote", "--target", "churn", "--target", "ltv")
    assert "--target ['ltv']: not one of" in message


def test_train_needs_an_experiment() -> None:
    result = run("train")
    assert result.exit_code == 2
    assert "--experiment" in result.stderr


def test_unknown_model_param_exits_2_naming_the_file(session: Session, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {**CHURN, "name": "typo",
                                 "models": [{"family": "lightgbm",
                                             "params": {"learning_rat": 0.1}}]})
    result = run("train", "--experiment", spec, "--store", session.world.store,
                 "--out", session.world.snapshots)
    assert result.exit_code == 2, (result.exit_code, repr(result.exception))
    assert str(spec) in result.stderr and "learning_rat" in result.stderr
