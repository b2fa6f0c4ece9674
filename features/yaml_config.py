"""Reading a YAML settings file: the shipped default from a package, or the user's file; an
error names the file (the callers' schemas name the key)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from features.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_mapping(path: str | Path | None, package: str, default: str, what: str,
                 empty_ok: bool = False) -> tuple[dict[str, Any], str]:
    """The file's top-level mapping and how to name the file in messages. ``path`` None reads
    ``default`` shipped in ``package``; ``what`` says what the file is ("feature spec");
    ``empty_ok`` reads an empty file as an empty mapping (every key has a default)."""
    if path is None:
        text = resources.files(package).joinpath(default).read_text(encoding="utf-8")
        source = f"<default {default}>"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{what} not found: {p}")
        text, source = p.read_text(encoding="utf-8"), str(p)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return raw, source


def validated(schema: type[M], raw: dict[str, Any], source: str) -> M:
    """``raw`` checked against a pydantic schema; the first problem becomes a ConfigError
    naming the file and the key."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {problem(exc.errors()[0])}") from exc


def problem(error: ErrorDetails) -> str:
    """One pydantic error as "key.path: message" ("(top level)" for the whole mapping)."""
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    return f"{where}: {message(error)}"


def message(error: ErrorDetails) -> str:
    """A pydantic error's message; a validator's own words without the "Value error, " or
    "Assertion failed, " that pydantic puts before them."""
    return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
