"""`journey summary` says whether revenue is known: how many conversions carry a value, their
sum, and what an unvalued conversion means for the money figures downstream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.store import EventStore
from features.summary import journey_summary
from features.taxonomy import load_taxonomy
from tests.features.test_labels import ev, fill

T = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "v.duckdb") as s:
        yield s


def test_some_conversions_valued(store: EventStore) -> None:
    fill(store, [ev("a", T, "page_view"), ev("a", T + timedelta(1), "purchase", 30.5),
                 ev("b", T, "purchase", 12.25), ev("c", T, "purchase"),
                 ev("c", T + timedelta(2), "purchase"), ev("d", T, "add_to_cart", 99.0)])
    s = journey_summary(store, load_taxonomy())
    # d's add_to_cart carries a value but is no conversion: not revenue
    assert (s.conversions, s.valued, round(s.revenue, 6)) == (4, 2, 42.75)
    text = " ".join(s.lines())
    assert "4 conversions, 2 with a value: revenue 42.75. The other 2 count as 0 in revenue" \
        in text
    assert "which are lower bounds." in text
    early = journey_summary(store, load_taxonomy(), T + timedelta(hours=1))
    assert (early.conversions, early.valued, round(early.revenue, 6)) == (2, 1, 12.25)


def test_all_or_none_valued(store: EventStore, tmp_path: Path) -> None:
    fill(store, [ev("a", T, "purchase", 10.0), ev("b", T, "purchase", 5.0)])
    assert "2 conversions, all with a value: revenue 15.00" in journey_summary(
        store, load_taxonomy()).lines()
    with EventStore(tmp_path / "none.duckdb") as bare:
        fill(bare, [ev("a", T, "purchase"), ev("b", T, "page_view")])
        text = " ".join(journey_summary(bare, load_taxonomy()).lines())
    assert "1 conversion, none with a value: revenue is unknown" in text
    assert "(--details, as a Segment warehouse's order_completed) supplies it." in text


def test_no_conversion_no_line(store: EventStore) -> None:
    fill(store, [ev("a", T, "page_view", 3.0)])
    assert not [line for line in journey_summary(store, load_taxonomy()).lines()
                if "conversion" in line]
