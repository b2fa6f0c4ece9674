"""The libraries' own verdicts on a model param, for ``training.experiment.param_problem``:
LightGBM's config check and scikit-learn's parameter validation, each worded as a spec
problem ("must be > 1, got 1") rather than the library's raw error."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


def booster(kind: str, name: str, value: Any) -> dict[str, Any]:
    """LightGBM's parameters with ``name`` set, as the family builds them."""
    from models.lgbm import LightGBMClassifier, booster_params

    if kind == "lightgbm":
        return booster_params(LightGBMClassifier(**{name: value}), {"objective": "binary"})
    shared = booster_params(LightGBMClassifier(), {})  # the uplift learners' names are these
    return {"objective": "binary", **({name: value} if name in shared else {})}


def lightgbm_problem(params: dict[str, Any]) -> str | None:
    """LightGBM's verdict: building a 2-row Dataset parses and range-checks every parameter
    (under a millisecond on one thread; starting more threads costs more than the check)."""
    import lightgbm as lgb

    try:
        with _silenced():
            lgb.Dataset(np.zeros((2, 1)), np.array([0.0, 1.0]),
                        params={**params, "verbosity": -1, "num_threads": 1}).construct()
    except lgb.basic.LightGBMError as exc:
        text = str(exc).strip()
        check = re.search(r"Check failed: \((\w+)\) (\S+) \(([^)]*)\)", text)
        if check:
            return f"must be {check[2]} {check[3]}, got {params.get(check[1])!r}"
        return re.sub(r"^Parameter \w+ ", "", text.splitlines()[0])
    return None


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """LightGBM reports a bad parameter before raising it, on stderr from C++ and on stdout
    from Python: the message this module words itself would follow two raw copies."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()):
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def sklearn_problem(name: str, value: Any) -> str | None:
    """scikit-learn's verdict on a param the baseline hands to LogisticRegression, by the
    parameter validation its ``fit`` starts with (a fit itself, even on two rows, takes 20 ms)."""
    from sklearn.linear_model import LogisticRegression

    if name not in LogisticRegression().get_params():
        return None
    try:
        LogisticRegression(**{name: value})._validate_params()
    except (ValueError, TypeError) as exc:  # InvalidParameterError is both
        return re.sub(r"^The '\w+' parameter of \w+ ", "", str(exc))
    return None
