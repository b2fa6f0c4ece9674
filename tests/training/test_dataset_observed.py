"""Labels for a window the store has not fully observed: more than a day short is refused;
within the day's slack (a quiet last day, a daily batch feed) the labels are made, and the
snapshot source says so through its log, as `journey labels` does, naming the cutoff, the
window's end and the newest event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.errors import ConfigError
from features.schema import events_table
from features.spec import load_spec
from features.store import EventStore
from training.dataset import SnapshotSource, unobserved_warning

T = datetime(2025, 9, 1, tzinfo=UTC)
NEWEST = datetime(2025, 9, 30, 0, 30, tzinfo=UTC)  # the store is cut half an hour past midnight


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def source(tmp_path: Path, lines: list[str]) -> SnapshotSource:
    """A store of three customers whose newest event is NEWEST, logging into ``lines``."""
    times = [T - timedelta(days=20), T - timedelta(days=3), T + timedelta(days=5), NEWEST]
    rows = [{"event_id": f"e{i}", "customer_id": f"c{i % 3}", "ts": ts,
             "event_type": "page_view", "channel": "web"} for i, ts in enumerate(times)]
    with EventStore(tmp_path / "events.duckdb") as es:
        es.append(events_table(rows))
    return SnapshotSource(tmp_path / "events.duckdb", tmp_path / "snapshots", load_spec(),
                          log=lines.append)


def test_a_window_ending_within_the_slack_is_labelled_with_a_warning(
        source: SnapshotSource, lines: list[str]) -> None:
    try:
        snap = source.labels(T, 30, 30)  # ends 2025-10-01: the last 23.5 hours unseen
        again = source.labels(T, 30, 30)  # the snapshot reused: as incomplete, said again
    finally:
        source.close()
    assert snap.read().num_rows == 2  # c0 and c1 were seen before T
    assert again.path == snap.path
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == 2 * [
        "warning: the store's events end at 2025-09-30 00:30:00 UTC, before T+H = 2025-10-01 "
        "00:00 UTC (T = 2025-09-01 00:00, H = 30d): the horizon is not fully observed, so late "
        "outcomes are missing from these labels"]


def test_a_fully_observed_window_is_labelled_without_a_word_of_warning(
        source: SnapshotSource, lines: list[str]) -> None:
    try:
        source.labels(T, 29, 30)  # ends 2025-09-30 00:00, before the newest event
    finally:
        source.close()
    assert lines == ["computing labels for [2025-09-01, +29d) ..."]


def test_more_than_a_day_short_is_refused(source: SnapshotSource, lines: list[str]) -> None:
    try:
        with pytest.raises(ConfigError, match="would not be fully observed"):
            source.labels(T, 31, 30)
    finally:
        source.close()
    assert lines == []


def test_the_warning_takes_the_store_s_naive_times_and_an_empty_store() -> None:
    naive = NEWEST.replace(tzinfo=None)  # as EventStore.time_range gives it
    assert unobserved_warning(T, 30, naive) == unobserved_warning(T, 30, NEWEST)
    assert unobserved_warning(T, 29, naive) is None
    assert unobserved_warning(T, 29, T + timedelta(days=29)) is None  # [T, T+H) ends there
    empty = unobserved_warning(T, 30, None)
    assert empty is not None and empty.startswith("warning: the store's events are none")
