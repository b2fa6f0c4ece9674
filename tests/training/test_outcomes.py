"""A window with a single outcome stops training before anything is fitted or registered, and
the error names every target and window concerned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.spec import load_spec
from training.dataset import Dataset
from training.experiment import load_experiment
from training.outcomes import TrainingDataError, check_outcomes
from training.train import Context, train_experiment

DEFAULT = Path(__file__).resolve().parents[2] / "experiments" / "default.yaml"
STAGES = load_spec().stages


def labels(converted: list[bool], churned: list[bool], nxt: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(converted))],
                         "converted": converted, "churned_inactive": churned,
                         "next_stage": nxt})


MIXED = labels([True, False, False], [False, True, False], ["purchase", "inactive", "decision"])


def dataset(train: pd.DataFrame = MIXED, valid: pd.DataFrame = MIXED,
            test: pd.DataFrame = MIXED) -> Dataset:
    return Dataset(train, valid, test, "hash", ())


def test_windows_with_both_outcomes_pass() -> None:
    check_outcomes(load_experiment(DEFAULT), dataset(), STAGES)


def test_every_single_outcome_window_is_named() -> None:
    no_buyers = labels([False] * 3, [False, True, False], ["purchase", "inactive", "decision"])
    one_stage = labels([True, False, False], [False, True, False], ["inactive"] * 3)
    with pytest.raises(TrainingDataError) as info:
        check_outcomes(load_experiment(DEFAULT), dataset(valid=no_buyers, train=one_stage),
                       STAGES)
    message = str(info.value)
    assert message.startswith("experiment default: cannot train")
    assert ("next_stage: every one of the 3 rows of the training windows (2025-07-01, "
            "2025-08-01; +30d) has next stage 'inactive'") in message
    assert ("conversion: every one of the 3 rows of the validation window (2025-09-01, +30d] "
            "has converted = False") in message
    assert "churn" not in message.split("cannot train")[1].split("Move")[0]
    assert "nothing was trained or registered" in message


def test_a_binary_targets_holdout_needs_both_outcomes_but_next_stage_does_not() -> None:
    all_churned = labels([True, False, False], [True] * 3, ["inactive"] * 3)
    with pytest.raises(TrainingDataError, match=r"churn: every one of the 3 rows of the test "
                                                r"window \(2025-10-01, \+30d\] has "
                                                r"churned_inactive = True") as info:
        check_outcomes(load_experiment(DEFAULT), dataset(test=all_churned), STAGES)
    assert "next_stage" not in str(info.value)


def test_unlabelled_rows_do_not_count() -> None:
    """churned_no_purchase is empty for customers who never bought: only labelled rows count."""
    exp = load_experiment(DEFAULT).model_copy(update={"churn_label": "churned_no_purchase",
                                                      "targets": ["churn"]})
    frame = MIXED.assign(churned_no_purchase=pd.array([True, None, None], dtype="boolean"))
    with pytest.raises(TrainingDataError, match="every one of the 1 rows of the training"):
        check_outcomes(exp, dataset(train=frame, valid=frame, test=frame), STAGES)
    empty = MIXED.assign(churned_no_purchase=pd.array([None, None, None], dtype="boolean"))
    with pytest.raises(TrainingDataError, match=r"the training windows .* has no labelled rows"):
        check_outcomes(exp, dataset(train=empty, valid=frame, test=frame), STAGES)


def test_training_stops_before_any_run_or_registration() -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"tracking used ({name}) before the outcomes were checked")

    no_buyers = labels([False] * 3, [False, True, False], ["purchase", "inactive", "decision"])
    ctx = Context(Untouchable(), load_spec())  # type: ignore[arg-type]
    with pytest.raises(TrainingDataError):
        train_experiment(load_experiment(DEFAULT), dataset(valid=no_buyers), ctx)
