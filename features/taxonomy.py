"""Stage taxonomy: the ordered journey stages and the stage each event type signals."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from features.errors import ConfigError
from features.yaml_config import read_mapping

UnknownPolicy = Literal["reject", "keep"]
DEFAULT_TAXONOMY = "taxonomy.yaml"
KEYS = frozenset({"stages", "event_types", "conversion_event_types", "unknown_event_types",
                  "repeat_conversion_stage"})
# Names that mean something next to the stages: the next-stage label's "no further stage"
# class, and the journey map's entry and end nodes. A stage with one of them would be
# indistinguishable from it in labels, flows and the dashboard.
RESERVED_STAGE_NAMES = frozenset({"inactive", "entered", "active", "dropped"})


@dataclass(frozen=True)
class Taxonomy:
    """Ordered stages and event type -> stage (None: a non-behavioural event such as a contact)."""

    stages: tuple[str, ...]
    event_stage: dict[str, str | None]
    conversion_event_types: tuple[str, ...] = ("purchase",)
    unknown_event_types: UnknownPolicy = "reject"
    # A conversion after the customer's first one (at a later time) signals this stage when it
    # is further on than the event type's own: "bought again" is retention in a purchase log.
    repeat_conversion_stage: str | None = None
    source: str = field(default="<default>", compare=False)

    def __post_init__(self) -> None:
        if len(set(self.stages)) != len(self.stages) or not self.stages:
            raise ConfigError(f"{self.source}: 'stages' must be a non-empty list of unique names")
        clash = sorted(RESERVED_STAGE_NAMES.intersection(self.stages))
        if clash:
            raise ConfigError(f"{self.source}: stages {clash} use a reserved name; "
                              f"{sorted(RESERVED_STAGE_NAMES)} name outcomes next to the stages")
        for event_type, stage in self.event_stage.items():
            if stage is not None and stage not in self.stages:
                raise ConfigError(
                    f"{self.source}: event_types.{event_type} maps to unknown stage {stage!r}; "
                    f"stages are {list(self.stages)}"
                )
        for event_type in self.conversion_event_types:
            if event_type not in self.event_stage:
                raise ConfigError(
                    f"{self.source}: conversion_event_types names {event_type!r}, "
                    "which is not under event_types"
                )
        if self.repeat_conversion_stage is not None and (
                self.repeat_conversion_stage not in self.stages):
            raise ConfigError(
                f"{self.source}: repeat_conversion_stage {self.repeat_conversion_stage!r} is "
                f"not a stage; stages are {list(self.stages)}"
            )
        if self.unknown_event_types not in ("reject", "keep"):
            raise ConfigError(
                f"{self.source}: unknown_event_types must be 'reject' or 'keep', "
                f"not {self.unknown_event_types!r}"
            )

    def stage_index(self, stage: str) -> int:
        return self.stages.index(stage)

    @property
    def repeat_stage_index(self) -> int:
        """Index of the stage a repeat conversion signals; -1 when there is no such rule."""
        stage = self.repeat_conversion_stage
        return -1 if stage is None else self.stages.index(stage)

    def stage_of(self, event_type: str) -> str | None:
        return self.event_stage.get(event_type)

    @property
    def behavioural_event_types(self) -> tuple[str, ...]:
        """Event types the customer initiates (those that signal a stage)."""
        return tuple(t for t, s in self.event_stage.items() if s is not None)

    def with_policy(self, policy: UnknownPolicy | None) -> Taxonomy:
        if policy is None or policy == self.unknown_event_types:
            return self
        return replace(self, unknown_event_types=policy)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str) -> Taxonomy:
        for key in ("stages", "event_types"):
            if key not in raw:
                raise ConfigError(f"{source}: missing required key {key!r}")
        unknown = sorted(set(raw) - KEYS)
        if unknown:  # a misspelt optional key would otherwise be ignored without a word
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
        repeat = raw.get("repeat_conversion_stage")
        event_types = raw["event_types"]
        if not isinstance(event_types, dict):
            raise ConfigError(f"{source}: 'event_types' must map event type -> stage")
        return cls(
            stages=tuple(str(s) for s in raw["stages"]),
            event_stage={str(k): (None if v is None else str(v)) for k, v in event_types.items()},
            conversion_event_types=tuple(raw.get("conversion_event_types", ["purchase"])),
            unknown_event_types=raw.get("unknown_event_types", "reject"),
            repeat_conversion_stage=None if repeat is None else str(repeat),
            source=source,
        )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load a taxonomy YAML file; None loads the default shipped with Journey."""
    raw, source = read_mapping(path, "features.config", DEFAULT_TAXONOMY, "taxonomy file")
    return Taxonomy.from_dict(raw, source)
