"""`journey score` freezes what it loaded before its run, unless JOURNEY_FREEZE_HEAP=false (its
Typer app run inside a larger Python process). The registry and the population are stood in
for, and the freeze is counted rather than done: done here, it would walk the whole test
session's heap."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import journey.marketing_cli as marketing_cli
from features.schema import events_table
from features.store import EventStore
from journey.cli import app
from serving import champions, score_job
from serving.segment_config import load_segment_config
from tests.journey.cli_helpers import runner
from tests.models.test_journey_map import SPEC
from tests.serving.constant_models import constant_models, population
from tests.serving.test_scoring_no_revenue import BEFORE, WHEN


@pytest.fixture
def freezes(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """A home with a one-event store, constant models and a stand-in population; the calls
    to freeze_loaded the runs make."""
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "home"))
    store = isolated / "events.duckdb"
    with EventStore(store) as es:
        es.append(events_table([{"event_id": "e1", "customer_id": "c1",
                                 "ts": WHEN - timedelta(days=1),
                                 "event_type": "page_view", "channel": "search"}]))
    monkeypatch.setenv("JOURNEY_STORE", str(store))
    monkeypatch.setattr(marketing_cli, "client_for", lambda uri: None)
    monkeypatch.setattr(champions, "load_models", lambda *a: constant_models(SPEC))
    pop = population(BEFORE, attributes=load_segment_config(None, SPEC).attributes)
    monkeypatch.setattr(score_job, "population_from_store", lambda *a: pop)
    calls: list[None] = []
    monkeypatch.setattr(marketing_cli, "freeze_loaded", lambda: calls.append(None))
    return calls


@pytest.mark.parametrize(("setting", "expected"), [(None, 1), ("true", 1), ("false", 0)])
def test_score_freezes_unless_told_not_to(freezes: list[None], setting: str | None,
                                          expected: int) -> None:
    # None removes the variable the helpers' runner sets for every other CLI test.
    result = runner.invoke(app, ["score", "--as-of", WHEN.isoformat(), "--no-actions"],
                           env={"JOURNEY_FREEZE_HEAP": setting})
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(freezes) == expected
