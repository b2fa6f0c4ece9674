"""`journey kpis` on a snapshot that has nothing to show for a grouping: by persona when it was
scored without a persona model (it says so, and which runs give personas), and by month when
it was scored long after the data ended (it says why no month has a row, and what would give
some). The registry and the scoring population are stood in for (constant models, hand-built
events); the store is a real one, the snapshot and its KPIs are the real run's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import journey.marketing_cli as marketing_cli
from features.schema import events_table
from features.store import EventStore
from serving import champions, score_job
from serving.segment_config import load_segment_config
from tests.journey.cli_helpers import fails, ok
from tests.models.test_journey_map import SPEC
from tests.serving.constant_models import constant_models, population
from tests.serving.test_scoring_no_revenue import BEFORE, WHEN

ATTRIBUTES = load_segment_config(None, SPEC).attributes
LAST = WHEN - timedelta(days=1)  # the store's newest event: 1970-04-10
LATER = "1971-06-01T00:00:00+00:00"  # 14 months after it


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "home"))
    store = isolated / "events.duckdb"
    with EventStore(store) as es:
        es.append(events_table([{"event_id": "e1", "customer_id": "c1", "ts": LAST,
                                 "event_type": "page_view", "channel": "search"}]))
    monkeypatch.setenv("JOURNEY_STORE", str(store))
    monkeypatch.setattr(marketing_cli, "client_for", lambda uri: None)
    monkeypatch.setattr(champions, "load_models", lambda *a: constant_models(SPEC))
    pop = population(BEFORE, attributes=ATTRIBUTES)
    monkeypatch.setattr(score_job, "population_from_store", lambda *a: pop)
    return isolated


def test_by_persona_without_personas_says_how_to_get_them(home: Path) -> None:
    ok("score", "--as-of", WHEN.isoformat(), "--no-actions")
    said = fails("kpis", "--by", "persona")
    assert "has no personas (it was scored without a persona model)" in said, said
    assert "fit one with `journey personas`" in said
    assert "then score again with `journey score`" in said
    assert "(this snapshot's are by stage, " in said
    assert "grouped by" in fails("kpis", "--by", "colour")  # any other name: the groupings


def test_by_month_long_after_the_data_says_why(home: Path) -> None:
    ok("score", "--as-of", LATER, "--no-actions")
    lines = ok("kpis", "--by", "month")
    assert lines[1] == (
        "no events in the last 12 months before as_of 1971-06-01 (1970-06 to "
        "1971-05; the store's newest event is 1970-04-10): score as of the data's end "
        "(`journey score --as-of 1970-04-11 --publish`) or raise kpi_months (in a copy of "
        "models/config/journey_map.yaml named by JOURNEY_JOURNEY_MAP_CONFIG)")
    # Months may still have rows (the retention of earlier buyers), none with a customer.
    note = next(i for i, line in enumerate(lines) if line.startswith("CLV, as this snapshot"))
    assert lines[2].startswith("Group") and lines[note - 1].startswith("All customers")


def test_by_month_with_rows_has_no_note(home: Path) -> None:
    ok("score", "--as-of", WHEN.isoformat(), "--no-actions")
    lines = ok("kpis", "--by", "month")
    assert not any(line.startswith("no events in the last") for line in lines)
    assert any(line.startswith("1970-04 (so far)") for line in lines)


def test_the_journey_map_settings_file_is_the_one_scores_use(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = home / "jm.yaml"
    settings.write_text("kpi_months: 18\nretention_days: 45\n", encoding="utf-8")
    monkeypatch.setenv("JOURNEY_JOURNEY_MAP_CONFIG", str(settings))
    ok("score", "--as-of", LATER, "--no-actions")
    lines = ok("kpis", "--by", "month")
    # 18 months before 1971-06 reach back to 1969-12: the data's months have rows again
    assert not lines[1].startswith("no events"), lines[1]
    assert any(line.startswith("1970-04") for line in lines)
    settings.write_text("kpi_months: 18\nretention_dys: 45\n", encoding="utf-8")
    said = fails("score", "--as-of", LATER, "--no-actions")
    assert f"{settings}: unknown keys ['retention_dys']" in said
    assert "(JOURNEY_JOURNEY_MAP_CONFIG)" in said


def test_the_clv_is_explained_in_the_snapshots_own_words(home: Path) -> None:
    """A snapshot scored before the CLV's definition changed keeps its figures: they are
    printed under its own definition, not the current one."""
    import json

    from models.kpis_definitions import DEFINITIONS
    from serving.snapshots import KPIS, latest

    ok("score", "--as-of", WHEN.isoformat(), "--no-actions")
    assert _footer(ok("kpis")) == f"CLV, as this snapshot defines it: {DEFINITIONS['clv']}"
    snap = latest(home / "home" / "scores")
    assert snap is not None
    kpis = json.loads((snap.path / KPIS).read_text(encoding="utf-8"))
    kpis["definitions"]["clv"] = "V x L: V revenue per customer-year (an older definition)"
    (snap.path / KPIS).write_text(json.dumps(kpis), encoding="utf-8")
    assert _footer(ok("kpis")) == ("CLV, as this snapshot defines it: V x L: V revenue per "
                                   "customer-year (an older definition)")


def _footer(lines: list[str]) -> str:
    """The CLV note under the table, wrapped to the terminal (at most 100 columns), as one
    line again."""
    start = max(i for i, line in enumerate(lines) if line.startswith("CLV, as this snapshot"))
    assert all(len(line) <= 100 for line in lines[start:]), lines[start:]
    return " ".join(lines[start:])
