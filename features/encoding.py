"""Categorical encoding learned on training data: integer codes for LightGBM, one-hot columns
for a linear baseline. Follows the scikit-learn estimator API so it travels with the model."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

UNSEEN = "__unseen__"


class CategoricalEncoder(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Encodes the string columns of a feature frame; numeric columns pass through.

    ``mode="codes"``: each categorical becomes float codes 0..k-1 (unseen and missing -> NaN,
    which LightGBM treats as missing). ``mode="onehot"``: one 0/1 column per category seen in
    training at least ``min_count`` times, plus one for the rest.
    """

    def __init__(self, mode: Literal["codes", "onehot"] = "codes", min_count: int = 1) -> None:
        self.mode = mode
        self.min_count = min_count

    def fit(self, X: pd.DataFrame, y: object = None) -> CategoricalEncoder:  # noqa: N803
        if self.mode not in ("codes", "onehot"):
            raise ValueError(f"mode must be 'codes' or 'onehot', not {self.mode!r}")
        self.categorical_ = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        self.numeric_ = [c for c in X.columns if c not in self.categorical_]
        self.categories_: dict[str, list[str]] = {}
        for col in self.categorical_:
            counts = X[col].dropna().astype(str).value_counts()
            self.categories_[col] = sorted(counts[counts >= self.min_count].index)
        self.feature_names_out_ = self._names()
        return self

    def _names(self) -> list[str]:
        if self.mode == "codes":
            return [*self.numeric_, *self.categorical_]
        onehot = [f"{c}={v}" for c in self.categorical_ for v in [*self.categories_[c], UNSEEN]]
        return [*self.numeric_, *onehot]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        missing = [c for c in (*self.numeric_, *self.categorical_) if c not in X.columns]
        if missing:
            raise ValueError(f"columns missing from the input: {missing}")
        parts = [X[self.numeric_].astype(float)]
        for col in self.categorical_:
            cats = self.categories_[col]
            values = X[col].astype("string")
            if self.mode == "codes":
                # Unseen values become missing first (pandas 4 refuses them in a Categorical).
                seen = values.where(values.isin(cats).fillna(False))
                codes = pd.Categorical(seen, categories=cats).codes.astype(float)
                codes[codes < 0] = np.nan
                parts.append(pd.DataFrame({col: codes}, index=X.index))
            else:
                known = values.isin(cats).fillna(False).to_numpy()
                block = {
                    f"{col}={v}": (values == v).fillna(False).to_numpy().astype(float) for v in cats
                }
                block[f"{col}={UNSEEN}"] = (~known).astype(float)
                parts.append(pd.DataFrame(block, index=X.index))
        return pd.concat(parts, axis=1)[self.feature_names_out_]
