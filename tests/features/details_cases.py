"""Small Segment-shaped sources for the detail-table tests, and a load that reads back its
rejects file (which lists the detail files' rejects beside the events')."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from features.loaders import LoadReport, load_events
from features.mapping import ColumnMapping, choose_mapping
from features.normalize import STAGED_SCHEMA
from features.taxonomy import Taxonomy

# Three orders (o1..o3), a page view and an order without an event_id (a derived id).
EVENTS = ("user_id,event_type,event_id,ts\n"
          "u1,Page,p1,2024-01-01T10:00:00Z\n"              # line 2
          "u1,Order Completed,o1,2024-01-01T10:05:00Z\n"   # line 3
          "u2,Order Completed,o2,2024-01-02T10:00:00Z\n"   # line 4
          "u3,Order Completed,o3,2024-01-03T10:00:00Z\n"   # line 5
          "u3,Order Completed,,2024-01-04T10:00:00Z\n")    # line 6
ORDERS = ("id,timestamp,total_price,shipping_country\n"
          "o1,2024-01-01 10:05:00,69.73,United States\n"   # line 2
          "o2,2024-01-02 10:00:00,18.99,Canada\n")         # line 3


@dataclass
class Joined:
    rows: dict[str, dict[str, Any]]  # event_id -> stored fields
    report: LoadReport
    rejects: list[dict[str, str]]

    def value(self, event_id: str) -> float | None:
        value: float | None = self.rows[event_id]["value"]
        return value


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load_joined(tmp_path: Path, taxonomy: Taxonomy, events: Path,
                mapping: ColumnMapping | None = None, details: list[Path] | None = None,
                **kwargs: Any) -> Joined:
    """Load ``events`` with the segment preset (or ``mapping``) and ``details``."""
    chosen = choose_mapping(preset="segment", details=details) if mapping is None else mapping
    rejects_path = tmp_path / "rejects.csv"
    report = LoadReport()
    batches = list(load_events(events, chosen, taxonomy, report, rejects_path, **kwargs))
    table = pa.concat_tables(batches) if batches else STAGED_SCHEMA.empty_table()
    rejects: list[dict[str, str]] = []
    if rejects_path.exists():
        with rejects_path.open(newline="", encoding="utf-8") as fh:
            rejects = list(csv.DictReader(fh))
    # The events' accounting is untouched by the detail files.
    assert report.rows_read == report.valid + report.rejected_total
    detail_rejects = report.details.rejected_total if report.details else 0
    assert len(rejects) == report.rejected_total + detail_rejects
    return Joined({r["event_id"]: r for r in table.to_pylist()}, report, rejects)
