"""The LightGBM plumbing every uplift model shares (``models.uplift``): parameters, early
stopping on held-out rows, and scoring that takes the one-row path for a few rows (a web
service scores one customer) and a single thread for small batches."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from models.ope import arms_from_actions
from models.single_row import SingleRow
from models.threads import cpu_threads

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Rows = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
# (X_val, action_val[, y_val[, propensity_val]]): the learners need y_val, the propensity
# model reads the first two only, so one eval set serves all.
EvalSet = tuple[npt.ArrayLike, ...]

# Up to this many rows, each row goes through the prepared one-row predictor: ~20 us a
# booster and row, against ~0.2 ms of set-up per ``Booster.predict`` call.
ONE_BY_ONE = 8
# Up to this many rows, one thread: OpenMP's start-up costs more than it saves, and a service
# shares its cores between requests. (1,000 rows through an X-learner's 11 boosters for K = 5:
# ~50 ms on one thread; ~30 ms on two idle cores, but slower than one when they are busy.)
SMALL_BATCH = 2_000
VALID_SHARE = 0.2  # of a model's rows held out for early stopping when no eval rows are given
MIN_VALID = 20  # fewer eval rows than this: early stopping would follow noise
CACHE = "_single_rows"  # prepared one-row predictors (C handles): rebuilt, never pickled


def store_params(estimator: BaseEstimator, params: dict[str, Any]) -> None:
    """scikit-learn's convention: ``__init__`` keeps every parameter as given, under its name
    (``get_params`` and ``clone`` read them back); validation waits for ``fit``."""
    for name, value in params.items():
        if name != "self":
            setattr(estimator, name, value)


class Data(NamedTuple):
    X: Rows
    arm: Ints
    y: Floats


class Boosted(BaseEstimator):  # type: ignore[misc]
    """Shared LightGBM settings and the train / score plumbing of every model here."""

    def __init__(
        self,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_data_in_leaf: int = 200,
        lambda_l2: float = 1.0,
        max_rounds: int = 1000,
        early_stopping_rounds: int = 50,
        n_actions: int | None = None,  # None: the propensity matrix's width - 1, or max action + 1
        num_threads: int = 0,  # 0: every CPU this process may use
        seed: int = 0,
    ) -> None:
        store_params(self, locals())

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        return {k: v for k, v in state.items() if k != CACHE}

    def digest(self) -> str:
        """Equal for two fitted models that predict the same: the same class, parameters and
        trees (each booster as LightGBM writes it, to the iteration it predicts with)."""
        h = hashlib.sha256(f"{type(self).__name__} {sorted(self.get_params().items())}".encode())
        for name in sorted(self.boosters_):
            it = self.iterations_[name]
            h.update(f"\0{name} {it}\0".encode())
            h.update(self.boosters_[name].model_to_string(num_iteration=it).encode())
        return h.hexdigest()

    def _shared(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Boosted._get_param_names()}

    def _threads(self) -> int:
        return cpu_threads(self.num_threads)

    def _params(self, objective: dict[str, Any], **override: Any) -> dict[str, Any]:
        return {
            **objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "lambda_l2": self.lambda_l2,
            "max_bin": 63,  # as models.lgbm: counts and days need few bins
            "num_threads": self._threads(),
            "seed": self.seed,
            # Same seed, same data -> same model, whatever the thread timing.
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            **override,
        }

    def _n_actions(self, arm: Ints, propensity: npt.ArrayLike | None) -> int:
        k = int(arm.max()) if propensity is None else np.shape(propensity)[1] - 1
        k = k if self.n_actions is None else self.n_actions
        if arm.max() > k:
            raise ValueError(f"action {arm.max() - 1} logged, but only {k} actions (0..{k - 1})")
        return int(k)

    def _start(self, X: Rows, n_actions: int) -> None:  # noqa: N803
        self.__dict__.pop(CACHE, None)  # prepared from the previous fit's boosters
        self.n_features_in_ = X.shape[1]
        self.n_actions_ = n_actions
        self.boosters_: dict[str, lgb.Booster] = {}
        self.iterations_: dict[str, int] = {}

    def _fit_booster(
        self,
        name: str,
        params: dict[str, Any],
        rows: tuple[Rows, Floats],
        val: tuple[Rows, Floats] | None,
        categorical: Sequence[int],
    ) -> None:
        """Early stopping needs rows the booster does not train on: the eval rows given, else
        a seeded share of the training rows."""
        X, y = rows  # noqa: N806
        if val is None or len(val[1]) < MIN_VALID:
            keep = np.random.default_rng(self.seed).uniform(size=len(y)) >= VALID_SHARE
            X, y, val = X[keep], y[keep], (X[~keep], y[~keep])  # noqa: N806
        train = lgb.Dataset(X, y, categorical_feature=list(categorical), free_raw_data=True)
        valid = lgb.Dataset(val[0], val[1], reference=train)
        booster = lgb.train(
            params,
            train,
            num_boost_round=self.max_rounds,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.boosters_[name] = booster
        self.iterations_[name] = int(booster.best_iteration or booster.current_iteration())

    def _score(self, name: str, X: Rows) -> Floats:  # noqa: N803
        """(n, outputs) predictions of one booster; a row or a few go through LightGBM's
        prepared single-row predictor (``models.single_row``), which skips the per-call set-up
        that costs more than the trees themselves."""
        if len(X) <= ONE_BY_ONE:
            fast: dict[str, SingleRow] = self.__dict__.setdefault(CACHE, {})
            predictor = fast.get(name)
            if predictor is None:
                predictor = fast[name] = SingleRow(self.boosters_[name], self.iterations_[name])
            return np.array([predictor.predict(row) for row in X]).reshape(len(X), -1)
        threads = 1 if len(X) <= SMALL_BATCH else self._threads()
        out = self.boosters_[name].predict(
            X, num_iteration=self.iterations_[name], num_threads=threads
        )
        return np.asarray(out, dtype=np.float64).reshape(len(X), -1)

    def _score_where(self, name: str, X: Rows, where: Bools | None) -> Floats:  # noqa: N803
        """(n,) first output of one booster, scored only on the rows ``where`` is true (0
        elsewhere; None: every row). A row's score does not depend on the others scored with
        it, so the rows scored are what scoring them all gives."""
        if where is None or where.all():
            return self._score(name, X)[:, 0]
        out = np.zeros(len(X))
        if where.any():
            out[where] = self._score(name, X[where])[:, 0]
        return out

    def _matrix(self, X: npt.ArrayLike) -> Rows:  # noqa: N803
        out = np.ascontiguousarray(X, dtype=np.float32)
        if out.ndim != 2 or out.shape[1] != self.n_features_in_:
            raise ValueError(f"X must be (n, {self.n_features_in_}), not {out.shape}")
        return out


def data_of(X: npt.ArrayLike, action: npt.ArrayLike, y: npt.ArrayLike | None) -> Data:  # noqa: N803
    rows = np.ascontiguousarray(X, dtype=np.float32)
    arm = arms_from_actions(action)
    out = np.zeros(len(arm)) if y is None else np.asarray(y, dtype=np.float64)
    if rows.ndim != 2 or not rows.shape[0] == len(arm) == len(out):
        raise ValueError(
            f"X (n, d), action (n,) and y (n,) expected, not {rows.shape}, {arm.shape}, {out.shape}"
        )
    return Data(rows, arm, out)


def eval_data_of(eval_set: EvalSet | None, with_y: bool) -> Data | None:
    if eval_set is None:
        return None
    if with_y and (len(eval_set) < 3 or eval_set[2] is None):
        raise ValueError("eval_set needs (X_val, action_val, y_val[, propensity_val])")
    return data_of(eval_set[0], eval_set[1], eval_set[2] if with_y else None)
