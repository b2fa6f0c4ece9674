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
# A value for every parameter an entry point has, to render it with everything given (an
# on/off parameter's the spelling that is not its default).
GIVEN = {"as_of": "2025-06-01", "out": "out.parquet", "store": "my store.duckdb",
         "margin": "0.02", "config": "c.yaml", "by": "stage", "snapshot": "snap-1",
         "sample": "5", "promote": "promote", "effects": "effects", "horizon": "7",
         "experiment": "experiments/x.yaml", "source": "data dir", "sim": "sim",
         "id_column": "cid", "customers": "10", "days": "5", "seed": "1", "replicas": "3",
         "params": "p.yaml", "workers": "2", "map": "customer_id=c,ts=t,event_type=e",
         "mapping": "m.yaml", "preset": "segment", "taxonomy": "my taxonomy.yaml",
         "unknown_events": "keep", "rejects": "rejects.csv", "delimiter": ";",
         "encoding": "latin-1", "loads": "9", "engine": "spark", "spec": "my spec.yaml",
         "details": "orders.csv.gz refunds.csv", "exclude_customer": "u1 test-user",
         "churn_gap_days": "45", "target": "churn conversion", "force": "force",
         "actions": "no-actions", "publish": "publish", "show": "show",
         "rename": "2 bargain hunters",
         "scores": "score dir", "now": "2025-08-01T00:00:00", "drift_days": "14"}
# Values that reach the command as more than one argument (checked on their own below).
SPLIT = {"target", "rename", "details", "exclude_customer"}
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


def options(name: str) -> dict[str, Any]:
    """The command's click parameters by the entry point parameter that maps to each: an
    option's long name with `_` for `-` (--churn-gap-days: churn_gap_days), an argument's name."""
    out: dict[str, Any] = {}
    for p in COMMANDS[name].params:
        key = p.name if p.param_type_name == "argument" else p.opts[0].removeprefix("--")
        out[key.replace("-", "_")] = p
    return out


def is_switch(param: Any) -> bool:
    """An on/off option (--x/--no-x): its parameter takes the option's spelling."""
    return bool(param.secondary_opts)


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
def test_every_option_of_the_command_is_a_parameter(name: str) -> None:
    """Derived from the `journey` app itself, so an option added later needs its parameter."""
    params = set(PROJECT["entry_points"][name].get("parameters", {}))
    assert params == set(options(name)), (sorted(set(options(name)) - params),
                                          sorted(params - set(options(name))))


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_parameter_given_reaches_the_command(name: str) -> None:
    params = {k: GIVEN[k] for k in PROJECT["entry_points"][name].get("parameters", {})}
    args = argv(name, params)
    ctx = parsed(name, args)
    for key, value in params.items():
        param = options(name)[key]
        source = ctx.get_parameter_source(param.name)
        assert source is not None and source.name == "COMMANDLINE", (key, args)
        if is_switch(param):  # on/off: the value is the option's spelling
            assert f"--{value}" in args, (key, args)
            assert ctx.params[param.name] is (f"--{value}" in param.opts), (key, args)
        elif key not in SPLIT:
            assert value in args, (key, args)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_empty_parameter_leaves_its_option_out(name: str) -> None:
    """Left empty, an option is not passed: the JOURNEY_* settings decide, as without mlflow."""
    entry = PROJECT["entry_points"][name].get("parameters", {})
    optional = [k for k, p in entry.items() if p.get("default") == ""]
    args = argv(name, required(name))
    ctx = parsed(name, args)
    for key in optional:
        param = options(name)[key]
        assert ctx.params[param.name] in (None, ()), (key, args)
        assert f"{param.opts[0]}" not in args, (key, args)
    assert "" not in args


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_switch_defaults_to_the_command_s_own_default(name: str) -> None:
    entry = PROJECT["entry_points"][name].get("parameters", {})
    for key, param in options(name).items():
        if is_switch(param):
            default = entry[key]["default"]
            assert (f"--{default}" in param.opts) is param.default, (key, default)


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


def test_promote_targets_and_force() -> None:
    assert "--target" not in argv("promote", {})  # every target
    ctx = parsed("promote", argv("promote", {"target": "churn conversion", "force": "force"}))
    assert ctx.params["target"] == ["churn", "conversion"] and ctx.params["force"] is True
    assert parsed("promote", argv("promote", {"target": "churn"})).params["target"] == ["churn"]
    assert parsed("promote", argv("promote", {})).params["force"] is False


def test_retrain_force_clock_and_drift() -> None:
    ctx = parsed("retrain", argv("retrain", {"config": "c.yaml", "force": "force",
                                              "now": "2025-08-01", "drift_days": "14"}))
    assert ctx.params["force"] is True and ctx.params["drift_days"] == 14
    assert ctx.params["now"] is not None
    defaults = parsed("retrain", argv("retrain", {}))
    assert defaults.params["force"] is False and defaults.params["now"] is None


def test_personas_rename_takes_an_id_and_a_name_with_spaces() -> None:
    args = argv("personas", {"rename": "2 bargain hunters"})
    assert args[args.index("--rename"):][:3] == ["--rename", "2", "bargain hunters"]
    assert parsed("personas", args).params["rename"][1] == "bargain hunters"


def test_score_actions_switch() -> None:
    assert parsed("score", argv("score", {})).params["actions"] is True
    assert parsed("score", argv("score", {"actions": "no-actions"})).params["actions"] is False


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
