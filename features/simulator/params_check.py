"""Reading a simulator parameter file strictly: YAML 1.2 (``features.yaml_config.StrictLoader``),
a key written twice refused, and typed, ranged reads whose every failure names the file, the
line and the field (``file: line N: types.loyalist.buy: ...``).

A scenario that ``extends: default`` takes the keys it does not set from the shipped default;
a problem found in one of those names the field "(from the default)", since it has no line in
the user's file (a scenario's session_channels that the default's types do not fit, say).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

from features.errors import ConfigError
from features.yaml_config import parse_yaml, read_text

_PARENT = re.compile(r"(.*?)(?:\.[^.\[\]]*|\[\d+\])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def read_file(path: Path) -> str:
    """A parameter file's text (UTF-8, else an error at its line)."""
    if not path.is_file():
        raise ConfigError(f"simulator parameter file not found: {path}")
    return read_text(path)


def parse(text: str, src: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The text's top-level mapping and each field's line (``yaml_config.field_lines``, which
    also refuses a key written twice: YAML keeps the last one silently). As
    ``yaml_config.read_config`` reads a file, for text: a simulation's recorded parameters."""
    raw, lines = parse_yaml(text, src)
    if raw is None:
        raise ConfigError(f"{src}: the file is empty; a scenario holds `extends: default` and "
                          "the keys it changes")
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: expected a mapping of simulator parameters, got {raw!r}")
    return raw, lines


class Checker:
    """Typed reads of the raw parameters; every failure names the file, line and field."""

    def __init__(self, src: str, lines: Mapping[str, int], own: Collection[str] = ()) -> None:
        """``own``: the top-level keys the file sets itself (the rest came from the default)."""
        self.src, self.lines, self.own = src, lines, frozenset(own)

    def where(self, path: str) -> str:
        """``file: line N: field``; a field the file took from the default has no line."""
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        if self.own and top and top not in self.own:
            return f"{self.src}: {path} (from the default)"
        probe = path
        while probe and probe not in self.lines:  # a missing key: the line of what holds it
            parent = _PARENT.fullmatch(probe)
            probe = parent.group(1) if parent else ""
        line = self.lines.get(probe)
        return f"{self.src}: {f'line {line}: ' if line else ''}{path or '(top level)'}"

    def fail(self, path: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.where(path)}: {message}")

    def mapping(self, value: Any, path: str, allowed: Collection[str] | None = None,
                required: Collection[str] = ()) -> dict[str, Any]:
        """A mapping; with ``allowed``, no other key (the closest allowed one suggested)."""
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {value!r}")
        for key in value:
            here = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                self.fail(here, f"the key {key!r} is not text; quote it")
            if allowed is not None and key not in allowed:
                # "price" is too short for difflib beside price_factor: a prefix counts too.
                close = difflib.get_close_matches(key, list(allowed), n=1) or [
                    a for a in allowed if a.startswith(key) or key.startswith(a)][:1]
                hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
                self.fail(here, f"unknown key; {hint}")
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}" if path else key, "is required")
        return value

    def number(self, value: Any, path: str, low: float = 0.0, high: float = math.inf,
               above_low: bool = False) -> float:
        """A finite number in [low, high] (in (low, high] with ``above_low``)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"must be a number, got {value!r}")
        if not math.isfinite(value) or value > high or value < low or (
                above_low and value == low):
            span = (f"above {low:g}" if above_low else f"of at least {low:g}"
                    ) if high == math.inf else f"from {low:g} to {high:g}"
            self.fail(path, f"must be a number {span}, got {value!r}")
        return float(value)

    def probability(self, value: Any, path: str) -> float:
        return self.number(value, path, 0.0, 1.0)

    def whole(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be a whole number, got {value!r}")
        if not low <= value <= high:
            self.fail(path, f"must be from {low} to {high}, got {value}")
        return value

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {value!r}")
        return value

    def day(self, value: Any, path: str) -> date:
        """A calendar date: YAML's own (2025-01-01) or text spelling one ("2025-01-01")."""
        if isinstance(value, datetime):
            self.fail(path, f"must be a date (YYYY-MM-DD) without a time, got {value}")
        if isinstance(value, date):
            return value
        if isinstance(value, str) and _ISO_DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError as exc:
                self.fail(path, f"{value!r} is not a date on the calendar ({exc})")
        self.fail(path, f"must be a date (YYYY-MM-DD), got {value!r}")

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty name (text), got {value!r}")
        return value

    def names(self, value: Any, path: str) -> tuple[str, ...]:
        """A non-empty list of distinct names."""
        if not isinstance(value, list) or not value:
            self.fail(path, f"must be a non-empty list of names, got {value!r}")
        out: list[str] = []
        for i, name in enumerate(value):
            self.text(name, f"{path}[{i}]")
            if name in out:
                self.fail(f"{path}[{i}]", f"{name!r} is listed twice (first at "
                          f"{path}[{out.index(name)}])")
            out.append(name)
        return tuple(out)

    def shares(self, value: Any, path: str, names: str, n: int,
               total_one: bool = False) -> list[float]:
        """One weight >= 0 per entry of ``names`` (``n`` of them), not all 0; with
        ``total_one`` they must sum to 1."""
        if not isinstance(value, list) or len(value) != n:
            got = f"{len(value)} entries" if isinstance(value, list) else repr(value)
            self.fail(path, f"must list {n} shares, one per entry of {names}; got {got}")
        out = [self.number(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if total_one and abs(sum(out) - 1.0) > 1e-6:
            self.fail(path, f"shares must sum to 1, got {sum(out):g}")
        if not sum(out) > 0:
            self.fail(path, "shares are all 0: at least one must be above 0")
        return out
