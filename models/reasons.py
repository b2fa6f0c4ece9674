"""Reason codes: the features that pushed one customer's score up or down, in plain words.

Each raw score (log-odds, or the explained class's raw score for a multiclass model) splits into
one additive contribution per feature plus a bias: by decision paths (``models.paths``, the
default: fast enough to explain every served prediction) or by TreeSHAP (``pred_contrib``). The
features with the largest absolute contributions are the reasons; ``describe`` turns a
feature and its value into a phrase a marketer reads ("no activity in 23 days").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.online import Vectors
from models.lgbm import LightGBMClassifier
from models.paths import path_contributions, top_credits
from models.wording import Value, phrase


@dataclass(slots=True)  # not frozen: a frozen dataclass takes 5x as long to build (batches)
class Reason:
    feature: str
    value: Value  # the input value (categoricals as their string; missing as None)
    contribution: float  # raw-score (log-odds) contribution to the explained class
    direction: Literal["raises", "lowers"]
    text: str


Rows = pd.DataFrame | Sequence[Mapping[str, object]] | Vectors
Method = Literal["path", "shap"]


def contributions(
    model: LightGBMClassifier,
    X: Rows,  # noqa: N803
    matrix: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float64]:
    """Per-feature TreeSHAP raw-score contributions, bias last (offline analysis; serving uses
    the decision-path credits of ``models.paths``, which cost a tenth as much).

    Binary: (n, n_features + 1). Multiclass: (n, k, n_features + 1). Columns follow
    ``model.booster_.feature_name()`` (the encoded matrix: inputs, then derived ratios and
    categoricals as the encoder orders them). ``matrix``: the model's encoded matrix when the
    caller already has it (serving builds it once for the prediction and the reasons).
    """
    k = len(model.classes)
    if len(X) == 0:  # LightGBM cannot predict on no rows
        width = model.booster_.num_feature() + 1
        return np.zeros((0, k, width) if k > 2 else (0, width))
    raw = np.asarray(
        model.booster_.predict(
            _matrix(model, X) if matrix is None else matrix,
            num_iteration=model.best_iteration_,
            pred_contrib=True,
        ),
        dtype=np.float64,
    )
    if k > 2:
        return raw.reshape(len(X), k, -1)
    return raw


def _matrix(model: LightGBMClassifier, X: Rows) -> npt.NDArray[np.float32]:  # noqa: N803
    if isinstance(X, pd.DataFrame):
        return model.matrix(X)
    if isinstance(X, Vectors):
        return model.vectors_matrix(X)
    return model.record_matrix(X)


def _chosen(
    model: LightGBMClassifier,
    matrix: npt.NDArray[np.float32],
    class_index: int | Sequence[int] | npt.NDArray[np.integer] | None,
    leaves: npt.NDArray[np.int64] | None,
) -> npt.NDArray[np.int64] | None:
    """The class each row explains (multiclass): given, or the predicted one."""
    if not model.multiclass:
        return None
    if class_index is None:
        proba = model.proba_matrix(matrix) if leaves is None else model.proba_from_leaves(leaves)
        predicted: npt.NDArray[np.int64] = np.argmax(proba, axis=1).astype(np.int64)
        return predicted
    given: npt.NDArray[np.int64] = np.broadcast_to(
        np.asarray(class_index, dtype=np.int64), (matrix.shape[0],)).copy()
    return given


def explained(
    model: LightGBMClassifier,
    matrix: npt.NDArray[np.float32],
    class_index: int | Sequence[int] | npt.NDArray[np.integer] | None,
    method: Method,
    leaves: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float64]:
    """(n, n_features) contributions to each row's explained class (bias dropped), signed so
    that positive raises the explained probability."""
    n = matrix.shape[0]
    chosen = _chosen(model, matrix, class_index, leaves)
    if method == "shap":
        contrib = contributions(model, [{}] * n, matrix)
        if chosen is not None:
            contrib = contrib[np.arange(n), chosen]
    else:
        if leaves is None and n == 1:
            leaves = model.leaves(matrix)
        contrib = path_contributions(model.booster_, model.path_tables(), matrix, chosen, leaves)
    if not model.multiclass and class_index == 0:
        contrib = -contrib
    return contrib[:, :-1]  # the bias is nobody's reason


def top_reasons(
    model: LightGBMClassifier,
    X: Rows,  # noqa: N803
    stages: Sequence[str],
    k: int = 3,
    class_index: int | Sequence[int] | npt.NDArray[np.integer] | None = None,
    matrix: npt.NDArray[np.float32] | None = None,
    method: Method = "path",
    leaves: npt.NDArray[np.int64] | None = None,
) -> list[list[Reason]]:
    """Per row, the ``k`` features with the largest absolute contribution, strongest first.

    ``X``: a frame, or feature dicts (online vectors). Binary models explain the positive class
    (``class_index=0`` explains the negative one); multiclass models explain ``class_index``
    (one index, or one per row), by default each row's predicted class. Features contributing
    exactly zero are never reasons, so a row may get fewer than ``k``. ``matrix``: the model's
    encoded matrix of ``X`` when the caller already has it, ``leaves`` its leaf indices
    (``model.leaves``). ``method``: decision-path credits
    (default, ~0.1 ms a row) or TreeSHAP (``"shap"``, 1-8 ms a row).
    """
    n = len(X)
    if k <= 0 or n == 0:
        return [[] for _ in range(n)]
    if matrix is None:
        matrix = _matrix(model, X)
    names: list[str] = model.encoder_.feature_names_out_  # the booster's, without a C call
    width = min(k, len(names))
    if method == "path":  # one compiled pass: credits and the top features together
        leaves = model.leaves(matrix) if leaves is None else leaves
        sign = -1.0 if not model.multiclass and class_index == 0 else 1.0
        top, strength = top_credits(model.path_tables(), leaves, width,
                                    _chosen(model, matrix, class_index, leaves), sign)
    else:
        contrib = explained(model, matrix, class_index, method, leaves)
        top = _ranked(contrib, width)
        strength = np.take_along_axis(contrib, top, axis=1)
    values = _inputs(X, names, np.maximum(top, 0), matrix)
    st = tuple(stages)
    reasons: list[list[Reason]] = []
    for js, cs, vs in zip(top.tolist(), strength.tolist(), values, strict=True):
        row: list[Reason] = []
        for j, c, value in zip(js, cs, vs, strict=True):
            if j < 0 or c == 0.0:
                continue
            feature = names[j]
            row.append(Reason(feature, value, c, "raises" if c > 0 else "lowers",
                              phrase(feature, value, st)))
        reasons.append(row)
    return reasons


def _inputs(X: Rows, names: list[str], top: npt.NDArray[np.intp],  # noqa: N803
            matrix: npt.NDArray[np.float32]) -> list[list[Value]]:
    """The value of each chosen feature as given (categoricals as their strings; missing as
    None). Derived ratios exist only in the matrix, where the encoder put their values."""
    n, k = top.shape
    if isinstance(X, Vectors) and n == 1:
        return [_one_row(X, names, top[0].tolist(), matrix[0])]
    rows = np.arange(n)[:, None]
    fallback = matrix[rows, top].astype(np.float64)  # the encoded value
    if isinstance(X, Vectors):
        src = _sources(tuple(names), X.matrix.names)[top]
        numeric = np.where(src >= 0, X.matrix.values[rows, np.maximum(src, 0)], fallback)
        out = [[None if v != v else v for v in row] for row in numeric.tolist()]
        for i, j in zip(*np.nonzero(src < 0), strict=True):  # categoricals and attributes
            found, value = X.value(int(i), names[top[i, j]])
            if found:
                out[i][j] = _value(value)
        return out
    out = [[None if v != v else v for v in row] for row in fallback.tolist()]
    columns: dict[str, npt.NDArray[Any]] = {}
    for i in range(n):
        for j in range(k):
            feature = names[top[i, j]]
            if isinstance(X, pd.DataFrame):
                if feature in X.columns:
                    if feature not in columns:
                        columns[feature] = X[feature].to_numpy()
                    out[i][j] = _value(columns[feature][i])
            elif feature in X[i]:
                out[i][j] = _value(X[i][feature])
    return out


def _one_row(X: Vectors, names: list[str], top: list[int],  # noqa: N803
             encoded: npt.NDArray[np.float32]) -> list[Value]:
    """``_inputs`` for a served request's one row: a few scalar reads, no array passes."""
    columns = X.matrix.names
    where = _positions(columns)
    values = X.matrix.values
    out: list[Value] = []
    for j in top:
        name = names[j]
        c = where.get(name)
        if c is not None:
            v = float(values[0, c])
        else:
            found, value = X.value(0, name)  # categoricals and attributes as their strings
            if found:
                out.append(_value(value))
                continue
            v = float(encoded[j])  # a derived ratio: only the encoder has it
        out.append(None if v != v else v)
    return out


@functools.lru_cache(maxsize=64)
def _positions(columns: tuple[str, ...]) -> dict[str, int]:
    return {name: j for j, name in enumerate(columns)}


@functools.lru_cache(maxsize=64)
def _sources(names: tuple[str, ...], columns: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """For each model feature, its column among the vectors' numeric values (-1: none)."""
    col = {name: j for j, name in enumerate(columns)}
    return np.array([col.get(name, -1) for name in names], np.intp)


def _ranked(contrib: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.intp]:
    """Column indexes of each row's ``k`` largest |contributions|, strongest first."""
    magnitude = np.abs(contrib)
    n, width = magnitude.shape
    if n == 1:  # one request, one row: a plain sort beats the partition machinery
        one: npt.NDArray[np.intp] = np.argsort(-magnitude[0], kind="stable")[None, :k]
        return one
    if k < width:
        top = np.argpartition(-magnitude, k - 1, axis=1)[:, :k]
    else:
        top = np.tile(np.arange(width), (n, 1))
    order = np.argsort(-np.take_along_axis(magnitude, top, axis=1), axis=1, kind="stable")
    ranked: npt.NDArray[np.intp] = np.take_along_axis(top, order, axis=1)
    return ranked


def _value(v: object) -> Value:
    """A frame cell as a reason's value: numbers as float, missing as None, else a string."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return None if math.isnan(f) else f
    return str(v)
