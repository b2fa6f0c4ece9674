"""Training's snapshot source (`journey train`, `retrain`, `promote`, `personas` read the store
through it, giving it JOURNEY_STORE_MEMORY) opens the store within its limit, and running out
of memory computing a snapshot, or reading the store's time range, ends the command with one
line, exit 2. The running out is DuckDB's own, as in test_store_memory_commands.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from features.batch import BatchEngine
from features.errors import JourneyError
from features.spec import load_spec
from tests.journey.cli_helpers import fails
from tests.journey.test_store_memory_commands import (
    RAN_OUT,
    limits,
    store,
    swell,
    swollen_first_read,
)
from training.dataset import SnapshotSource

__all__ = ["limits", "store", "swollen_first_read"]  # fixtures, shared with the commands' tests

REPO = Path(__file__).resolve().parents[2]
CUTOFF = datetime(2025, 6, 1, tzinfo=UTC)


def source(store: Path, memory_limit: str | None = None) -> SnapshotSource:
    return SnapshotSource(store, store.parent / "snapshots", load_spec(), log=lambda _: None,
                          memory_limit=memory_limit)


@pytest.mark.parametrize(("given", "duckdb_says"), [("200MB", "190.7 MiB"),
                                                    ("300MB", "286.1 MiB")])
def test_the_limit_given_reaches_duckdb(given: str, duckdb_says: str, store: Path,
                                        limits: list[str]) -> None:
    src = source(store, given)
    src.check_started([], "cutoffs")  # opens the store
    src.close()
    assert limits == [duckdb_says]


def test_computing_features_that_runs_out_says_so_in_one_line(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = BatchEngine.features

    def swollen(self: BatchEngine, cutoff: datetime) -> Any:
        swell(self.store)
        return real(self, cutoff)

    monkeypatch.setattr(BatchEngine, "features", swollen)
    src = source(store, "128MB")
    with pytest.raises(JourneyError) as raised:
        src.features(CUTOFF)
    src.close()
    doing = f"computing the features of {store} as of {CUTOFF.isoformat()}"
    assert re.fullmatch(f"{re.escape(doing)}{RAN_OUT}", str(raised.value)), raised.value


@pytest.mark.usefixtures("swollen_first_read")
def test_train_that_runs_out_ends_with_one_line(store: Path) -> None:
    [line] = fails("train", "--experiment", REPO / "experiments" / "default.yaml").splitlines()
    assert re.fullmatch(f"error: reading the event store {re.escape(str(store))}{RAN_OUT}",
                        line), line


def test_uplift_decisions_and_drift_open_the_store_within_the_limit(
        store: Path, limits: list[str]) -> None:
    from training.drift import drift_check
    from training.uplift import load_decisions
    from training.uplift_spec import load_uplift_experiment

    exp = load_uplift_experiment(REPO / "experiments" / "uplift.yaml")
    with pytest.raises(JourneyError):  # an empty store: no outcome observed
        load_decisions(exp, store, load_spec(), log=lambda _: None, memory_limit="200MB")
    with pytest.raises(JourneyError):  # an empty store: nobody active
        drift_check(store, CUTOFF, 30, load_spec(), memory_limit="300MB")()
    assert limits == ["190.7 MiB", "286.1 MiB"]
