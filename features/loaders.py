"""Load touchpoint logs (CSV, Parquet, JSON lines; gzip too) into canonical event batches.

Accounting invariant, per load: rows read = valid rows + rejected rows. Every rejected row is
written to the rejects file with its source file, line, field, reason and offending value.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from features.mapping import ColumnMapping
from features.normalize import Normalizer
from features.readers import BATCH_ROWS, ReadLimits, Reject, read_batches, source_files
from features.taxonomy import Taxonomy

REJECT_HEADER = ("source", "line", "field", "reason", "value")


@dataclass
class LoadReport:
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    valid: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def lines(self) -> list[str]:
        out = [f"read {self.rows_read:,} rows from {len(self.files)} file(s): "
               f"{self.valid:,} valid, {self.rejected_total:,} rejected"]
        for reason, n in self.rejected.most_common():
            out.append(f"  rejected {n:>10,}  {reason}")
        if self.rejects_path is not None and self.rejected_total:
            out.append(f"rejected rows (file, line, field, reason, value): {self.rejects_path}")
        return out


class RejectsWriter:
    """Streams rejects to a CSV file, created on the first reject only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

    def write(self, rows: list[dict[str, object]]) -> None:
        if not rows or self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Values are clipped to valid text when read; "replace" is the last guard, so a
            # stray byte never stops a load while it reports its rejects.
            self._fh = self.path.open("w", newline="", encoding="utf-8", errors="replace")
            self._writer = csv.DictWriter(self._fh, fieldnames=REJECT_HEADER)
            self._writer.writeheader()
        self._writer.writerows(rows)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def load_events(
    path: str | Path,
    mapping: ColumnMapping,
    taxonomy: Taxonomy,
    report: LoadReport,
    rejects_path: Path | None = None,
    batch_rows: int = BATCH_ROWS,
    limits: ReadLimits | None = None,
) -> Iterator[pa.Table]:
    """Yield batches of valid canonical events from a file or a directory of files.

    ``report`` is filled in as batches are produced, so it is complete once the iterator is.
    ``limits``: the largest field, row and batch a reader accepts (defaults: ReadLimits()).
    """
    files = source_files(Path(path))
    report.rejects_path = rejects_path
    writer = RejectsWriter(rejects_path)
    normalizer = Normalizer(mapping, taxonomy)
    wanted = mapping.wanted_columns()
    try:
        for file in files:
            report.files.append(str(file))
            for raw in read_batches(file, batch_rows, limits, wanted):
                valid, rejects = normalizer(raw.table, str(file), raw.source_columns)
                _record_rejects(str(file), raw.rejects, rejects, report, writer)
                report.rows_read += raw.table.num_rows + len(raw.rejects)
                report.valid += valid.num_rows
                if valid.num_rows:
                    yield valid
    finally:
        normalizer.close()
        writer.close()


def _record_rejects(
    source: str,
    read_rejects: list[Reject],
    rejects: pa.Table,
    report: LoadReport,
    writer: RejectsWriter,
) -> None:
    """Count and write one batch's rejects (unparseable and invalid rows) in line order."""
    rows: list[dict[str, Any]] = [
        {"source": r.source, "line": r.line, "field": "", "reason": r.reason, "value": r.raw}
        for r in read_rejects
    ]
    rows += [{"source": source, **row} for row in rejects.to_pylist()]
    rows.sort(key=lambda row: int(row["line"]))
    for row in rows:
        # Read-level reasons are "category: details"; count by category.
        report.rejected[str(row["reason"]).split(":")[0]] += 1
    writer.write(rows)
