"""Online features: one customer's vector from that customer's events, with the batch kernels."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.batch import micros
from features.events import Encoder, EventArrays
from features.kernels import FeatureMatrix, Kernel
from features.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

Vector = dict[str, float | str | None]
Value = float | str | None


@dataclass(frozen=True)
class Vectors:
    """Feature vectors of several customers as arrays: the kernel's matrix (numeric values and
    categorical codes) and each customer's attributes (``attr_<name>`` features). Scoring reads
    these directly; ``records`` gives the dicts of ``OnlineFeatures.vector``."""

    matrix: FeatureMatrix
    attributes: Sequence[dict[str, str | None]]
    events: list[int] | None = None  # events behind each vector, when known
    # The same attributes as codes (-1: none) into their values, when the caller has them:
    # batch scoring encodes a million customers' attributes with one lookup, not a dict each.
    attribute_codes: Mapping[str, tuple[npt.NDArray[np.int32], Sequence[str]]] | None = None
    # The encoded matrices models read, by input signature (``EncodedInputs.vectors_matrix``):
    # the models trained on the same features share one.
    encoded: dict[object, npt.NDArray[np.float32]] = field(default_factory=dict, compare=False,
                                                           repr=False)

    def __len__(self) -> int:
        return len(self.matrix.customer_ids)

    @property
    def _columns(self) -> dict[str, int]:
        return _column_index(self.matrix.names)

    def value(self, i: int, name: str) -> tuple[bool, Value]:
        """(whether the vector has ``name``, its value for customer ``i``)."""
        j = self._columns.get(name)
        if j is not None:
            return True, float(self.matrix.values[i, j])
        if name in self.matrix.categorical:
            codes, vocab = self.matrix.categorical[name]
            return True, vocab[codes[i]] if codes[i] >= 0 else None
        if name.startswith("attr_"):
            attrs = self.attributes[i]
            key = name.removeprefix("attr_")
            return key in attrs, attrs.get(key)
        return False, None

    def column(self, name: str) -> npt.NDArray[Any]:
        """Every customer's ``value`` of ``name`` at once: float64 for a numeric column, else
        objects (the text, or None where the customer has none)."""
        j = self._columns.get(name)
        if j is not None:
            return np.asarray(self.matrix.values[:, j], np.float64)
        if name in self.matrix.categorical:
            codes, vocab = self.matrix.categorical[name]
            return np.array([*vocab, None], object)[np.asarray(codes)]  # -1 picks the None
        key = name.removeprefix("attr_")
        if name.startswith("attr_") and self.attribute_codes and key in self.attribute_codes:
            ints, values = self.attribute_codes[key]
            return np.array([*values, None], object)[np.asarray(ints)]
        out = np.full(len(self), None, object)
        if name.startswith("attr_"):
            for i, attrs in enumerate(self.attributes):
                out[i] = attrs.get(key)
        return out

    def frame(self) -> pd.DataFrame:
        """``pd.DataFrame(self.records())``, built a column at a time: the same columns in
        the same order, values and types (an attribute a customer lacks is NaN, as there),
        without a dict per customer (a baseline model's 26k-customer scoring run spent most
        of its time, holding the interpreter lock, building one from the dicts)."""
        import pandas as pd

        n, m = len(self), self.matrix
        columns: dict[str, Any] = {name: m.values[:, j] for j, name in enumerate(m.names)}
        for name, (codes, vocab) in m.categorical.items():
            # Code -1 (missing) picks the None put after the vocabulary.
            columns[name] = np.array([*vocab, None], object)[np.asarray(codes)]
        keys: dict[str, None] = {}
        for attrs in self.attributes:
            keys.update(dict.fromkeys(attrs))
        for key in keys:
            values = np.empty(n, object)
            for i, attrs in enumerate(self.attributes):
                values[i] = attrs.get(key, np.nan)
            columns[f"attr_{key}"] = values
        return pd.DataFrame(columns, index=pd.RangeIndex(n)).infer_objects()

    def records(self) -> list[Vector]:
        out: list[Vector] = []
        for i in range(len(self)):
            row: Vector = dict(zip(self.matrix.names, self.matrix.values[i].tolist(), strict=True))
            for name, (codes, vocab) in self.matrix.categorical.items():
                row[name] = vocab[codes[i]] if codes[i] >= 0 else None
            for key, v in self.attributes[i].items():
                row[f"attr_{key}"] = v
            out.append(row)
        return out


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> dict[str, int]:
    """Column positions by name: one dict per kernel layout, not one per request's vectors."""
    return {name: j for j, name in enumerate(names)}


class CodedAttributes(Sequence[dict[str, str | None]]):
    """Customers' attributes held as codes, read as one dict per customer on demand."""

    def __init__(self, codes: Mapping[str, tuple[npt.NDArray[np.int32], Sequence[str]]],
                 n: int) -> None:
        self.codes, self.n = codes, n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> dict[str, str | None]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[dict[str, str | None]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return {name: (values[c] if (c := int(codes[i])) >= 0 else None)
                for name, (codes, values) in self.codes.items()}


class OnlineFeatures:
    """Computes the same vector as the batch engine for one customer as of a cutoff."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.enc = Encoder(spec)
        self.kernel = Kernel(spec, self.enc)

    def vector(
        self,
        customer_id: str,
        events: pa.Table | list[dict[str, Any]],
        cutoff: datetime,
        attributes: dict[str, str | None] | None = None,
    ) -> Vector:
        """Features from ``events`` strictly before ``cutoff`` (later ones are ignored)."""
        t = micros(cutoff)
        return self.from_arrays(self.enc.one_customer(customer_id, events, t), t, attributes)

    def from_arrays(
        self,
        arrays: EventArrays,
        cutoff_us: int,
        attributes: dict[str, str | None] | None = None,
    ) -> Vector:
        """The vector of one customer's already encoded events, all before ``cutoff_us``
        (e.g. from ``features.history.HistoryIndex``, which skips the encoding)."""
        matrix = self.kernel(arrays, cutoff_us)
        out: Vector = dict(zip(matrix.names, matrix.values[0].tolist(), strict=True))
        for name, (codes, vocab) in matrix.categorical.items():
            out[name] = vocab[codes[0]] if codes[0] >= 0 else None
        for name in self.spec.attributes:
            out[f"attr_{name}"] = (attributes or {}).get(name)
        return out

    def vectors(
        self,
        arrays: EventArrays,
        cutoff_us: int,
        attributes: list[dict[str, str | None]],
    ) -> Vectors:
        """Vectors of the customers in ``arrays`` (one, or many from ``HistoryIndex.many``: one
        kernel pass for all), with their attributes in the same order."""
        names = self.spec.attributes
        attrs = [{n: a.get(n) for n in names} for a in attributes]
        counts = np.bincount(arrays.cust, minlength=len(arrays.customer_ids)).tolist()
        return Vectors(self.kernel(arrays, cutoff_us), attrs, counts)

    def vectors_coded(
        self,
        arrays: EventArrays,
        cutoff_us: int,
        codes: Mapping[str, tuple[npt.NDArray[np.int32], Sequence[str]]],
    ) -> Vectors:
        """As ``vectors``, with each attribute given as one code per customer (-1: none) and
        the values they index (attributes the spec does not name are ignored)."""
        n = arrays.n_customers
        mine = {name: codes[name] if name in codes else (np.full(n, -1, np.int32), [])
                for name in self.spec.attributes}
        counts = np.bincount(arrays.cust, minlength=n).tolist()
        return Vectors(self.kernel(arrays, cutoff_us), CodedAttributes(mine, n), counts, mine)
