"""Time to churn: a discrete-time hazard model on LightGBM, and a Kaplan-Meier baseline.

The horizon (0, H] is cut into intervals of ``interval_days`` (the last one may be shorter).
Fitting expands each customer into one row per interval they were at risk in (person-period
data): their features, the interval's start day as one more feature, and whether they churned
in it. LightGBM learns the hazard h_k(x) = P(churn in interval k | no churn before, x); the
survival curve is S(t_k) = prod_{j<=k} (1 - h_j(x)), with a constant hazard rate inside an
interval between its ends. Predicting one customer is one LightGBM call on their K interval
rows, however many days are asked.

Customers already churned at the cutoff (``churn_days`` 0 in ``features.labels``: no customer
event in the last ``churn_gap_days``) are not at risk: fitting leaves them out, and prediction
answers S(t) = 0 for them (expected and median time to churn 0) from their ``recency_days``,
the same rule the labels use, instead of asking the model about a case it never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from features.encoding import CategoricalEncoder
from models.derived import with_ratios
from models.inputs import EncodedInputs
from models.lgbm import booster_params
from models.survival_metrics import kaplan_meier, step_at, validate_survival

Floats = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float32]
RECENCY = "recency_days"
INTERVAL = "interval_start_days"
SurvivalEval = tuple[pd.DataFrame, npt.ArrayLike, npt.ArrayLike]


def interval_edges(horizon_days: int, interval_days: int) -> Floats:
    """0, w, 2w, ..., H: the interval boundaries in days (the last interval may be shorter)."""
    if horizon_days < 1 or interval_days < 1:
        raise ValueError("horizon_days and interval_days must be at least 1")
    edges = np.arange(0, horizon_days, interval_days, dtype=np.float64)
    return np.append(edges, float(horizon_days))


def person_period(duration: Floats, observed: npt.NDArray[np.bool_], edges: Floats
                  ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.int8]]:
    """(subject, interval, churned) rows: a subject is at risk in every interval that starts
    before its duration; an observed churn falls in the interval (start, end] holding it; a
    censored subject counts only the intervals it was followed to the end of."""
    k = len(edges) - 1
    last = np.clip(np.searchsorted(edges, duration, side="left") - 1, 0, k - 1)
    whole = np.searchsorted(edges, duration, side="right") - 1  # intervals completed
    n_rows = np.where(observed, last + 1, np.minimum(whole, k))
    subject = np.repeat(np.arange(len(duration)), n_rows)
    start = np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    interval = np.arange(len(subject)) - start
    churned = (observed[subject] & (interval == last[subject])).astype(np.int8)
    return subject, interval, churned


def curve_at(edge_surv: Floats, edges: Floats, days: npt.ArrayLike) -> Floats:
    """S at ``days`` from S at the interval edges (columns 0..K, S(0) = 1), with a constant
    hazard rate inside each interval (geometric interpolation)."""
    t = np.asarray(days, dtype=np.float64)
    if t.ndim != 1 or np.any(t < 0) or np.any(t > edges[-1]):
        raise ValueError(f"days must be a 1-D list within [0, {edges[-1]:g}] (the horizon)")
    k = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
    frac = (t - edges[k]) / (edges[k + 1] - edges[k])
    lo, hi = edge_surv[:, k], edge_surv[:, k + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(lo > 0, hi / lo, 0.0)
    out: Floats = lo * ratio ** frac[None, :]
    return out


def restricted_mean(edge_surv: Floats, edges: Floats) -> Floats:
    """The integral of S over (0, H]: the expected time to churn within the horizon."""
    lo, hi = edge_surv[:, :-1], edge_surv[:, 1:]
    width = np.diff(edges)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(lo > 0, hi / lo, 0.0)
        inner = np.where(np.abs(1 - q) < 1e-9, 1.0,
                         np.where(q > 0, (q - 1) / np.log(np.where(q > 0, q, 1.0)), 0.0))
    out: Floats = (lo * width * inner).sum(axis=1)
    return out


def median_from(edge_surv: Floats, edges: Floats) -> Floats:
    """The first day S reaches 0.5; ``inf`` where S stays above 0.5 through the horizon (the
    median lies beyond it and the data cannot say where)."""
    below = edge_surv <= 0.5
    out = np.full(len(edge_surv), np.inf)
    out[below[:, 0]] = 0.0  # churned before the start (S(0) = 0)
    first = np.argmax(below, axis=1)
    has = below.any(axis=1) & (first > 0)
    k = first[has]  # the first edge at or below 0.5
    lo, hi = edge_surv[has, k - 1], edge_surv[has, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(hi > 0, np.log(0.5 / lo) / np.log(hi / lo), 1.0)
    out[has] = edges[k - 1] + np.clip(frac, 0, 1) * (edges[k] - edges[k - 1])
    return out


class SurvivalCurves:
    """What both survival models share: curves, restricted mean and median from the survival
    at the interval edges (``edge_survival``), with the same argument checks."""

    edges_: Floats

    def edge_survival(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        raise NotImplementedError

    def predict_survival(self, X: pd.DataFrame, days: npt.ArrayLike) -> Floats:  # noqa: N803
        """S(t) for each row of X (rows) at each of ``days`` (columns), within the horizon."""
        return curve_at(self.edge_survival(X), self.edges_, days)

    def expected_days(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """Restricted mean time to churn within the horizon: the integral of S over (0, H]. A
        customer unlikely to churn in the horizon gets close to H, not their (unknowable)
        lifetime."""
        return restricted_mean(self.edge_survival(X), self.edges_)

    def median_days(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """The day S reaches 0.5, or ``inf`` when it stays above 0.5 through the horizon."""
        return median_from(self.edge_survival(X), self.edges_)

    def predict(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """``expected_days``: what MLflow's pyfunc wrapper of the model answers."""
        return self.expected_days(X)


class KaplanMeierSurvival(SurvivalCurves, BaseEstimator):  # type: ignore[misc]
    """The population's Kaplan-Meier curve for everyone: the baseline to beat."""

    def __init__(self, horizon_days: int = 91, interval_days: int = 7) -> None:
        self.horizon_days = horizon_days
        self.interval_days = interval_days

    def fit(self, X: pd.DataFrame, duration_days: npt.ArrayLike,  # noqa: N803
            observed: npt.ArrayLike) -> KaplanMeierSurvival:
        d, e = validate_survival(duration_days, observed)
        if len(d) != len(X):
            raise ValueError(f"X has {len(X)} rows, duration_days {len(d)}")
        self.edges_ = interval_edges(self.horizon_days, self.interval_days)
        self.times_, self.survival_ = kaplan_meier(d, e)
        return self

    def edge_survival(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        row = step_at(self.times_, self.survival_, self.edges_)
        return np.tile(row, (len(X), 1))

    def predict_survival(self, X: pd.DataFrame, days: npt.ArrayLike) -> Floats:  # noqa: N803
        t = np.asarray(days, dtype=np.float64)
        if t.ndim != 1 or np.any(t < 0) or np.any(t > self.horizon_days):
            raise ValueError(f"days must be a 1-D list within [0, {self.horizon_days}]")
        return np.tile(step_at(self.times_, self.survival_, t), (len(X), 1))


class LightGBMSurvival(EncodedInputs, SurvivalCurves, BaseEstimator):  # type: ignore[misc]
    """Discrete-time hazard model on LightGBM (see the module docstring).

    ``fit(X, duration_days, observed, eval_set=None)``: durations in days from the cutoff
    (censored ones at the horizon or earlier); rows with duration 0 (already churned) are left
    out. Early stopping watches the hazard log loss on ``eval_set`` (a later cutoff's frame,
    durations and flags) or, without one, on ``validation_fraction`` of the customers.
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        horizon_days: int = 91,
        interval_days: int = 7,
        churn_gap_days: int = 30,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        max_bin: int = 63,
        ratios: bool = True,
        max_rounds: int = 1000,
        early_stopping_rounds: int = 30,
        validation_fraction: float = 0.2,
        num_threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.columns = columns
        self.horizon_days = horizon_days
        self.interval_days = interval_days
        self.churn_gap_days = churn_gap_days
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.ratios = ratios
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.num_threads = num_threads
        self.seed = seed

    def _params(self) -> dict[str, object]:
        return booster_params(self, {"objective": "binary"})

    def _at_risk(self, X: pd.DataFrame, duration: npt.ArrayLike, observed: npt.ArrayLike,  # noqa: N803
                 where: str) -> tuple[Matrix, Floats, npt.NDArray[np.bool_]]:
        d, e = validate_survival(duration, observed)
        if len(d) != len(X):
            raise ValueError(f"{where}: X has {len(X)} rows, duration_days {len(d)}")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing from {where}: {missing}")
        keep = d > 0
        # Beyond the horizon nothing was watched: censored there.
        e = e & (d <= self.horizon_days)
        return self.matrix(X[keep]), np.minimum(d[keep], self.horizon_days), e[keep]

    def _dataset(self, matrix: Matrix, d: Floats, e: npt.NDArray[np.bool_],
                 reference: lgb.Dataset | None = None) -> lgb.Dataset:
        subject, interval, churned = person_period(d, e, self.edges_)
        rows = np.column_stack([matrix[subject], self.edges_[interval].astype(np.float32)])
        if reference is not None:
            return lgb.Dataset(rows, churned, reference=reference)
        names = [*self.encoder_.feature_names_out_, INTERVAL]
        cats = [names.index(c) for c in self.encoder_.categorical_]
        return lgb.Dataset(rows, churned, feature_name=names, categorical_feature=cats,
                           free_raw_data=True)

    def fit(self, X: pd.DataFrame, duration_days: npt.ArrayLike, observed: npt.ArrayLike,  # noqa: N803
            eval_set: SurvivalEval | None = None) -> LightGBMSurvival:
        self.__dict__.pop("vector_plans_", None)  # built for the previous encoder
        self.edges_ = interval_edges(self.horizon_days, self.interval_days)
        self.feature_names_in_ = np.asarray(
            list(self.columns) if self.columns else [c for c in X.columns if c != "customer_id"],
            dtype=object)
        cols = [c for c in self.feature_names_in_ if c in X.columns]
        self.encoder_ = CategoricalEncoder("codes").fit(
            with_ratios(X[cols]) if self.ratios else X[cols])
        names = list(self.encoder_.feature_names_out_)
        self.recency_index_ = names.index(RECENCY) if RECENCY in names else None
        m, d, e = self._at_risk(X, duration_days, observed, "the training frame")
        if eval_set is None:
            held = np.random.default_rng(self.seed).random(len(d)) < self.validation_fraction
            m_val, d_val, e_val = m[held], d[held], e[held]
            m, d, e = m[~held], d[~held], e[~held]
        else:
            m_val, d_val, e_val = self._at_risk(*eval_set, where="eval_set")
        if len(d) == 0 or len(d_val) == 0:
            raise ValueError("no customer at risk (duration_days > 0) to fit or validate on")
        train = self._dataset(m, d, e)
        valid = self._dataset(m_val, d_val, e_val, reference=train)
        self.booster_ = lgb.train(
            self._params(), train, num_boost_round=self.max_rounds, valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        self.best_iteration_ = int(self.booster_.best_iteration
                                   or self.booster_.current_iteration())
        self.valid_log_loss_ = float(next(iter(self.booster_.best_score["valid"].values())))
        return self

    def edge_survival_matrix(self, matrix: Matrix) -> Floats:
        """S at the interval edges (columns 0..K) from encoded rows (``matrix`` or
        ``vectors_matrix``): every interval of every row in one LightGBM call."""
        n, k = len(matrix), len(self.edges_) - 1
        rows = np.empty((n * k, matrix.shape[1] + 1), np.float32)
        rows[:, :-1] = np.repeat(matrix, k, axis=0)
        rows[:, -1] = np.tile(self.edges_[:-1], n)
        # One thread for a few customers: OpenMP start-up costs more than it saves there.
        threads = 1 if len(rows) < 20_000 else self._params()["num_threads"]
        hazard = np.asarray(self.booster_.predict(rows, num_iteration=self.best_iteration_,
                                                  num_threads=threads),
                            dtype=np.float64).reshape(n, k)
        surv = np.column_stack([np.ones(n), np.cumprod(1.0 - hazard, axis=1)])
        if self.recency_index_ is not None:
            recency = matrix[:, self.recency_index_]
            churned = np.isnan(recency) | (recency >= self.churn_gap_days)
            surv[churned] = 0.0
        return surv

    def edge_survival(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing from the input: {missing}")
        return self.edge_survival_matrix(self.matrix(X))

    def importances(self) -> pd.Series:
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.booster_.feature_name()).sort_values(ascending=False)
