"""`journey retrain --now`: a replay of past data trains on the events up to its clock only,
records that clock as the cycle's data end, logs the retraining spec with the training run,
and a clock before the last recorded cycle's is refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.journey.cli_helpers import fails, ok, out, run
from tests.training.test_retrain_replay import SPEC as REPLAY_SPEC
from tests.training.test_train_provenance import build_tiny
from tests.training.world import one_thread, write_spec
from training.tracking import Tracking

pytestmark = pytest.mark.slow  # a tiny world and one tiny cycle: ~10 s

SPEC: dict[str, Any] = {**REPLAY_SPEC, "name": "tiny-cli"}  # one churn LightGBM, tiny


@pytest.fixture
def config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JOURNEY_HOME", str(isolated / "home"))
    write_spec(isolated / "spec", SPEC)
    return write_spec(isolated / "spec", {"name": "cycle", "experiment": "tiny-cli.yaml",
                                          "every_days": 14})


def test_help_says_what_now_does() -> None:
    boxed = out(run("retrain", "--help"))
    text = " ".join(w for w in boxed.split() if w.strip("│╭╮╰╯─"))  # rich's panel borders
    assert "uses only events up to this time" in text
    assert "replays go forward" in text


def test_a_clock_before_the_last_cycle_is_refused(isolated: Path, config: Path) -> None:
    """The audit's case: a cycle dated 2026-12-05 is recorded, then --now 2025-11-01."""
    folder = isolated / "home" / "retrain"
    folder.mkdir(parents=True)
    cycles = [{"ran_at": "2026-12-05T00:00:00Z", "trigger": "forced"}]
    (folder / "cycles.json").write_text(json.dumps(cycles), encoding="utf-8")
    message = " ".join(fails("retrain", "--config", config, "--now", "2025-11-01", "--force",
                             "--store", isolated / "none.duckdb").split())
    assert ("error: --now 2025-11-01T00:00:00Z is before the last recorded cycle, run at "
            "2026-12-05T00:00:00Z") in message
    assert "replays go forward; give --now 2026-12-05T00:00:00Z or later" in message
    assert json.loads((folder / "cycles.json").read_text(encoding="utf-8")) == cycles


def test_a_replay_cycle_stops_at_its_clock(isolated: Path, config: Path) -> None:
    tiny = build_tiny(isolated / "world")
    with one_thread():
        lines = ok("retrain", "--config", config, "--now", "2025-06-15", "--store", tiny.store,
                   "--out", isolated / "snapshots")
    text = "\n".join(lines)
    assert "test 2025-05-16 (events until 2025-06-15 00:00; newer events, to 2025-07-19" in text
    cycle = json.loads((isolated / "home" / "retrain" / "cycles.json").read_text("utf-8"))[-1]
    assert (cycle["ran_at"], cycle["data_until"]) == ("2025-06-15T00:00:00Z",) * 2
    assert cycle["data"]["events"] > 0 and cycle["data"]["newest"] < "2025-06-15"
    # The same clock again: the events the cycle recorded are all there is, so a drift alarm
    # could only retrain on them again; the check is skipped, and the cadence is not due.
    with one_thread():
        again = " ".join(ok("retrain", "--config", config, "--now", "2025-06-15", "--store",
                            tiny.store, "--out", isolated / "snapshots", "--drift-days", "14"))
    assert ("drift not checked: no new events since the last cycle at 2025-06-15T00:00:00Z "
            f"({cycle['data']['events']:,} events") in again
    client = Tracking.local(isolated / "home").client()
    arts = {a.path for a in client.list_artifacts(cycle["training_run"], "retrain")}
    assert arts == {"retrain/cycle.yaml", "retrain/tiny-cli.yaml"}
    arts = {a.path for a in client.list_artifacts(cycle["training_run"], "experiment")}
    assert arts == {"experiment/tiny-cli-retrain-2025-05-16.yaml"}
