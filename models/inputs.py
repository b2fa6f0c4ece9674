"""Feature frames, feature dicts and online vectors to the encoded float matrix a tree model
reads: the same values whichever way the features arrive, so every model that encodes with a
``CategoricalEncoder`` (plus the ratio columns of ``models.derived``) scores batch and online
inputs alike."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.encoding import CategoricalEncoder
from features.online import Vectors
from models.derived import RATIOS, ratio_columns, ratio_of, with_ratios


class EncodedInputs:
    """Mixin for fitted models with ``feature_names_in_``, ``encoder_`` and ``ratios``."""

    feature_names_in_: npt.NDArray[np.object_]
    encoder_: CategoricalEncoder
    ratios: bool

    def matrix(self, X: pd.DataFrame) -> npt.NDArray[np.float32]:  # noqa: N803
        """The encoded float matrix LightGBM reads (categoricals as codes, missing as NaN)."""
        inputs = X[list(self.feature_names_in_)]
        encoded = self.encoder_.transform(with_ratios(inputs) if self.ratios else inputs)
        return encoded.to_numpy(np.float32)

    def record_matrix(self, records: Sequence[Mapping[str, object]]) -> npt.NDArray[np.float32]:
        """``matrix`` for feature dicts (e.g. online vectors) without pandas: the same values,
        a few microseconds per row instead of milliseconds for a one-row frame."""
        plan = self._record_plan()
        enc = self.encoder_
        out = np.empty((len(records), len(enc.numeric_) + len(enc.categorical_)), np.float32)
        nan = float("nan")
        for r, record in enumerate(records):
            try:  # all-float inputs (what the online engine gives): one C-level gather
                plain = np.array(plan.getter(record), dtype=None)
                fast = plain.dtype.kind == "f"
            except KeyError:
                fast = False
            if fast:
                row = np.empty(len(enc.numeric_))
                row[plan.plain_pos] = plain
                for pos, a, b in plan.ratios:
                    den = plain[b]
                    row[pos] = plain[a] / max(den, 1.0) if den == den else nan
                out[r, : len(enc.numeric_)] = row
            else:
                out[r, : len(enc.numeric_)] = [
                    ratio_of(c, record) if c in plan.derived else _float(record.get(c))
                    for c in enc.numeric_]
            out[r, len(enc.numeric_):] = [
                plan.categories[c].get(str(record.get(c)), nan) if record.get(c) is not None
                else nan for c in enc.categorical_]
        return out

    def vectors_matrix(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        """``matrix`` for online vectors, column by column in numpy: what serving scores (one
        customer, or a batch from one kernel pass), without dicts or pandas. Built once per
        vectors for the models with the same ``input_signature`` (kept in
        ``vectors.encoded``): readers must not write into it."""
        signature = self.input_signature()
        done = vectors.encoded.get(signature)
        if done is not None:
            return done
        fm = vectors.matrix
        key = (fm.names, tuple((n, v) for n, (_, v) in fm.categorical.items()))
        plans: dict[object, _VectorPlan] = self.__dict__.setdefault("vector_plans_", {})
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = _VectorPlan.of(self.encoder_, self.ratios, vectors)
        out = vectors.encoded[signature] = plan(vectors)
        return out

    def input_signature(self) -> tuple[object, ...]:
        """What decides the encoded matrix: models with equal signatures read the same one
        (serving encodes a customer once for the models trained on the same features)."""
        sig: tuple[object, ...] | None = self.__dict__.get("input_signature_")
        if sig is None:
            enc = self.encoder_
            sig = (tuple(enc.numeric_), tuple(enc.categorical_), self.ratios,
                   tuple((c, tuple(enc.categories_[c])) for c in enc.categorical_))
            self.__dict__["input_signature_"] = sig
        return sig

    def _record_plan(self) -> _RecordPlan:
        plan: _RecordPlan | None = getattr(self, "record_plan_", None)  # a cache, not fitted
        if plan is None:
            plan = _RecordPlan.of(self.encoder_, self.ratios)
            setattr(self, "record_plan_", plan)  # noqa: B010
        return plan


@dataclass(frozen=True)
class _RecordPlan:
    """How a feature dict becomes the encoded row: plain inputs gathered at once, ratios from
    their positions among them, categoricals through a value -> code map."""

    getter: Callable[[Mapping[str, object]], object]
    plain_pos: npt.NDArray[np.intp]
    ratios: list[tuple[int, int, int]]  # (position, numerator, denominator among plain)
    derived: frozenset[str]
    categories: dict[str, dict[str, float]]

    @classmethod
    def of(cls, enc: CategoricalEncoder, ratios: bool) -> _RecordPlan:
        numeric = list(enc.numeric_)
        derived = frozenset(ratio_columns(numeric)) if ratios else frozenset()
        plain = [c for c in numeric if c not in derived]
        get = operator.itemgetter(*plain)
        getter = get if len(plain) > 1 else (lambda r: (get(r),))
        return cls(
            getter=getter,
            plain_pos=np.array([numeric.index(c) for c in plain], np.intp),
            ratios=[(numeric.index(c), plain.index(RATIOS[c][0]), plain.index(RATIOS[c][1]))
                    for c in numeric if c in derived],
            derived=derived,
            categories={c: {v: float(i) for i, v in enumerate(enc.categories_[c])}
                        for c in enc.categorical_},
        )


@dataclass(frozen=True)
class _VectorPlan:
    """Where each encoded column comes from in a ``Vectors``: numeric columns by index,
    ratios from two of them, categoricals through code -> code tables, attributes by value."""

    width: int
    plain_pos: npt.NDArray[np.intp]  # positions of the numeric inputs the vectors have
    plain_src: npt.NDArray[np.intp]  # their columns in the vectors
    absent: npt.NDArray[np.intp]  # positions of numeric inputs the vectors lack (missing)
    ratios: list[tuple[int, int, int]]  # (position, numerator, denominator) source columns
    coded: list[tuple[int, str, npt.NDArray[np.float32]]]  # position, name, table (last: -1)
    attrs: list[tuple[int, str, dict[str, float]]]

    @classmethod
    def of(cls, enc: CategoricalEncoder, ratios: bool, vectors: Vectors) -> _VectorPlan:
        fm = vectors.matrix
        col = {name: j for j, name in enumerate(fm.names)}
        numeric = list(enc.numeric_)
        derived = set(ratio_columns(numeric)) if ratios else set()
        plain = [c for c in numeric if c not in derived]
        coded, attrs = [], []
        for k, c in enumerate(enc.categorical_):
            pos, index = len(numeric) + k, {v: float(i) for i, v in enumerate(enc.categories_[c])}
            if c in fm.categorical:
                vocab = fm.categorical[c][1]
                table = np.array([index.get(str(v), np.nan) for v in vocab] + [np.nan], np.float32)
                coded.append((pos, c, table))
            else:
                attrs.append((pos, c, index))
        return cls(
            width=len(numeric) + len(enc.categorical_),
            plain_pos=np.array([numeric.index(c) for c in plain if c in col], np.intp),
            plain_src=np.array([col[c] for c in plain if c in col], np.intp),
            absent=np.array([numeric.index(c) for c in plain if c not in col], np.intp),
            ratios=[(numeric.index(c), col.get(RATIOS[c][0], -1), col.get(RATIOS[c][1], -1))
                    for c in numeric if c in derived],
            coded=coded,
            attrs=attrs,
        )

    def __call__(self, vectors: Vectors) -> npt.NDArray[np.float32]:
        fm, n = vectors.matrix, len(vectors)
        values = fm.values
        out = np.empty((n, self.width), np.float32)
        out[:, self.plain_pos] = values[:, self.plain_src]
        out[:, self.absent] = np.nan
        for pos, a, b in self.ratios:
            out[:, pos] = (values[:, a] / np.maximum(values[:, b], 1.0) if a >= 0 and b >= 0
                           else np.nan)
        for pos, name, table in self.coded:
            out[:, pos] = table[fm.categorical[name][0]]  # code -1 reads the last entry: NaN
        coded = vectors.attribute_codes or {}
        for pos, name, index in self.attrs:
            key = name.removeprefix("attr_")
            if key in coded:  # one lookup table for all customers (the last entry: none)
                codes, vocab = coded[key]
                table = np.array([index.get(str(v), np.nan) for v in vocab] + [np.nan],
                                 np.float32)
                out[:, pos] = table[codes]
                continue
            out[:, pos] = [np.nan if (v := a.get(key)) is None else index.get(str(v), np.nan)
                           for a in vectors.attributes]
        return out


def _float(v: object) -> float:
    if v is None or isinstance(v, bool) or not isinstance(v, int | float | np.number):
        return float("nan")
    return float(v)
