"""Uplift experiment specs (YAML in experiments/): which decision days train, validate and test
the uplift learners, the outcome horizon, and which learners to compare.

```yaml
horizon_days: 30
control_rate: 0.1            # share of uncontacted customer-days kept as controls
windows:                     # decision days [start, end)
  train: {start: 2025-03-01, end: 2025-07-01}
  valid: {start: 2025-07-31, end: 2025-08-31}
  test: {start: 2025-09-30, end: 2025-10-31}
outcomes: [convert, churn]
learners: [{kind: t}, {kind: x, params: {num_leaves: 15}}]
```

Time is strict as in ``training.experiment``: every outcome a learner fits on is observed
before the validation window starts, and the validation outcomes before the test window.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from training.experiment import Count, Number, load_model_file, param_problem, unique

Outcome = Literal["convert", "churn"]
OUTCOMES: tuple[Outcome, ...] = ("convert", "churn")
# Outcome -> the decision frame's label column (definitions of features.labels).
LABEL_OF = {"convert": "converted", "churn": "churned_inactive"}
LEARNER_PARAMS = frozenset({"learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2",
                            "max_rounds", "early_stopping_rounds"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class Windows(_Strict):
    train: Window
    valid: Window
    test: Window


class LearnerSpec(_Strict):
    kind: Literal["t", "x"]
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> LearnerSpec:
        unknown = sorted(set(self.params) - LEARNER_PARAMS)
        if unknown:
            raise ValueError(f"unknown learner params {unknown}; allowed: {sorted(LEARNER_PARAMS)}")
        return self


class UpliftExperiment(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    horizon_days: Count = Field(ge=1)
    control_rate: Number = Field(default=0.1, gt=0, le=1)
    windows: Windows
    # Left out: every outcome. An empty list would load every decision and fit nothing.
    outcomes: list[Outcome] = Field(default_factory=lambda: list(OUTCOMES), min_length=1)
    learners: list[LearnerSpec] = Field(min_length=1)
    sample_customers: Count | None = Field(default=None, ge=100)
    seed: Count = 42

    _unique_outcomes = field_validator("outcomes")(unique)

    @model_validator(mode="after")
    def _honest_time_split(self) -> UpliftExperiment:
        h = timedelta(days=self.horizon_days)
        w = self.windows
        if w.train.end + h > w.valid.start:
            raise ValueError(f"windows: the training outcomes (to {w.train.end} + "
                             f"{self.horizon_days}d) must be observed by valid.start "
                             f"{w.valid.start}")
        if w.valid.end + h > w.test.start:
            raise ValueError(f"windows: the validation outcomes (to {w.valid.end} + "
                             f"{self.horizon_days}d) must be observed by test.start "
                             f"{w.test.start}")
        return self

    def flat_params(self) -> dict[str, str]:
        dumped = self.model_dump(mode="json", exclude={"learners", "description"})
        out: dict[str, str] = {}
        for key, value in dumped.items():
            if isinstance(value, dict):
                for split, win in value.items():
                    out[f"{key}.{split}"] = f"{win['start']}..{win['end']}"
            else:
                out[key] = str(value)
        return out


def learner_problems(exp: UpliftExperiment) -> list[str]:
    """Every bad learner param, by key path, before any decision is loaded."""
    return [f"learners[{i}].params.{name}: {why}" for i, spec in enumerate(exp.learners)
            for name, value in spec.params.items()
            if (why := param_problem(spec.kind, name, value))]


def load_uplift_experiment(path: str | Path) -> UpliftExperiment:
    return load_model_file(path, UpliftExperiment, "uplift experiment spec", learner_problems)
