"""Every customer's encoded events in memory, for scoring one customer in well under a
millisecond.

A point query on the DuckDB store costs 20-90 ms (a customer's events are spread over the
whole file), far over a request budget of a few milliseconds. The service is the store's single
writer, so it loads the encoded events once (the batch engine's arrays: same codes, same tie
order, hence the same vectors as batch; held in the narrowest exact types,
``features.compact_events``) and applies each append it commits. Events added since
start-up live in one set of growing arrays, each customer's by position, and are merged with
the loaded ones when read; data is written before its positions are published and the loaded
arrays are never modified, so readers need no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from numba import njit

from features.batch import RANGE_ROWS, BatchEngine
from features.compact_events import WIDE, CompactBuilder, CompactEvents
from features.events import Encoder, EventArrays, tie_order
from features.spec import FeatureSpec
from features.store import EventStore

END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Attributes:
    """Customer attributes by store key: per name, codes (-1 none) and their values."""

    key_of: dict[str, int]
    columns: dict[str, tuple[np.ndarray, list[str]]]

    def of(self, customer_id: str) -> dict[str, str | None]:
        key = self.key_of.get(customer_id)
        out: dict[str, str | None] = {}
        for name, (codes, values) in self.columns.items():
            code = codes[key] if key is not None and key < len(codes) else -1
            out[name] = values[code] if code >= 0 else None
        return out


class HistoryIndex:
    """Encoded events per customer, ordered as every engine orders them."""

    def __init__(self, spec: FeatureSpec, loaded: CompactEvents, ids: list[str],
                 starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64],
                 attributes: Attributes) -> None:
        """``loaded``: the events narrowed, customer ``ids[i]``'s at ``starts[i]:ends[i]``
        (the per-event customer codes are implied by these segments)."""
        self.spec = spec
        self.enc = Encoder(spec)
        self.loaded = loaded
        self._ids = ids
        self._segment = {cid: (int(s), int(e)) for cid, s, e in
                         zip(ids, starts.tolist(), ends.tolist(), strict=True)}
        self._added = AddedEvents()
        self.attributes = attributes
        # Compiled (or read from numba's cache) here, while the service loads: else the first
        # batch prediction or recommendation paid 0.4-0.7 s for it.
        none = np.zeros(0, np.int64)
        _counts_before(loaded.ts[:0], none, none, 0)

    @classmethod
    def of(cls, spec: FeatureSpec, base: EventArrays, attributes: Attributes) -> HistoryIndex:
        """From the batch engine's arrays (``base`` is the caller's to drop)."""
        starts, ends = base.segments if base.segments is not None else (np.zeros(0, np.int64),) * 2
        return cls(spec, CompactEvents.of(base), list(base.customer_ids), starts, ends,
                   attributes)

    @classmethod
    def load(cls, store: EventStore, spec: FeatureSpec, rows: int = RANGE_ROWS) -> HistoryIndex:
        """Every stored event, read in customer-key ranges (``BatchEngine.encoded_ranges``):
        only one range is held in the wide types, so the load peaks at the narrowed whole plus
        one range, not at the whole store wide (~85 bytes an event: 1.47 GB above the service
        at 17.4M events, where ranges make it 0.84 GB)."""
        engine = BatchEngine(store, spec)
        plan = engine.key_ranges(END_OF_TIME, rows)
        builder = CompactBuilder(plan.total, plan.first_us, plan.last_us)
        ids: list[str] = []
        starts, ends = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for part, _ in engine.encoded_ranges(END_OF_TIME, plan):
            assert part.segments is not None
            ids += part.customer_ids
            starts.append(part.segments[0] + builder.filled)
            ends.append(part.segments[1] + builder.filled)
            builder.add(part)
            del part  # before the next range is fetched
        key_of = store.customer_keys()
        columns = {
            name: (codes, [str(v) for v in vocab.to_pylist()])
            for name, (codes, vocab) in store.attributes_by_key(spec.attributes).items()
        }
        return cls(spec, builder.done(), ids, np.concatenate(starts), np.concatenate(ends),
                   Attributes(key_of, columns))

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._added or customer_id in self._segment

    @property
    def n_customers(self) -> int:
        return len(self._segment) + sum(1 for c in self._added.customers()
                                        if c not in self._segment)

    def customer_ids(self) -> list[str]:
        """Every known customer: the loaded ones in store order, then those first seen since."""
        return self._ids + [c for c in self._added.customers() if c not in self._segment]

    def arrays(self, customer_id: str, cutoff_us: int) -> EventArrays | None:
        """The customer's events strictly before ``cutoff_us``; None for an unknown customer."""
        full = self._full(customer_id)
        if full is None:
            return None
        n = int(np.searchsorted(full.ts, cutoff_us, side="left"))
        if n == len(full.ts):
            return full
        return EventArrays([customer_id], full.cust[:n], full.ts[:n], full.etype[:n],
                           full.channel[:n], full.action[:n], full.value[:n], full.score[:n])

    def _full(self, customer_id: str) -> EventArrays | None:
        """All of a customer's events: the loaded ones (views) and those added since."""
        added = self._added.of(customer_id)
        seg = self._segment.get(customer_id)
        if seg is None:
            return added
        s, e = seg
        b = self.loaded
        loaded = EventArrays([customer_id], np.zeros(e - s, np.int32), b.read("ts", s, e),
                             b.read("etype", s, e), b.read("channel", s, e),
                             b.read("action", s, e), b.read("value", s, e),
                             b.read("score", s, e))
        return loaded if added is None else _merged(customer_id, loaded, added)

    def many(self, customer_ids: list[str], cutoff_us: int) -> EventArrays:
        """Several known customers' events before ``cutoff_us`` as one set of arrays (customer
        codes in the given order), for one pass of the batch kernel.

        Loaded events are gathered with whole-array operations: a slice and a search per
        customer, then one concatenation of 20k slices per column, held the interpreter
        90-160 ms for a scoring run's population, and requests queued behind it."""
        b = self.loaded
        n = len(customer_ids)
        seg_start = np.zeros(n, np.int64)  # loaded customers: their segment of ``loaded``
        seg_stop = np.zeros(n, np.int64)
        own: dict[int, EventArrays] = {}  # position: a customer with events added since
        missing = []
        for i, cid in enumerate(customer_ids):
            if cid in self._added:
                src = self._full(cid)
                assert src is not None
                own[i] = src
            elif (se := self._segment.get(cid)) is not None:
                seg_start[i], seg_stop[i] = se
            else:
                missing.append(cid)
        if missing:
            raise KeyError(missing)
        sizes = _counts_before(b.ts, seg_start, seg_stop, b.limit(cutoff_us))  # 0: the others
        for i, src in own.items():
            sizes[i] = np.searchsorted(src.ts, cutoff_us, side="left")
        ends = np.cumsum(sizes)
        firsts = ends - sizes
        loaded = np.ones(n, bool)
        loaded[list(own)] = False
        rows = np.repeat(loaded, sizes)  # the output rows loaded events fill
        at = (np.repeat(seg_start - firsts, sizes) + np.arange(len(rows)))[rows]
        cols = {name: _gathered(b, name, at, rows, own, firsts, sizes) for name in COLUMNS}
        return EventArrays(
            list(customer_ids), np.repeat(np.arange(n, dtype=np.int32), sizes),
            cols["ts"], cols["etype"], cols["channel"], cols["action"], cols["value"],
            cols["score"], segments=(firsts, ends))

    def add(self, rows: pa.Table) -> None:
        """Apply events the store has just committed (each exactly once: the store's
        ``append(..., returning=True)`` rows). Only the new events are kept, merged with the
        loaded ones on read: a merged copy per touched customer would grow the process by
        the whole history of every customer who ever sent an event (~4 KB each)."""
        for cid, new in self.enc.by_customer(rows).items():
            self._added.add(cid, new)


COLUMNS = ("ts", "etype", "channel", "action", "value", "score")


@njit(cache=True)
def _counts_before(ts: npt.NDArray[Any], start: npt.NDArray[np.int64],
                   stop: npt.NDArray[np.int64], limit: int) -> npt.NDArray[np.int64]:
    """Per segment ``[start, stop)`` of ``ts``, how many of its events are below ``limit``
    (the cutoff in ``ts``'s units; each segment is sorted by time: they are its first k).
    A binary search in each segment: no pass over the events. A running count over every
    loaded event took 0.24 s a call at 17.4M events (and a 140 MB temporary), once per part of
    a scoring run's population; over the requested segments alone, a batch of 1,000 customers
    in a store of 87M events had taken 1-14 s."""
    out = np.empty(len(start), np.int64)
    for i in range(len(start)):
        lo, hi = start[i], stop[i]
        while lo < hi:
            mid = (lo + hi) // 2
            if ts[mid] < limit:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo - start[i]
    return out


def _gathered(loaded: CompactEvents, name: str, at: npt.NDArray[np.int64],
              rows: npt.NDArray[np.bool_], own: dict[int, EventArrays],
              firsts: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """Column ``name`` of ``many``: the loaded events at ``at`` into the ``rows`` they fill,
    then each customer with events added since into its own place."""
    out = np.empty(len(rows), WIDE[name])
    loaded.fill(name, out, rows, at)
    for i, src in own.items():
        f, k = int(firsts[i]), int(sizes[i])
        out[f:f + k] = getattr(src, name)[:k]
    return out


class AddedEvents:
    """Events added since start-up: one array per field, grown by doubling, and each
    customer's rows by position. Small arrays per customer cost ~1 KB each in headers alone,
    which a long-running service touched by every customer would carry for good."""

    def __init__(self, capacity: int = 4096) -> None:
        self._cols: dict[str, np.ndarray] = {
            "ts": np.zeros(capacity, np.int64), "etype": np.zeros(capacity, np.int16),
            "channel": np.zeros(capacity, np.int16), "action": np.zeros(capacity, np.int16),
            "value": np.zeros(capacity), "score": np.zeros(capacity)}
        self._n = 0
        self._rows: dict[str, list[int]] = {}

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._rows

    def __len__(self) -> int:
        return self._n

    def customers(self) -> list[str]:
        return list(self._rows)

    def add(self, customer_id: str, new: EventArrays) -> None:
        """Append one customer's events (single writer: the caller serialises adds)."""
        k, n = len(new), self._n
        if n + k > len(self._cols["ts"]):
            size = max(2 * len(self._cols["ts"]), n + k)
            grown = {}
            for name, old in self._cols.items():
                grown[name] = np.zeros(size, old.dtype)
                grown[name][:n] = old[:n]
            self._cols = grown  # readers holding the old arrays still see their rows there
        for name in COLUMNS:
            self._cols[name][n:n + k] = getattr(new, name)
        self._n = n + k
        # Published last, whole: a reader that sees these positions finds their data written.
        rows = self._rows.get(customer_id)
        if rows is None:
            self._rows[customer_id] = list(range(n, n + k))
        else:
            rows.extend(range(n, n + k))

    def of(self, customer_id: str) -> EventArrays | None:
        """The customer's added events in tie order; None when none were added."""
        rows = self._rows.get(customer_id)
        if rows is None:
            return None
        at = np.array(rows, np.int64)  # positions first, then the arrays (see ``add``)
        cols = self._cols
        ts, etype, channel, action, value, score = (cols[name][at] for name in COLUMNS)
        order = tie_order(ts, etype, channel, action, value, score)
        return EventArrays([customer_id], np.zeros(len(at), np.int32), ts[order],
                           etype[order], channel[order], action[order], value[order],
                           score[order])


def _merged(customer_id: str, a: EventArrays, b: EventArrays) -> EventArrays:
    ts = np.concatenate([a.ts, b.ts])
    etype = np.concatenate([a.etype, b.etype])
    channel = np.concatenate([a.channel, b.channel])
    action = np.concatenate([a.action, b.action])
    value = np.concatenate([a.value, b.value])
    score = np.concatenate([a.score, b.score])
    order = tie_order(ts, etype, channel, action, value, score)
    return EventArrays([customer_id], np.zeros(len(ts), np.int32), ts[order], etype[order],
                       channel[order], action[order], value[order], score[order])
