"""The `journey` command line's help and version, through typer's CliRunner (in process)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main

from journey import __version__
from journey.cli import app
from tests.journey.cli_helpers import fails, out, run

pytestmark = pytest.mark.usefixtures("isolated")

COMMAND_OPTIONS = {
    "simulate": ["--out", "--customers", "--days", "--seed", "--params", "--workers"],
    "oracle": ["--sim", "--as-of", "--horizon", "--out", "--replicas", "--effects", "--sample"],
    "ingest": ["--map", "--mapping", "--preset", "--store", "--taxonomy", "--unknown-events",
               "--rejects"],
    "summary": ["--store", "--taxonomy", "--as-of", "--loads"],
}


def test_app_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    text = out(result)
    assert "Usage: journey [OPTIONS] COMMAND [ARGS]" in text
    assert "--version" in text
    for command in COMMAND_OPTIONS:
        assert re.search(rf"^\W*{command}\s+\w", text, re.MULTILINE), command


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_command_help_lists_its_options(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    text = out(result)
    assert f"Usage: journey {command} [OPTIONS]" in text
    for option in COMMAND_OPTIONS[command]:
        assert re.search(rf"{re.escape(option)}\b", text), (command, option)


def test_version_needs_no_command() -> None:
    result = run("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{__version__}\n"
    assert __version__ == "0.1.0"


def _commands(command: Any, path: str) -> dict[str, Any]:
    found = {path: command}
    for name, sub in getattr(command, "commands", {}).items():
        found.update(_commands(sub, f"{path} {name}"))
    return found


COMMANDS = _commands(typer.main.get_command(app), "journey")


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_a_one_line_summary(path: str) -> None:
    # The command list in `journey --help` shows the docstring's first paragraph with its line
    # breaks, so a summary that wraps breaks the list mid-sentence.
    summary = (COMMANDS[path].help or "").strip().split("\n\n")[0]
    assert summary, f"{path} has no help"
    assert "\n" not in summary and len(summary) <= 100, f"{path}: {summary!r}"


def test_a_bad_item_of_a_list_setting_is_named_with_its_position(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from journey.common import settings_errors
    from serving.settings import ServeSettings

    monkeypatch.setenv("JOURNEY_RISK_BANDS", '[0.3, "x"]')
    with pytest.raises(ValidationError) as info:
        ServeSettings()
    [line] = settings_errors(info.value)
    assert line.startswith("setting JOURNEY_RISK_BANDS (environment or .env) (item 1: 'x'): ")


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_text_survives_markdown(path: str) -> None:
    """Help is rendered as Markdown (paragraphs reflow to the terminal's width), which drops
    anything that looks like an HTML tag: "<home>/scores" printed as "/scores"."""
    command = COMMANDS[path]
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    assert not [t for t in texts if re.search(r"<[A-Za-z/]", t)], path


def test_help_paragraphs_reflow_and_keep_the_home_folder() -> None:
    text = " ".join(out(run("score", "--help")).split())
    assert "into a new snapshot ($JOURNEY_HOME/scores)." in text
    from tests.journey.cli_helpers import runner

    wide = runner.invoke(app, ["personas", "--help"], env={"COLUMNS": "200"})
    # One line per paragraph, not the docstring's breaks ("... (champion when" / "there is").
    assert any("registers it (champion when there is none). Scoring runs" in line
               for line in out(wide).splitlines())


def test_retrain_outside_the_project_folder_says_how_to_name_the_spec(
        isolated: Any) -> None:
    message = fails("retrain")
    assert f"retraining spec not found: {isolated / 'experiments' / 'retrain.yaml'}" in message
    assert "--config or JOURNEY_RETRAIN_SPEC" in message
