"""The segment cube of a score snapshot: each dimension's values as codes per customer, and one
cell per combination of values present with its size, summed risk, value and revenue at risk
and its customers' top actions (``serving.segments`` aggregates segments from the cells)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import JourneyError

NONE = "(none)"  # the value of a customer without one (no stage yet, attribute not loaded)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class SegmentQueryError(JourneyError):
    """A segment query names an unknown dimension, value or sort key (says which field)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Dimension:
    name: str
    codes: npt.NDArray[np.int32]  # per customer, into values
    values: tuple[str, ...]
    ids: int = 0  # the first `ids` values may also be named by position (persona ids)

    @functools.cached_property
    def present(self) -> tuple[str, ...]:
        """The values some customer has, in vocabulary order."""
        return tuple(self.values[c] for c in np.unique(self.codes).tolist())

    def code_of(self, value: str, field: str) -> int:
        """A value's code. Case does not matter when it tells one value (the dashboard shows
        tiers capitalised: ``tier=High`` is ``high``); an unknown value is refused with the
        values some customer has (offering one nobody has would only answer nothing)."""
        if value in self.values:
            return self.values.index(value)
        same = [v for v in self.values if v.casefold() == value.casefold()]
        if len(same) > 1:  # differing only by case: prefer the ones someone has
            same = [v for v in same if v in self.present] or same
        if len(same) == 1:
            return self.values.index(same[0])
        if value.isascii() and value.isdigit() and int(value) < self.ids:
            return int(value)  # `persona=2`: the id cards show and `--rename` takes
        if same:
            raise SegmentQueryError(
                f"{value!r} matches several values of {self.name} that differ only by case "
                f"({', '.join(map(repr, same))}): write it exactly", field)
        ids = f", or an id 0 to {self.ids - 1}" if self.ids else ""
        raise SegmentQueryError(
            f"{value!r} is not a value of {self.name} in this snapshot; values: "
            f"{', '.join(self.present) or '(no customer)'}{ids}", field)


def dimension_of(name: str, column: pa.ChunkedArray | pa.Array) -> Dimension:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    values = [str(v) for v in arr.dictionary.to_pylist()]
    codes = arr.indices.to_numpy(zero_copy_only=False)
    nulls = arr.is_null().to_numpy(zero_copy_only=False)
    codes = np.where(nulls, len(values), codes).astype(np.int32)
    return Dimension(name, codes, (*values, NONE))


@dataclass(frozen=True)
class Cube:
    """One cell per combination of dimension values present."""

    codes: dict[str, npt.NDArray[np.int32]]  # per dimension, each cell's code
    values: dict[str, tuple[str, ...]]
    size: I64
    churn: F64
    value: F64
    at_risk: F64
    actions: npt.NDArray[np.int64]  # cells x actions: customers whose top action it is
    action_names: tuple[str, ...]

    @classmethod
    def of(cls, dims: Sequence[Dimension], table: pa.Table) -> Cube:
        key = np.zeros(table.num_rows, np.int64)
        for d in dims:
            key = key * len(d.values) + d.codes
        cells, inverse = np.unique(key, return_inverse=True)
        codes: dict[str, npt.NDArray[np.int32]] = {}
        rest = cells.copy()
        for d in reversed(dims):
            codes[d.name] = (rest % len(d.values)).astype(np.int32)
            rest //= len(d.values)
        n = len(cells)

        def total(col: str) -> F64:
            if table.num_rows and table[col].null_count == table.num_rows:
                return np.full(n, np.nan)  # no value known (no conversion had one): not 0
            w = np.nan_to_num(table[col].to_numpy(zero_copy_only=False).astype(np.float64))
            return np.asarray(np.bincount(inverse, weights=w, minlength=n), np.float64)

        action = dimension_of("top_action", table["top_action"])
        named = len(action.values) - 1  # the last value is NONE: no action
        per = np.zeros((n, max(named, 0)), np.int64)
        if named:
            flat = inverse * named + np.minimum(action.codes, named - 1)
            counts = np.bincount(flat[action.codes < named], minlength=n * named)
            per = counts.reshape(n, named)
        return cls(codes, {d.name: d.values for d in dims},
                   np.bincount(inverse, minlength=n).astype(np.int64), total("churn"),
                   total("expected_value"), total("revenue_at_risk"), per,
                   action.values[:named])

    def money(self, amount: float) -> float:
        """``amount`` of money in this cube's terms: NaN when its snapshot knows no value (no
        conversion carried one), so sums and changes with it stay unknown, not 0."""
        return math.nan if len(self.value) and np.isnan(self.value).all() else amount

    def select(self, filters: Mapping[str, Sequence[str]]) -> npt.NDArray[np.bool_]:
        keep = np.ones(len(self.size), bool)
        for name, wanted in filters.items():
            vocab = self.values[name]
            allowed = [vocab.index(v) for v in wanted if v in vocab]
            keep &= np.isin(self.codes[name], allowed)
        return keep

    def group(self, by: Sequence[str], filters: Mapping[str, Sequence[str]]
              ) -> dict[tuple[str, ...], dict[str, Any]]:
        keep = self.select(filters)
        key = np.zeros(int(keep.sum()), np.int64)
        for name in by:
            key = key * len(self.values[name]) + self.codes[name][keep]
        groups, inverse = np.unique(key, return_inverse=True)
        g = len(groups)
        size = np.bincount(inverse, self.size[keep], g)
        sums = {k: np.bincount(inverse, getattr(self, k)[keep], g)
                for k in ("churn", "value", "at_risk")}
        acts = np.zeros((g, self.actions.shape[1]))
        np.add.at(acts, inverse, self.actions[keep])
        out: dict[tuple[str, ...], dict[str, Any]] = {}
        for i, code in enumerate(groups.tolist()):
            labels = []
            for name in reversed(by):
                vocab = self.values[name]
                labels.append(vocab[code % len(vocab)])
                code //= len(vocab)
            out[tuple(reversed(labels))] = {
                "customers": int(size[i]), "churn_sum": float(sums["churn"][i]),
                "expected_value": float(sums["value"][i]),
                "revenue_at_risk": float(sums["at_risk"][i]), "actions": acts[i],
            }
        return out
