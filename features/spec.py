"""Feature definitions: the one declaration every engine (batch, Spark, online) computes from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from features.taxonomy import Taxonomy, load_taxonomy
from features.yaml_config import read_mapping

# Bump when a kernel's meaning changes, so snapshots made by older code get another hash.
FEATURES_VERSION = 1
DAY_US = 86_400_000_000
OTHER = "other"


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    event_type: str
    key: str
    low: float | None = None  # scores at or below this count as bad experiences


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


def _names(raw: dict[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: {key} must be a list of names, got {value!r}")
    return tuple(value)


def _number(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: {where} must be a number, got {value!r}")
    return float(value)


def spec_from_dict(raw: dict[str, Any], taxonomy: Taxonomy, source: str) -> FeatureSpec:
    known = {
        "windows_days",
        "session_gap_minutes",
        "response_window_hours",
        "channels",
        "actions",
        "scores",
        "attributes",
    }
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    raw_windows = raw.get("windows_days", [7, 30, 90])
    if not isinstance(raw_windows, list) or not all(
        isinstance(w, int) and not isinstance(w, bool) for w in raw_windows
    ):
        raise ConfigError(
            f"{source}: windows_days must be a list of whole days, got {raw_windows!r}"
        )
    windows = tuple(int(w) for w in raw_windows)
    if not windows or any(w <= 0 for w in windows) or list(windows) != sorted(set(windows)):
        raise ConfigError(f"{source}: windows_days must be increasing positive days, got {windows}")
    gap = _number(raw.get("session_gap_minutes", 30), "session_gap_minutes", source)
    response = _number(raw.get("response_window_hours", 72), "response_window_hours", source)
    if gap <= 0 or response <= 0:
        raise ConfigError(
            f"{source}: session_gap_minutes and response_window_hours must be positive"
        )
    raw_scores = raw.get("scores") or {}
    if not isinstance(raw_scores, dict):
        raise ConfigError(f"{source}: scores must map a score name to its event_type and key")
    scores = []
    for name, s in raw_scores.items():
        if not isinstance(s, dict) or "event_type" not in s or "key" not in s:
            raise ConfigError(f"{source}: scores.{name} needs event_type and key")
        if s["event_type"] not in taxonomy.event_stage:
            raise ConfigError(
                f"{source}: scores.{name}.event_type {s['event_type']!r} is not in "
                f"the taxonomy ({taxonomy.source})"
            )
        low = None if s.get("low") is None else _number(s["low"], f"scores.{name}.low", source)
        scores.append(ScoreSpec(str(name), str(s["event_type"]), str(s["key"]), low))
    return FeatureSpec(
        windows_days=windows,
        session_gap_minutes=gap,
        response_window_hours=response,
        channels=_names(raw, "channels", source),
        actions=_names(raw, "actions", source),
        scores=tuple(scores),
        attributes=_names(raw, "attributes", source),
        taxonomy=taxonomy,
        source=source,
    )


def load_spec(path: str | Path | None = None, taxonomy: Taxonomy | None = None) -> FeatureSpec:
    """The feature spec (default: the one shipped) over a taxonomy (default: the shipped one)."""
    raw, source = read_mapping(path, "features.config", "features.yaml", "feature spec",
                               empty_ok=True)
    return spec_from_dict(raw, taxonomy or load_taxonomy(), source)
