"""Uplift learners on LightGBM: how much each marketing action changes a customer's chance of
the outcome, against doing nothing.

Inputs follow the logs: ``action`` is 0..K-1, or -1 for no action (the control). Inside, arms
are numbered as in ``models.ope``: arm 0 = control, arm k = action k - 1. ``predict`` returns
one uplift column per action (n, K); ``predict_arms`` the outcome rate of every arm (n, K + 1).

Treatment is rare (a few % of rows over K actions) and effects are a few points, so every model
is small and regularised, early-stops on the eval rows of its own arm, and an arm too small to
learn from is skipped (uplift 0, reason in ``skipped_``) rather than fitted on noise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from models.ope import arms_from_actions
from models.single_row import SingleRow

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Rows = npt.NDArray[np.float32]
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


def _store(estimator: BaseEstimator, params: dict[str, Any]) -> None:
    """scikit-learn's convention: ``__init__`` keeps every parameter as given, under its name
    (``get_params`` and ``clone`` read them back); validation waits for ``fit``."""
    for name, value in params.items():
        if name != "self":
            setattr(estimator, name, value)


class _Data(NamedTuple):
    X: Rows
    arm: Ints
    y: Floats


class _Boosted(BaseEstimator):  # type: ignore[misc]
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
        _store(self, locals())

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        return {k: v for k, v in state.items() if k != CACHE}

    def _shared(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _Boosted._get_param_names()}

    def _threads(self) -> int:
        return self.num_threads or len(os.sched_getaffinity(0))

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

    def _matrix(self, X: npt.ArrayLike) -> Rows:  # noqa: N803
        out = np.ascontiguousarray(X, dtype=np.float32)
        if out.ndim != 2 or out.shape[1] != self.n_features_in_:
            raise ValueError(f"X must be (n, {self.n_features_in_}), not {out.shape}")
        return out


def _data(X: npt.ArrayLike, action: npt.ArrayLike, y: npt.ArrayLike | None) -> _Data:  # noqa: N803
    rows = np.ascontiguousarray(X, dtype=np.float32)
    arm = arms_from_actions(action)
    out = np.zeros(len(arm)) if y is None else np.asarray(y, dtype=np.float64)
    if rows.ndim != 2 or not rows.shape[0] == len(arm) == len(out):
        raise ValueError(
            f"X (n, d), action (n,) and y (n,) expected, not {rows.shape}, {arm.shape}, {out.shape}"
        )
    return _Data(rows, arm, out)


def _eval_data(eval_set: EvalSet | None, with_y: bool) -> _Data | None:
    if eval_set is None:
        return None
    if with_y and (len(eval_set) < 3 or eval_set[2] is None):
        raise ValueError("eval_set needs (X_val, action_val, y_val[, propensity_val])")
    return _data(eval_set[0], eval_set[1], eval_set[2] if with_y else None)


class PropensityModel(_Boosted):
    """P(arm | x) of the logging policy: one multiclass booster, column 0 = no action.

    ``predict_proba`` floors every probability at ``clip`` and renormalises (so the floor
    after renormalising is clip / (1 + (K + 1) clip), practically ``clip``): a zero propensity
    would make an inverse weight infinite, and LightGBM's softmax can get close to zero for
    actions the logging policy almost never took for that kind of customer.
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_data_in_leaf: int = 200,
        lambda_l2: float = 1.0,
        max_rounds: int = 1000,
        early_stopping_rounds: int = 50,
        n_actions: int | None = None,
        num_threads: int = 0,
        seed: int = 0,
        clip: float = 1e-4,
    ) -> None:
        _store(self, locals())

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803
        action: npt.ArrayLike,
        y: npt.ArrayLike | None = None,
        propensity: npt.ArrayLike | None = None,
        eval_set: EvalSet | None = None,
        categorical: Sequence[int] = (),
    ) -> PropensityModel:
        """Learn the logging policy from the actions it took (``y`` and ``propensity`` are
        accepted for the learners' common signature and not used)."""
        data, val = _data(X, action, None), _eval_data(eval_set, with_y=False)
        self._start(data.X, self._n_actions(data.arm, propensity))
        params = self._params({"objective": "multiclass", "num_class": self.n_actions_ + 1})
        held = None if val is None else (val.X, val.arm.astype(np.float64))
        self._fit_booster(
            "propensity", params, (data.X, data.arm.astype(np.float64)), held, categorical
        )
        return self

    def predict_proba(self, X: npt.ArrayLike) -> Floats:  # noqa: N803
        """(n, K + 1): column 0 = no action, column k = action k - 1."""
        p = np.maximum(self._score("propensity", self._matrix(X)), self.clip)
        out: Floats = p / p.sum(axis=1, keepdims=True)
        return out


class TLearner(_Boosted):
    """One binary classifier per arm; uplift = mu_action(x) - mu_control(x).

    Simple and the source of ``predict_arms`` (what doubly robust OPE and a "propensity x
    value" ranking need), but each action's model sees only that action's few rows, so its
    noise and its different regularisation go straight into the uplift: see ``XLearner``.
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_data_in_leaf: int = 200,
        lambda_l2: float = 1.0,
        max_rounds: int = 1000,
        early_stopping_rounds: int = 50,
        n_actions: int | None = None,
        num_threads: int = 0,
        seed: int = 0,
        min_arm_rows: int = 50,
        min_arm_positives: int = 5,
    ) -> None:
        _store(self, locals())

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803
        action: npt.ArrayLike,
        y: npt.ArrayLike,
        propensity: npt.ArrayLike | None = None,
        eval_set: EvalSet | None = None,
        categorical: Sequence[int] = (),
    ) -> TLearner:
        """Fit mu_k on arm k's rows, early-stopped on arm k's eval rows (``propensity`` only
        sets K when ``n_actions`` is None)."""
        data, val = _data(X, action, y), _eval_data(eval_set, with_y=True)
        self._start(data.X, self._n_actions(data.arm, propensity))
        self._fit_arms(data, val, categorical)
        return self

    def _fit_arms(self, data: _Data, val: _Data | None, categorical: Sequence[int]) -> None:
        self.skipped_: dict[int, str] = {}
        params = self._params({"objective": "binary"})
        for k in range(self.n_actions_ + 1):
            rows = data.arm == k
            why = self._too_few(data.y[rows])
            if why and k == 0:
                raise ValueError(f"no uplift without a control group: the control arm has {why}")
            if why:
                self.skipped_[k - 1] = why
                continue
            held = None if val is None else (val.X[val.arm == k], val.y[val.arm == k])
            self._fit_booster(f"arm{k}", params, (data.X[rows], data.y[rows]), held, categorical)

    def _too_few(self, y: Floats) -> str:
        positives = int(np.sum(y > 0))
        if len(y) < self.min_arm_rows:
            return f"{len(y)} rows (< {self.min_arm_rows})"
        if min(positives, len(y) - positives) < self.min_arm_positives:
            return (
                f"{positives} positive and {len(y) - positives} negative outcomes "
                f"(< {self.min_arm_positives} of either)"
            )
        return ""

    def predict_arms(self, X: npt.ArrayLike) -> Floats:  # noqa: N803
        """(n, K + 1) outcome rates: column 0 = control, column k = action k - 1 (a skipped
        action gets the control's rate: no evidence of any effect)."""
        rows = self._matrix(X)
        mu0 = self._score("arm0", rows)[:, 0]
        out = np.empty((len(rows), self.n_actions_ + 1))
        out[:, 0] = mu0
        for k in range(1, self.n_actions_ + 1):
            name = f"arm{k}"
            out[:, k] = self._score(name, rows)[:, 0] if name in self.boosters_ else mu0
        return out

    def predict(self, X: npt.ArrayLike) -> Floats:  # noqa: N803
        """(n, K) uplift of each action over no action; 0 for skipped actions."""
        mu = self.predict_arms(X)
        out: Floats = mu[:, 1:] - mu[:, :1]
        return out


class XLearner(TLearner):
    """Künzel et al. (2019): the T-learner's mu's impute each row's effect, which is then
    regressed on x, and the two imputations are blended by the propensity.

    Why it suits rare treatment: mu_0 is learnt from the huge control group, so the treated
    rows' imputed effects y - mu_0(x) carry little model error, and the effect tau1 (smoother
    than the outcome itself: a few points, varying by customer type) can be learnt from a few
    hundred treated rows, where a T-learner must learn the whole outcome surface mu_a from them.
    The blend weight g_a = e_a / (e_a + e_0) is small where action a is rare, so tau1 dominates
    there, and the control-side tau0 (built on the weak mu_a) counts only where a was common.

    ``predict`` needs g for customers not in the logs, so ``fit`` always fits a
    ``PropensityModel`` (``propensity_model_``); ``predict(X, propensity=...)`` uses known
    assignment probabilities instead (e.g. a randomised test's design).
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_data_in_leaf: int = 200,
        lambda_l2: float = 1.0,
        max_rounds: int = 1000,
        early_stopping_rounds: int = 50,
        n_actions: int | None = None,
        num_threads: int = 0,
        seed: int = 0,
        min_arm_rows: int = 50,
        min_arm_positives: int = 5,
        effect_num_leaves: int = 7,
        effect_lambda_l2: float = 10.0,
    ) -> None:
        _store(self, locals())

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803
        action: npt.ArrayLike,
        y: npt.ArrayLike,
        propensity: npt.ArrayLike | None = None,
        eval_set: EvalSet | None = None,
        categorical: Sequence[int] = (),
    ) -> XLearner:
        """Stage 1: the T-learner's mu per arm; stage 2: per action, tau1 on its treated rows
        and tau0 on the control rows; plus the propensity model that gives g at scoring time.
        ``propensity`` only sets K when ``n_actions`` is None."""
        data, val = _data(X, action, y), _eval_data(eval_set, with_y=True)
        self._start(data.X, self._n_actions(data.arm, propensity))
        self._fit_arms(data, val, categorical)
        self.propensity_model_ = (
            PropensityModel(**self._shared())
            .set_params(n_actions=self.n_actions_)
            .fit(data.X, data.arm - 1, eval_set=eval_set, categorical=categorical)
        )
        self._fit_effects(data, val, categorical)
        return self

    def _fit_effects(self, data: _Data, val: _Data | None, categorical: Sequence[int]) -> None:
        mu = self.predict_arms(data.X)
        mu_val = None if val is None else self.predict_arms(val.X)
        # Effects are smaller and smoother than outcomes: fewer leaves, a stronger L2 pull to 0.
        params = self._params(
            {"objective": "regression"},
            num_leaves=self.effect_num_leaves,
            lambda_l2=self.effect_lambda_l2,
        )
        for k in range(1, self.n_actions_ + 1):
            if k - 1 in self.skipped_:
                continue
            for side, arm in (("tau1", k), ("tau0", 0)):
                held = None if val is None or mu_val is None else _imputed(val, mu_val, k, arm)
                self._fit_booster(
                    f"{side}_{k}", params, _imputed(data, mu, k, arm), held, categorical
                )

    def predict(self, X: npt.ArrayLike, propensity: npt.ArrayLike | None = None) -> Floats:  # noqa: N803
        """(n, K) uplift: g_a tau0_a + (1 - g_a) tau1_a; 0 for skipped actions. ``propensity``
        (n, K + 1), if given, replaces the fitted propensity model's."""
        rows = self._matrix(X)
        e = (
            self.propensity_model_.predict_proba(rows)
            if propensity is None
            else np.asarray(propensity, dtype=np.float64).reshape(len(rows), -1)
        )
        tau0, tau1 = np.zeros((2, len(rows), self.n_actions_))
        for k in range(1, self.n_actions_ + 1):
            if k - 1 not in self.skipped_:  # else both stay 0
                tau0[:, k - 1] = self._score(f"tau0_{k}", rows)[:, 0]
                tau1[:, k - 1] = self._score(f"tau1_{k}", rows)[:, 0]
        g = e[:, 1:] / (e[:, 1:] + e[:, :1])  # all actions at once: one row is mostly overhead
        out: Floats = g * tau0 + (1 - g) * tau1
        return out


def _imputed(data: _Data, mu: Floats, k: int, arm: int) -> tuple[Rows, Floats]:
    """Arm ``arm``'s rows with their effect of arm k imputed from the other arm's model:
    y - mu_0(x) on arm k's rows, mu_k(x) - y on the control's."""
    rows = data.arm == arm
    y, m = data.y[rows], mu[rows]
    return data.X[rows], y - m[:, 0] if arm == k else m[:, k] - y
