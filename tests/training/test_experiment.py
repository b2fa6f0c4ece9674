"""Experiment specs: the shipped default loads, and every invalid spec raises ConfigError naming
the file and the offending field (never a pydantic traceback)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from features.errors import ConfigError
from features.layout import FAMILIES
from models.targets import TARGETS
from training.experiment import DEFAULT_FEATURES, Experiment, load_experiment

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "experiments" / "default.yaml"

VALID = {
    "horizon_days": 30,
    "cutoffs": {"train": ["2025-07-01", "2025-08-01"], "valid": "2025-09-01",
                "test": "2025-10-01"},
    "models": [{"family": "baseline"}, {"family": "lightgbm", "params": {"max_rounds": 10}}],
}


def write(tmp_path: Path, spec: object, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec) if not isinstance(spec, str) else spec,
                    encoding="utf-8")
    return path


def with_(**changes: object) -> dict[str, object]:
    return {**VALID, **changes}


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert str(path) in message  # every message names the file
    assert "Traceback" not in message
    assert "Value error" not in message  # the validator's own words, not pydantic's prefix
    return message


def test_default_experiment_loads() -> None:
    exp = load_experiment(DEFAULT)
    assert exp.name == "default"  # the file's stem when the spec has no name
    assert exp.horizon_days == 30
    assert exp.cutoffs.train == [date(2025, 7, 1), date(2025, 8, 1)]
    assert exp.cutoffs.valid == date(2025, 9, 1)
    assert exp.cutoffs.test == date(2025, 10, 1)
    assert exp.targets == list(TARGETS)
    assert [m.family for m in exp.models] == ["baseline", "lightgbm"]
    assert exp.models[0].feature_families == ["rfm"]
    assert exp.models[1].feature_families == list(FAMILIES)  # lightgbm default: everything
    assert exp.calibration == "auto"
    assert exp.seed == 42


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, VALID, "my-exp.yaml"))
    assert exp.name == "my-exp"
    assert exp.targets == list(TARGETS)
    assert exp.churn_label == "churned_inactive"
    assert exp.churn_gap_days == 30
    assert exp.sample_customers is None
    assert exp.models[0].feature_families == DEFAULT_FEATURES["baseline"]
    assert exp.models[1].params == {"max_rounds": 10}


def test_explicit_name_wins_over_the_file_name(tmp_path: Path) -> None:
    assert load_experiment(write(tmp_path, with_(name="lgbm-30d"))).name == "lgbm-30d"


def test_flat_params_for_mlflow() -> None:
    params = load_experiment(DEFAULT).flat_params()
    assert params["horizon_days"] == "30"
    assert params["cutoffs.valid"] == "2025-09-01"
    assert params["cutoffs.test"] == "2025-10-01"
    assert "2025-07-01" in params["cutoffs.train"]
    assert params["seed"] == "42"
    assert all(isinstance(v, str) for v in params.values())
    assert not any(k.startswith(("models", "description")) for k in params)


def test_windows_may_touch_at_the_boundary(tmp_path: Path) -> None:
    """2025-08-01 + 31 days = 2025-09-01: the window ends exactly at the validation cutoff."""
    exp = load_experiment(write(tmp_path, with_(
        horizon_days=31,
        cutoffs={"train": ["2025-08-01"], "valid": "2025-09-01", "test": "2025-10-02"},
    )))
    assert exp.horizon_days == 31


@pytest.mark.parametrize(
    ("cutoffs", "horizon", "says"),
    [
        # last training window (2025-08-15 + 30d) runs past the validation cutoff
        ({"train": ["2025-07-01", "2025-08-15"], "valid": "2025-09-01", "test": "2025-10-01"},
         30, "the last training window"),
        # training windows are checked on the latest cutoff whatever the order in the file
        ({"train": ["2025-08-15", "2025-07-01"], "valid": "2025-09-01", "test": "2025-10-01"},
         30, "the last training window"),
        # a longer horizon makes the default cutoffs overlap
        ({"train": ["2025-07-01", "2025-08-01"], "valid": "2025-09-01", "test": "2025-10-01"},
         45, "the last training window"),
        # validation window (2025-09-01 + 30d) runs past the test cutoff
        ({"train": ["2025-07-01", "2025-08-01"], "valid": "2025-09-01", "test": "2025-09-15"},
         30, "the validation window"),
        # test before validation
        ({"train": ["2025-06-01"], "valid": "2025-09-01", "test": "2025-08-01"},
         30, "the validation window"),
    ],
    ids=["train-overlaps-valid", "unsorted-train", "long-horizon", "valid-overlaps-test",
         "test-before-valid"],
)
def test_overlapping_windows_raise(
    tmp_path: Path, cutoffs: dict[str, object], horizon: int, says: str
) -> None:
    message = config_error(write(tmp_path, with_(cutoffs=cutoffs, horizon_days=horizon)))
    assert "cutoffs" in message
    assert says in message


def test_duplicate_training_cutoffs_raise(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, with_(
        cutoffs={"train": ["2025-07-01", "2025-07-01"], "valid": "2025-09-01",
                 "test": "2025-10-01"})))
    assert "cutoffs.train[1]: 2025-07-01 is listed twice" in message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (with_(bogus=1), "bogus"),
        (with_(cutoffs={**VALID["cutoffs"], "holdout": "2025-11-01"}),  # type: ignore[dict-item]
         "cutoffs.holdout"),
        (with_(models=[{"family": "lightgbm", "paramz": {}}]), "models[0].paramz"),
    ],
    ids=["top-level", "in-cutoffs", "in-a-model"],
)
def test_unknown_key_is_named(tmp_path: Path, spec: dict[str, object], field: str) -> None:
    message = config_error(write(tmp_path, spec))
    assert f"{field}: unknown key" in message
    assert "Extra inputs" not in message  # pydantic's words, not the user's


@pytest.mark.parametrize(
    ("spec", "says"),
    [(with_(horizon=30), "horizon: unknown key; did you mean horizon_days?"),
     (with_(models=[{"family": "lightgbm", "param": {}}]),
      "models[0].param: unknown key; did you mean params?"),
     (with_(models=[{"family": "lightgbm", "search": {"budget_seconds": 5, "max_trial": 3}}]),
      "models[0].search.max_trial: unknown key; did you mean max_trials?"),
     (with_(cutoffs={**VALID["cutoffs"], "xyz": "2025-11-01"}),  # type: ignore[dict-item]
      "cutoffs.xyz: unknown key; allowed: test, train, valid")],
    ids=["top-level", "in-a-model", "in-a-search", "nothing-close"],
)
def test_unknown_key_suggests_the_closest(tmp_path: Path, spec: dict[str, object],
                                         says: str) -> None:
    assert says in config_error(write(tmp_path, spec))


def test_a_union_s_internals_stay_out_of_the_message(tmp_path: Path) -> None:
    """The audit's message: ``models.0.search.space.learning_rate.function-after[_ordered(),
    Range]: needs low < high ...; learning_rate.list[any]: Input should be a valid list``."""
    bad = {"budget_seconds": 5, "space": {"learning_rate": {"low": 0.2, "high": 0.1}}}
    message = config_error(write(tmp_path, with_(models=[{"family": "lightgbm",
                                                          "search": bad}])))
    assert message.endswith(": models[0].search.space.learning_rate: needs low < high (and "
                            "low > 0 on a log scale)")
    wrong = {"budget_seconds": 5, "space": {"learning_rate": 0.1}}
    message = config_error(write(tmp_path, with_(models=[{"family": "lightgbm",
                                                          "search": wrong}])))
    assert message.endswith(": models[0].search.space.learning_rate: should be a mapping or a "
                            "list, got 0.1")


def test_unknown_feature_family(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, with_(
        models=[{"family": "lightgbm", "features": ["rfm", "astrology"]}])))
    assert "models[0]" in message
    assert "astrology" in message
    assert "rfm" in message.split("known:")[1]  # the known families are listed


def test_unknown_model_family(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, with_(models=[{"family": "xgboost"}])))
    assert "models[0].family" in message


def test_search_on_baseline_rejected(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, with_(
        models=[{"family": "baseline", "search": {"budget_seconds": 10}}])))
    assert "models[0]" in message
    assert "search is only available for the lightgbm family" in message


def test_search_on_lightgbm_accepted_with_default_space(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, with_(
        models=[{"family": "lightgbm", "search": {"budget_seconds": 5, "max_trials": 3,
                                                    "space": {"num_leaves": [15, 31]}}}])))
    search = exp.models[0].search
    assert search is not None and search.max_trials == 3
    assert search.space == {"num_leaves": [15, 31]}


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({"budget_seconds": 0}, "budget_seconds"),
        ({"budget_seconds": 5, "space": {"learning_rate": {"low": 0.2, "high": 0.1}}},
         "learning_rate"),
        ({"budget_seconds": 5, "space": {"lambda_l2": {"low": 0, "high": 1, "log": True}}},
         "lambda_l2"),
    ],
    ids=["zero-budget", "low-above-high", "log-from-zero"],
)
def test_bad_search_space(tmp_path: Path, search: dict[str, object], field: str) -> None:
    message = config_error(write(tmp_path, with_(models=[{"family": "lightgbm",
                                                          "search": search}])))
    assert field in message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"targets": ["next_stage", "lifetime_value"]}, "targets[1]"),
        ({"churn_label": "churned_forever"}, "churn_label"),
        ({"calibration": "platt"}, "calibration"),
        ({"models": []}, "models"),
        ({"sample_customers": 10}, "sample_customers"),
        ({"name": "has spaces"}, "name"),
        ({"cutoffs": {"train": [], "valid": "2025-09-01", "test": "2025-10-01"}},
         "cutoffs.train"),
        ({"cutoffs": {"train": ["2025-07-01"], "valid": "next month", "test": "2025-10-01"}},
         "cutoffs.valid"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, changes: dict[str, object], field: str) -> None:
    assert field in config_error(write(tmp_path, with_(**changes)))


def test_missing_required_field(tmp_path: Path) -> None:
    spec = {k: v for k, v in VALID.items() if k != "cutoffs"}
    message = config_error(write(tmp_path, spec))
    assert "cutoffs" in message and "Field required" in message


def test_bad_yaml(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "horizon_days: [30\nmodels: {"))
    assert "not valid YAML" in message


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just text\n"],
                         ids=["empty", "list", "scalar"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    assert "expected a mapping" in config_error(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match="experiment spec not found") as info:
        load_experiment(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path)  # a directory is not a spec


def test_experiment_is_frozen() -> None:
    exp = load_experiment(DEFAULT)
    with pytest.raises(Exception, match="frozen"):
        exp.horizon_days = 7  # type: ignore[misc]  # mypy knows it is frozen; this checks run time
    assert isinstance(exp, Experiment)
