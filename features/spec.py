"""Feature definitions: the one declaration every engine (batch, Spark, online) computes from.

The spec file is read strictly (``features.yaml_config.StrictLoader``: YAML 1.2 booleans,
keys written twice refused) and every problem is reported as ``file: line N: field: what``;
docs/features.md is the reference of its keys.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from features.errors import ConfigError
from features.taxonomy import Taxonomy, load_taxonomy
from features.yaml_config import parse_yaml, read_text

# Bump when a kernel's meaning changes, so snapshots made by older code get another hash.
# 2: one rule for reading a score in every engine (key = JSON path, numbers as JSON writes them,
# the first of a key written twice; non-standard JSON gives no score).
FEATURES_VERSION = 2
DAY_US = 86_400_000_000
OTHER = "other"
# Vocabulary entries the engines add themselves: a channel or action named so would merge with
# the bucket of unlisted values.
RESERVED_NAMES = frozenset({OTHER})
KEYS = ("windows_days", "session_gap_minutes", "response_window_hours", "channels", "actions",
        "scores", "attributes")
SCORE_KEYS = ("event_type", "key", "low")
# Bounds that keep every duration inside 64-bit microseconds, with room for the kernel's and
# Spark's arithmetic (a trend looks back twice the widest window): 100 years.
MAX_WINDOW_DAYS = 36_500
MAX_GAP_MINUTES = MAX_WINDOW_DAYS * 24 * 60
MAX_RESPONSE_HOURS = MAX_WINDOW_DAYS * 24
# A score name becomes column names (csat_mean) that models and experiments refer to.
SCORE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Not in a score key's names: the JSON path syntax of DuckDB and Spark gives them a meaning.
KEY_SPECIALS = frozenset('.[]*"\\')
# What every engine reads as a score: a JSON number, or a string holding exactly a decimal
# number written with ASCII digits (no spaces, no "1_000", no "Infinity"); finite only.
SCORE_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    event_type: str
    key: str  # a path into the event's properties: "survey.nps" is properties.survey.nps
    low: float | None = None  # scores at or below this count as bad experiences

    @property
    def path(self) -> tuple[str, ...]:
        """The property names from the top-level object down to the score."""
        return tuple(self.key.split("."))


@dataclass(frozen=True)
class FeatureSpec:
    windows_days: tuple[int, ...]
    session_gap_minutes: float
    response_window_hours: float
    channels: tuple[str, ...]
    actions: tuple[str, ...]
    scores: tuple[ScoreSpec, ...]
    attributes: tuple[str, ...]
    taxonomy: Taxonomy = field(compare=False)
    source: str = field(default="<default>", compare=False)
    # The line of each field in the spec file ("scores.csat" -> 12), for errors found later.
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Every engine reads one score per event (features.events.EventArrays.score): a second
        # score on the same event type would be read differently by each, so none may exist,
        # however the spec was made.
        seen: dict[str, str] = {}
        for s in self.scores:
            if s.event_type in seen:
                raise ConfigError(self.where(f"scores.{s.name}", two_scores(seen[s.event_type],
                                                                             s)))
            seen[s.event_type] = s.name

    def where(self, field_path: str, message: str) -> str:
        """An error message naming this spec's file, the field's line (when known) and it."""
        return _located(self.source, self.lines, field_path, message)

    # -- vocabularies (index = code) ---------------------------------------------------
    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.taxonomy.event_stage)

    @property
    def channel_vocab(self) -> tuple[str, ...]:
        return (*self.channels, OTHER)

    @property
    def action_vocab(self) -> tuple[str, ...]:
        return (*self.actions, OTHER)

    @property
    def stages(self) -> tuple[str, ...]:
        return self.taxonomy.stages

    def definition(self) -> dict[str, Any]:
        definition: dict[str, Any] = {
            "version": FEATURES_VERSION,
            "windows_days": list(self.windows_days),
            "session_gap_minutes": self.session_gap_minutes,
            "response_window_hours": self.response_window_hours,
            "channels": list(self.channels),
            "actions": list(self.actions),
            "scores": [[s.name, s.event_type, s.key, s.low] for s in self.scores],
            "attributes": list(self.attributes),
            "stages": list(self.taxonomy.stages),
            "event_stage": dict(self.taxonomy.event_stage),
            "conversion_event_types": list(self.taxonomy.conversion_event_types),
        }
        # Only when set, so definitions without the rule keep the hash their models carry.
        if self.taxonomy.repeat_conversion_stage is not None:
            definition["repeat_conversion_stage"] = self.taxonomy.repeat_conversion_stage
        return definition

    @cached_property
    def hash(self) -> str:
        # Every prediction carries it, and the definition cannot change (frozen): once is enough.
        text = json.dumps(self.definition(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def two_scores(first: str, second: ScoreSpec) -> str:
    return (f"event type {second.event_type!r} already has the score scores.{first}; one event "
            f"type carries at most one score (every engine reads one score per event), so "
            f"{first!r} and {second.name!r} cannot both read {second.event_type} events")


_PARENT = re.compile(r"(.*?)(?:\.[^.\[\]]*|\[\d+\])")


def _located(source: str, lines: Mapping[str, int], field_path: str, message: str) -> str:
    """``file: line N: field: message``; the line of the nearest enclosing field that has one."""
    probe = field_path
    while probe and probe not in lines:  # a missing key: the line of what should hold it
        parent = _PARENT.fullmatch(probe)
        probe = parent.group(1) if parent else ""
    line = lines.get(probe)
    at = f"line {line}: " if line else ""
    return f"{source}: {at}{field_path or '(top level)'}: {message}"


def key_problem(key: str) -> str | None:
    """Why a score key is not a usable path of property names, or None."""
    for name in key.split("."):
        if not name:
            return "has an empty property name (a dot at an end, or two dots in a row)"
        if name != name.strip():
            return f"property name {name!r} starts or ends with a space"
        bad = sorted(c for c in set(name) if c in KEY_SPECIALS or ord(c) < 32)
        if bad:
            return (f"property name {name!r} holds {', '.join(map(repr, bad))}; a key is "
                    "property names joined by dots, and names cannot hold . [ ] * \" \\ "
                    "or control characters")
    return None


class _Checker:
    """Typed reads of the raw spec; every failure names the file, the line and the field."""

    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, field_path: str, message: str) -> NoReturn:
        raise ConfigError(_located(self.source, self.lines, field_path, message))

    def mapping(self, value: Any, path: str, allowed: Collection[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {value!r}")
        for key in value:
            if key not in allowed:
                here = f"{path}.{key}" if path else str(key)
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
                self.fail(here, f"unknown key; {hint}")
        return value

    def number(self, value: Any, path: str, high: float) -> float:
        """A finite number above 0 and at most ``high``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"must be a number, got {value!r}")
        if not math.isfinite(value) or not 0 < value <= high:
            self.fail(path, f"must be a positive number of at most {high:,g}, got {value!r}")
        return float(value)

    def names(self, value: Any, path: str, reserved: Collection[str] = ()) -> tuple[str, ...]:
        """A list of distinct names (null: none)."""
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, f"must be a list of names, got {value!r}")
        out: list[str] = []
        for i, v in enumerate(value):
            here = f"{path}[{i}]"
            if not isinstance(v, str) or not v.strip():
                self.fail(here, f"must be a non-empty name (text), got {v!r}")
            if v != v.strip() or any(ord(c) < 32 for c in v):
                self.fail(here, f"{v!r} starts or ends with a space or holds a control character")
            if v in out:
                self.fail(here, f"{v!r} is listed twice (first at {path}[{out.index(v)}])")
            if v in reserved:
                self.fail(here, f"{v!r} is reserved: values not listed count as {v!r}")
            out.append(v)
        return tuple(out)

    def windows(self, value: Any) -> tuple[int, ...]:
        path = "windows_days"
        if not isinstance(value, list) or not value:
            self.fail(path, f"must be a non-empty list of whole days, got {value!r}")
        for i, w in enumerate(value):
            if isinstance(w, bool) or not isinstance(w, int):
                self.fail(f"{path}[{i}]", f"must be a whole number of days, got {w!r}")
            if not 0 < w <= MAX_WINDOW_DAYS:
                self.fail(f"{path}[{i}]", f"must be from 1 to {MAX_WINDOW_DAYS} days, got {w}")
            if i and w <= value[i - 1]:
                self.fail(f"{path}[{i}]", f"windows must increase: {w} after {value[i - 1]}")
        return tuple(value)

    def channels(self, value: Any) -> tuple[str, ...]:
        out = self.names(value, "channels", RESERVED_NAMES)
        for i, c in enumerate(out):
            if c != c.lower():  # the store keeps channels lower-case ("Email" -> email)
                self.fail(f"channels[{i}]", f"{c!r} would never match: channels are stored "
                          f"lower-case; write {c.lower()!r}")
        return out

    def scores(self, value: Any, taxonomy: Taxonomy) -> tuple[ScoreSpec, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.fail("scores", "must map each score's name to its event_type and key, got "
                      f"{value!r}")
        out: list[ScoreSpec] = []
        for name, raw in value.items():
            out.append(self.score(name, raw, taxonomy))
            first = next((s for s in out[:-1] if s.event_type == out[-1].event_type), None)
            if first is not None:
                self.fail(f"scores.{name}", two_scores(first.name, out[-1]))
        return tuple(out)

    def score(self, name: Any, raw: Any, taxonomy: Taxonomy) -> ScoreSpec:
        here = f"scores.{name}"
        if not isinstance(name, str) or not SCORE_NAME.fullmatch(name):
            self.fail(here, "a score's name must be letters, digits and _ (not starting with a "
                      f"digit): it names the columns {name}_count, {name}_mean...")
        s = self.mapping(raw, here, SCORE_KEYS)
        for required in ("event_type", "key"):
            if required not in s:
                self.fail(f"{here}.{required}", "is required (a score needs event_type and key)")
        event_type, key = s["event_type"], s["key"]
        if event_type not in taxonomy.event_stage:
            self.fail(f"{here}.event_type", f"{event_type!r} is not an event type of the "
                      f"taxonomy ({taxonomy.source})")
        if not isinstance(key, str):
            self.fail(f"{here}.key", f"must be text (quote it: '{key}'), got {key!r}")
        problem = key_problem(key)
        if problem:
            self.fail(f"{here}.key", f"{key!r} {problem}")
        low = s.get("low")
        if low is not None and (isinstance(low, bool) or not isinstance(low, int | float)
                                or not math.isfinite(low)):
            self.fail(f"{here}.low", f"must be a finite number, got {low!r}")
        return ScoreSpec(name, event_type, key, None if low is None else float(low))


def spec_from_dict(raw: dict[str, Any], taxonomy: Taxonomy, source: str,
                   lines: Mapping[str, int] | None = None) -> FeatureSpec:
    """The spec of a file's top-level mapping; ``lines``: each field's line, for errors."""
    check = _Checker(source, lines or {})
    check.mapping(raw, "", KEYS)
    spec = FeatureSpec(
        windows_days=check.windows(raw.get("windows_days", [7, 30, 90])),
        session_gap_minutes=check.number(raw.get("session_gap_minutes", 30),
                                         "session_gap_minutes", MAX_GAP_MINUTES),
        response_window_hours=check.number(raw.get("response_window_hours", 72),
                                           "response_window_hours", MAX_RESPONSE_HOURS),
        channels=check.channels(raw.get("channels")),
        actions=check.names(raw.get("actions"), "actions", RESERVED_NAMES),
        scores=check.scores(raw.get("scores"), taxonomy),
        attributes=check.names(raw.get("attributes"), "attributes"),
        taxonomy=taxonomy,
        source=source,
        lines=dict(lines or {}),
    )
    from features.layout import layout  # layout derives from the spec: imported late

    layout(spec)  # refuses a column name made twice (a score named like a built-in feature)
    return spec


def _read(path: str | Path | None) -> tuple[str, str]:
    if path is None:
        text = resources.files("features.config").joinpath("features.yaml").read_text("utf-8")
        return text, "<default features.yaml>"
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"feature spec not found: {p}")
    return read_text(p), str(p)


def load_spec(path: str | Path | None = None, taxonomy: Taxonomy | None = None) -> FeatureSpec:
    """The feature spec (default: the one shipped) over a taxonomy (default: the shipped one)."""
    text, source = _read(path)
    raw, lines = parse_yaml(text, source)
    if raw is None:  # the defaults alone have no channels, actions or scores: not a spec
        raise ConfigError(f"{source}: empty; a feature spec lists at least its windows, "
                          "channels and actions (start from features/config/features.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(_located(source, lines, "", "expected a mapping at the top level"))
    return spec_from_dict(raw, taxonomy or load_taxonomy(), source, lines)
