"""The two model families every target gets: a logistic-regression baseline on RFM-style
features and LightGBM with early stopping on a later, time-based validation window.

Both follow the scikit-learn estimator API and carry their preprocessing and calibration, so
the object logged to MLflow (sklearn flavor) is everything serving needs: feed it the feature
frame, get calibrated probabilities. ``fit`` takes the validation window as ``eval_set``
because both early stopping and calibration must look at later data than training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from features.encoding import CategoricalEncoder
from models.calibration import Method, ProbabilityCalibrator

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
EvalSet = tuple[pd.DataFrame, npt.ArrayLike]


class JourneyClassifier(ClassifierMixin, BaseEstimator, ABC):  # type: ignore[misc]
    """Shared fit/predict: subclasses learn raw scores, this class calibrates them."""

    classes: Sequence[str]
    columns: Sequence[str] | None
    calibration: Method
    seed: int

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike, eval_set: EvalSet) -> JourneyClassifier:  # noqa: N803
        """Fit on (X, y); early-stop (where the family can) and calibrate on ``eval_set``."""
        self.classes_ = np.asarray(self.classes, dtype=object)
        self.feature_names_in_ = np.asarray(
            list(self.columns) if self.columns else [c for c in X.columns if c != "customer_id"],
            dtype=object,
        )
        self._check_columns(X, "the training frame")
        y_fit, (X_val, y_val) = self._labels(y), eval_set  # noqa: N806
        y_val = self._labels(y_val)
        self._fit_raw(X[list(self.feature_names_in_)], y_fit, X_val, y_val)
        self.calibrator_ = ProbabilityCalibrator(self.calibration, self.seed)
        self.calibrator_.fit(self.predict_raw(X_val), y_val)
        return self

    def _check_columns(self, X: pd.DataFrame, where: str) -> None:  # noqa: N803
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing from {where}: {missing}")

    def _labels(self, y: npt.ArrayLike) -> Ints:
        arr = np.asarray(y, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self.classes)):
            raise ValueError(f"labels must be class indices 0..{len(self.classes) - 1}")
        return arr

    @property
    def multiclass(self) -> bool:
        return len(self.classes) > 2

    @abstractmethod
    def _fit_raw(self, X: pd.DataFrame, y: Ints, X_val: pd.DataFrame, y_val: Ints) -> None:  # noqa: N803
        """Learn the uncalibrated model (``X_val`` only where the family early-stops)."""

    @abstractmethod
    def predict_raw(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """Uncalibrated scores: (n,) positive-class probability, or (n, k)."""

    def predict_proba(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """Calibrated probabilities, one column per class (binary: [P(0), P(1)])."""
        self._check_columns(X, "the input")
        p = self.calibrator_.transform(self.predict_raw(X))
        if p.ndim == 1:
            return np.column_stack([1 - p, p])
        return p

    def predict(self, X: pd.DataFrame) -> npt.NDArray[Any]:  # noqa: N803
        labels: npt.NDArray[Any] = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels

    @abstractmethod
    def importances(self) -> pd.Series:
        """Importance per input column (for plots and reports), largest first."""


def _positive_or_all(proba: Floats, multiclass: bool) -> Floats:
    return proba if multiclass else proba[:, 1]


class LogisticBaseline(JourneyClassifier):
    """Logistic regression on signed-log, standardised numeric features (missing values get
    an indicator and the training maximum: "never purchased" reads as a very old purchase)."""

    def __init__(
        self,
        classes: Sequence[str] = ("0", "1"),
        columns: Sequence[str] | None = None,
        C: float = 1.0,  # noqa: N803
        max_iter: int = 2000,
        max_rows: int | None = 100_000,
        calibration: Method = "auto",
        seed: int = 0,
    ) -> None:
        self.classes = classes
        self.columns = columns
        self.C = C
        self.max_iter = max_iter
        self.max_rows = max_rows
        self.calibration = calibration
        self.seed = seed

    def _design(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        num = X[self.numeric_].to_numpy(np.float64)
        missing = np.isnan(num)
        num = np.where(missing, self.fill_, num)
        z = (np.sign(num) * np.log1p(np.abs(num)) - self.mean_) / self.scale_
        parts = [z, missing[:, self.flagged_].astype(np.float64)]
        if self.onehot_ is not None:
            parts.append(self.onehot_.transform(X[self.onehot_.categorical_]).to_numpy(np.float64))
        return np.hstack(parts)

    def _fit_raw(self, X: pd.DataFrame, y: Ints, X_val: pd.DataFrame, y_val: Ints) -> None:  # noqa: N803
        self.numeric_ = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        cats = [c for c in X.columns if c not in self.numeric_]
        num = X[self.numeric_].to_numpy(np.float64)
        self.flagged_ = np.isnan(num).any(axis=0)
        self.fill_ = X[self.numeric_].max().fillna(0.0).to_numpy(np.float64)
        filled = np.where(np.isnan(num), self.fill_, num)
        logged = np.sign(filled) * np.log1p(np.abs(filled))
        self.mean_ = logged.mean(axis=0)
        self.scale_ = np.where(logged.std(axis=0) > 0, logged.std(axis=0), 1.0)
        self.onehot_ = CategoricalEncoder("onehot", min_count=20).fit(X[cats]) if cats else None
        # A few dozen coefficients are settled long before 100k rows; the multinomial fit on
        # every row of a 200k-customer x 4-cutoff run would cost minutes for nothing.
        if self.max_rows is not None and len(X) > self.max_rows:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(X), self.max_rows,
                                                                    replace=False))
            X, y = X.iloc[keep], y[keep]  # noqa: N806
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.model_.fit(self._design(X), y)

    def predict_raw(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        got = self.model_.predict_proba(self._design(X[list(self.feature_names_in_)]))
        full = np.zeros((len(got), len(self.classes)))
        full[:, self.model_.classes_] = got  # classes absent from training stay at 0
        return _positive_or_all(full, self.multiclass)

    def importances(self) -> pd.Series:
        flagged = np.asarray(self.numeric_)[self.flagged_]
        names = [*self.numeric_, *(f"{c}_missing" for c in flagged)]
        if self.onehot_ is not None:
            names += list(self.onehot_.feature_names_out_)
        weight = np.abs(self.model_.coef_).mean(axis=0)
        return pd.Series(weight, index=names).sort_values(ascending=False)
