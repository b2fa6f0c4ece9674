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
kernels also see the one set of types they were compiled and warmed up for).

The columns are filled a part at a time (``CompactBuilder``), so a load never holds the whole
store in the wide types: at 17.4M events it peaks 0.84 GB over the service instead of 1.47."""

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


def _fits_int8(a: npt.NDArray[Any]) -> bool:
    return len(a) == 0 or (int(a.min()) >= -128 and int(a.max()) <= 127)


def _widened(a: npt.NDArray[Any], dtype: type[np.generic], filled: int) -> npt.NDArray[Any]:
    """A wider array of ``a``'s length holding its first ``filled`` values."""
    out = np.empty(len(a), dtype)
    out[:filled] = a[:filled]
    return out


def time_units(t_min: int, t_max: int) -> list[int]:
    """The steps times from ``t_min`` to ``t_max`` may be stored in as int32, coarsest first
    (each divides the one before); empty: int64 microseconds."""
    return [u for u in UNITS if (t_max - t_min) // u <= MAX_OFFSET and t_min % u == 0]


class CompactBuilder:
    """Narrowed columns filled part after part (a load in customer-key ranges holds one part
    in the wide types at a time, not the whole store).

    Each column starts in its narrowest type and is widened, with what it already holds, the
    first time a part has a value that would not come back unchanged: the result is the same
    as narrowing the whole at once. Times need the whole range up front (``t_min``,
    ``t_max``: the first and last event) to fix the origin."""

    def __init__(self, total: int, t_min: int, t_max: int) -> None:
        self.filled, self.t_min, self.t_max = 0, t_min, t_max
        self.units = time_units(t_min, t_max) if total else []
        self.t0 = t_min if self.units else 0
        self.ts: npt.NDArray[Any] = np.empty(total, np.int32 if self.units else np.int64)
        self.columns: dict[str, npt.NDArray[Any]] = {
            name: np.empty(total, np.int8) for name in CODES}
        self.columns |= {name: np.empty(total, np.float32) for name in FLOATS}

    def add(self, events: EventArrays) -> None:
        at, m = self.filled, len(events.ts)
        if m and (at + m > len(self.ts) or int(events.ts.min()) < self.t_min
                  or int(events.ts.max()) > self.t_max):  # the store changed since: no wrapping
            raise ValueError(f"events beyond the {len(self.ts):,} between {self.t_min} and "
                             f"{self.t_max} µs the columns were sized for")
        self._add_times(events.ts, at)
        for name in CODES:
            a, part = self.columns[name], getattr(events, name)
            if a.dtype == np.int8 and not _fits_int8(part):
                a = self.columns[name] = _widened(a, WIDE[name], at)
            a[at:at + m] = part
        for name in FLOATS:
            self._add_floats(name, getattr(events, name), at)
        self.filled = at + m

    def _add_times(self, ts: npt.NDArray[np.int64], at: int) -> None:
        unit = self.units[0] if self.units else 1
        for k, u in enumerate(self.units):  # a step that holds them: so do the finer ones
            if all(not (ts[i:i + CHUNK] % u).any() for i in _chunks(len(ts))):
                self.units = self.units[k:]
                break
        else:
            self.units = []
        if not self.units and self.ts.dtype == np.int32:  # no step holds them: microseconds
            wide = _widened(self.ts, np.int64, at)
            wide[:at] *= unit
            wide[:at] += self.t0
            self.ts, self.t0 = wide, 0
        elif self.units and self.units[0] != unit:  # a finer step: rescale what is stored
            self.ts[:at] *= unit // self.units[0]
        if self.ts.dtype == np.int64:
            self.ts[at:at + len(ts)] = ts
            return
        for i in _chunks(len(ts)):
            part = ts[i:i + CHUNK]
            self.ts[at + i:at + i + len(part)] = (part - self.t0) // self.units[0]

    def _add_floats(self, name: str, part: npt.NDArray[np.float64], at: int) -> None:
        a = self.columns[name]
        if a.dtype == np.float32:
            for i in _chunks(len(part)):
                piece = part[i:i + CHUNK]
                span = slice(at + i, at + i + len(piece))
                with np.errstate(over="ignore"):  # beyond float32: inf, found unequal below
                    a[span] = piece
                # array_equal calls -0.0 equal to 0.0, but float32 keeps a zero's sign anyway.
                if not np.array_equal(a[span].astype(np.float64), piece, equal_nan=True):
                    a = self.columns[name] = _widened(a, np.float64, at)
                    break
            else:
                return
        a[at:at + len(part)] = part

    def done(self) -> CompactEvents:
        """The columns filled so far (fewer than ``total`` if the parts held fewer)."""
        n = self.filled
        unit = self.units[0] if self.units and self.ts.dtype == np.int32 else 1

        def kept(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a if len(a) == n else a[:n].copy()  # not a view pinning the whole

        return CompactEvents(kept(self.ts), self.t0, unit,
                             {name: kept(a) for name, a in self.columns.items()})


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
        n = len(events.ts)
        builder = CompactBuilder(n, int(events.ts.min()) if n else 0,
                                 int(events.ts.max()) if n else 0)
        builder.add(events)
        return builder.done()

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
