"""The uplift model Journey registers and serves: feature encoding + propensity model + an
uplift learner (``models.uplift``) for one outcome, in one estimator.

Like ``JourneyClassifier`` it takes the feature frame (or online vectors) and carries its
preprocessing, so the object logged to MLflow is everything serving needs. Actions are named
(the catalog's ids); the frame's action column holds ``""`` for "no action".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from features.encoding import CategoricalEncoder
from models.derived import with_ratios
from models.inputs import EncodedInputs
from models.uplift import PropensityModel, TLearner, XLearner
from models.uplift_support import population_propensities, support_floors, within_support

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
LEARNERS = {"t": TLearner, "x": XLearner}
NO_ACTION = ""
CACHES = ("record_plan_", "vector_plans_", "propensity_digest_")


def registered_name(outcome: str) -> str:
    """The registry name of an outcome's uplift model (training registers, serving loads)."""
    return f"journey-uplift-{outcome}"


OTHER_ACTION = -2  # an action the model does not know (``action_codes(..., lenient=True)``)


def action_codes(actions: Sequence[str], names: Sequence[str], lenient: bool = False
                 ) -> npt.NDArray[np.int64]:
    """-1 for no action, else the index in ``names``; actions outside it are errors, or
    OTHER_ACTION when ``lenient`` (judging a model on decisions that include an action added
    to the catalog after it was trained)."""
    index = {n: i for i, n in enumerate(names)}
    index[NO_ACTION] = -1
    if lenient:
        return np.fromiter((index.get(a, OTHER_ACTION) for a in actions), np.int64,
                           len(actions))
    try:
        return np.fromiter((index[a] for a in actions), np.int64, len(actions))
    except KeyError as exc:
        raise ValueError(f"action {exc.args[0]!r} is not one of {list(names)}") from exc


class JourneyUplift(EncodedInputs, BaseEstimator):  # type: ignore[misc]
    """Uplift of one outcome for each action: P(outcome | action) - P(outcome | no action)."""

    def __init__(
        self,
        learner: str = "x",
        outcome: str = "convert",
        actions: Sequence[str] = (),
        columns: Sequence[str] | None = None,
        ratios: bool = True,
        params: dict[str, Any] | None = None,
        num_threads: int = 0,
        seed: int = 0,
        control_rate: float = 1.0,
    ) -> None:
        self.learner = learner
        self.outcome = outcome
        self.actions = actions
        self.columns = columns
        self.ratios = ratios
        self.params = params
        self.num_threads = num_threads
        self.seed = seed
        # The share of uncontacted decision points the training frame kept
        # (``features.decisions``): what the logging policy's probabilities are rescaled by.
        self.control_rate = control_rate

    def __getstate__(self) -> dict[str, object]:
        state: dict[str, object] = super().__getstate__()
        return {k: v for k, v in state.items() if k not in CACHES}

    def __setstate__(self, state: dict[str, object]) -> None:
        # Models registered before the support floors: no control rate, and no floors (their
        # recommendations are not restricted, as when they were trained).
        state.setdefault("control_rate", 1.0)
        super().__setstate__(state)

    def fit(
        self,
        X: pd.DataFrame,  # noqa: N803
        action: Sequence[str],
        y: npt.ArrayLike,
        eval_set: tuple[pd.DataFrame, Sequence[str], npt.ArrayLike],
        propensity: PropensityModel | None = None,
    ) -> JourneyUplift:
        """Fit on the decision rows (X, action, y); early-stop on ``eval_set``. A fitted
        ``propensity`` model (same rows and encoding) saves a T-learner fitting its own."""
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {sorted(LEARNERS)}, not {self.learner!r}")
        for cache in CACHES:
            self.__dict__.pop(cache, None)
        self.actions_ = tuple(self.actions) or tuple(sorted(set(action) - {NO_ACTION}))
        self.feature_names_in_ = np.asarray(
            list(self.columns) if self.columns else list(X.columns), dtype=object
        )
        inputs = X[list(self.feature_names_in_)]
        self.encoder_ = CategoricalEncoder("codes").fit(
            with_ratios(inputs) if self.ratios else inputs
        )
        X_val, a_val, y_val = eval_set  # noqa: N806
        m, m_val = self.matrix(X), self.matrix(X_val)
        a, a_v = action_codes(list(action), self.actions_), action_codes(list(a_val), self.actions_)
        yf, yv = np.asarray(y, np.float64), np.asarray(y_val, np.float64)
        common = {"num_threads": self.num_threads, "seed": self.seed,
                  "n_actions": len(self.actions_)}
        cats = self.categorical_positions()
        est = LEARNERS[self.learner](**common, **(self.params or {}))
        self.learner_ = est.fit(m, a, yf, eval_set=(m_val, a_v, yv), categorical=cats)
        # The logging policy's model: the X-learner fits one for its blend; a T-learner
        # borrows a given one (or fits its own) for the inverse-propensity weighted Qini.
        fitted = getattr(self.learner_, "propensity_model_", None)
        if fitted is None:
            fitted = propensity or PropensityModel(**common).fit(
                m, a, eval_set=(m_val, a_v), categorical=cats)
        self.propensity_ = fitted
        # Only the contacted rows set a floor (the median where each action was sent): a
        # fifth of a decision frame, so scored alone they cost a fifth.
        sent = np.flatnonzero(a >= 0)
        self.support_floor_ = support_floors(a[sent] + 1, population_propensities(
            fitted.predict_proba(m[sent]), self.control_rate))
        return self

    @property
    def skipped_actions(self) -> dict[str, str]:
        """Actions with too little data to learn from (uplift 0), and why."""
        skipped: dict[int, str] = getattr(self.learner_, "skipped_", {})
        return {self.actions_[k]: why for k, why in skipped.items()}

    def categorical_positions(self) -> list[int]:
        names = list(self.encoder_.feature_names_out_)
        return [names.index(c) for c in self.encoder_.categorical_]

    def predict_matrix(self, matrix: npt.NDArray[np.float32]) -> Floats:
        """(n, actions) uplift from an encoded matrix."""
        out: Floats = np.asarray(self.learner_.predict(matrix), dtype=np.float64)
        return out

    def predict_matrix_with_control(self, matrix: npt.NDArray[np.float32],
                                    wanted: Bools | None = None) -> tuple[Floats, Floats]:
        """((n,) the outcome's probability with no action, (n, actions) uplift) from an
        encoded matrix. ``wanted`` (n, actions, in ``actions_``'s order): the (customer,
        action) pairs to estimate, uplift 0 at the others (None: all)."""
        control, uplift = self.learner_.predict_with_control(matrix, wanted=wanted)
        return np.asarray(control, np.float64), np.asarray(uplift, np.float64)

    def predict_shared(self, matrix: npt.NDArray[np.float32], shared: SharedPropensities,
                       wanted: Bools | None = None) -> tuple[Floats, Floats]:
        """``predict_matrix_with_control``, taking the logging policy's probabilities from
        ``shared`` when another model with the same propensity model scored the same rows."""
        learner = self.learner_
        if not isinstance(learner, XLearner) or self.propensity_digest() is None:
            return self.predict_matrix_with_control(matrix, wanted)
        e = self.logging_policy(matrix, shared)
        control, uplift = learner.predict_with_control(matrix, e, wanted=wanted)
        return np.asarray(control, np.float64), np.asarray(uplift, np.float64)

    def logging_policy(self, matrix: npt.NDArray[np.float32],
                       shared: SharedPropensities | None = None) -> Floats:
        """(n, 1 + actions): the logging policy's probabilities as the model's propensity
        model estimates them on the sampled frame; from ``shared`` when another model with
        the same propensity model computed them for the same rows (and left there)."""
        key = self.propensity_digest()
        if shared is None or key is None:
            return np.asarray(self.propensity_.predict_proba(matrix), np.float64)
        e = shared.get(key, matrix)
        if e is None:
            e = shared.put(key, matrix, np.asarray(self.propensity_.predict_proba(matrix),
                                                    np.float64))
        return e

    def supported(self, matrix: npt.NDArray[np.float32],
                  shared: SharedPropensities | None = None) -> Bools | None:
        """(n, actions): where the log explored each action for such a customer, so the
        model's estimate there can be checked (``models.uplift_support``); None for a model
        trained before it learned its floors."""
        floors = self.__dict__.get("support_floor_")
        if floors is None:
            return None
        e = population_propensities(self.logging_policy(matrix, shared), self.control_rate)
        return within_support(e, floors)

    def propensity_digest(self) -> str | None:
        """The digest of the propensity model the uplift blends with (an X-learner's), or
        None when prediction uses none. Computed once (~1.5 ms per 100 trees), at load when
        ``serving`` asks."""
        if "propensity_digest_" not in self.__dict__:
            model = getattr(self.learner_, "propensity_model_", None)
            self.propensity_digest_ = None if model is None else model.digest()
        digest: str | None = self.propensity_digest_
        return digest

    def predict(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        return self.predict_matrix(self.matrix(X))

    def predict_arms(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """(n, 1 + actions): the outcome's probability with no action, then with each."""
        out: Floats = np.asarray(self.learner_.predict_arms(self.matrix(X)), dtype=np.float64)
        return out

    def propensities(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        """(n, 1 + actions): the logging policy's estimated choice probabilities."""
        out: Floats = np.asarray(self.propensity_.predict_proba(self.matrix(X)), np.float64)
        return out


class SharedPropensities:
    """The logging policy's probabilities computed for a batch of rows, for the other uplift
    models of the same batch. Every outcome's X-learner is fitted on the same decision rows
    with the same encoding, so their propensity models are the same trees (equal digests):
    scoring them once instead of per outcome saves ~10-20 % of a batch's uplift time."""

    def __init__(self) -> None:
        self._done: list[tuple[str, npt.NDArray[np.float32], Floats]] = []

    def get(self, key: str, matrix: npt.NDArray[np.float32]) -> Floats | None:
        for k, rows, e in self._done:
            if k == key and rows.shape == matrix.shape and (
                    rows is matrix or np.array_equal(rows, matrix, equal_nan=True)):
                return e
        return None

    def put(self, key: str, matrix: npt.NDArray[np.float32], e: Floats) -> Floats:
        self._done.append((key, matrix, e))
        return e
