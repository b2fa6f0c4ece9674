"""What `journey ingest` leaves (report lines, rejects, stored events); summary stage tables."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from features.store import EventStore
from features.taxonomy import load_taxonomy

STAGES = list(load_taxonomy().stages)  # the shipped taxonomy, which the CLI tests load
REJECTS_LINE = "rejected rows (file, line, field, reason, value): "
TOUCHPOINTS_MAP = "customer_id=user,ts=when,event_type=what,channel=src"


def reject_counts(lines: list[str]) -> dict[str, int]:
    """The per-reason lines of an ingest report: reason -> count."""
    counts = {}
    for line in lines:
        m = re.fullmatch(r"  rejected +([\d,]+)  (.+)", line)
        if m:
            counts[m[2]] = int(m[1].replace(",", ""))
    return counts


def rejects_file(lines: list[str]) -> Path:
    [line] = [x for x in lines if x.startswith(REJECTS_LINE)]
    return Path(line.removeprefix(REJECTS_LINE))


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["source", "line", "field", "reason", "value"]
        return list(reader)


def stored(store: Path) -> list[dict[str, Any]]:
    """Every stored event (ts as ISO text), ordered by customer and time."""
    with EventStore(store, read_only=True) as es:
        cur = es.con.execute(
            "SELECT event_id, customer_id, strftime(ts, '%Y-%m-%dT%H:%M:%S') AS ts, event_type, "
            "channel, value, action, properties FROM events ORDER BY customer_id, ts, event_type"
        )
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def stage_table(lines: list[str]) -> dict[str, list[str]]:
    """Stage rows of the summary: stage -> the remaining cells."""
    table = {}
    for line in lines:
        cells = line.split()
        if cells and cells[0] in STAGES:
            table[cells[0]] = cells[1:]
    return table
