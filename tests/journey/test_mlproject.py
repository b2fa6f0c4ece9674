"""MLproject entry points map one to one to `journey` commands, and `mlflow run` starts them
with the local environment.

The commands are rendered as `mlflow run` renders them (its own project loader, values shell-
quoted) and run by bash as `mlflow run` runs them, with `journey` a shell function that prints
the arguments it would get; click then parses those arguments as `journey` would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
import yaml
from mlflow.projects.utils import load_project

from journey.cli import app

REPO = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((REPO / "MLproject").read_text())
ENTRY_POINTS = sorted(PROJECT["entry_points"])
REQUIRED = {"simulate", "oracle", "ingest", "attributes", "features", "labels", "train",
            "compare", "promote", "uplift", "personas", "kpis"}
# A value for every parameter an entry point has, to render it with everything given.
GIVEN = {"as_of": "2025-06-01", "out": "out.parquet", "store": "my store.duckdb",
         "margin": "0.02", "config": "c.yaml", "by": "stage", "snapshot": "snap-1",
         "sample": "5", "promote": "promote", "effects": "effects", "horizon": "7",
         "experiment": "experiments/x.yaml", "source": "data dir", "sim": "sim",
         "id_column": "cid", "customers": "10", "days": "5", "seed": "1", "replicas": "3"}
_GROUP = typer.main.get_command(app)
assert isinstance(_GROUP, typer.core.TyperGroup)
COMMANDS = _GROUP.commands


def argv(name: str, params: dict[str, str]) -> list[str]:
    """The arguments `journey` gets when `mlflow run -e NAME -P k=v ...` runs the command."""
    project = load_project(str(REPO))  # type: ignore[no-untyped-call]  # mlflow: no hints
    command = project.get_entry_point(name).compute_command(params, None)
    shell = f'journey() {{ printf "%s\\0" "$@"; }}\n{command}'
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
    return done.stdout.split("\0")[:-1]


def required(name: str) -> dict[str, str]:
    """Values for the parameters `mlflow run` cannot leave out (no default)."""
    params = PROJECT["entry_points"][name].get("parameters", {})
    return {k: GIVEN[k] for k, p in params.items() if "default" not in p}


def parsed(name: str, args: list[str]) -> Any:  # typer's own (vendored) click Context
    """``args`` parsed by the command's click object, as `journey` would (unknown options,
    missing required ones and values of the wrong type raise)."""
    assert args[0] == name, args
    return COMMANDS[name].make_context(name, args[1:])


def test_the_pipeline_s_stages_are_entry_points() -> None:
    assert set(PROJECT["entry_points"]) >= REQUIRED


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_is_its_cli_command_with_real_options(name: str) -> None:
    entry = PROJECT["entry_points"][name]
    assert name in COMMANDS, f"no `journey {name}` command"
    assert re.search(rf"(^|; )journey {name}( |$)", entry["command"]), entry["command"]
    placeholders = set(re.findall(r"(?<!\{)\{(\w+)\}", entry["command"]))
    assert placeholders == set(entry.get("parameters", {})), name
    defaults = parsed(name, argv(name, required(name)))
    everything = parsed(name, argv(name, {k: GIVEN[k] for k in entry.get("parameters", {})}))
    assert defaults.command.name == everything.command.name == name


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_parameter_given_reaches_the_command(name: str) -> None:
    params = {k: GIVEN[k] for k in PROJECT["entry_points"][name].get("parameters", {})}
    args = argv(name, params)
    for key, value in params.items():
        if key in ("promote", "effects"):  # on/off: the value is the option's spelling
            assert f"--{value}" in args, (key, args)
        else:
            assert value in args, (key, args)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_empty_parameter_leaves_its_option_out(name: str) -> None:
    """Left empty, an option is not passed: the JOURNEY_* settings decide, as without mlflow."""
    entry = PROJECT["entry_points"][name].get("parameters", {})
    optional = [k for k, p in entry.items() if p.get("default") == ""]
    args = argv(name, required(name))
    ctx = parsed(name, args)
    for key in optional:
        assert ctx.params[key] is None, (key, args)
    assert "" not in args


def test_promote_keeps_the_margin_setting_unless_given() -> None:
    assert "--margin" not in argv("promote", {})  # JOURNEY_PROMOTE_MARGIN applies
    args = argv("promote", {"margin": "0.02"})
    assert args[args.index("--margin") + 1] == "0.02"
    assert parsed("promote", args).params["margin"] == pytest.approx(0.02)


def test_store_and_output_follow_journey_home_unless_given() -> None:
    assert argv("train", {}) == ["train", "--experiment", "experiments/default.yaml"]
    args = argv("train", {"store": "my store.duckdb", "out": "snaps"})
    assert args[-4:] == ["--store", "my store.duckdb", "--out", "snaps"]


def test_oracle_and_personas_switches() -> None:
    oracle = parsed("oracle", argv("oracle", {"as_of": "2025-06-01", "out": "o.csv"}))
    assert oracle.params["effects"] is False and oracle.params["sample"] is None
    assert parsed("oracle", argv("oracle", {"as_of": "2025-06-01", "out": "o.csv",
                                            "effects": "effects"})).params["effects"] is True
    assert parsed("personas", argv("personas", {})).params["promote"] is False
    assert parsed("personas", argv("personas", {"promote": "promote"})).params["promote"]
    with pytest.raises(Exception, match="No such option: --yes"):  # not a quiet "off"
        parsed("personas", argv("personas", {"promote": "yes"}))


def _mlflow_run(tmp_path: Path, entry: str, env: dict[str, str],
                *params: str) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("JOURNEY_", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"))},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "JOURNEY_HOME": str(tmp_path / "home"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **env,
    }
    args = [str(bin_dir / "mlflow"), "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for p in params:
        args += ["-P", p]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_mlflow_run_compare_in_journey_s_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow' / 'mlflow.db'}"
    done = _mlflow_run(tmp_path, "compare", {"MLFLOW_TRACKING_URI": uri},
                       f"out={tmp_path / 'reports'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded" in done.stderr
    assert f"no model runs tracked yet in {uri}" in done.stdout


@pytest.mark.slow
def test_mlflow_run_without_a_tracking_uri_says_what_to_set(tmp_path: Path) -> None:
    """mlflow 3 then tracks in ./mlflow.db where it was started: not Journey's store."""
    done = _mlflow_run(tmp_path, "compare", {})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    want = f"MLFLOW_TRACKING_URI=sqlite:///{(tmp_path / 'home').resolve()}/mlflow/mlflow.db"
    assert want in done.stderr and "MLflow's own default" in done.stderr
    assert not (tmp_path / "home" / "mlflow" / "mlflow.db").exists()
