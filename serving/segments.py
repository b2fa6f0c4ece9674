"""Churn-risk segments of a score snapshot, for the API, the dashboard and ``journey segments``.

A snapshot is loaded once into columns of codes, and pre-aggregated into a cube
(``serving.segment_cube``): one cell per combination of dimension values present, with its
size, summed risk, value and revenue at risk and its customers' top actions. Any segment
table (cut by some dimensions, filtered on others) is then an aggregation of a few thousand
cells, not of every customer, so it answers in milliseconds whatever the number of customers.
Customer lists (drill-down, CSV export) filter the columns with one lookup per dimension.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from serving.segment_cube import (
    I64,
    NONE,
    Cube,
    SegmentQueryError,
    dimension_of,
)
from serving.segments_personas import NAMES_FILE_META, SnapshotPersonas, snapshot_personas
from serving.snapshots import Snapshot
from serving.utc import utc_date

__all__ = ["BOM", "SORTABLE", "Segment", "SegmentBook", "SegmentQueryError"]

OPTIONAL = ("persona",)  # dimensions older snapshots may lack (read as NONE for everyone)
# The first is the routes' default sort, the one a book sorts ahead (``SegmentBook.warm``).
SORTABLE = ("revenue_at_risk", "churn", "conversion", "expected_value", "recency_days")
# Decimals the CSV export keeps: enough to rank and to sum, without the float noise
# (0.30000000000000004) that makes a spreadsheet look wrong. Probabilities 4, money 2, days 1.
EXPORT_DECIMALS = {"churn": 4, "conversion": 4, "next_stage_probability": 4,
                   "expected_value": 2, "revenue_at_risk": 2, "top_action_value": 2,
                   "recency_days": 1}
# Excel opens a CSV without a byte-order mark in the machine's code page, garbling non-ASCII
# values (a persona named "Stammkunden (Köln)"); other readers skip it.
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Segment:
    key: dict[str, str]
    customers: int
    share: float  # of the customers matching the filters
    mean_risk: float  # NaN when no customer matches: there is no mean to show
    expected_value: float  # NaN (and revenue_at_risk) when the snapshot knows no value
    revenue_at_risk: float
    top_action: str | None
    top_action_share: float  # of the segment's customers
    change: dict[str, float] | None  # since the previous snapshot (None: no previous one)


class SegmentBook:
    """A snapshot's customers as columns, its cube, and the previous snapshot's cube.

    Personas are read by id under their current names (``names_file``, default the one the
    scoring run recorded): a persona renamed since is shown, filtered, exported and compared
    with the previous snapshot under its new name (``serving.segments_personas``)."""

    def __init__(self, snapshot: Snapshot, dimensions: Sequence[str],
                 previous: Snapshot | None = None, names_file: Path | None = None) -> None:
        self.snapshot = snapshot
        recorded = snapshot.meta.get(NAMES_FILE_META)
        self.names_file = names_file or (Path(recorded) if recorded else None)
        self.personas, self.table = _named(snapshot, dimensions, self.names_file)
        missing = [d for d in dimensions if d not in self.table.column_names]
        if missing:
            raise SegmentQueryError(f"snapshot {snapshot.id} has no column for dimension(s) "
                                    f"{', '.join(missing)}: score again", "dimensions")
        self.dims = {d: dimension_of(d, self.table[d]) for d in dimensions}
        if self.personas is not None and "persona" in self.dims:
            self.dims["persona"] = dataclasses.replace(self.dims["persona"],
                                                       ids=len(self.personas.names) - 1)
        self.cube = Cube.of(list(self.dims.values()), self.table)
        self._orders: dict[tuple[str, bool], I64] = {}
        self.previous = previous
        self.previous_cube = None
        if previous is not None:
            was, old = _named(previous, dimensions, self.names_file)
            if was is not None and self.personas is not None \
                    and was.version != self.personas.version:
                # Another persona model: its ids are other personas, whatever their names.
                old = _relabel(old, "persona", f" (journey-personas v{was.version})")
            if all(d in old.column_names for d in dimensions):
                self.previous_cube = Cube.of([dimension_of(d, old[d]) for d in dimensions], old)

    def check(self, by: Sequence[str], filters: Mapping[str, Sequence[str]]) -> None:
        for i, name in enumerate(by):
            if name not in self.dims:
                raise SegmentQueryError(f"{name!r} is not a segment dimension; dimensions: "
                                        f"{', '.join(self.dims)}", f"by[{i}]")
        if len(set(by)) != len(by):
            raise SegmentQueryError("a dimension is listed twice", "by")
        self.canonical(filters)

    def canonical(self, filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """``filters`` with each value as the snapshot spells it (``High`` -> ``high``);
        an unknown dimension or value is refused, naming it."""
        out: dict[str, list[str]] = {}
        for name, wanted in filters.items():
            if name not in self.dims:
                raise SegmentQueryError(f"{name!r} is not a segment dimension; dimensions: "
                                        f"{', '.join(self.dims)}", name)
            d = self.dims[name]
            out[name] = list(dict.fromkeys(d.values[d.code_of(v, name)] for v in wanted))
        return out

    def segments(self, by: Sequence[str], filters: Mapping[str, Sequence[str]]
                 ) -> tuple[list[Segment], Segment]:
        """Segments cut by ``by`` among the customers matching ``filters`` (largest revenue
        at risk first), and their total."""
        self.check(by, filters)
        filters = self.canonical(filters)
        now = self.cube.group(by, filters)
        before = self.previous_cube.group(by, filters) if self.previous_cube else None
        total_now = self.cube.group((), filters)
        total_before = self.previous_cube.group((), filters) if self.previous_cube else None
        n = sum(v["customers"] for v in now.values())
        rows = [self._segment(dict(zip(by, k, strict=True)), v, n,
                              None if before is None else before.get(k))
                for k, v in now.items()]
        rows.sort(key=lambda s: (-np.nan_to_num(s.revenue_at_risk), -s.customers))
        money = self.cube.money(0.0)
        empty = {"customers": 0, "churn_sum": 0.0, "expected_value": money,
                 "revenue_at_risk": money, "actions": np.zeros(len(self.cube.action_names))}
        total = self._segment({}, total_now.get((), empty), n,
                              None if total_before is None else total_before.get(()))
        return rows, total

    def _segment(self, key: dict[str, str], cell: dict[str, Any], n: int,
                 before: dict[str, Any] | None) -> Segment:
        size = cell["customers"]
        acts = cell["actions"]
        best = int(np.argmax(acts)) if len(acts) and acts.max() > 0 else None
        change = None
        if self.previous_cube is not None:
            # A segment new since: nothing before, unless the previous knew no value at all.
            b = before or {"customers": 0, "churn_sum": 0.0,
                           "revenue_at_risk": self.previous_cube.money(0.0)}
            change = {
                "customers": size - b["customers"],
                "mean_risk": _mean(cell["churn_sum"], size) - _mean(b["churn_sum"],
                                                                     b["customers"]),
                "revenue_at_risk": cell["revenue_at_risk"] - b["revenue_at_risk"],
            }
        return Segment(key, size, size / n if n else 0.0, _mean(cell["churn_sum"], size),
                       cell["expected_value"], cell["revenue_at_risk"],
                       self.cube.action_names[best] if best is not None else None,
                       float(acts[best]) / size if best is not None and size else 0.0, change)

    # -- customers -----------------------------------------------------------------------
    def rows(self, filters: Mapping[str, Sequence[str]], sort: str = SORTABLE[0],
             descending: bool = True) -> I64:
        """Indices of the matching customers, sorted (ties by customer order)."""
        self.check((), filters)
        if sort not in SORTABLE:
            raise SegmentQueryError(f"cannot sort by {sort!r}; sort by one of: "
                                    f"{', '.join(SORTABLE)}", "sort")
        mask = np.ones(self.table.num_rows, bool)
        for name, wanted in filters.items():
            d = self.dims[name]
            lut = np.zeros(len(d.values), bool)
            lut[[d.code_of(v, name) for v in wanted]] = True
            mask &= lut[d.codes]
        order = self._order(sort, descending)
        return order[mask[order]]

    def warm(self) -> SegmentBook:
        """Sort the default order now: the service builds a book before it answers from it,
        so the first page after a new snapshot does not pay the sort (~140 ms at 1M)."""
        self._order(SORTABLE[0], True)
        return self

    def _order(self, sort: str, descending: bool) -> I64:
        """Every customer sorted by ``sort`` (ties by customer order, missing values last),
        once per snapshot and sort: a page filters this order instead of sorting its segment
        (155 ms a page at 1M customers; 3-6 ms filtered)."""
        order = self._orders.get((sort, descending))
        if order is None:  # two threads may both sort the first time: the same order
            key = np.nan_to_num(self.table[sort].to_numpy(zero_copy_only=False), nan=-np.inf)
            order = np.argsort(-key if descending else key, kind="stable")
            self._orders[(sort, descending)] = order
        return order

    def page(self, filters: Mapping[str, Sequence[str]], sort: str, limit: int, offset: int
             ) -> tuple[int, list[dict[str, Any]]]:
        idx = self.rows(filters, sort)
        chosen = self.table.take(pa.array(idx[offset:offset + limit]))
        return len(idx), chosen.to_pylist()

    @functools.cached_property
    def present(self) -> dict[str, list[str]]:
        """Each dimension's values that some customer has, in the snapshot's order: a filter
        offering a value nobody has (a stage no one is at, "(none)" when everyone has one)
        would only ever answer an empty table."""
        return {name: list(d.present) for name, d in self.dims.items()}

    @property
    def as_of_date(self) -> str:
        """The snapshot's as-of date, ISO (its meta's as-of text when that is not a time):
        its UTC date, as the dashboard and the KPIs' months read it, whatever offset the
        as-of was given with (older snapshots kept it)."""
        return utc_date(str(self.snapshot.meta.get("as_of", "")))

    def csv(self, filters: Mapping[str, Sequence[str]], sort: str = SORTABLE[0],
            block: int = 50_000) -> Iterator[bytes]:
        """The matching customers as CSV (a UTF-8 byte-order mark, the header, then the rows),
        in blocks: a large segment streams."""
        idx = self.rows(filters, sort)
        table = self.export_table
        yield BOM
        for start in range(0, max(len(idx), 1), block):
            part = table.take(pa.array(idx[start:start + block], pa.int64()))
            buf = io.BytesIO()
            pacsv.write_csv(part, buf, pacsv.WriteOptions(include_header=start == 0))
            yield buf.getvalue()

    @functools.cached_property
    def export_table(self) -> pa.Table:
        """The CSV's columns, prepared once per snapshot: dictionaries decoded (CSV writes
        values, not codes), a missing text "(none)" as the filters show it (a pivot table
        then groups those customers under a name, not a blank), scores rounded
        (``EXPORT_DECIMALS``; a missing number stays an empty cell: a number column holds
        only numbers), and the snapshot's as-of date on every row, so a file read later says
        when it held."""
        cols: list[pa.ChunkedArray | pa.Array] = []
        for name, c in zip(self.table.column_names, self.table.columns, strict=True):
            if pa.types.is_dictionary(c.type):
                c = pc.cast(c, c.type.value_type)
            if pa.types.is_null(c.type):  # a column null for all (no persona model)
                c = pc.cast(c, pa.string())
            if pa.types.is_string(c.type) or pa.types.is_large_string(c.type):
                c = _defused(pc.fill_null(c, NONE))
            elif name in EXPORT_DECIMALS and pa.types.is_floating(c.type):
                rounded = pc.round(c, EXPORT_DECIMALS[name])
                c = pc.if_else(pc.is_nan(rounded), pa.scalar(None, rounded.type), rounded)
            cols.append(c)
        cols.append(pa.repeat(pa.scalar(self.as_of_date), self.table.num_rows))
        return pa.table(cols, names=[*self.table.column_names, "as_of"])


def _with_optional(table: pa.Table, dimensions: Sequence[str]) -> pa.Table:
    """Snapshots scored before personas existed have no persona column: everyone (none)."""
    for name in OPTIONAL:
        if name in dimensions and name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table


def _named(snapshot: Snapshot, dimensions: Sequence[str], names_file: Path | None
           ) -> tuple[SnapshotPersonas | None, pa.Table]:
    """A snapshot's customers with the persona column under the current names (by id)."""
    table = _with_optional(snapshot.customers(), dimensions)
    personas = snapshot_personas(snapshot.meta, table, names_file)
    if personas is not None:
        table = table.set_column(table.column_names.index("persona"), "persona",
                                 personas.column())
    return personas, table


def _relabel(table: pa.Table, name: str, suffix: str) -> pa.Table:
    arr = table[name].combine_chunks()
    labels = pa.array([f"{v}{suffix}" for v in arr.dictionary.to_pylist()], pa.string())
    relabelled = pa.DictionaryArray.from_arrays(arr.indices, labels)
    return table.set_column(table.column_names.index(name), name, relabelled)


# Text a spreadsheet would run as a formula: =, +, -, @, a tab or a return first (OWASP's
# advice for CSV injection). Customer ids, attributes and persona names come from ingested data
# or a marketer, so an id such as -2+3+cmd|' /C calc'!A0 is exported as '-2+3+cmd|..., text.
# Only text columns are checked: numbers (scores, money, counts) are written as numbers, so a
# negative one is never prefixed. A text "-2" is prefixed too: it is an id, not a number.
FORMULA = r"^[=+\-@\t\r]"


def _defused(c: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    risky = pc.match_substring_regex(c, FORMULA)
    if not pc.any(risky).as_py():
        return c
    return pc.if_else(risky, pc.binary_join_element_wise("'", c, ""), c)


def _mean(total: float, n: int) -> float:
    # NaN, not 0: no customers have no mean risk (0 would read as "no risk"). The API turns
    # it into null; a change against an empty side is NaN too.
    return total / n if n else math.nan
