"""`journey score`, `journey segments` and `journey kpis` on a store whose conversions carry
no value (a Segment track export without revenue): the run says so once, and every money
figure prints "-" rather than a 0 that reads as real. The registry and the event store are
stood in for (constant models, hand-built events); the snapshot, its journey map and KPIs are
the real run's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import journey.marketing_cli as marketing_cli
from journey.marketing_cli import NO_VALUE
from serving import champions, score_job
from serving.segment_config import load_segment_config
from tests.journey.cli_helpers import ok
from tests.models.test_journey_map import SPEC
from tests.serving.constant_models import constant_models, population
from tests.serving.test_scoring_no_revenue import BEFORE, WHEN, purchases

MONEY = ("expected value", "revenue at risk")
ATTRIBUTES = load_segment_config(None, SPEC).attributes


@contextmanager
def _store(*_: Any, **__: Any) -> Iterator[Any]:
    class Store:
        def time_range(self) -> tuple[datetime | None, datetime | None]:
            return None, WHEN.replace(tzinfo=None)

    yield Store()


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home to score into, with the registry and the store stood in for."""
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "home"))
    store = isolated / "events.duckdb"
    store.touch()  # `journey score` checks that the store exists before it opens it
    monkeypatch.setenv("JOURNEY_STORE", str(store))
    monkeypatch.setattr(marketing_cli, "client_for", lambda uri: None)
    monkeypatch.setattr(champions, "load_models", lambda *a: constant_models(SPEC))
    monkeypatch.setattr(marketing_cli, "EventStore", _store)
    return isolated


def score(monkeypatch: pytest.MonkeyPatch, values: dict[int, float] | None = None
          ) -> list[str]:
    pop = population(BEFORE, values, attributes=ATTRIBUTES)
    monkeypatch.setattr(score_job, "population_from_store", lambda *a: pop)
    return ok("score", "--as-of", WHEN.isoformat(), "--no-actions")


def columns(lines: list[str], header: str = "tier") -> list[dict[str, str]]:
    """The printed table's rows as {column: cell}; its columns are split on 2+ spaces."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    head = re.split(r"\s{2,}", lines[start].strip())
    return [dict(zip(head, re.split(r"\s{2,}", line.strip()), strict=True))
            for line in lines[start + 1:] if line.strip() and "  " in line.strip()]


def test_score_says_no_value_and_prints_dashes(home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lines = score(monkeypatch)
    assert lines.count(NO_VALUE) == 1
    rows = columns(lines)
    assert rows and rows[-1]["tier"] == "all"
    for row in rows:
        assert all(row[m] == "-" for m in MONEY), row
    segments = columns(ok("segments", "--by", "tier"))
    assert segments and all(row[m] == "-" for row in segments for m in MONEY)
    kpis = ok("kpis", "--by", "stage")
    table = columns(kpis, "Group")
    assert table and all(row["CLV (per customer)"] == "-" for row in table)


def test_a_valued_store_prints_figures_and_no_note(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lines = score(monkeypatch, {purchases()[0]: 40.0})
    assert NO_VALUE not in lines
    total = columns(lines)[-1]
    assert total["expected value"] != "-" and float(total["expected value"]) > 0
    table = columns(ok("kpis", "--by", "stage"), "Group")
    assert table[-1]["Group"] == "All customers" and table[-1]["CLV (per customer)"] != "-"


def test_the_change_against_a_valueless_snapshot_is_a_dash(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Revenue at risk against a snapshot that knew none would be all of it: no change shown."""
    score(monkeypatch)
    score(monkeypatch, {purchases()[0]: 40.0})
    rows = columns(ok("segments", "--by", "tier"))
    assert all(r["Δ revenue at risk"] == "-" and r["revenue at risk"] != "-" for r in rows)
