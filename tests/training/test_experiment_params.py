"""Model params and search-space values are checked when the spec loads, by the libraries that
will use them (scikit-learn's parameter validation, LightGBM's config check), and named by
their key path: not a traceback after the data has loaded, or a failed MLflow run after the
first search trial."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.errors import ConfigError
from training.experiment import load_experiment, model_problems, param_problem
from training.search import sample

REPO = Path(__file__).resolve().parents[2]
BASE = {"horizon_days": 30,
        "cutoffs": {"train": ["2025-07-01"], "valid": "2025-09-01", "test": "2025-10-01"}}


def problems_of(tmp_path: Path, *models: dict[str, Any]) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**BASE, "models": list(models)}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "Traceback" not in message and "config_auto.cpp" not in message
    # Lines are test_experiment_lines.py's subject (this file's specs are yaml.safe_dump's).
    return re.sub(r"(^|; )line \d+: ", r"\1", message.removeprefix(f"{path}: "))


@pytest.mark.parametrize(
    ("params", "says"),
    [({"C": "high"}, "models[0].params.C: Input should be a valid number, got 'high'"),
     ({"C": 0}, "models[0].params.C: must be a float in the range (0.0, inf]. Got 0 instead."),
     ({"max_iter": -1}, "models[0].params.max_iter: must be an int in the range [0, inf)"),
     ({"max_rows": 0}, "models[0].params.max_rows: must be at least 1, got 0"),
     ({"C": True}, "models[0].params.C: Input should be a valid number, got True")],
    ids=["C-text", "C-zero", "max-iter", "max-rows", "C-flag"],
)
def test_baseline_params(tmp_path: Path, params: dict[str, Any], says: str) -> None:
    assert says in problems_of(tmp_path, {"family": "baseline", "params": params})


@pytest.mark.parametrize(
    ("params", "says"),
    [({"num_leaves": 15.5}, "models[0].params.num_leaves: Input should be a valid integer, "
                            "got 15.5"),
     ({"num_leaves": 1}, "models[0].params.num_leaves: must be > 1, got 1"),
     ({"learning_rate": -1}, "models[0].params.learning_rate: must be > 0.0, got -1"),
     ({"feature_fraction": 1.5}, "models[0].params.feature_fraction: must be <= 1.0, got 1.5"),
     ({"bagging_fraction": 0}, "models[0].params.bagging_fraction: must be > 0.0, got 0"),
     ({"max_bin": 1}, "models[0].params.max_bin: must be > 1, got 1"),
     ({"linear_tree": "yes"}, "models[0].params.linear_tree: Input should be a valid boolean, "
                              "got 'yes'"),
     ({"max_rounds": 0}, "models[0].params.max_rounds: must be at least 1, got 0"),
     ({"early_stopping_rounds": True}, "models[0].params.early_stopping_rounds: Input should "
                                       "be a valid integer, got True")],
    ids=["leaves-fraction", "leaves-one", "rate-negative", "feature-fraction", "bagging-zero",
         "max-bin", "linear-tree-text", "rounds-zero", "early-stopping-flag"],
)
def test_lightgbm_params(tmp_path: Path, params: dict[str, Any], says: str) -> None:
    assert says in problems_of(tmp_path, {"family": "lightgbm", "params": params})


def test_every_problem_at_once_with_its_model(tmp_path: Path) -> None:
    message = problems_of(tmp_path, {"family": "baseline", "params": {"C": -2}},
                          {"family": "lightgbm", "params": {"num_leaves": 0,
                                                             "learning_rate": 0.1}})
    assert message.startswith("models[0].params.C: must be a float")
    assert message.endswith("; models[1].params.num_leaves: must be > 1, got 0")


@pytest.mark.parametrize(
    ("space", "says"),
    [({"num_leaves": ["many", "few"]},
      "models[0].search.space.num_leaves[0]: Input should be a valid integer, got 'many'; "
      "models[0].search.space.num_leaves[1]: Input should be a valid integer, got 'few'"),
     ({"num_leaves": [15, 1]}, "models[0].search.space.num_leaves[1]: must be > 1, got 1"),
     ({"bagging_fraction": {"low": 0.5, "high": 1.5}},
      "models[0].search.space.bagging_fraction.high: must be <= 1.0, got 1.5"),
     ({"num_leaves": {"low": 15, "high": 127}},
      "models[0].search.space.num_leaves: num_leaves takes whole numbers: add integer: true"),
     ({"learning_rate": {"low": 0.02, "high": 0.2, "integer": True}},
      "models[0].search.space.learning_rate.low: must be > 0.0, got 0")],
    ids=["list-of-text", "list-value", "range-end", "range-not-integer", "rounded-to-zero"],
)
def test_search_space_values(tmp_path: Path, space: dict[str, Any], says: str) -> None:
    model = {"family": "lightgbm", "search": {"budget_seconds": 5, "space": space}}
    assert says in problems_of(tmp_path, model)


def test_shipped_experiments_pass_and_quickly() -> None:
    """Checking costs milliseconds, not a data load: a LightGBM config check on a 2-row
    Dataset per value, scikit-learn's validation without a fit."""
    for name in ("default", "search", "survival"):
        exp = load_experiment(REPO / "experiments" / f"{name}.yaml")
        started = time.perf_counter()
        assert model_problems(exp.models) == []
        assert time.perf_counter() - started < 0.5, name


def test_what_a_search_draws_from_a_checked_space_is_valid(tmp_path: Path) -> None:
    """The ends of a range are what the check sees; every draw lies between them."""
    import numpy as np

    exp = load_experiment(REPO / "experiments" / "search.yaml")
    [tuned] = [m for m in exp.models if m.search is not None]
    assert tuned.search is not None
    rng = np.random.default_rng(0)
    for _ in range(20):
        for name, value in sample(tuned.search.space, rng).items():
            assert param_problem("lightgbm", name, value) is None, (name, value)


def test_linear_trees_are_refused_with_why(tmp_path: Path) -> None:
    says = problems_of(tmp_path, {"family": "lightgbm", "params": {"linear_tree": True}})
    assert says.startswith("models[0].params.linear_tree: linear_tree is not supported")
    assert "read each leaf as a constant" in says
