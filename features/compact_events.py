"""The service's loaded events in the narrowest types that hold them exactly, read back in the
engines' types.

The history index keeps every stored event in memory: 34 bytes an event in the batch engine's
arrays, 2.96 GB at 1M customers (87M events), the largest part of the service. Most of it is
wider than the data needs: times are whole seconds within a few years (an int32 count of
seconds), event type, channel and action codes number a few dozen (int8), scores are small
whole numbers (float32), and the per-event customer codes are implied by each customer's
segment. Here that is 19 bytes an event (-44 %).

Nothing is rounded: a column is narrowed only when every value converts back unchanged, and
is widened again as it is read, so the vectors stay the batch engine's to the last bit (the
kernels also see the one set of types they were compiled and warmed up for)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from features.events import EventArrays

# The engines' type of each column (features.events.EventArrays).
WIDE: dict[str, type[np.generic]] = {
    "ts": np.int64, "etype": np.int16, "channel": np.int16, "action": np.int16,
    "value": np.float64, "score": np.float64}
CODES, FLOATS = ("etype", "channel", "action"), ("value", "score")
CHUNK = 1 << 20  # rows per step of a check or conversion: bounded temporaries
# Largest stored time offset: one below int32's maximum, so that "before the cutoff" can
# always be written as ``stored < limit`` with ``limit`` an int32.
MAX_OFFSET = np.iinfo(np.int32).max - 1
UNITS = (1_000_000, 1_000, 1)  # microseconds per stored step: seconds, then milliseconds


def _chunks(n: int) -> range:
    return range(0, n, CHUNK)


def _narrow_codes(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if len(a) == 0 or (int(a.min()) >= -128 and int(a.max()) <= 127):
        return a.astype(np.int8)
    return a


def _narrow_floats(a: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    out = np.empty(len(a), np.float32)
    for i in _chunks(len(a)):
        part = a[i:i + CHUNK]
        with np.errstate(over="ignore"):  # beyond float32: inf, found unequal below
            out[i:i + CHUNK] = part
        # array_equal calls -0.0 equal to 0.0, but float32 keeps the sign of a zero anyway.
        if not np.array_equal(out[i:i + CHUNK].astype(np.float64), part, equal_nan=True):
            return a
    return out


def _narrow_times(ts: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], int, int]:
    """(stored, t0, unit): ``ts == t0 + stored * unit``; int32 when some unit allows it."""
    if len(ts) == 0:
        return ts, 0, 1
    t0, span = int(ts.min()), int(ts.max()) - int(ts.min())
    for unit in UNITS:
        if span // unit > MAX_OFFSET or (unit > 1 and t0 % unit):
            continue
        if all(not (ts[i:i + CHUNK] % unit).any() for i in _chunks(len(ts))):
            out = np.empty(len(ts), np.int32)
            for i in _chunks(len(ts)):
                out[i:i + CHUNK] = (ts[i:i + CHUNK] - t0) // unit
            return out, t0, unit
    return ts, 0, 1


@dataclass(frozen=True)
class CompactEvents:
    """Times as ``t0 + stored * unit`` microseconds, and the other columns, each narrowed
    only where exact."""

    ts: npt.NDArray[Any]
    t0: int
    unit: int
    columns: dict[str, npt.NDArray[Any]]

    @classmethod
    def of(cls, events: EventArrays) -> CompactEvents:
        ts, t0, unit = _narrow_times(events.ts)
        columns = {name: _narrow_codes(getattr(events, name)) for name in CODES}
        columns |= {name: _narrow_floats(getattr(events, name)) for name in FLOATS}
        return cls(ts, t0, unit, columns)

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def nbytes(self) -> int:
        return int(self.ts.nbytes + sum(a.nbytes for a in self.columns.values()))

    def limit(self, cutoff_us: int) -> int:
        """The stored time below which events are before ``cutoff_us``: ``ts < cutoff_us``
        exactly when ``stored < limit``."""
        if self.ts.dtype == np.int64:
            return cutoff_us
        steps = -((self.t0 - cutoff_us) // self.unit)  # ceil((cutoff - t0) / unit)
        return min(max(steps, 0), MAX_OFFSET + 1)

    def read(self, name: str, start: int, stop: int) -> npt.NDArray[Any]:
        """Rows ``[start, stop)`` of column ``name`` in the engines' type."""
        return self.gather(name, slice(start, stop))

    def fill(self, name: str, out: npt.NDArray[Any], rows: npt.NDArray[np.bool_],
             at: npt.NDArray[np.int64]) -> None:
        """``out[rows] = gather(name, at)`` for ``out`` in the engines' type, without a widened
        temporary: the assignment widens codes and floats itself (a scoring run's population
        at 17.4M events: 130 MB less per float column, and 0.49 -> 0.45 s for ``many``)."""
        out[rows] = self.gather(name, at) if name == "ts" else self.columns[name][at]

    def gather(self, name: str, at: npt.NDArray[np.int64] | slice) -> npt.NDArray[Any]:
        """Column ``name`` at positions ``at``, in the engines' type."""
        if name != "ts":
            return self.columns[name][at].astype(WIDE[name], copy=False)
        stored = self.ts[at]
        if stored.dtype == np.int64:
            return stored
        wide: npt.NDArray[np.int64] = stored.astype(np.int64)
        wide *= self.unit
        wide += self.t0
        return wide
