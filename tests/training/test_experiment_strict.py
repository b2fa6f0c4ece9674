"""Experiment specs are read strictly: a key written twice, a target listed twice, true for a
count, "yes" for true, an empty feature list are mistakes the loader names, not values it
quietly turns into something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from training.experiment import DEFAULT_FEATURES, load_experiment
from training.retrain import load_retrain

HEAD = """\
horizon_days: 30
cutoffs: {train: [2025-07-01, 2025-08-01], valid: 2025-09-01, test: 2025-10-01}
"""


def spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_key_written_twice_is_named_with_its_line(tmp_path: Path) -> None:
    path = spec(tmp_path, HEAD + "horizon_days: 14\nmodels: [{family: baseline}]\n")
    assert error(path) == "line 3: horizon_days: written twice (first at line 1)"


def test_a_key_written_twice_inside_a_model(tmp_path: Path) -> None:
    path = spec(tmp_path, HEAD + "models:\n  - family: lightgbm\n    params:\n"
                "      num_leaves: 15\n      num_leaves: 63\n")
    assert error(path) == ("line 7: models[0].params.num_leaves: written twice (first at "
                           "line 6)")


def test_a_key_written_twice_in_a_retraining_spec(tmp_path: Path) -> None:
    """The retraining spec is read by the same loader."""
    path = tmp_path / "retrain.yaml"
    path.write_text("experiment: exp.yaml\nevery_days: 14\nevery_days: 7\n", encoding="utf-8")
    with pytest.raises(ConfigError,
                       match=r"line 3: every_days: written twice \(first at line 2\)"):
        load_retrain(path)


def test_a_target_listed_twice(tmp_path: Path) -> None:
    path = spec(tmp_path, HEAD + "targets: [churn, churn]\nmodels: [{family: baseline}]\n")
    assert error(path) == "line 3: targets: 'churn' is listed twice"


@pytest.mark.parametrize(
    ("line", "says"),
    [("seed: true", "seed: Input should be a valid integer, got True"),
     ("seed: 4.5", "seed: Input should be a valid integer, got 4.5"),
     ("churn_gap_days: true", "churn_gap_days: Input should be a valid integer, got True"),
     ("sample_customers: '500'", "sample_customers: Input should be a valid integer, got '500'")],
    ids=["seed-true", "seed-fraction", "gap-true", "sample-text"],
)
def test_counts_are_whole_numbers_not_flags(tmp_path: Path, line: str, says: str) -> None:
    path = spec(tmp_path, HEAD + f"{line}\nmodels: [{{family: baseline}}]\n")
    assert error(path) == f"line 3: {says}"


def test_a_search_takes_numbers_and_flags_as_written(tmp_path: Path) -> None:
    search = ("{budget_seconds: true, max_trials: 2.0, space: {num_leaves: {low: 15, "
              "high: 63, integer: yes}}}")
    message = error(spec(tmp_path, HEAD + f"models: [{{family: lightgbm, search: {search}}}]\n"))
    assert "models[0].search.budget_seconds: must be a number, got true" in message
    assert "models[0].search.max_trials: Input should be a valid integer, got 2.0" in message
    # YAML 1.2: `yes` is text, not true
    assert ("models[0].search.space.num_leaves.integer: Input should be a valid boolean, "
            "got 'yes'") in message


def test_an_empty_feature_list_is_not_the_default(tmp_path: Path) -> None:
    path = spec(tmp_path, HEAD + "models: [{family: lightgbm, features: []}]\n")
    assert error(path).startswith("line 3: models[0].features: List should have at least "
                                  "1 item")
    left_out = load_experiment(spec(tmp_path, HEAD + "models: [{family: lightgbm}]\n"))
    assert left_out.models[0].feature_families == DEFAULT_FEATURES["lightgbm"]


def test_a_feature_family_listed_twice(tmp_path: Path) -> None:
    path = spec(tmp_path, HEAD + "models: [{family: lightgbm, features: [rfm, rfm]}]\n")
    assert error(path) == "line 3: models[0].features: 'rfm' is listed twice"


def test_an_empty_search_choice_list(tmp_path: Path) -> None:
    path = spec(tmp_path, HEAD + "models: [{family: lightgbm, search: {budget_seconds: 5, "
                "space: {num_leaves: []}}}]\n")
    assert error(path).startswith("line 3: models[0].search.space.num_leaves: List should "
                                  "have at least 1 item")


def test_yaml_1_2_numbers_are_numbers(tmp_path: Path) -> None:
    """`1e-3` is text to YAML 1.1 (no dot): a learning rate written so must still load."""
    exp = load_experiment(spec(tmp_path, HEAD + "models: [{family: lightgbm, params: "
                               "{learning_rate: 1e-3}}]\n"))
    assert exp.models[0].params == {"learning_rate": 0.001}


def test_a_date_off_the_calendar_is_named_with_its_line(tmp_path: Path) -> None:
    """2025-13-01 raised a ValueError from inside the YAML loader: a traceback, no line."""
    path = spec(tmp_path, "horizon_days: 30\ncutoffs: {train: [2025-07-01], valid: 2025-13-01, "
                          "test: 2025-10-01}\n")
    message = error(path)
    assert message.startswith("line 2, column 39: not valid YAML: '2025-13-01' is not a valid "
                              "date or time (month must be in 1..12)")
