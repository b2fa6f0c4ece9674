"""Strict YAML for hand-edited configuration: YAML 1.2 booleans and floats, keys written twice
rejected, and checks that name the file and the key path of whatever is wrong
(``actions.yaml: actions.discount_email.caps[1].window_days: must be a positive number``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, NoReturn

import yaml

from features.errors import ConfigError
from features.yaml_config import StrictLoader
from features.yaml_config import reject_duplicate_keys as duplicate_keys

__all__ = ["StrictLoader", "Where", "join", "reject_duplicate_keys"]

def join(path: str, key: object) -> str:
    """The key path of `key` under `path`, as errors print it (`actions.x.caps`)."""
    return f"{path}.{key}" if path else str(key)


class Where:
    """The file being read, so every check can name it and the key path in its error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {path}: {message}")

    def mapping(
        self, value: Any, path: str, allowed: Collection[str], required: Collection[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {value!r}")
        for key in value:
            if key not in allowed:
                self.fail(join(path, key), f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for key in required:
            if key not in value:
                self.fail(join(path, key), "is required")
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        low: float | None = None,
        strict: bool = False,
        high: float | None = None,
        what: str = "a number",
    ) -> float:
        """A finite number, optionally above `low` (or at least `low` unless `strict`)."""
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            ok = False
        if ok and low is not None:
            ok = value > low if strict else value >= low
        if ok and high is not None:
            ok = value < high
        if not ok:
            self.fail(path, f"must be {what}, got {value!r}")
        return float(value)

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {value!r}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty name, got {value!r}")
        return value

    def names(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.fail(path, f"must be a non-empty list of names, got {value!r}")
        out = tuple(self.name(v, f"{path}[{i}]") for i, v in enumerate(value))
        for i, v in enumerate(out):
            if v in out[:i]:
                self.fail(f"{path}[{i}]", f"{v!r} is listed twice")
        return out


def reject_duplicate_keys(node: yaml.Node, where: Where, path: str = "") -> None:
    """Reject a key written twice in one mapping (YAML would keep the last one silently)."""
    duplicate_keys(node, where.source, path)
