"""The sustained-load benchmark end to end, shortened: `benchmarks/load.py --quick` against the
real service for 10 s in two windows, its figures written where the test says (not over
benchmarks/results/load.json).

It serves the tests' shared world and models (--store, --home): the benchmark's own simulated
world would cost a minute and more of training on a machine where `make bench-quick` never
ran; that preparation runs with the benchmarks (`make bench-quick`), not in this suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.conftest import build_served
from tests.training.world import Trained, UpliftTrained, World

REPO = Path(__file__).resolve().parents[2]
KEYS = {"errors", "p99_first_ms", "p99_last_ms", "rss_growth_pct", "requests", "windows",
        "targets", "meets_targets"}


def run_finishing(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the benchmark; if this test is stopped (its timeout, ^C), SIGTERM it and give it
    time to stop the service it started. ``subprocess.run`` would SIGKILL it, leaving the
    detached service running with its port and memory."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_quick_load_run(tmp_path: Path, world: World, trained: Trained,
                        uplift_trained: UpliftTrained) -> None:
    served = build_served(world, trained, uplift_trained, tmp_path / "home")
    untouched = {p: (p.stat().st_size, p.stat().st_mtime_ns)
                 for p in (world.store, served.home / "api_keys.yaml")}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JOURNEY_") and not k.startswith("MLFLOW_TRACKING")}
    env.update(BENTOML_DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true")
    done = run_finishing(
        [sys.executable, "benchmarks/load.py", "--quick", "--seconds", "10", "--window", "5",
         "--results", str(tmp_path), "--work", str(tmp_path / "work"),
         "--store", str(world.store), "--home", str(served.home)], env)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    figures = json.loads((tmp_path / "load.json").read_text())
    assert figures.keys() >= KEYS
    assert figures["quick"] is True and figures["errors"] == 0
    assert figures["requests"] == 2000  # 200 req/s for 10 s, every one answered
    assert [w["window"] for w in figures["windows"]] == [1, 2]
    assert {r for w in figures["windows"] for r, f in w["by_route"].items()
            if f["requests"]} == {"predict", "ingest", "recommend"}
    assert figures["rss_start_mb"] > 0 and figures["rss_end_mb"] > 0
    assert figures["detail"]["statuses"] == {"200": 2000}
    assert figures["data"]["home"] == str(served.home)
    # Neither the shared store nor the served home's keys were written to: the run had its own.
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in untouched} == untouched
