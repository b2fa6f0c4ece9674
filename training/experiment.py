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

Validation is strict about time: every training cutoff's label window [T, T+H) ends by the
validation cutoff, and the validation window ends by the test cutoff, so no label a model
learns from, or is tuned on, overlaps the period it is judged on.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from features.errors import ConfigError
from features.layout import FAMILIES
from features.yaml_config import Config, line_of, message, problems, read_config
from models.targets import ALL_TARGETS, CHURN_LABELS, SURVIVAL, TARGETS
from training.experiment_checks import booster, lightgbm_problem, sklearn_problem

M = TypeVar("M", bound=BaseModel)
DEFAULT_FEATURES = {"baseline": ["rfm"], "lightgbm": list(FAMILIES)}
# Count-like params only the training loop reads (LightGBM never checks them): lower bounds.
MINIMUM = {"max_rounds": 1, "early_stopping_rounds": 1, "num_threads": 0, "max_rows": 1}


def _not_a_flag(value: Any) -> Any:
    """Pydantic reads true as 1.0: a spec's `budget_seconds: true` is a slip, not a number."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {str(value).lower()}")
    return value


Count = Annotated[int, Strict()]  # no true for 1, no 30.0 or "30" for 30
Flag = Annotated[bool, Strict()]  # no "yes" or 1 for true
Number = Annotated[float, BeforeValidator(_not_a_flag)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def unique(values: list[Any] | None) -> list[Any] | None:
    """A list with no value twice (a target or outcome listed twice would train twice)."""
    seen = list(values or [])
    for i, v in enumerate(seen):
        if v in seen[:i]:
            raise ValueError(f"{v!r} is listed twice")
    return values


class Range(_Strict):
    low: Number
    high: Number
    log: Flag = False
    integer: Flag = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError("needs low < high (and low > 0 on a log scale)")
        return self


class Search(_Strict):
    """Random search over ``space`` until ``budget_seconds`` or ``max_trials`` runs out;
    ``budget_seconds: null`` lets ``max_trials`` alone end it, so the seed decides the
    result whatever the machine's speed."""

    budget_seconds: Number | None = Field(gt=0)
    max_trials: Count = Field(default=30, ge=1)
    space: dict[str, Range | Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "learning_rate": Range(low=0.02, high=0.2, log=True),
            "num_leaves": Range(low=15, high=127, integer=True),
            "min_data_in_leaf": Range(low=20, high=400, integer=True, log=True),
            "feature_fraction": Range(low=0.5, high=1.0),
            "lambda_l2": Range(low=0.01, high=10, log=True),
        }
    )


def model_class(kind: str) -> type[Any]:
    """The estimator a model family ("baseline", "lightgbm") or uplift learner ("t", "x") is."""
    from models.estimators import LogisticBaseline
    from models.lgbm import LightGBMClassifier
    from models.uplift_model import LEARNERS

    classes: dict[str, type[Any]] = {"baseline": LogisticBaseline,
                                     "lightgbm": LightGBMClassifier, **LEARNERS}
    return classes[kind]


def tunable(family: str) -> set[str]:
    """Constructor params an experiment may set (the rest come from the experiment itself)."""
    return set(model_class(family)().get_params()) - {"classes", "columns", "calibration", "seed"}


class ModelSpec(_Strict):
    family: Literal["baseline", "lightgbm"]
    params: dict[str, Any] = Field(default_factory=dict)
    # Feature families; left out: the family's default (an empty list is a mistake, not that).
    features: Annotated[list[str], Field(min_length=1)] | None = None
    search: Search | None = None

    _unique_features = field_validator("features")(unique)

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
            close = difflib.get_close_matches(unknown_params[0], sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {self.family} params {unknown_params}{hint}; "
                             f"allowed: {sorted(allowed)}")
        if self.search is not None and set(self.search.space) - allowed:
            raise ValueError(f"search space has unknown params "
                             f"{sorted(set(self.search.space) - allowed)}")
        return self

    @property
    def feature_families(self) -> list[str]:
        return self.features or DEFAULT_FEATURES[self.family]


def param_problem(kind: str, name: str, value: Any) -> str | None:
    """What is wrong with one param of a model family or uplift learner, found when the spec
    loads rather than after the data has: its type by the constructor's annotation (strictly:
    true is no number, 15.5 no count), its range by the library that will use it
    (scikit-learn's parameter validation, LightGBM's own config check)."""
    try:
        _adapter(_hint(kind, name)).validate_python(value, strict=True)
    except ValidationError as exc:
        return f"{message(exc.errors()[0])}, got {value!r}"
    if name in MINIMUM and value is not None and value < MINIMUM[name]:
        return f"must be at least {MINIMUM[name]}, got {value!r}"
    if kind == "lightgbm" and name == "linear_tree" and value:
        from models.lgbm import LINEAR_TREE  # lightgbm's import waits for a lightgbm model

        return LINEAR_TREE
    if kind == "baseline":
        return sklearn_problem(name, value)
    return lightgbm_problem(booster(kind, name, value))


def _hint(kind: str, name: str) -> Any:
    return typing.get_type_hints(model_class(kind).__init__)[name]


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def _whole(kind: str, name: str) -> bool:
    """Whether the param takes whole numbers only (a range over it needs ``integer``)."""
    return bool(_hint(kind, name) in (int, int | None))


def space_problems(kind: str, name: str, dim: Range | list[Any]) -> list[tuple[str, str]]:
    """(where under the dimension, what is wrong) for every value a search can draw from it:
    each listed value, or a range's ends as sampled (rounded when ``integer``)."""
    if isinstance(dim, list):
        return [(f"[{j}]", why) for j, v in enumerate(dim)
                if (why := param_problem(kind, name, v))]
    if not dim.integer and _whole(kind, name):
        return [("", f"{name} takes whole numbers: add integer: true to the range")]
    ends = {"low": dim.low, "high": dim.high}
    return [(f".{end}", why) for end, v in ends.items()
            if (why := param_problem(kind, name, round(v) if dim.integer else v))]


def model_problems(models: Sequence[ModelSpec]) -> list[str]:
    """Every bad param or search-space value of an experiment's models, by key path."""
    return [found for i, m in enumerate(models) for found in _model_problems(i, m)]


def raw_model_problems(raw: dict[str, Any]) -> list[str]:
    """``model_problems`` of the models as written, whatever else the file gets wrong: a bad
    param is named in the same pass as a bad horizon, not after it is fixed. An entry whose
    own shape is wrong (unknown family, misspelt key) is skipped: the schema names it."""
    entries = raw.get("models")
    if not isinstance(entries, list):
        return []
    out: list[str] = []
    for i, entry in enumerate(entries):
        try:
            spec = ModelSpec.model_validate(entry)
        except ValidationError:
            continue
        out += _model_problems(i, spec)
    return out


def _model_problems(i: int, m: ModelSpec) -> list[str]:
    out = [f"models[{i}].params.{name}: {why}" for name, value in m.params.items()
           if (why := param_problem(m.family, name, value))]
    space = m.search.space if m.search is not None else {}
    for name, dim in space.items():
        out += [f"models[{i}].search.space.{name}{where}: {why}"
                for where, why in space_problems(m.family, name, dim)]
    return out


class Cutoffs(_Strict):
    train: list[date] = Field(min_length=1)
    valid: date
    test: date


def check_time_split(cutoffs: Cutoffs, horizon_days: int, where: str = "cutoffs") -> None:
    """Every training window ends by the validation cutoff, which ends by the test cutoff.
    A problem names the key that is wrong ("cutoffs.valid: ..."), so ``_located`` gives the
    line of that key, not of the whole split."""
    h = timedelta(days=horizon_days)
    for i, day in enumerate(cutoffs.train):
        if day in cutoffs.train[:i]:
            raise ValueError(f"{where}.train[{i}]: {day} is listed twice")
    last = max(cutoffs.train)
    if last + h > cutoffs.valid:
        raise ValueError(
            f"{where}.valid: the last training window ({last} + {horizon_days}d) must "
            f"end by the validation cutoff {cutoffs.valid}"
        )
    if cutoffs.valid + h > cutoffs.test:
        raise ValueError(
            f"{where}.test: the validation window ({cutoffs.valid} + {horizon_days}d) "
            f"must end by the test cutoff {cutoffs.test}"
        )


class Survival(_Strict):
    """The time_to_churn target's own horizon and cutoffs: survival to 90 days needs a longer
    window than the classifiers', so its cutoffs lie further apart."""

    horizon_days: Count = Field(ge=90)
    interval_days: Count = Field(default=7, ge=1)
    cutoffs: Cutoffs

    @model_validator(mode="after")
    def _honest_time_split(self) -> Survival:
        check_time_split(self.cutoffs, self.horizon_days, "survival.cutoffs")
        return self


class Experiment(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    horizon_days: Count = Field(ge=1)
    churn_gap_days: Count = Field(default=30, ge=1)
    churn_label: Literal[CHURN_LABELS] = "churned_inactive"  # type: ignore[valid-type]
    targets: list[Literal[ALL_TARGETS]] = Field(default_factory=lambda: list(TARGETS))  # type: ignore[valid-type]
    cutoffs: Cutoffs
    survival: Survival | None = None  # required by the time_to_churn target
    models: list[ModelSpec] = Field(min_length=1)
    # auto may keep the raw scores ("none"): see models.calibration; runs log the choice.
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = "auto"
    sample_customers: Count | None = Field(default=None, ge=100)  # per training cutoff
    seed: Count = 42

    _unique_targets = field_validator("targets")(unique)

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
    return load_model_file(path, Experiment, "experiment spec", early=raw_model_problems)


def load_model_file(path: str | Path, cls: type[M], what: str,
                    check: Callable[[M], list[str]] | None = None,
                    early: Callable[[dict[str, Any]], list[str]] | None = None) -> M:
    """A YAML file validated into ``cls``, read as ``features.yaml_config`` reads settings
    (strict YAML, a key written twice refused). Every problem is named in one message, in
    the file's order, with its line and key path: the schema's, ``early``'s (checks of the
    mapping as written, run even when the schema fails) and, once it passes, ``check``'s."""
    p = Path(path)
    config = read_config(p, __name__, "", what)  # a path is given: no shipped default
    raw = config.raw
    raw.setdefault("name", p.stem)
    found = early(raw) if early is not None else []
    try:
        spec = cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_located(config, problems(exc.errors(), raw, cls) + found)) from exc
    found += check(spec) if check is not None else []
    if found:
        raise ConfigError(_located(config, found))
    return spec


def _located(config: Config, found: list[str]) -> str:
    """"file: line N: key.path: what; ..." by line; a key the file lacks is named without one
    (or at the line of the mapping that should hold it). A whole-spec or section check (the
    time split) names the key it is about after its section's ("(top level): cutoffs.valid:
    ..."): that key is shown, at its line."""
    at = [_own_key(text, config.lines) for text in found]
    said = [f"line {line}: {text}" if line else text
            for line, text in sorted(at, key=lambda pair: pair[0])]
    return f"{config.source}: {'; '.join(said)}"


def _own_key(text: str, lines: dict[str, int]) -> tuple[int, str]:
    """The line of a problem, and the problem as shown: one whose message starts with a key
    of the file under its own path is that key's."""
    section, _, rest = text.partition(": ")
    named = rest.split(": ", 1)[0]
    inside = section == "(top level)" or named.startswith(f"{section}.")
    if inside and named in lines:
        return lines[named], rest
    return line_of(text.removeprefix("(top level): "), lines), text
