"""`journey retrain --drift-days` on the drift test's worlds: an unshifted world starts no cycle
(the audit's case: every run alarmed, the champion's all-customer training profile against the
customers active lately), a shifted one does, and a drift alarm on the events the last cycle
already had starts none either, saying so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from features.batch import BatchEngine
from features.snapshot import data_fingerprint
from features.spec import load_spec
from features.store import EventStore
from models.drift import DriftProfile, fit_profile, load_drift_settings, reference_rows
from tests.journey.cli_helpers import ok
from tests.training.test_drift import SHIFT_DAY
from tests.training.test_retrain_replay import SPEC
from tests.training.world import write_spec
from training import retrain as retrain_module
from training.retrain import Cycle, RetrainRun, RetrainSpec, nothing_new

NOW = SHIFT_DAY + timedelta(days=14)  # the live window [SHIFT_DAY, NOW): the shift's first days
EARLIER = NOW - timedelta(days=7)  # the last cycle's clock: within the cadence (every 14 days)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The triggers of the cycles started: a cycle itself (training) is not what is tested."""
    triggers: list[str] = []

    def run_cycle(rs: RetrainSpec, exp: Any, run: RetrainRun, now: datetime, trigger: str,
                  config_file: Path | None = None) -> Cycle:
        triggers.append(trigger)
        return Cycle(str(now), trigger, str(now), exp.name, {}, "", [])
    monkeypatch.setattr(retrain_module, "run_cycle", run_cycle)
    return triggers


@pytest.fixture
def champion(monkeypatch: pytest.MonkeyPatch, stores: dict[str, Path]) -> None:
    """A churn champion's training profile as `journey train` logs it: every customer seen
    before its cutoff, active or not (the reference the check used to draw)."""
    settings = load_drift_settings()
    with EventStore(stores["none"], read_only=True) as es:
        frame = BatchEngine(es, load_spec()).features(EARLIER).to_pandas()
    profile = fit_profile(reference_rows(frame.drop(columns="customer_id"), settings), settings)

    def champion_profile(client: Any, alias: str = "champion") -> DriftProfile:
        return profile
    monkeypatch.setattr("training.drift.champion_profile", champion_profile)


def seen(store: Path, clock: datetime) -> dict[str, Any]:
    """The events before ``clock``: what a cycle on that clock records."""
    with EventStore(store, read_only=True) as es:
        return data_fingerprint(es, clock)


def last_cycle(home: Path, store: Path, clock: datetime) -> None:
    """cycles.json holding one cycle on the clock ``clock`` over the events before it."""
    (home / "retrain").mkdir(parents=True)
    cycle = {"ran_at": clock.isoformat().replace("+00:00", "Z"), "trigger": "first cycle",
             "data_until": clock.isoformat().replace("+00:00", "Z"),
             "data": seen(store, clock)}
    (home / "retrain" / "cycles.json").write_text(json.dumps([cycle]), encoding="utf-8")


def retrain(home: Path, store: Path) -> str:
    write_spec(home.parent / "spec", SPEC)
    config = write_spec(home.parent / "spec", {"name": "cycle", "experiment":
                                               f"{SPEC['name']}.yaml", "every_days": 14})
    return "\n".join(ok("retrain", "--config", config, "--drift-days", "14", "--now",
                        NOW.isoformat(), "--store", store, "--out", home / "snapshots"))


@pytest.mark.usefixtures("champion")
def test_an_unshifted_world_starts_no_cycle(home: Path, stores: dict[str, Path],
                                            started: list[str]) -> None:
    last_cycle(home, stores["none"], EARLIER)
    text = retrain(home, stores["none"])
    assert started == [], text
    assert "not due: the last cycle ran at" in text and "drift not checked" not in text


@pytest.mark.usefixtures("champion")
def test_a_shifted_world_starts_one(home: Path, stores: dict[str, Path],
                                    started: list[str]) -> None:
    last_cycle(home, stores["shift"], EARLIER)
    text = retrain(home, stores["shift"])
    assert len(started) == 1 and started[0].startswith("drift: "), text
    assert "ch_social_30d" in started[0]


def test_no_new_events_since_the_last_cycle_start_none(home: Path, stores: dict[str, Path],
                                                       started: list[str]) -> None:
    """The shifted world alarms (above), but the last cycle already trained on these events."""
    last_cycle(home, stores["shift"], NOW)
    text = " ".join(retrain(home, stores["shift"]).split())
    assert started == [], text
    data = seen(stores["shift"], NOW)
    assert (f"not due: the last cycle ran at {NOW.isoformat().replace('+00:00', 'Z')}, every "
            f"14 days; drift not checked: no new events since the last cycle at "
            f"{NOW.isoformat().replace('+00:00', 'Z')} ({data['events']:,} events, the newest "
            f"at {data['newest']})") in text


def test_a_cycle_recorded_without_event_counts_is_compared_by_its_data_end() -> None:
    data = {"events": 10, "newest": "2025-06-14T23:00:00"}
    old = [{"ran_at": "2025-06-15T00:00:00Z", "data_until": "2025-06-15T00:00:00Z"}]
    end = datetime(2025, 6, 15, tzinfo=UTC)
    assert nothing_new(old, data, end) is not None
    assert nothing_new(old, data, end + timedelta(hours=1)) is None
    assert nothing_new([{**old[0], "data": {**data, "events": 9}}], data, end) is None
    assert nothing_new([], data, end) is None


def test_a_cycle_recorded_before_the_content_hash_is_compared_on_what_it_holds() -> None:
    """An upgrade adds the content hash to what a cycle sees: the last cycle's record, made
    without it, still matches the same events, and a changed hash on both sides does not."""
    data = {"events": 10, "newest": "2025-06-14T23:00:00", "content": "00000000000000aa"}
    end = datetime(2025, 6, 15, tzinfo=UTC)
    cycle = {"ran_at": "2025-06-15T00:00:00Z", "data_until": "2025-06-15T00:00:00Z"}
    before_hash = {k: v for k, v in data.items() if k != "content"}
    assert nothing_new([{**cycle, "data": before_hash}], data, end) is not None
    assert nothing_new([{**cycle, "data": data}], data, end) is not None
    reloaded = {**data, "content": "00000000000000bb"}
    assert nothing_new([{**cycle, "data": data}], reloaded, end) is None
    assert nothing_new([{**cycle, "data": {**before_hash, "events": 11}}], data, end) is None
