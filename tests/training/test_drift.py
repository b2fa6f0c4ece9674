"""Drift monitoring on the simulator: an injected shift (new channel mix, higher prices, fewer
purchases from a date) is detected within one window; the same world without it is not; and
training leaves each model's reference profile next to the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from features.errors import ConfigError
from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from models.drift import PROFILE_ARTIFACT, DriftProfile
from models.registry import load_run_dict
from models.targets import target
from tests.training.world import Trained
from training.drift import champion_profile, drift_between, drift_check

CUSTOMERS, DAYS, SEED = 3_000, 240, 5
SHIFT_DAY = datetime(2025, 6, 1, tzinfo=UTC)
WINDOW_END = datetime(2025, 7, 1, tzinfo=UTC)  # one 30-day window after the shift
SHIFT = {
    "from": "2025-06-01",
    "session_channels": [0.05, 0.5, 0.05, 0.1, 0.1, 0.15, 0.05],
    "price_factor": 1.3,
    "buy_factor": 0.7,
}


def result_name(name: str) -> str:
    return target(name, load_taxonomy().stages).registered_name


def _store(root: Path, params: Path | None) -> Path:
    simulate(SimSpec(CUSTOMERS, DAYS, SEED, str(params) if params else None), root / "sim",
             workers=1)
    store = root / "events.duckdb"
    with EventStore(store) as es:
        es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
        es.load_attributes(pq.read_table(root / "sim" / "customers"))
    return store


def test_a_shift_is_detected_within_one_window(stores: dict[str, Path]) -> None:
    report = drift_between(stores["shift"], SHIFT_DAY, SHIFT_DAY, WINDOW_END)
    assert report.alarm
    alarmed = {r.name for r in report.alarms()}
    assert {"ch_social_30d", "last_channel"} <= alarmed, alarmed
    reason = report.reason()
    assert reason is not None and "ch_social_30d" in reason
    assert report.window_size > 1000 and report.start == SHIFT_DAY and report.end == WINDOW_END


def test_the_same_world_without_the_shift_raises_no_alarm(stores: dict[str, Path]) -> None:
    report = drift_between(stores["none"], SHIFT_DAY, SHIFT_DAY, WINDOW_END)
    assert not report.alarm and report.reason() is None
    assert max(r.psi for r in report.rows) < 0.1  # nothing even warns on PSI
    assert report.window_size > 1000 and len(report.rows) > 100


def test_a_window_must_have_a_length(stores: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="is not after"):
        drift_between(stores["none"], SHIFT_DAY, WINDOW_END, SHIFT_DAY)


def test_training_logs_each_models_reference_profile(trained: Trained) -> None:
    client = trained.tracking.client()
    for name, score in (("churn", "score_churn"), ("next_stage", "score_next_stage_inactive")):
        result = trained.result(name, "lightgbm")
        version = client.get_model_version(result_name(name), result.version)
        data = load_run_dict(client, version, PROFILE_ARTIFACT)
        assert data is not None
        profile = DriftProfile.from_dict(data)
        assert score in profile.columns_ and "recency_days" in profile.columns_
        assert profile.n_ == len(trained.ds.train)  # every training row (below max_rows)


def test_a_run_without_a_profile_reads_as_none(trained: Trained) -> None:
    client = trained.tracking.client()
    version = client.get_model_version(result_name("churn"),
                                       trained.result("churn", "baseline").version)
    assert load_run_dict(client, version, "drift/absent.json") is None


@pytest.mark.parametrize("days", [30, 14])  # 14: the audit's --drift-days
def test_the_retraining_drift_check_gives_a_reason_only_after_the_shift(
        stores: dict[str, Path], days: int) -> None:
    spec, until = load_spec(), SHIFT_DAY + timedelta(days=days)  # the live window: the shift's
    shifted = drift_check(stores["shift"], until, days, spec)()
    assert shifted is not None and "drift alarm" in shifted and "ch_social_30d" in shifted
    assert drift_check(stores["none"], until, days, spec)() is None


def test_the_champion_profile_is_the_churn_champions(trained: Trained) -> None:
    client = trained.tracking.client()
    assert champion_profile(client, alias="no-such-alias") is None
    version = trained.result("churn", "lightgbm").version
    client.set_registered_model_alias(result_name("churn"), "drift-test", version)
    try:  # the registry is the session's: leave it as found
        profile = champion_profile(client, alias="drift-test")
    finally:
        client.delete_registered_model_alias(result_name("churn"), "drift-test")
    assert profile is not None and "score_churn" in profile.columns_
