"""What every `journey` command shares: the app, common options and error handling."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from features.errors import ConfigError, JourneyError
from features.yaml_config import message
from journey.environment_errors import environment_error
from journey.setting_checks import unknown_settings, unparsable

app = typer.Typer(
    name="journey",
    help="Predictive journey modelling: simulate, ingest, features, labels, train, compare, "
    "promote.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="markdown",
)
P = ParamSpec("P")
R = TypeVar("R")

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Event store file (env JOURNEY_STORE).")
]
TaxonomyOpt = Annotated[
    Path | None, typer.Option("--taxonomy", help="Stage taxonomy YAML (env JOURNEY_TAXONOMY).")
]
DelimiterOpt = Annotated[str | None, typer.Option(
    help="CSV/TSV field delimiter, e.g. ';' or tab (default: ',' for .csv, tab for .tsv).")]
EncodingOpt = Annotated[str | None, typer.Option(
    help="CSV/TSV character encoding, e.g. cp1252, latin-1, utf-16 (default: utf-8).")]


# Files and folders a command creates are its user's alone: the store holds every customer's
# events, the rejects file raw rows, the scores and serve.log customer ids. The service
# `journey serve` starts inherits it.
PRIVATE = 0o077


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Domain errors end the command with their message (which names file/line/field), exit 2;
    so does a setting (JOURNEY_* variable or .env line) that does not validate, that no
    setting has the name of (a misspelt one would silently leave the default in force), or
    a .env line that cannot be parsed, all before the command does anything. What the
    command creates is private to its user (``PRIVATE``)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        before = os.umask(PRIVATE)
        try:
            _refuse(unknown_settings(os.environ))
            return func(*args, **kwargs)
        except JourneyError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc
        except ValidationError as exc:
            if not exc.title.endswith("Settings"):  # a bug, not the user's input: traceback
                raise
            _refuse(settings_errors(exc))
            raise  # not reached: settings_errors has a line per error
        except SettingsError as exc:  # a list setting that is not JSON (JOURNEY_RISK_BANDS=high)
            _refuse([unparsable(str(exc), exc.__cause__, os.environ)])
            raise
        except Exception as exc:  # a full disk, a read-only home: one line, not a traceback
            line = environment_error(exc)
            if line is None:
                raise
            _refuse([line])
            raise
        finally:  # as it was for whoever called the command in process (tests, scripts)
            os.umask(before)

    return wrapper


def _refuse(lines: list[str]) -> None:
    """Print each problem as an error and end the command (exit 2); nothing when none."""
    if not lines:
        return
    for line in lines:
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def settings_errors(exc: ValidationError) -> list[str]:
    """One line per bad setting, named as the user sets it (every Settings class reads
    JOURNEY_-prefixed variables, or the same names in .env)."""
    lines = []
    for err in exc.errors():
        field, *within = err["loc"] or ("?",)
        item = f" (item {'.'.join(str(p) for p in within)}: {err.get('input')!r})" if within else ""
        value = "" if within else f"={err.get('input')!r}"
        lines.append(f"setting JOURNEY_{str(field).upper()}{value} (environment or .env)"
                     f"{item}: {message(err)}")
    return lines


def parse_when(text: str) -> datetime:
    """A date or ISO timestamp; naive means UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not an ISO date or timestamp (e.g. 2025-06-01)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
