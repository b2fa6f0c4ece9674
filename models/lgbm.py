"""LightGBM classifier with early stopping on the validation window and calibrated output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from features.encoding import CategoricalEncoder
from models.calibration import Method
from models.derived import with_ratios
from models.estimators import Floats, Ints, JourneyClassifier
from models.forest import Forest
from models.inputs import EncodedInputs
from models.paths import PathTables, from_raw, probabilities
from models.single_row import SingleRow
from models.threads import cpu_threads

# Built on first use from the fitted booster, for serving; never pickled.
CACHES = ("path_tables_", "single_row_", "record_plan_", "vector_plans_", "forest_",
          "input_signature_")
FOREST_ROWS = 20_000  # from this many rows predict_raw routes them through the compiled forest
# Linear trees fit a linear model in each leaf; the compiled forest, the decision-path credits
# (reason codes) and batch scoring read a leaf as its constant, so such a model would be
# served probabilities up to 0.4 away from LightGBM's own (measured).
LINEAR_TREE = ("linear_tree is not supported: Journey serves LightGBM models through compiled "
               "trees and reason codes that read each leaf as a constant, so a linear-tree "
               "model would be served other probabilities than it was evaluated with")


def booster_params(est: Any, objective: dict[str, object]) -> dict[str, object]:
    """LightGBM's parameters from an estimator's tree settings (``learning_rate``,
    ``num_leaves``... as this module's classifier names them; ``linear_tree`` where it has one)."""
    return {
        **objective,
        "learning_rate": est.learning_rate,
        "num_leaves": est.num_leaves,
        "min_data_in_leaf": est.min_data_in_leaf,
        "feature_fraction": est.feature_fraction,
        "bagging_fraction": est.bagging_fraction,
        "bagging_freq": 1 if est.bagging_fraction < 1 else 0,
        "lambda_l2": est.lambda_l2,
        "max_bin": est.max_bin,
        # Linear leaves extrapolate past the training range (e.g. longer recencies than
        # any training cutoff could show); plain leaves stay flat there.
        "linear_tree": getattr(est, "linear_tree", False),
        "num_threads": cpu_threads(est.num_threads),
        "seed": est.seed,
        # Same seed, same data -> same model, whatever the thread timing.
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


class LightGBMClassifier(EncodedInputs, JourneyClassifier):
    """Gradient-boosted trees on every selected feature; categoricals as LightGBM categories.

    Training stops when the validation log loss has not improved for
    ``early_stopping_rounds`` rounds; the best iteration is kept.
    """

    def __init__(
        self,
        classes: Sequence[str] = ("0", "1"),
        columns: Sequence[str] | None = None,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        max_bin: int = 63,  # counts and days need few bins; 255 costs ~7 % more time
        linear_tree: bool = False,
        ratios: bool = True,
        max_rounds: int = 2000,
        early_stopping_rounds: int = 50,
        num_threads: int = 0,  # 0: every CPU this process may use
        calibration: Method = "auto",
        seed: int = 0,
    ) -> None:
        self.classes = classes
        self.columns = columns
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.linear_tree = linear_tree
        self.ratios = ratios
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads
        self.calibration = calibration
        self.seed = seed

    def __getstate__(self) -> dict[str, object]:
        """Pickles (MLflow artifacts) carry the fitted model, not the serving caches (one holds
        C handles)."""
        state: dict[str, object] = super().__getstate__()
        return {k: v for k, v in state.items() if k not in CACHES}

    def _params(self) -> dict[str, object]:
        k = len(self.classes)
        objective: dict[str, object] = (
            {"objective": "multiclass", "num_class": k} if k > 2 else {"objective": "binary"})
        return booster_params(self, objective)

    def leaves(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        """Each row's leaf in every tree up to the best iteration: all serving needs, as the
        probabilities (``proba_from_leaves``) and the reasons (``models.paths``) follow."""
        return self.forest().leaves(matrix)

    def proba_from_leaves(self, leaves: npt.NDArray[np.int64]) -> Floats:
        """``predict_proba`` from leaf indices: calibrated, one column per class."""
        p = self.calibrator_.transform(probabilities(self.path_tables(), leaves))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def proba_batch(self, matrix: npt.NDArray[np.float32]) -> Floats:
        """``proba_matrix`` for many rows: the compiled forest on every core (batch scoring)."""
        self.prepare()
        tables = self.path_tables()
        p = self.calibrator_.transform(from_raw(tables, self.forest().raw(matrix, tables)))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def prepare(self) -> None:
        """Build the path tables and the compiled forest now, from one dump of the trees: a
        service or scoring run loads them before its first request, and each dumping the
        booster on its own made the demo's three models take 0.87-1.01 s, not 0.42-0.54 s."""
        if getattr(self, "path_tables_", None) is not None and \
                getattr(self, "forest_", None) is not None:
            return
        self.check_constant_leaves()
        dump = self.booster_.dump_model(num_iteration=self.best_iteration_)
        if getattr(self, "path_tables_", None) is None:
            setattr(self, "path_tables_",  # noqa: B010 - a cache, not a fit attribute
                    PathTables.of(self.booster_, self.best_iteration_, dump))
        if getattr(self, "forest_", None) is None:
            setattr(self, "forest_",  # noqa: B010
                    Forest.of(self.booster_, self.best_iteration_, dump))

    def forest(self) -> Forest:
        """The trees up to the best iteration as compiled-routing arrays, built on first use."""
        forest: Forest | None = getattr(self, "forest_", None)
        if forest is None:
            self.check_constant_leaves()
            forest = Forest.of(self.booster_, self.best_iteration_)
            setattr(self, "forest_", forest)  # noqa: B010 - a cache, not a fit attribute
        return forest

    def single_row(self) -> SingleRow:
        """The prepared one-row predictor (``models.single_row``), built on first use."""
        fast: SingleRow | None = getattr(self, "single_row_", None)
        if fast is None:
            fast = SingleRow(self.booster_, self.best_iteration_)
            setattr(self, "single_row_", fast)  # noqa: B010
        return fast

    def proba_matrix(self, matrix: npt.NDArray[np.float32]) -> Floats:
        """Calibrated probabilities (one column per class) from an encoded matrix, on one
        thread: serving scores a row at a time, where OpenMP start-up costs more than it saves."""
        if matrix.shape[0] == 1:
            raw = self.single_row().predict(matrix[0])[None, :]
            raw = raw[:, 0] if raw.shape[1] == 1 else raw
        else:
            raw = np.asarray(
                self.booster_.predict(matrix, num_iteration=self.best_iteration_, num_threads=1),
                dtype=np.float64,
            )
        p = self.calibrator_.transform(raw)
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def check_constant_leaves(self) -> None:
        """ValueError for a linear-tree model (LINEAR_TREE says why)."""
        if getattr(self, "linear_tree", False):  # older pickles: no such attribute
            raise ValueError(LINEAR_TREE)

    def path_tables(self) -> PathTables:
        """Decision-path credits of every leaf (``models.paths``), built on first use."""
        tables: PathTables | None = getattr(self, "path_tables_", None)  # older pickles: none
        if tables is None:
            self.check_constant_leaves()
            tables = PathTables.of(self.booster_, self.best_iteration_)
            setattr(self, "path_tables_", tables)  # noqa: B010 - a cache, not a fit attribute
        return tables

    def _fit_raw(self, X: pd.DataFrame, y: Ints, X_val: pd.DataFrame, y_val: Ints) -> None:  # noqa: N803
        self.check_constant_leaves()
        for cache in CACHES:  # built from the old booster: rebuilt on first use
            self.__dict__.pop(cache, None)
        self.encoder_ = CategoricalEncoder("codes").fit(with_ratios(X) if self.ratios else X)
        names = list(self.encoder_.feature_names_out_)
        cats = [names.index(c) for c in self.encoder_.categorical_]
        train = lgb.Dataset(
            self.matrix(X), y, feature_name=names, categorical_feature=cats, free_raw_data=True
        )
        valid = lgb.Dataset(self.matrix(X_val), y_val, reference=train)
        self.booster_ = lgb.train(
            self._params(),
            train,
            num_boost_round=self.max_rounds,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        booster = self.booster_
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.valid_log_loss_ = float(
            next(iter(self.booster_.best_score["valid"].values()))
        )
        self.train_rows_ = len(X)

    def splits(self) -> int:
        """How many splits the trees up to the best iteration make: 0 when every row gets the
        same score (LightGBM then stops quietly, with a valid but useless model)."""
        counts = self.booster_.feature_importance("split", iteration=self.best_iteration_)
        return int(np.sum(counts))

    def no_split(self) -> str | None:
        """Why the booster gives everyone the same score, in words (None: it made a split)."""
        if self.splits() > 0:
            return None
        rows: int | None = getattr(self, "train_rows_", None)  # older pickles: not recorded
        on = "" if rows is None else f" with {rows:,} training rows"
        if rows is not None and rows < 2 * self.min_data_in_leaf:
            # Each side of a split needs min_data_in_leaf rows: the usual cause on a small log.
            cause = f"min_data_in_leaf {self.min_data_in_leaf}{on}"
        else:
            cause = f"no split gained anything{on}, min_data_in_leaf {self.min_data_in_leaf}"
        return f"the booster made no split ({cause}): every customer gets the same score"

    def predict_raw(self, X: pd.DataFrame) -> Floats:  # noqa: N803
        matrix = self.matrix(X)
        if len(matrix) >= FOREST_ROWS:
            # Validation and test frames (calibration, evaluation): the compiled forest gives
            # LightGBM's probabilities to the bit in half its time (200k rows of the next-stage
            # model: 5.9 s -> 2.9 s); building it, 0.1-1.7 s, is paid once per model.
            tables = self.path_tables()
            return from_raw(tables, self.forest().raw(matrix, tables))
        out: Floats = np.asarray(
            self.booster_.predict(matrix, num_iteration=self.best_iteration_),
            dtype=np.float64,
        )
        return out

    def importances(self) -> pd.Series:
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.booster_.feature_name()).sort_values(ascending=False)
