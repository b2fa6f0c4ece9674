"""Random hyperparameter search for LightGBM within a time budget.

Each trial trains with early stopping and is scored by its best validation log loss (the
validation window, never the test one). The search stops before a trial that would likely
overrun the budget, judged by the slowest trial so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.lgbm import LightGBMClassifier
from training.experiment import Range, Search


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    valid_log_loss: float
    rounds: int
    seconds: float


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
) -> tuple[LightGBMClassifier, list[Trial]]:
    """The best fitted model (first trial: ``base`` params as given) and every trial."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    trials: list[Trial] = []
    best: LightGBMClassifier | None = None
    while len(trials) < search.max_trials:
        slowest = max((t.seconds for t in trials), default=0.0)
        if trials and time.perf_counter() - started + slowest > search.budget_seconds:
            break
        params = dict(base) if not trials else {**base, **sample(search.space, rng)}
        t0 = time.perf_counter()
        model = fit(params)
        trials.append(Trial(params, model.valid_log_loss_, model.best_iteration_,
                            time.perf_counter() - t0))
        if best is None or model.valid_log_loss_ < best.valid_log_loss_:
            best = model
    assert best is not None  # max_trials >= 1
    return best, trials
