"""Features derived inside the model from the vector's own columns, so they travel with it.

Rates and ratios against tenure are scale-free: a tree learns "buys every other month" once,
where raw counts and recencies keep growing past anything the training cutoffs showed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# new column -> (numerator, denominator); skipped when either column is absent
RATIOS = {
    "rate_purchases": ("purchases_total", "tenure_days"),
    "rate_events": ("events_total", "tenure_days"),
    "recency_share": ("recency_days", "tenure_days"),
    "purchase_recency_share": ("purchase_recency_days", "tenure_days"),
}


def ratio_columns(columns: list[str]) -> list[str]:
    return [name for name, (a, b) in RATIOS.items() if a in columns and b in columns]


def with_ratios(X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
    """``X`` plus the ratio columns its columns allow (tenure floored at one day)."""
    added = {}
    for name in ratio_columns(list(X.columns)):
        a, b = RATIOS[name]
        denominator = np.maximum(X[b].to_numpy(np.float64), 1.0)
        added[name] = X[a].to_numpy(np.float64) / denominator
    return X.assign(**added) if added else X


def ratio_of(name: str, record: Mapping[str, object]) -> float:
    """One ratio column's value for one record (a dict of feature values), as with_ratios."""
    a, b = RATIOS[name]
    num, den = _number(record.get(a)), _number(record.get(b))
    return num / max(den, 1.0) if den == den else float("nan")  # NaN tenure stays NaN


def _number(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")
