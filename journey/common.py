"""What every `journey` command shares: the app, common options and error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from features.errors import ConfigError, JourneyError

app = typer.Typer(
    name="journey",
    help="Predictive journey modelling: simulate, ingest, features, labels, train, compare, "
    "promote.",
    no_args_is_help=True,
    add_completion=False,
)
P = ParamSpec("P")
R = TypeVar("R")

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Event store file (env JOURNEY_STORE).")
]
TaxonomyOpt = Annotated[
    Path | None, typer.Option("--taxonomy", help="Stage taxonomy YAML (env JOURNEY_TAXONOMY).")
]


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Domain errors end the command with their message (which names file/line/field), exit 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except JourneyError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc

    return wrapper


def parse_when(text: str) -> datetime:
    """A date or ISO timestamp; naive means UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not an ISO date or timestamp (e.g. 2025-06-01)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
