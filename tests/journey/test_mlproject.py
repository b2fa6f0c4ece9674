"""MLproject entry points map one to one to `journey` commands, and `mlflow run` starts them
with the local environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.journey.cli_helpers import run

REPO = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((REPO / "MLproject").read_text())
REQUIRED = {"simulate", "ingest", "features", "train", "compare", "promote"}


def test_the_issue_s_stages_are_entry_points() -> None:
    assert set(PROJECT["entry_points"]) >= REQUIRED


@pytest.mark.parametrize("name", sorted(PROJECT["entry_points"]))
def test_entry_point_is_its_cli_command_with_real_options(name: str) -> None:
    entry = PROJECT["entry_points"][name]
    words = entry["command"].split()
    assert words[:2] == ["journey", name]
    options = [w for w in words if w.startswith("--")]
    helped = run(name, "--help")
    assert helped.exit_code == 0
    for option in options:
        assert option in helped.stdout, f"{name}: {option} is not an option of `journey {name}`"
    placeholders = set(re.findall(r"\{(\w+)\}", entry["command"]))
    assert placeholders == set(entry.get("parameters", {})), name


@pytest.mark.slow
def test_mlflow_run_compare_with_the_local_environment(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "JOURNEY_HOME": str(tmp_path),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    done = subprocess.run(
        [str(bin_dir / "mlflow"), "run", str(REPO), "-e", "compare", "--env-manager", "local",
         "-P", f"out={tmp_path / 'reports'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded" in done.stderr
