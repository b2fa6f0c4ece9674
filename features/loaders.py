"""Load touchpoint logs (CSV, Parquet, JSON lines; gzip too) into canonical event batches.

Accounting invariant, per load: rows read = valid rows + rejected rows. Every rejected row is
written to the rejects file with its source file, line, field, reason and offending value.
Detail files (``features.details_join``) are counted apart: their rows are not events, so
their rejects go to the same file under their own source but not into ``rejected``.
"""

from __future__ import annotations

import csv
import textwrap
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from features.details_join import DetailJoin, DetailsReport, open_join
from features.epoch_hints import EpochHint
from features.mapping import ColumnMapping
from features.normalize import UNKNOWN_TYPE, Normalizer
from features.readers import BATCH_ROWS, LINE_COLUMN, ReadLimits, Reject, read_batches, source_files
from features.taxonomy import Taxonomy

REJECT_HEADER = ("source", "line", "field", "reason", "value")
# Distinct unknown event types a load counts by name (the rest only in the reason's total):
# garbage in the column must not grow the report without bound.
MAX_UNKNOWN_NAMES = 1000


@dataclass
class LoadReport:
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    valid: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None
    unknown_types: Counter[str] = field(default_factory=Counter)  # as the source spells them
    unknown_uncounted: int = 0  # rows of unknown types past MAX_UNKNOWN_NAMES names
    renamed: dict[str, str] = field(default_factory=dict)  # the mapping's event_types
    details: DetailsReport | None = None  # what the mapping's detail files joined
    # Valid rows left out by customer id (the mapping's exclude_customers), by id. Counted
    # apart: rows read = valid + rejected + excluded.
    excluded: Counter[str] = field(default_factory=Counter)
    exclude_listed: frozenset[str] = frozenset()
    # Events read from epoch numbers that fall before 1971 (seconds read as milliseconds).
    epochs: EpochHint = field(default_factory=EpochHint)

    @property
    def has_rejects(self) -> bool:
        """Whether the rejects file lists rows: the events' or the detail files'."""
        return bool(self.rejected_total or (self.details and self.details.rejected_total))

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def accepted_nothing(self) -> bool:
        """Rows were read and every one rejected (an empty file is not that): such a load is
        refused (``store_load.refused_load``) and leaves the store as it was."""
        return self.valid == 0 and self.rejected_total > 0

    def lines(self) -> list[str]:
        excluded = sum(self.excluded.values())
        out = [f"read {self.rows_read:,} rows from {len(self.files)} file(s): "
               f"{self.valid:,} valid, {self.rejected_total:,} rejected"
               + (f", {excluded:,} excluded" if excluded else "")]
        for reason, n in self.rejected.most_common():
            out.append(f"  rejected {n:>10,}  {reason}")
        out += self.epochs.lines()
        out += self._excluded_lines()
        out += self._unknown_type_lines()
        if self.details is not None:
            out += self.details.lines()
        if self.rejects_path is not None and self.has_rejects:
            out.append(f"rejected rows (file, line, field, reason, value): {self.rejects_path}")
        return out

    def _excluded_lines(self) -> list[str]:
        """Rows per excluded customer, and listed ids no row had: a misspelt id excludes
        nothing, which the analyst must see."""
        out = [f"  excluded {n:>10,}  customer {cid!r} (exclude_customers)"
               for cid, n in self.excluded.most_common()]
        unseen = sorted(self.exclude_listed - set(self.excluded))
        if unseen:
            shown = ", ".join(repr(c) for c in unseen[:5])
            more = f" and {len(unseen) - 5:,} more" if len(unseen) > 5 else ""
            out.append(f"  excluded customers with no row in this load: {shown}{more}")
        return out

    def _unknown_type_lines(self) -> list[str]:
        """Which event types the taxonomy lacked, and the three ways to load them."""
        if not self.unknown_types:
            return []
        # A type the mapping renamed is unknown under its new name: name both spellings.
        top = self.unknown_types.most_common(5)
        more = len(self.unknown_types) - len(top)
        names = ", ".join(self._spelling(name, n) for name, n in top) + (
            f" and {more:,} more" if more > 0 else "") + (
            f"; {self.unknown_uncounted:,} more rows of types not counted by name"
            if self.unknown_uncounted else "")
        advice = ("to load them: add them to the taxonomy's event_types (JOURNEY_TAXONOMY), "
                  "rename them to known types in a mapping file's event_types, or keep them "
                  "without a stage (--unknown-events keep)")
        if any(name in self.renamed for name in self.unknown_types):
            advice = ("to load them: add them (the mapped name where there is one) to the "
                      "taxonomy's event_types (JOURNEY_TAXONOMY), map them to types the taxonomy "
                      "has in the mapping's event_types, or keep them without a stage "
                      "(--unknown-events keep)")
        return [*textwrap.wrap(f"unknown event types: {names}", 96, initial_indent="  ",
                               subsequent_indent="    "),
                *textwrap.wrap(advice, 96, initial_indent="  ", subsequent_indent="    ")]

    def _spelling(self, name: str, rows: int) -> str:
        if name in self.renamed:
            return (f"{name!r} ({rows:,}; mapped to {self.renamed[name]!r}, which is not in the "
                    "taxonomy)")
        return f"{name!r} ({rows:,})"


class RejectsWriter:
    """Streams rejects to a CSV file, created on the first reject only, under a partial name
    until ``commit``: a load that stops (a corrupt file among good ones) stores nothing, and
    must not leave a list of rejects of a load that never happened (``discard``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.partial = None if path is None else path.with_name(f".{path.name}.partial")
        self._made_dir: Path | None = None  # the directory the first reject created, if any
        self._fh: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

    def write(self, rows: list[dict[str, object]]) -> None:
        if not rows or self.partial is None:
            return
        if self._writer is None:
            if not self.partial.parent.exists():
                self._made_dir = self.partial.parent
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            # Values are clipped to valid text when read; "replace" is the last guard, so a
            # stray byte never stops a load while it reports its rejects.
            self._fh = self.partial.open("w", newline="", encoding="utf-8", errors="replace")
            self._writer = csv.DictWriter(self._fh, fieldnames=REJECT_HEADER)
            self._writer.writeheader()
        self._writer.writerows(rows)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def commit(self) -> None:
        """The load happened: its rejects take their name (replacing a file of that name)."""
        self.close()
        if self._writer is not None and self.path is not None and self.partial is not None:
            self.partial.replace(self.path)

    def discard(self) -> None:
        """The load stored nothing: no rejects file (nor the directory made for it)."""
        self.close()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)
        if self._made_dir is not None and not any(self._made_dir.iterdir()):
            self._made_dir.rmdir()


def load_events(
    path: str | Path,
    mapping: ColumnMapping,
    taxonomy: Taxonomy,
    report: LoadReport,
    rejects_path: Path | None = None,
    batch_rows: int = BATCH_ROWS,
    limits: ReadLimits | None = None,
    lines: bool = False,
    writer: RejectsWriter | None = None,
) -> Generator[pa.Table, None, None]:
    """Yield batches of valid canonical events from a file or a directory of files.

    ``report`` is filled in as batches are produced, so it is complete once the iterator is.
    ``limits``: the largest field, row and batch a reader accepts (defaults: ReadLimits()).
    ``lines``: keep each row's line in the source (``LINED_SCHEMA``; else ``STAGED_SCHEMA``).
    ``writer``: the rejects' writer of a caller that commits (or discards) them itself, once it
    knows whether the load was stored; without one, the rejects file appears once every batch
    has been read, and not at all when reading stops on an error.
    """
    files = source_files(Path(path))
    report.rejects_path = rejects_path if writer is None else writer.path
    report.renamed = dict(mapping.event_types)
    report.exclude_listed = mapping.exclude_customers
    own = writer is None
    rejects = RejectsWriter(rejects_path) if writer is None else writer
    normalizer = Normalizer(mapping, taxonomy)
    wanted = mapping.wanted_columns()
    read_all = False
    join: DetailJoin | None = None
    try:
        if mapping.details:  # read first: a detail file that cannot be joined stops the load
            join = open_join(mapping, taxonomy, limits)
            rejects.write(join.rejects())
        for file in files:
            report.files.append(str(file))
            for raw in read_batches(file, batch_rows, limits, wanted, mapping.text):
                valid, invalid = normalizer(raw.table, str(file), raw.source_columns)
                _record_rejects(str(file), raw.rejects, invalid, report, rejects)
                report.rows_read += raw.table.num_rows + len(raw.rejects)
                valid = _kept(valid, mapping, report)
                unit = normalizer.reads_epochs(raw.table.schema)
                if unit is not None:  # seconds read as milliseconds land in 1970
                    report.epochs.observe(valid, unit, str(file))
                report.valid += valid.num_rows
                if valid.num_rows:
                    valid = valid if join is None else join(valid)
                    yield valid if lines else valid.drop_columns([LINE_COLUMN])
        if join is not None:
            report.details = join.finish()
        read_all = True
    finally:
        normalizer.close()
        if join is not None:
            join.close()
        if not own:
            rejects.close()
        elif read_all:
            rejects.commit()
        else:
            rejects.discard()


def _kept(valid: pa.Table, mapping: ColumnMapping, report: LoadReport) -> pa.Table:
    """A batch's valid rows without those of the excluded customers (counted in ``report``)."""
    if mapping.exclude_customers and valid.num_rows:
        return _exclude(valid, mapping.exclude_customers, report.excluded)
    return valid


def _exclude(valid: pa.Table, ids: frozenset[str], counts: Counter[str]) -> pa.Table:
    """``valid`` without the rows of customers in ``ids``, counting those left out by id."""
    customer = valid.column("customer_id")
    out = pc.is_in(customer, value_set=pa.array(sorted(ids), pa.string()))
    if not pc.any(out).as_py():
        return valid
    counts.update(pc.filter(customer, out).to_pylist())
    return valid.filter(pc.invert(out))


def _record_rejects(
    source: str,
    read_rejects: list[Reject],
    rejects: pa.Table,
    report: LoadReport,
    writer: RejectsWriter,
) -> None:
    """Count and write one batch's rejects (unparseable and invalid rows) in line order."""
    rows: list[dict[str, Any]] = [
        {"source": r.source, "line": r.line, "field": r.field, "reason": r.reason,
         "value": r.raw}
        for r in read_rejects
    ]
    rows += [{"source": source, **row} for row in rejects.to_pylist()]
    rows.sort(key=lambda row: int(row["line"]))
    for row in rows:
        # Read-level reasons are "category: details"; count by category.
        report.rejected[str(row["reason"]).split(":")[0]] += 1
        if row["reason"] != UNKNOWN_TYPE:
            continue
        if row["value"] in report.unknown_types or len(report.unknown_types) < MAX_UNKNOWN_NAMES:
            report.unknown_types[str(row["value"])] += 1
        else:
            report.unknown_uncounted += 1
    writer.write(rows)
