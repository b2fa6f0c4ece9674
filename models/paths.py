"""Decision-path contributions of a LightGBM model, fast enough for a request path.

TreeSHAP (``pred_contrib``) costs 1-2 ms per row for a binary model and ~8 ms for a seven-class
one; serving explains every prediction, so reasons use the decision-path decomposition
(Saabas; what ``treeinterpreter`` and XGBoost's ``approx_contribs`` compute): in each tree, the
feature split on at a node is credited with the change in expected output from that node to the
child the row went to. Per tree the credits add up to (leaf value - root value), so per row they
add up exactly to the raw score minus a bias (the sum of the roots).

LightGBM routes the rows itself (``pred_leaf``), so categorical and missing-value splits follow
its rules by construction; each leaf's path credits are precomputed once per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PathTables:
    """Every leaf's path credits, as CSR rows: leaf ``leaf_base[t] + l`` owns entries
    ``ptr[i]:ptr[i + 1]`` of (``feature``, ``delta``)."""

    n_features: int
    n_classes: int  # trees per iteration
    n_trees: int  # the trees used (best iteration x classes)
    root: F64  # per tree: expected output at the root
    leaf_base: I64
    ptr: I64
    feature: I64
    delta: F64
    leaf_value: F64  # by leaf row (``leaf_base[t] + l``)
    objective: str  # "binary" or "multiclass" (how raw scores become probabilities)
    sigmoid: float

    @classmethod
    def of(cls, booster: lgb.Booster, num_iteration: int,
           dump: dict[str, Any] | None = None) -> PathTables:
        """``dump``: the booster's ``dump_model(num_iteration)`` when the caller has it."""
        dump = dump or booster.dump_model(num_iteration=num_iteration)
        k = int(dump.get("num_tree_per_iteration", 1))
        trees = dump["tree_info"][: num_iteration * k]
        root = np.zeros(len(trees))
        leaf_base = np.zeros(len(trees), np.int64)
        ptr: list[int] = [0]
        feature: list[int] = []
        delta: list[float] = []
        leaf_value: list[float] = []
        base = 0
        for t, info in enumerate(trees):
            node = info["tree_structure"]
            leaves: dict[int, list[tuple[int, float]]] = {}
            values: dict[int, float] = {}
            root[t] = _value(node)
            _walk(node, [], leaves, values)
            leaf_base[t] = base
            for leaf in range(max(1, int(info["num_leaves"]))):
                leaf_value.append(values.get(leaf, 0.0))
                credits = leaves.get(leaf, [])
                feature.extend(f for f, _ in credits)
                delta.extend(d for _, d in credits)
                ptr.append(len(feature))
            base += max(1, int(info["num_leaves"]))
        objective = str(dump.get("objective", "binary")).split()
        sigmoid = next((float(p.split(":")[1]) for p in objective if p.startswith("sigmoid:")), 1.0)
        if objective[0] not in ("binary", "multiclass"):
            raise ValueError(f"objective {objective[0]!r}: only binary and multiclass models")
        return cls(
            n_features=int(booster.num_feature()),
            n_classes=k,
            n_trees=len(trees),
            root=root,
            leaf_base=leaf_base,
            ptr=np.asarray(ptr, np.int64),
            feature=np.asarray(feature, np.int64),
            delta=np.asarray(delta, np.float64),
            leaf_value=np.asarray(leaf_value, np.float64),
            objective=objective[0],
            sigmoid=sigmoid,
        )


def _value(node: dict[str, Any]) -> float:
    return float(node["leaf_value"] if "leaf_value" in node else node["internal_value"])


def _walk(
    node: dict[str, Any],
    path: list[tuple[int, float]],
    leaves: dict[int, list[tuple[int, float]]],
    values: dict[int, float],
) -> None:
    """Depth-first, carrying the credits gathered on the way down (LightGBM trees are at most a
    few dozen levels deep, far from the recursion limit)."""
    if "split_feature" not in node:
        leaf = int(node.get("leaf_index", 0))
        leaves[leaf], values[leaf] = path, float(node["leaf_value"])
        return
    here = _value(node)
    for side in ("left_child", "right_child"):
        child = node[side]
        _walk(child, [*path, (int(node["split_feature"]), _value(child) - here)], leaves, values)


@njit(cache=True)
def _accumulate(leaves, classes, k, root, leaf_base, ptr, feature, delta, out):  # type: ignore[no-untyped-def]
    n, n_trees = leaves.shape
    width = out.shape[1] - 1
    for i in range(n):
        c = classes[i]
        for t in range(c, n_trees, k):
            out[i, width] += root[t]
            row = leaf_base[t] + leaves[i, t]
            for e in range(ptr[row], ptr[row + 1]):
                out[i, feature[e]] += delta[e]


def path_contributions(
    booster: lgb.Booster,
    tables: PathTables,
    matrix: npt.NDArray[np.float32],
    class_index: I64 | None = None,
    leaves: I64 | None = None,
) -> F64:
    """(n, n_features + 1) raw-score credits of each row's explained class, bias last.

    ``class_index``: per row, the class to explain (multiclass); binary models explain the
    positive class's log-odds. ``leaves``: the rows' leaf indices when the caller has them."""
    n = matrix.shape[0]
    out = np.zeros((n, tables.n_features + 1))
    if n == 0:
        return out
    if leaves is None:
        leaves = np.asarray(booster.predict(
            matrix, num_iteration=tables.n_trees // tables.n_classes, pred_leaf=True,
            num_threads=1), dtype=np.int64)
    leaves = leaves.reshape(n, -1)
    classes = (
        np.zeros(n, np.int64)
        if class_index is None or tables.n_classes == 1
        else np.ascontiguousarray(class_index, dtype=np.int64)
    )
    _accumulate(
        leaves[:, : tables.n_trees], classes, tables.n_classes, tables.root, tables.leaf_base,
        tables.ptr, tables.feature, tables.delta, out,
    )
    return out


@njit(cache=True)
def _raw(leaves, k, leaf_base, leaf_value, out):  # type: ignore[no-untyped-def]
    n, n_trees = leaves.shape
    for i in range(n):
        for t in range(n_trees):  # tree order, as LightGBM adds them up
            out[i, t % k] += leaf_value[leaf_base[t] + leaves[i, t]]


def probabilities(tables: PathTables, leaves: I64) -> F64:
    """LightGBM's own output from leaf indices: (n,) positive-class probabilities (binary) or
    (n, k) (multiclass); what ``booster.predict`` gives, without predicting twice."""
    n = leaves.shape[0]
    raw = np.zeros((n, tables.n_classes))
    _raw(np.ascontiguousarray(leaves[:, : tables.n_trees]), tables.n_classes, tables.leaf_base,
         tables.leaf_value, raw)
    return from_raw(tables, raw)


def from_raw(tables: PathTables, raw: F64) -> F64:
    """Raw scores (n, k) -> LightGBM's output: the sigmoid (binary) or the softmax, bit for
    bit. Compiled, so exp is the C library's, as in LightGBM: numpy's own vectorised exp
    differs from it in the last bit on CPUs with AVX-512."""
    raw = np.ascontiguousarray(raw, dtype=np.float64)
    if tables.objective == "binary":
        out: F64 = np.empty(raw.shape[0])
        _sigmoid(raw, tables.sigmoid, out)
        return out
    soft: F64 = np.empty_like(raw)
    _softmax(raw, soft)
    return soft


@njit(cache=True)
def _sigmoid(raw, scale, out):  # type: ignore[no-untyped-def]
    for i in range(raw.shape[0]):  # the one column of a binary model's raw scores
        out[i] = 1.0 / (1.0 + np.exp(-scale * raw[i, 0]))


@njit(cache=True)
def _softmax(raw, out):  # type: ignore[no-untyped-def]
    n, k = raw.shape
    for i in range(n):
        top = raw[i, 0]
        for c in range(1, k):
            top = max(top, raw[i, c])
        total = 0.0
        for c in range(k):
            out[i, c] = np.exp(raw[i, c] - top)
            total += out[i, c]
        for c in range(k):
            out[i, c] /= total


@njit(cache=True)
def _top(leaves, classes, k, width, leaf_base, ptr, feature, delta, sign, out_idx, out_val):  # type: ignore[no-untyped-def]
    """Per row: the explained class's credits in a scratch buffer (only the features its paths
    touch), then the ``top`` largest by magnitude, ties to the lower feature index."""
    n, n_trees = leaves.shape
    top = out_idx.shape[1]
    buf = np.zeros(width)
    mark = np.zeros(buf.shape[0], np.bool_)
    touched = np.empty(buf.shape[0], np.int64)
    for i in range(n):
        nt = 0
        for t in range(classes[i], n_trees, k):
            row = leaf_base[t] + leaves[i, t]
            for e in range(ptr[row], ptr[row + 1]):
                f = feature[e]
                if not mark[f]:
                    mark[f] = True
                    touched[nt] = f
                    nt += 1
                buf[f] += delta[e]
        for r in range(top):
            best, size = -1, 0.0
            for q in range(nt):
                f = touched[q]
                v = abs(buf[f])
                if mark[f] and v > 0.0 and (v > size or (v == size and f < best)):
                    best, size = f, v
            out_idx[i, r] = best
            if best >= 0:
                out_val[i, r] = sign * buf[best]
                mark[best] = False  # chosen
        for q in range(nt):
            f = touched[q]
            buf[f] = 0.0
            mark[f] = False


def top_credits(
    tables: PathTables,
    leaves: I64,
    top: int,
    class_index: I64 | None = None,
    sign: float = 1.0,
) -> tuple[I64, F64]:
    """Each row's ``top`` features by |decision-path credit| to its explained class, strongest
    first (-1: fewer features than ``top`` have a nonzero credit), and their signed credits;
    in one compiled pass, without the (rows x features) matrix of ``path_contributions``."""
    n = leaves.shape[0]
    idx = np.full((n, top), -1, np.int64)
    val = np.zeros((n, top))
    if n == 0 or top == 0:
        return idx, val
    classes = (np.zeros(n, np.int64) if class_index is None or tables.n_classes == 1
               else np.ascontiguousarray(class_index, dtype=np.int64))
    _top(np.ascontiguousarray(leaves[:, : tables.n_trees]), classes, tables.n_classes,
         tables.n_features, tables.leaf_base, tables.ptr, tables.feature, tables.delta, sign,
         idx, val)
    return idx, val
