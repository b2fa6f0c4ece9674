"""Random hyperparameter search for LightGBM within a time budget.

Each trial trains with early stopping and is scored by its best validation log loss (the
validation window, never the test one). The search stops after ``max_trials``, or before a
trial that would likely overrun the budget, judged by the slowest trial so far. A search the
budget stopped depends on how fast the machine was at the time, so the result says which of
the two ended it, and ``warning`` says so in words when it was the clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from models.lgbm import LightGBMClassifier
from training.experiment import Range, Search

StopReason = Literal["max_trials", "budget"]


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    valid_log_loss: float
    rounds: int
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    """The best model, every trial, and what ended the search."""

    best: LightGBMClassifier
    trials: list[Trial]
    max_trials: int
    budget_seconds: float | None  # None: bounded by max_trials alone
    stopped_by: StopReason
    seconds: float

    @property
    def cut_short(self) -> bool:
        """The budget ended the search before ``max_trials``: not reproducible by seed."""
        return self.stopped_by == "budget"

    @property
    def defaults_only(self) -> bool:
        """The budget let only the first trial, the base params, run: nothing was searched."""
        return self.cut_short and len(self.trials) == 1

    def _defaults(self) -> str:
        """How the budget went on the base params (for ``defaults_only``)."""
        took = self.trials[0].seconds
        if self.budget_seconds is not None and took > self.budget_seconds:
            return (f"budget {self.budget_seconds:g}s spent on the default parameters "
                    f"({took:.1f}s)")
        return (f"the default parameters took {took:.1f}s, leaving no room for another trial "
                f"in the {self.budget_seconds:g}s budget")

    def summary(self) -> str:
        if self.defaults_only:
            return f"search 1/{self.max_trials} trials: {self._defaults()}; no search happened"
        if self.cut_short:
            return (f"search {len(self.trials)}/{self.max_trials} trials, stopped by the "
                    f"{self.budget_seconds:g}s budget")
        return f"search {len(self.trials)}/{self.max_trials} trials"

    def warning(self) -> str | None:
        if not self.cut_short:
            return None
        if self.defaults_only:
            # The model is the defaults' whatever search.space says: the likeliest surprise.
            enough = math.ceil(self.trials[0].seconds * self.max_trials)
            return (f"{self._defaults()}; no search happened, the model is the default "
                    f"parameters'. For the {self.max_trials} trials, raise "
                    f"search.budget_seconds to about {enough:g} on this machine, or set it "
                    "to null to let max_trials end the search (reproducible by seed); with "
                    "a budget, how many trials run depends on the machine's speed and load.")
        return (f"the {self.budget_seconds:g}s time budget stopped the search after "
                f"{len(self.trials)} of {self.max_trials} trials: how many trials run, and so "
                "the model chosen, depends on the machine's speed and load, and the same spec "
                "and seed can give another model elsewhere. For a reproducible search, let "
                "max_trials end it: set search.budget_seconds: null.")

    def params(self) -> dict[str, str]:
        """For the model's MLflow run (params cannot change once logged: all known here)."""
        return {"search_trials": str(len(self.trials)),
                "search_max_trials": str(self.max_trials),
                "search_budget_seconds": "none" if self.budget_seconds is None
                else f"{self.budget_seconds:g}",
                "search_stopped_by": self.stopped_by}

    def tags(self) -> dict[str, str]:
        tags = {"journey.search.trials": f"{len(self.trials)}/{self.max_trials}",
                "journey.search.stopped_by": self.stopped_by,
                "journey.search.reproducible": str(not self.cut_short).lower()}
        if self.defaults_only:
            tags["journey.search.defaults_only"] = "true"
        warning = self.warning()
        if warning is not None:
            tags["journey.search.warning"] = warning
        return tags


def sample(space: dict[str, Range | list[Any]], rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, list):
            out[name] = dim[int(rng.integers(len(dim)))]
            continue
        if dim.log:
            value = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high)))
        else:
            value = rng.uniform(dim.low, dim.high)
        out[name] = round(value) if dim.integer else float(value)
    return out


def random_search(
    fit: Callable[[dict[str, Any]], LightGBMClassifier],
    search: Search,
    base: dict[str, Any],
    seed: int,
) -> SearchResult:
    """The best fitted model (first trial: ``base`` params as given), every trial, and why
    the search stopped."""
    rng = np.random.default_rng(seed)
    budget = search.budget_seconds
    started = time.perf_counter()
    trials: list[Trial] = []
    best: LightGBMClassifier | None = None
    stopped_by: StopReason = "max_trials"
    while len(trials) < search.max_trials:
        slowest = max((t.seconds for t in trials), default=0.0)
        if (trials and budget is not None
                and time.perf_counter() - started + slowest > budget):
            stopped_by = "budget"
            break
        params = dict(base) if not trials else {**base, **sample(search.space, rng)}
        t0 = time.perf_counter()
        model = fit(params)
        trials.append(Trial(params, model.valid_log_loss_, model.best_iteration_,
                            time.perf_counter() - t0))
        if best is None or model.valid_log_loss_ < best.valid_log_loss_:
            best = model
    assert best is not None  # max_trials >= 1
    return SearchResult(best, trials, search.max_trials, budget, stopped_by,
                        time.perf_counter() - started)
