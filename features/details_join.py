"""Joining detail tables (``features.details_spec``) onto a load's events, batch by batch.

An event whose explicit ``event_id`` is a detail row's key takes the row's value when it has
none of its own, and its channel when it has only the default one (its source gave none). An
event's own value wins: a detail row never overwrites it, and the load counts how many such
events there were and how many of them the file contradicts. With several detail files, the
first listed that gives a field wins, in the same way. Events with a derived id (``d-…``) have
no id a detail table could hold, and are left alone.

Each file's keys are hashed once (DuckDB's 64-bit ``hash``) and sorted; a batch's ids are
hashed in one query and found by binary search, then compared as text, so a collision cannot
join the wrong row. A batch costs O(rows * log keys): ``pc.index_in`` would build a hash table
of the keys for every batch (0.34 s per 100k events against a million keys). A load without
detail files never comes here.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.details_read import DetailTable, RejectRow, read_detail
from features.mapping_checks import normal_channel_name
from features.normalize import DERIVED_ID
from features.read_base import ReadLimits
from features.schema import DEFAULT_CHANNEL
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from features.mapping import ColumnMapping
    from features.store_log import IngestReport

# Above this many keys, a batch's hashes are sorted before the search: random probes into a
# large array miss the cache (38 ms against 7 ms for 100k ids in a million keys); below it the
# sort costs more than it saves.
SORT_PROBES_ABOVE = 1 << 16
WIDTH = 96  # report lines wrap here, as the load's others do


class _KeyIndex:
    """Where a batch's event ids are among one detail file's keys."""

    def __init__(self, keys: pa.Array, hashes: np.ndarray) -> None:
        self.keys = keys
        self.order = np.argsort(hashes, kind="stable")
        self.sorted = hashes[self.order]
        # Two keys of one hash (never seen at 64 bits, but possible): the search would find
        # only one of them, so such a file is looked up exactly, at the slower pace.
        self.exact = bool(np.all(self.sorted[1:] != self.sorted[:-1]))

    def find(self, ids: pa.Array, hashes: np.ndarray) -> np.ndarray:
        """The key row of each id, -1 where the file has none."""
        found = np.full(len(ids), -1, np.int64)
        n = len(self.sorted)
        if n == 0:
            return found
        if not self.exact:
            at = pc.index_in(ids, value_set=self.keys)
            return np.asarray(pc.fill_null(at, -1).to_numpy(zero_copy_only=False), np.int64)
        if n > SORT_PROBES_ABOVE:
            probe = np.argsort(hashes)
            pos = np.empty(len(hashes), np.int64)
            pos[probe] = np.searchsorted(self.sorted, hashes[probe])
        else:
            pos = np.searchsorted(self.sorted, hashes)
        pos = np.minimum(pos, n - 1)
        hit = np.flatnonzero(self.sorted[pos] == hashes)
        if hit.size:
            rows = self.order[pos[hit]]
            same = pc.equal(self.keys.take(pa.array(rows)), ids.take(pa.array(hit)))
            ok = np.asarray(same.to_numpy(zero_copy_only=False), bool)
            found[hit[ok]] = rows[ok]
        return found


@dataclass
class DetailCounts:
    """What one detail file did to a load."""

    name: str
    used: dict[str, str]  # field -> the column it came from
    rows: int  # rows read
    rejected: Counter[str] = field(default_factory=Counter)
    joined: int = 0  # accepted rows whose key is an event's id in this load
    filled: int = 0  # events that took their value from the file
    filled_conversions: int = 0  # of those, conversion events
    channels: int = 0  # events that took their channel from the file
    kept_own: int = 0  # events that had a value and kept it, though the file gives one
    differed: int = 0  # of those, the ones whose value the file contradicts

    @property
    def unmatched(self) -> int:
        return self.rows - sum(self.rejected.values()) - self.joined


@dataclass
class DetailsReport:
    """What the detail files did to a load, for `journey ingest` to print."""

    files: list[DetailCounts]
    conversion: str  # what the taxonomy's conversions are called: "purchase"
    conversions: int = 0  # conversion events in the load
    valued: int = 0  # of those, the ones with a value after the join

    @property
    def rejected_total(self) -> int:
        return sum(sum(c.rejected.values()) for c in self.files)

    @property
    def filled_total(self) -> int:
        return sum(c.filled + c.channels for c in self.files)

    def lines(self) -> list[str]:
        missing = self.conversions - self.valued
        still = (f"{missing:,} of the {self.conversions:,} {self.conversion} events in this "
                 "load still have none")
        out: list[str] = []
        for counts in self.files:
            tail = f"; {still}" if len(self.files) == 1 and self.conversions else ""
            out += _file_lines(counts, self.conversion, tail)
        if len(self.files) > 1 and self.conversions:
            out += _wrapped(f"details: {self.valued:,} of the {self.conversions:,} "
                            f"{self.conversion} events in this load carry a value, {missing:,} "
                            "still have none")
        return out


def _wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "    ")


def _file_lines(c: DetailCounts, conversion: str, tail: str) -> list[str]:
    columns = ", ".join(f"{f}: {col}" for f, col in c.used.items())
    rejected = sum(c.rejected.values())
    others = c.filled - c.filled_conversions
    gave = (f"{c.filled_conversions:,} {conversion} events"
            + (f" and {others:,} other events" if others else "") + " now carry a value"
            + (f", {c.channels:,} events took its channel" if c.channels else ""))
    out = _wrapped(f"details {c.name} ({columns}): {c.rows:,} rows"
                   + (f", {rejected:,} rejected" if rejected else "")
                   + f", {c.joined:,} joined to events: {gave}{tail}")
    if c.unmatched:
        out += _wrapped(f"{c.unmatched:,} rows of {c.name} match no event of this load: not "
                        "joined", "  ")
    if c.kept_own:
        out += _wrapped(f"{c.kept_own:,} joined events kept their own value ({c.differed:,} of "
                        f"them differ from {c.name}'s)", "  ")
    for reason, n in c.rejected.most_common():
        out.append(f"  {c.name}: {n:,} rows rejected: {reason}")
    return out


class DetailJoin:
    """Fills a load's batches from its detail files, and counts what it did."""

    def __init__(self, tables: list[DetailTable], taxonomy: Taxonomy,
                 missing_channel: str) -> None:
        self._con = duckdb.connect()
        self.tables = tables
        self.missing_channel = missing_channel
        self.indexes = [_KeyIndex(t.keys, self._hash(t.keys)) for t in tables]
        self.matched = [np.zeros(len(t.keys), bool) for t in tables]
        self.values = [np.asarray(t.fields["value"].to_numpy(zero_copy_only=False), float)
                       if "value" in t.fields else None for t in tables]
        self.counts = [DetailCounts(t.name, t.used, t.rows, t.rejected) for t in tables]
        self.conversion_types = pa.array(taxonomy.conversion_event_types, pa.string())
        types = taxonomy.conversion_event_types
        self.report = DetailsReport(self.counts, types[0] if len(types) == 1 else "conversion")

    def close(self) -> None:
        self._con.close()

    def finish(self) -> DetailsReport:
        """The report, once every batch has been through the join."""
        for counts, matched in zip(self.counts, self.matched, strict=True):
            counts.joined = int(matched.sum())
        return self.report

    def rejects(self) -> list[RejectRow]:
        return [row for t in self.tables for row in t.rejects]

    def _hash(self, ids: pa.Array) -> np.ndarray:
        self._con.register("ids", pa.table({"k": ids}))
        try:
            hashed = self._con.execute("SELECT hash(k) AS h FROM ids").fetchnumpy()["h"]
        finally:
            self._con.unregister("ids")
        return np.asarray(hashed, np.uint64)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """The batch with values (and channels) filled from the detail files."""
        ids = batch["event_id"].combine_chunks()
        hashes = self._hash(ids)
        derived = np.asarray(batch[DERIVED_ID].to_numpy(), bool)
        conv = np.asarray(pc.is_in(batch["event_type"], value_set=self.conversion_types)
                          .to_numpy(), bool)
        value = np.asarray(batch["value"].to_numpy(), float)  # missing: NaN (never a value)
        channel = batch["channel"].combine_chunks()
        for i, (table, index, counts) in enumerate(zip(self.tables, self.indexes, self.counts,
                                                       strict=True)):
            found = index.find(ids, hashes)
            found[derived] = -1
            hit = found >= 0
            if not hit.any():
                continue
            self.matched[i][found[hit]] = True
            theirs = self.values[i]
            if theirs is not None:
                value = _fill_value(value, theirs, found, hit, conv, counts)
            if "channel" in table.fields:
                channel = self._fill_channel(channel, table.fields["channel"], found, hit, counts)
        self.report.conversions += int(conv.sum())
        self.report.valued += int((conv & ~np.isnan(value)).sum())
        at = batch.schema.get_field_index
        batch = batch.set_column(at("value"), batch.schema.field("value"),
                                 pa.array(value, pa.float64(), mask=np.isnan(value)))
        return batch.set_column(at("channel"), batch.schema.field("channel"), channel)

    def _fill_channel(self, channel: pa.Array, theirs: pa.Array, found: np.ndarray,
                      hit: np.ndarray, counts: DetailCounts) -> pa.Array:
        given = theirs.take(pa.array(found, pa.int64(), mask=~hit))
        fill = pc.and_(pc.equal(channel, self.missing_channel), pc.is_valid(given))
        counts.channels += int(pc.sum(pc.cast(fill, pa.int64())).as_py() or 0)
        return pc.if_else(fill, given, channel)


def _fill_value(value: np.ndarray, theirs: np.ndarray, found: np.ndarray, hit: np.ndarray,
                conv: np.ndarray, counts: DetailCounts) -> np.ndarray:
    """The events' values with the file's where they had none; counts what it filled and
    where an event's own value was kept."""
    given = np.full(len(value), np.nan)
    given[hit] = theirs[found[hit]]
    has = ~np.isnan(given)
    own = ~np.isnan(value)
    fill, kept = has & ~own, has & own
    counts.filled += int(fill.sum())
    counts.filled_conversions += int((fill & conv).sum())
    counts.kept_own += int(kept.sum())
    counts.differed += int((kept & (given != value)).sum())
    return np.where(fill, given, value)


def open_join(mapping: ColumnMapping, taxonomy: Taxonomy,
              limits: ReadLimits | None = None) -> DetailJoin:
    """Read the mapping's detail files and make their join. An event "has no channel" when it
    has the one a row without a channel gets (the mapping's default, renamed as it would be)."""
    tables = [read_detail(source, mapping, limits) for source in mapping.details]
    default = normal_channel_name(mapping.defaults.get("channel", DEFAULT_CHANNEL))
    return DetailJoin(tables, taxonomy, mapping.channels.get(default, default))


def stored_before_note(report: IngestReport, had_events: bool) -> list[str]:
    """What `journey ingest` adds when a load into a store that held events (``had_events``)
    filled values from detail files and left rows out as conflicting: the store is
    append-only, so an event stored before without a value keeps none, and its row with the
    joined value is one of those conflicts."""
    details = report.load.details
    if not (had_events and details is not None and details.filled_total
            and report.append.conflicts):
        return []
    return _wrapped("note: values joined from detail files reach only events new to this "
                    "store; an event stored before keeps what it was stored with (its row "
                    "with the joined value is among the conflicting ones, which say 'differs "
                    "in value'). To bring the values in, load the events with their details "
                    "into a new store (--store).")
