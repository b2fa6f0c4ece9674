"""Before any model is fitted: does each window hold the outcomes its target needs?

A classifier cannot be fitted on one outcome, calibration and early stopping need both in the
validation window, and a binary target's holdout AUC (what ranks and promotes models) is
undefined without both. On a short or small log (the real Shapees stream: 250 users) a
window can hold a single outcome; training then stopped with a traceback after some models
were already registered. Checked up front, every problem is named at once and nothing is
registered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.errors import JourneyError
from models.targets import SURVIVAL, Target, target
from training.dataset import Dataset
from training.experiment import Experiment


class TrainingDataError(JourneyError):
    """The experiment's windows do not hold the outcomes a target needs."""


def _outcome(t: Target, code: int) -> str:
    if t.kind == "binary":
        return f"{t.label} = {bool(code)}"
    return f"next stage {t.classes[code]!r}"


def _problem(t: Target, frame: pd.DataFrame, window: str) -> str | None:
    y, known = t.encode(frame)
    present = np.unique(y[known])
    if len(present) >= 2:
        return None
    if len(present) == 0:
        return f"{t.name}: the {window} has no labelled rows"
    return (f"{t.name}: every one of the {int(known.sum()):,} rows of the {window} has "
            f"{_outcome(t, int(present[0]))}")


def check_outcomes(exp: Experiment, ds: Dataset, stages: Sequence[str]) -> None:
    """Raise TrainingDataError naming every target and window with a single outcome."""
    h = f"+{exp.horizon_days}d"
    train = ", ".join(str(c) for c in sorted(exp.cutoffs.train))
    problems = []
    for name in exp.targets:
        if name == SURVIVAL:  # its own windows and a duration, not classes
            continue
        t = target(name, stages, exp.churn_label)
        windows = [(ds.train, f"training windows ({train}; {h})"),
                   (ds.valid, f"validation window ({exp.cutoffs.valid}, {h}]")]
        if t.kind == "binary":  # the holdout's AUC ranks and promotes the model
            windows.append((ds.test, f"test window ({exp.cutoffs.test}, {h}]"))
        problems += [p for frame, window in windows if (p := _problem(t, frame, window))]
    if problems:
        raise TrainingDataError(
            f"experiment {exp.name}: cannot train, a window holds one outcome only: "
            + "; ".join(problems) + ". Move the cutoffs to where both outcomes occur, "
            "lengthen horizon_days, or leave the target out of `targets`; nothing was "
            "trained or registered.")
