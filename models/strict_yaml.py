"""Strict YAML for hand-edited configuration: YAML 1.2 booleans and floats, keys written twice
rejected, and checks that name the file and the key path of whatever is wrong
(``actions.yaml: actions.discount_email.caps[1].window_days: must be a positive number``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any, NoReturn

import yaml

from features.errors import ConfigError

_BOOL = "tag:yaml.org,2002:bool"


class StrictLoader(yaml.SafeLoader):
    """YAML 1.2 booleans (only true/false): under YAML 1.1 a condition's `on:` key, and values
    such as `no` or `off`, would silently turn into true and false."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 floats too: YAML 1.1 needs a dot and a signed exponent, so `1e-3` (a learning
# rate) and `2.5e3` would be read as text. Tried after 1.1's own float and int patterns.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


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
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = join(path, key)
            if key in seen:
                where.fail(here, f"written twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
            reject_duplicate_keys(value_node, where, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            reject_duplicate_keys(item, where, f"{path}[{i}]")
