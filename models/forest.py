"""LightGBM's trees as flat arrays, with rows routed through them in compiled code, a block of
rows at a time, tree by tree.

``Booster.predict`` walks each row through every tree in turn; on a batch (a million customers
scored, ~800 trees) the walk is most of the time. Routing a block of rows through one tree
before the next keeps that tree's nodes in the first-level cache, and blocks spread over the
cores: half of LightGBM's time here, with the same leaves. Raw scores add the trees' leaf
values in LightGBM's order, so probabilities are LightGBM's to the last bit (tests compare).

The routing rules are LightGBM's (``Tree::NumericalDecision`` / ``CategoricalDecision``): a NaN
reads as 0 unless the split's missing type is NaN; a missing value (NaN for type NaN,
|x| <= 1e-35 for type Zero) goes to the default side; otherwise x <= threshold goes left. A
categorical split sends the categories of its bitset left; NaN and negative values go right.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np
import numpy.typing as npt
from numba import njit, prange
from numba.np.ufunc import parallel as numba_parallel

from models.paths import PathTables

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
MISSING = {"None": 0, "Zero": 1, "NaN": 2}
BLOCK = 1024  # rows per block: a block's features fit the second-level cache


@dataclass(frozen=True)
class Forest:
    n_features: int
    roots: I64  # per tree: its root node, or ~leaf for a tree that is one leaf
    nodes: tuple[Any, ...]  # feature, threshold, left, right, missing, default_left,
    #                          categorical, bitset start per node, bitset words

    @classmethod
    def of(cls, booster: lgb.Booster, num_iteration: int,
           dump: dict[str, Any] | None = None) -> Forest:
        """``dump``: the booster's ``dump_model(num_iteration)`` when the caller has it."""
        dump = dump or booster.dump_model(num_iteration=num_iteration)
        k = int(dump.get("num_tree_per_iteration", 1))
        flat = _Flat()
        roots = [flat.add(info["tree_structure"])
                 for info in dump["tree_info"][: num_iteration * k]]
        return cls(int(booster.num_feature()), np.array(roots, np.int64), flat.arrays())

    def _check(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"rows of {self.n_features} features expected, not "
                             f"{matrix.shape}")
        return np.ascontiguousarray(matrix, np.float32)

    def leaves(self, matrix: npt.NDArray[np.float32]) -> I64:
        """Each row's leaf in every tree: what ``pred_leaf=True`` gives."""
        x = self._check(matrix)
        out = np.empty((x.shape[0], len(self.roots)), np.int64)
        with _threads(1 if x.shape[0] <= BLOCK else 0):
            _leaves(x, self.roots, *self.nodes, out, BLOCK)  # type: ignore[call-arg]  # numba
        return out

    def raw(self, matrix: npt.NDArray[np.float32], tables: PathTables) -> F64:
        """Raw scores (rows x classes): each class's leaf values summed in tree order."""
        x = self._check(matrix)
        out = np.zeros((x.shape[0], tables.n_classes))
        _raw(x, self.roots, *self.nodes, tables.leaf_base,  # type: ignore[call-arg]  # numba
             tables.leaf_value, tables.n_classes, out, BLOCK)
        return out


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run the kernels inside on ``n`` threads (0: all). One block (a served request) is one
    thread's work: waking the others would only leave them spinning beside the requests.
    numba's thread count is per calling thread, so concurrent callers do not interfere."""
    if n <= 0:
        yield
        return
    get, set_ = _thread_count()
    before = get()
    set_(min(n, before))
    try:
        yield
    finally:
        set_(before)


@functools.cache
def _thread_count() -> tuple[Callable[[], int], Callable[[int], None]]:
    """numba's per-thread count, read and set. Its public functions take two process-wide
    locks on every call (~10 us for a read and two sets, as long as routing a row through
    a model); once its threads are launched, the C functions behind them do the same
    directly. Their public twins stand in when a numba version lacks them."""
    numba.get_num_threads()  # launches the threads once
    get = getattr(numba_parallel, "_get_num_threads", None)
    set_ = getattr(numba_parallel, "_set_num_threads", None)
    if callable(get) and callable(set_):
        return get, set_
    return numba.get_num_threads, numba.set_num_threads


class _Flat:
    """The internal nodes of every tree, in flat lists."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {k: [] for k in (
            "feature", "threshold", "left", "right", "missing", "default_left", "categorical")}
        self.bits: list[list[int]] = []

    def add(self, node: dict[str, Any]) -> int:
        """The node's index (its subtree added), or ~leaf for a leaf."""
        if "split_index" not in node:
            return ~int(node.get("leaf_index", 0))
        c = self.cols
        i = len(c["feature"])
        categorical = node["decision_type"] == "=="
        c["feature"].append(int(node["split_feature"]))
        c["threshold"].append(0.0 if categorical else float(node["threshold"]))
        c["missing"].append(MISSING[str(node["missing_type"])])
        c["default_left"].append(bool(node["default_left"]))
        c["categorical"].append(categorical)
        self.bits.append(_bitset(str(node["threshold"])) if categorical else [])
        c["left"].append(0)
        c["right"].append(0)
        c["left"][i] = self.add(node["left_child"])
        c["right"][i] = self.add(node["right_child"])
        return i

    def arrays(self) -> tuple[Any, ...]:
        c = self.cols
        ptr = np.zeros(len(self.bits) + 1, np.int64)
        ptr[1:] = np.cumsum([len(b) for b in self.bits])
        return (np.array(c["feature"], np.int64), np.array(c["threshold"], np.float64),
                np.array(c["left"], np.int64), np.array(c["right"], np.int64),
                np.array(c["missing"], np.int8), np.array(c["default_left"], np.bool_),
                np.array(c["categorical"], np.bool_), ptr,
                np.array([w for b in self.bits for w in b], np.uint32))


def _bitset(threshold: str) -> list[int]:
    """LightGBM writes a categorical split's left categories as "1||4||7"."""
    cats = [int(c) for c in threshold.split("||") if c != ""]
    words = [0] * (max(cats) // 32 + 1 if cats else 0)
    for c in cats:
        words[c // 32] |= 1 << (c % 32)
    return words


@njit(cache=True, inline="always")
def _step(v, node, threshold, left, right, missing, default_left, categorical, ptr, bits):  # type: ignore[no-untyped-def]
    if categorical[node]:
        if math.isnan(v) or v < 0:
            return right[node]
        c = int(v)
        word = c >> 5
        if word < ptr[node + 1] - ptr[node] and (
                bits[ptr[node] + word] >> np.uint32(c & 31)) & np.uint32(1):
            return left[node]
        return right[node]
    kind = missing[node]
    if math.isnan(v) and kind != 2:
        v = 0.0
    if (kind == 1 and abs(v) <= 1e-35) or (kind == 2 and math.isnan(v)):
        return left[node] if default_left[node] else right[node]
    return left[node] if v <= threshold[node] else right[node]


@njit(parallel=True, cache=True)
def _leaves(x, roots, feature, threshold, left, right, missing, default_left, categorical,  # type: ignore[no-untyped-def]
            ptr, bits, out, block):
    n = x.shape[0]
    for b in prange((n + block - 1) // block):
        lo, hi = b * block, min(n, (b + 1) * block)
        for t in range(roots.shape[0]):
            for i in range(lo, hi):
                node = roots[t]
                while node >= 0:
                    node = _step(np.float64(x[i, feature[node]]), node, threshold, left, right,
                                 missing, default_left, categorical, ptr, bits)
                out[i, t] = ~node


@njit(parallel=True, cache=True)
def _raw(x, roots, feature, threshold, left, right, missing, default_left, categorical,  # type: ignore[no-untyped-def]
         ptr, bits, leaf_base, leaf_value, k, out, block):
    n = x.shape[0]
    for b in prange((n + block - 1) // block):
        lo, hi = b * block, min(n, (b + 1) * block)
        for t in range(roots.shape[0]):  # tree order, as LightGBM adds them up
            for i in range(lo, hi):
                node = roots[t]
                while node >= 0:
                    node = _step(np.float64(x[i, feature[node]]), node, threshold, left, right,
                                 missing, default_left, categorical, ptr, bits)
                out[i, t % k] += leaf_value[leaf_base[t] + ~node]
