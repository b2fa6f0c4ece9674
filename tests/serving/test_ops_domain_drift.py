"""Drift as an operator sees it: a WARNING when the overall alarm turns on (the worst columns
and their PSI), an INFO line when it clears, nothing while it stays; the time of the last
completed evaluation and a count of failed ones in the registry, so gauges left stale by a
failing evaluation show; and the failure's end in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Literal, cast

import pytest
from prometheus_client import CollectorRegistry

from models.drift import DriftProfile, DriftReport, DriftRow, DriftSettings, Status, Window
from models.registry import RegistryError
from serving import drift as serving_drift
from serving.champions import ModelSet
from serving.drift import DriftGauges, DriftMonitor, DriftWindow

SETTINGS = DriftSettings()


def row(name: str, psi: float, status: Status,
        kind: Literal["feature", "score"] = "feature") -> DriftRow:
    return DriftRow(name, kind, psi, "ks", 0.3, 1e-12 if status == "alarm" else 0.5, status,
                    800)


def report(*rows: DriftRow) -> DriftReport:
    return DriftReport(list(rows), any(r.status == "alarm" for r in rows), 5000,
                       datetime(2025, 11, 14, tzinfo=UTC), datetime(2025, 11, 15, tzinfo=UTC),
                       10_000, SETTINGS)


QUIET = report(row("recency_days", 0.05, "ok"), row("frequency_30d", 0.02, "ok"))
ALARM = report(row("recency_days", 0.52, "alarm"), row("frequency_30d", 0.31, "alarm"),
               row("score_churn", 0.12, "warn", "score"))
STILL = report(row("recency_days", 0.61, "alarm"), row("frequency_30d", 0.02, "ok"))


class Scripted:
    """The comparison: the next report of a script, or an exception."""

    def __init__(self) -> None:
        self.next: list[DriftReport | Exception] = []

    def __call__(self, profile: DriftProfile, window: Window, settings: DriftSettings
                 ) -> DriftReport:
        got = self.next.pop(0)
        if isinstance(got, Exception):
            raise got
        return got


MODELS = cast(ModelSet, SimpleNamespace(models={"churn": SimpleNamespace(version="3")},
                                        versions=lambda: {"churn": "3"}))


@pytest.fixture
def monitored(monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[tuple[DriftMonitor, Scripted, CollectorRegistry]]:
    profiles: dict[str, Any] = {"churn": object()}
    monkeypatch.setattr(serving_drift, "load_profiles", lambda *_: profiles)
    registry, compare = CollectorRegistry(), Scripted()
    monitor = DriftMonitor(SETTINGS, DriftWindow(10, 0, ()), lambda: cast(Any, None),
                           DriftGauges(registry), 60.0, compare)
    yield monitor, compare, registry


def drift_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "journey.serving" and "drift" in r.getMessage()]


def test_the_alarm_is_logged_when_it_turns_not_at_each_evaluation(
        monitored: tuple[DriftMonitor, Scripted, CollectorRegistry],
        caplog: pytest.LogCaptureFixture) -> None:
    monitor, compare, _ = monitored
    compare.next = [QUIET, ALARM, ALARM, STILL, QUIET, QUIET, ALARM]
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        for _ in range(7):
            monitor.evaluate(MODELS)
    lines = drift_lines(caplog)
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO, logging.WARNING]
    on = lines[0][1]
    assert on.startswith("drift alarm on: 2 of 3 monitored columns alarm (PSI >= 0.25 and "
                         "p < 0.01) over 5,000 live rows from 2025-11-14T00:00:00+00:00 to "
                         "2025-11-15T00:00:00+00:00 against the training profiles of "
                         "{'churn': '3'}: recency_days (feature) PSI 0.52, ks p=1e-12; "
                         "frequency_30d (feature) PSI 0.31")
    assert "score_churn" not in on  # a warning, not an alarm
    assert lines[1][1] == ("drift alarm cleared: no monitored column alarms over 5,000 live "
                           "rows from 2025-11-14T00:00:00+00:00 to 2025-11-15T00:00:00+00:00")


def test_an_alarm_that_ends_with_the_profiles_says_so(
        monitored: tuple[DriftMonitor, Scripted, CollectorRegistry],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monitor, compare, registry = monitored
    compare.next = [ALARM]
    monitor.evaluate(MODELS)

    def unreadable(*_: object) -> None:
        raise RegistryError("the registry does not answer")

    monkeypatch.setattr(serving_drift, "load_profiles", unreadable)
    monitor._profiles = None  # read again, as after a model swap
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        status = monitor.evaluate(MODELS)
    assert status.failed and not status.available
    assert drift_lines(caplog) == [
        (logging.INFO, "drift alarm cleared: drift is no longer evaluated (training profiles "
                       "unreadable: the registry does not answer)")]
    assert registry.get_sample_value("journey_drift_evaluation_failures_total") == 1
    assert monitor.failure == "training profiles unreadable: the registry does not answer"


def test_failed_evaluations_are_counted_and_the_last_good_one_is_dated(
        monitored: tuple[DriftMonitor, Scripted, CollectorRegistry],
        caplog: pytest.LogCaptureFixture) -> None:
    monitor, compare, registry = monitored
    stamp = "journey_drift_last_evaluation_timestamp_seconds"
    failures = "journey_drift_evaluation_failures_total"
    assert registry.get_sample_value(stamp) == 0 and registry.get_sample_value(failures) == 0
    compare.next = [ALARM, RuntimeError("the drift worker died"), QUIET]
    first = monitor.evaluate(MODELS)
    assert registry.get_sample_value(stamp) == first.evaluated_at.timestamp()
    with pytest.raises(RuntimeError):
        monitor.evaluate(MODELS)
    assert registry.get_sample_value(failures) == 1
    assert registry.get_sample_value(stamp) == first.evaluated_at.timestamp()  # stale: shows
    assert registry.get_sample_value("journey_drift_overall_alarm") == 1
    assert monitor.failure == "RuntimeError: the drift worker died"
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        later = monitor.evaluate(MODELS)
    assert registry.get_sample_value(stamp) == later.evaluated_at.timestamp()
    assert monitor.failure is None
    assert (logging.INFO, "drift evaluation works again (it failed: RuntimeError: the drift "
                          "worker died)") in drift_lines(caplog)
