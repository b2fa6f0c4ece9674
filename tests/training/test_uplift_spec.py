"""Uplift experiment specs: at least one outcome, none twice, and learner params checked by
LightGBM when the spec loads (not a traceback once the decisions have loaded)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from features.errors import ConfigError
from tests.training.world import SMALL_UPLIFT, write_spec
from training.uplift_spec import OUTCOMES, load_uplift_experiment

REPO = Path(__file__).resolve().parents[2]


def error(tmp_path: Path, **changes: Any) -> str:
    path = write_spec(tmp_path, {**SMALL_UPLIFT, **changes})
    with pytest.raises(ConfigError) as info:
        load_uplift_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "Traceback" not in message
    # Every problem has its line (yaml.safe_dump's layout here); the wording is the subject.
    assert re.match(r"line \d+: ", message.removeprefix(f"{path}: "))
    return re.sub(r"(^|; )line \d+: ", r"\1", message.removeprefix(f"{path}: "))


def test_the_shipped_spec_loads() -> None:
    exp = load_uplift_experiment(REPO / "experiments" / "uplift.yaml")
    assert exp.outcomes == list(OUTCOMES)


def test_no_outcome_is_refused(tmp_path: Path) -> None:
    """It used to load every decision, then fit nothing."""
    assert error(tmp_path, outcomes=[]).startswith(
        "outcomes: List should have at least 1 item")


def test_left_out_outcomes_mean_every_outcome(tmp_path: Path) -> None:
    spec = {k: v for k, v in SMALL_UPLIFT.items() if k != "outcomes"}
    assert load_uplift_experiment(write_spec(tmp_path, spec)).outcomes == list(OUTCOMES)


def test_an_outcome_listed_twice(tmp_path: Path) -> None:
    assert error(tmp_path, outcomes=["convert", "convert"]) == "outcomes: 'convert' is listed twice"


@pytest.mark.parametrize(
    ("params", "says"),
    [({"learning_rate": -1}, "learners[1].params.learning_rate: must be > 0.0, got -1"),
     ({"num_leaves": 15.5}, "learners[1].params.num_leaves: Input should be a valid integer, "
                            "got 15.5"),
     ({"min_data_in_leaf": -3}, "learners[1].params.min_data_in_leaf: must be >= 0, got -3"),
     ({"lambda_l2": "lots"}, "learners[1].params.lambda_l2: Input should be a valid number, "
                             "got 'lots'"),
     ({"max_rounds": 0}, "learners[1].params.max_rounds: must be at least 1, got 0")],
    ids=["rate", "leaves", "min-data", "lambda-text", "rounds"],
)
def test_learner_params_are_checked_on_load(tmp_path: Path, params: dict[str, Any],
                                            says: str) -> None:
    learners = [{"kind": "t"}, {"kind": "x", "params": params}]
    assert error(tmp_path, learners=learners) == says


def test_counts_are_whole_numbers_not_flags(tmp_path: Path) -> None:
    assert error(tmp_path, seed=True) == "seed: Input should be a valid integer, got True"
    assert error(tmp_path, control_rate=True) == "control_rate: must be a number, got true"
