"""What `journey personas` asks of the store and says when a fit fails: whether any conversion
carries a value (a store without one describes no revenue, rather than 0), and a later cutoff
suggested only when the data goes on past the one chosen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.schema import events_table
from features.spec import load_spec
from features.store import EventStore
from journey.personas_cli import _values_known, persona_problem
from models.persona_params import PersonaError
from models.personas import PersonaModel
from tests.models.test_personas import synthetic

SPEC = load_spec()
DAY = datetime(2025, 3, 1, tzinfo=UTC)


def store(path: Path, *events: tuple[str, float | None, int]) -> Path:
    """A store of one customer's (event type, value, day after DAY) events."""
    rows: list[dict[str, object]] = [
        {"event_id": f"e{i}", "customer_id": "c1", "ts": DAY + timedelta(days=d),
         "event_type": kind, "channel": "search", "value": value}
        for i, (kind, value, d) in enumerate(events)]
    with EventStore(path) as es:
        es.append(events_table(rows))
    return path


@pytest.mark.parametrize(("events", "known"), [
    ([("page_view", None, 0), ("purchase", None, 1)], False),  # a track export: no revenue
    ([("page_view", 12.0, 0), ("purchase", None, 1)], False),  # a value, but no conversion's
    ([("purchase", None, 1), ("purchase", 40.0, 2)], True),
    ([("purchase", 0.0, 1)], True),  # a free order is a known value
    ([("purchase", None, 1), ("purchase", 40.0, 20)], False),  # valued only after the cutoff
])
def test_values_are_known_when_a_conversion_before_the_cutoff_carries_one(
        tmp_path: Path, events: list[tuple[str, float | None, int]], known: bool) -> None:
    path = store(tmp_path / "events.duckdb", *events)
    assert _values_known(path, SPEC, DAY + timedelta(days=10)) is known


def too_few() -> PersonaError:
    quiet = synthetic()[0].head(200).assign(events_90d=3.0)
    with pytest.raises(PersonaError) as info:
        PersonaModel().fit(quiet)
    return info.value


def test_at_the_data_s_end_no_later_cutoff_is_suggested() -> None:
    """The default cutoff is the day after the last event: "choose a later cutoff" could only
    have sent the user to one with no more data."""
    end = datetime(2024, 4, 12, tzinfo=UTC)
    said = str(persona_problem(too_few(), None, end, end))
    assert "later" not in said
    assert "(min_events: 3 would admit them, or lower k_max)" in said
    assert said.endswith("The settings are in models/config/personas.yaml: change a copy and "
                         "pass it with --config")


def test_before_the_data_s_end_a_later_cutoff_is_suggested(tmp_path: Path) -> None:
    end = datetime(2024, 4, 12, tzinfo=UTC)
    said = str(persona_problem(too_few(), tmp_path / "p.yaml", end - timedelta(days=30), end))
    assert ("(min_events: 3 would admit them, or lower k_max, or choose a later --as-of (at "
            "most 2024-04-12, the default: the day after the store's last event))") in said
    assert f"The settings are in {tmp_path / 'p.yaml'}" in said


def test_other_persona_problems_suggest_no_cutoff() -> None:
    end = datetime(2024, 4, 12, tzinfo=UTC)
    said = str(persona_problem(PersonaError("no persona feature varies among the fitted "
                                            "customers"), None, end - timedelta(days=30), end))
    assert said.startswith("no persona feature varies among the fitted customers. The ")
