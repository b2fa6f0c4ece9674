"""Benchmark scripts start as the README says to run them: `python benchmarks/NAME.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py")
                 if p.name not in ("__init__.py", "common.py"))


def test_every_benchmark_is_covered() -> None:
    assert {"simulate.py", "features.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_as_a_file(script: str) -> None:
    # Run from the repository root as a user would; benchmarks/features.py must not shadow
    # the `features` package for any script.
    done = subprocess.run([sys.executable, f"benchmarks/{script}", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout
