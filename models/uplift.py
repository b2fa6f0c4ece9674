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

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from models.boosted import (
    Bools,
    Boosted,
    Data,
    EvalSet,
    Floats,
    Rows,
    data_of,
    eval_data_of,
    store_params,
)


class PropensityModel(Boosted):
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
        store_params(self, locals())

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
        data, val = data_of(X, action, None), eval_data_of(eval_set, with_y=False)
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


class TLearner(Boosted):
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
        store_params(self, locals())

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
        data, val = data_of(X, action, y), eval_data_of(eval_set, with_y=True)
        self._start(data.X, self._n_actions(data.arm, propensity))
        self._fit_arms(data, val, categorical)
        return self

    def _fit_arms(self, data: Data, val: Data | None, categorical: Sequence[int]) -> None:
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

    def predict_arms(self, X: npt.ArrayLike, *, wanted: Bools | None = None) -> Floats:  # noqa: N803
        """(n, K + 1) outcome rates: column 0 = control, column k = action k - 1 (a skipped
        action gets the control's rate: no evidence of any effect). ``wanted`` (n, K): the
        (row, action) pairs to score; the others get the control's rate too (None: all)."""
        rows = self._matrix(X)
        mu0 = self._score("arm0", rows)[:, 0]
        out = np.empty((len(rows), self.n_actions_ + 1))
        out[:, 0] = mu0
        for k in range(1, self.n_actions_ + 1):
            name = f"arm{k}"
            if name not in self.boosters_:
                out[:, k] = mu0
                continue
            where = None if wanted is None else wanted[:, k - 1]
            out[:, k] = self._score_where(name, rows, where)
            if where is not None:
                out[~where, k] = mu0[~where]
        return out

    def predict(self, X: npt.ArrayLike) -> Floats:  # noqa: N803
        """(n, K) uplift of each action over no action; 0 for skipped actions."""
        return self.predict_with_control(X)[1]

    def predict_with_control(self, X: npt.ArrayLike, *,  # noqa: N803
                             wanted: Bools | None = None) -> tuple[Floats, Floats]:
        """((n,) outcome rate with no action, (n, K) uplift), scoring mu_0 once: what valuing a
        discount needs besides the uplift. ``wanted`` as in ``predict_arms`` (uplift 0 at the
        pairs not wanted)."""
        mu = self.predict_arms(X, wanted=wanted)
        out: Floats = mu[:, 1:] - mu[:, :1]
        return mu[:, 0], out


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
        store_params(self, locals())

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
        data, val = data_of(X, action, y), eval_data_of(eval_set, with_y=True)
        self._start(data.X, self._n_actions(data.arm, propensity))
        self._fit_arms(data, val, categorical)
        self.propensity_model_ = (
            PropensityModel(**self._shared())
            .set_params(n_actions=self.n_actions_)
            .fit(data.X, data.arm - 1, eval_set=eval_set, categorical=categorical)
        )
        self._fit_effects(data, val, categorical)
        return self

    def _fit_effects(self, data: Data, val: Data | None, categorical: Sequence[int]) -> None:
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

    def predict(self, X: npt.ArrayLike, propensity: npt.ArrayLike | None = None, *,  # noqa: N803
                wanted: Bools | None = None) -> Floats:
        """(n, K) uplift: g_a tau0_a + (1 - g_a) tau1_a; 0 for skipped actions. ``propensity``
        (n, K + 1), if given, replaces the fitted propensity model's. ``wanted`` (n, K): the
        (row, action) pairs to score, 0 at the others (None: all). A scoring run asks only for
        the actions a customer may be sent: most customers may get one or two of the catalog's
        actions, and the effect models are most of the cost."""
        rows = self._matrix(X)
        e = (
            self.propensity_model_.predict_proba(rows)
            if propensity is None
            else np.asarray(propensity, dtype=np.float64).reshape(len(rows), -1)
        )
        tau0, tau1 = np.zeros((2, len(rows), self.n_actions_))
        for k in range(1, self.n_actions_ + 1):
            if k - 1 not in self.skipped_:  # else both stay 0
                where = None if wanted is None else wanted[:, k - 1]
                tau0[:, k - 1] = self._score_where(f"tau0_{k}", rows, where)
                tau1[:, k - 1] = self._score_where(f"tau1_{k}", rows, where)
        g = e[:, 1:] / (e[:, 1:] + e[:, :1])  # all actions at once: one row is mostly overhead
        out: Floats = g * tau0 + (1 - g) * tau1
        return out

    def predict_with_control(self, X: npt.ArrayLike,  # noqa: N803
                             propensity: npt.ArrayLike | None = None, *,
                             wanted: Bools | None = None) -> tuple[Floats, Floats]:
        """((n,) outcome rate with no action (stage 1's mu_0), (n, K) uplift); ``propensity``
        and ``wanted`` as in ``predict``."""
        rows = self._matrix(X)
        control: Floats = self._score("arm0", rows)[:, 0]
        return control, self.predict(rows, propensity, wanted=wanted)


def _imputed(data: Data, mu: Floats, k: int, arm: int) -> tuple[Rows, Floats]:
    """Arm ``arm``'s rows with their effect of arm k imputed from the other arm's model:
    y - mu_0(x) on arm k's rows, mu_k(x) - y on the control's."""
    rows = data.arm == arm
    y, m = data.y[rows], mu[rows]
    return data.X[rows], y - m[:, 0] if arm == k else m[:, k] - y
