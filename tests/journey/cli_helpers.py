"""Running `journey` commands in process (typer's CliRunner) and reading what they print."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner, Result

from journey.cli import app

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# `journey score` in this process would collect and freeze the whole test session's heap
# (1-2 s a run); the CLI tests that start `journey` as a process keep the default.
runner = CliRunner(env={"JOURNEY_FREEZE_HEAP": "false"})


def run(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def out(result: Result) -> str:
    return ANSI.sub("", result.output)


def ok(*args: str | Path) -> list[str]:
    """Run a command that must succeed; its stdout lines."""
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return ANSI.sub("", result.stdout).splitlines()


def fails(*args: str | Path) -> str:
    """Run a command that must end with exit code 2 and a message on stderr; the message."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return ANSI.sub("", result.stderr)
