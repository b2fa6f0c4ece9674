"""Experiment specs: the YAML files in experiments/ that say what a training run does.

```yaml
name: baseline-vs-lgbm-30d
horizon_days: 30
cutoffs: {train: [2025-07-01, 2025-08-01], valid: 2025-09-01, test: 2025-10-01}
targets: [next_stage, churn, conversion]
models:
  - {family: baseline}
  - {family: lightgbm, params: {learning_rate: 0.05}, search: {budget_seconds: 60}}
```

Validation is strict about time: every training cutoff's label window (T, T+H] ends by the
validation cutoff, and the validation window ends by the test cutoff, so no label a model
learns from, or is tuned on, overlaps the period it is judged on.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.errors import ConfigError
from features.layout import FAMILIES
from features.yaml_config import problem
from models.targets import ALL_TARGETS, CHURN_LABELS, SURVIVAL, TARGETS

M = TypeVar("M", bound=BaseModel)
DEFAULT_FEATURES = {"baseline": ["rfm"], "lightgbm": list(FAMILIES)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError("needs low < high (and low > 0 on a log scale)")
        return self


class Search(_Strict):
    """Random search over ``space`` until ``budget_seconds`` or ``max_trials`` runs out."""

    budget_seconds: float = Field(gt=0)
    max_trials: int = Field(default=30, ge=1)
    space: dict[str, Range | list[Any]] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "learning_rate": Range(low=0.02, high=0.2, log=True),
            "num_leaves": Range(low=15, high=127, integer=True),
            "min_data_in_leaf": Range(low=20, high=400, integer=True, log=True),
            "feature_fraction": Range(low=0.5, high=1.0),
            "lambda_l2": Range(low=0.01, high=10, log=True),
        }
    )


def tunable(family: str) -> set[str]:
    """Constructor params an experiment may set (the rest come from the experiment itself)."""
    from models.estimators import LogisticBaseline
    from models.lgbm import LightGBMClassifier

    cls = LogisticBaseline if family == "baseline" else LightGBMClassifier
    return set(cls().get_params()) - {"classes", "columns", "calibration", "seed"}


class ModelSpec(_Strict):
    family: Literal["baseline", "lightgbm"]
    params: dict[str, Any] = Field(default_factory=dict)
    features: list[str] | None = None  # feature families; default per family
    search: Search | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        unknown = set(self.features or []) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown feature families {sorted(unknown)}; known: {FAMILIES}")
        if self.search is not None and self.family != "lightgbm":
            raise ValueError("search is only available for the lightgbm family")
        allowed = tunable(self.family)
        unknown_params = sorted(set(self.params) - allowed)
        if unknown_params:
            raise ValueError(f"unknown {self.family} params {unknown_params}; "
                             f"allowed: {sorted(allowed)}")
        if self.search is not None and set(self.search.space) - allowed:
            raise ValueError(f"search space has unknown params "
                             f"{sorted(set(self.search.space) - allowed)}")
        return self

    @property
    def feature_families(self) -> list[str]:
        return self.features or DEFAULT_FEATURES[self.family]


class Cutoffs(_Strict):
    train: list[date] = Field(min_length=1)
    valid: date
    test: date


def check_time_split(cutoffs: Cutoffs, horizon_days: int, where: str = "cutoffs") -> None:
    """Every training window ends by the validation cutoff, which ends by the test cutoff."""
    h = timedelta(days=horizon_days)
    train = sorted(cutoffs.train)
    if len(set(train)) != len(train):
        raise ValueError(f"{where}.train has duplicates")
    if train[-1] + h > cutoffs.valid:
        raise ValueError(
            f"{where}: the last training window ({train[-1]} + {horizon_days}d) must "
            f"end by the validation cutoff {cutoffs.valid}"
        )
    if cutoffs.valid + h > cutoffs.test:
        raise ValueError(
            f"{where}: the validation window ({cutoffs.valid} + {horizon_days}d) "
            f"must end by the test cutoff {cutoffs.test}"
        )


class Survival(_Strict):
    """The time_to_churn target's own horizon and cutoffs: survival to 90 days needs a longer
    window than the classifiers', so its cutoffs lie further apart."""

    horizon_days: int = Field(ge=90)
    interval_days: int = Field(default=7, ge=1)
    cutoffs: Cutoffs

    @model_validator(mode="after")
    def _honest_time_split(self) -> Survival:
        check_time_split(self.cutoffs, self.horizon_days, "survival.cutoffs")
        return self


class Experiment(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    horizon_days: int = Field(ge=1)
    churn_gap_days: int = Field(default=30, ge=1)
    churn_label: Literal[CHURN_LABELS] = "churned_inactive"  # type: ignore[valid-type]
    targets: list[Literal[ALL_TARGETS]] = Field(default_factory=lambda: list(TARGETS))  # type: ignore[valid-type]
    cutoffs: Cutoffs
    survival: Survival | None = None  # required by the time_to_churn target
    models: list[ModelSpec] = Field(min_length=1)
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = "auto"
    sample_customers: int | None = Field(default=None, ge=100)  # per training cutoff
    seed: int = 42

    @model_validator(mode="after")
    def _honest_time_split(self) -> Experiment:
        check_time_split(self.cutoffs, self.horizon_days)
        if SURVIVAL in self.targets and self.survival is None:
            raise ValueError(f"the {SURVIVAL} target needs a survival section "
                             "(horizon_days, interval_days, cutoffs)")
        return self

    def for_survival(self) -> Experiment:
        """The same experiment on the survival section's horizon and cutoffs, without the
        section itself (no checks to redo: the section checked its own split)."""
        if self.survival is None:
            raise ValueError(f"experiment {self.name} has no survival section")
        return self.model_copy(update={"horizon_days": self.survival.horizon_days,
                                       "cutoffs": self.survival.cutoffs,
                                       "targets": [SURVIVAL], "survival": None})

    def flat_params(self) -> dict[str, str]:
        """The spec as MLflow params (dotted keys, values as text)."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                out[prefix] = str(value)

        walk("", self.model_dump(mode="json", exclude={"models", "description"}))
        return out


def load_experiment(path: str | Path) -> Experiment:
    return load_model_file(path, Experiment, "experiment spec")


def load_model_file(path: str | Path, cls: type[M], what: str) -> M:
    """A YAML file validated into ``cls``; every problem named with its key path."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    raw.setdefault("name", p.stem)
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(problem(e) for e in exc.errors())
        raise ConfigError(f"{p}: {problems}") from exc
