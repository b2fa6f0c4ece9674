"""A bad experiment spec is named in one pass: every problem, the schema's and the model
params', each with the file, its line and key path, in the file's order. Model params are
checked even when another field is wrong (a fixed horizon must not reveal a second round)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features.errors import ConfigError
from training.experiment import load_experiment
from training.retrain import load_retrain

CUTOFFS = "cutoffs: {train: [2025-07-01], valid: 2025-08-01, test: 2025-10-01}\n"


def error(tmp_path: Path, text: str) -> list[str]:
    """The problems of the spec ``text``, one string each (split before each "line N: "),
    without the file's name."""
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return re.split(r"; (?=line \d+: )", message.removeprefix(f"{path}: "))


def test_a_bad_field_and_a_bad_param_are_named_together_with_their_lines(
        tmp_path: Path) -> None:
    """The data scientist's file: only horizon_days was named, num_leaves after fixing it."""
    text = ("name: x\n"
            'horizon_days: "30"\n'
            + CUTOFFS +
            "models:\n"
            "  - family: lightgbm\n"
            "    params:\n"
            "      num_leaves: 15.5\n")
    assert error(tmp_path, text) == [
        "line 2: horizon_days: Input should be a valid integer, got '30'",
        "line 7: models[0].params.num_leaves: Input should be a valid integer, got 15.5"]


def test_a_misspelt_key_has_its_line(tmp_path: Path) -> None:
    text = "horizon_days: 30\n" + CUTOFFS + "\nmodles:\n  - family: baseline\n"
    # The key the file lacks has no line of its own; the misspelling has one.
    assert error(tmp_path, text) == ["models: Field required",
                                     "line 4: modles: unknown key; did you mean models?"]


def test_problems_come_in_the_file_s_order(tmp_path: Path) -> None:
    """A param problem early in the file comes before a schema problem later in it."""
    text = ("models:\n"
            "  - {family: baseline, params: {C: 0}}\n"
            "  - {family: lgbm}\n"
            "  - family: lightgbm\n"
            "    params: {num_leaves: 1}\n"
            "seed: true\n"
            "horizon_days: 30\n" + CUTOFFS)
    assert error(tmp_path, text) == [
        "line 2: models[0].params.C: must be a float in the range (0.0, inf]. Got 0 instead.",
        # A model whose own shape is wrong is named by the schema, not checked further.
        "line 3: models[1].family: Input should be 'baseline' or 'lightgbm'",
        "line 5: models[2].params.num_leaves: must be > 1, got 1",
        "line 6: seed: Input should be a valid integer, got True"]


def test_a_broken_model_is_named_once(tmp_path: Path) -> None:
    """An unknown param makes the entry fail the schema: its other params are not checked
    on the side, which would name the entry twice."""
    text = ("horizon_days: 0\n" + CUTOFFS +
            "models:\n  - family: lightgbm\n    params: {bogus: 1, num_leaves: 1}\n")
    found = error(tmp_path, text)
    assert found[0] == "line 1: horizon_days: Input should be greater than or equal to 1"
    assert len(found) == 2 and found[1].startswith(
        "line 4: models[0]: unknown lightgbm params ['bogus']")


def test_the_time_split_is_named_at_its_key(tmp_path: Path) -> None:
    text = "models: [{family: baseline}]\nhorizon_days: 45\n" + CUTOFFS
    assert error(tmp_path, text) == [
        "line 3: cutoffs.valid: the last training window (2025-07-01 + 45d) must end by the "
        "validation cutoff 2025-08-01"]


BLOCK = ("models: [{{family: baseline}}]\nhorizon_days: 30\n"
         "cutoffs:\n  train: [2025-07-01, {last}]\n  valid: 2025-09-01\n  test: {test}\n")


@pytest.mark.parametrize(("last", "test", "said"), [
    ("2025-08-15", "2025-10-01", "line 5: cutoffs.valid: the last training window (2025-08-15 "
                                 "+ 30d) must end by the validation cutoff 2025-09-01"),
    ("2025-08-01", "2025-09-15", "line 6: cutoffs.test: the validation window (2025-09-01 + "
                                 "30d) must end by the test cutoff 2025-09-15"),
    ("2025-07-01", "2025-10-01", "line 4: cutoffs.train[1]: 2025-07-01 is listed twice"),
])
def test_a_time_split_problem_is_at_the_line_of_the_key_that_is_wrong(
        tmp_path: Path, last: str, test: str, said: str) -> None:
    """Named at the `cutoffs:` line, a block of three keys left the reader to find which."""
    assert error(tmp_path, BLOCK.format(last=last, test=test)) == [said]


def test_the_survival_split_is_named_at_its_own_key(tmp_path: Path) -> None:
    text = (BLOCK.format(last="2025-08-01", test="2025-10-01")
            + "targets: [churn, time_to_churn]\n"
            "survival:\n  horizon_days: 91\n  cutoffs:\n"
            "    train: [2025-03-01]\n    valid: 2025-05-01\n    test: 2025-09-01\n")
    assert error(tmp_path, text) == [
        "line 12: survival.cutoffs.valid: the last training window (2025-03-01 + 91d) must "
        "end by the validation cutoff 2025-05-01"]


def test_the_retraining_spec_names_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("experiment: x.yaml\nevery_days: 0\nmargin: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_retrain(path)
    said = re.split(r"; (?=line \d+: )", str(info.value).removeprefix(f"{path}: "))
    assert [s.split(": ")[:2] for s in said] == [["line 2", "every_days"],
                                                ["line 3", "margin"]]


def test_a_misspelt_param_gets_the_closest_name(tmp_path: Path) -> None:
    text = ("horizon_days: 30\n" + CUTOFFS +
            "models:\n  - family: lightgbm\n    params: {num_leafs: 8}\n")
    [found] = error(tmp_path, text)
    assert found.startswith("line 4: models[0]: unknown lightgbm params ['num_leafs']; did "
                            "you mean 'num_leaves'?; allowed: [")
