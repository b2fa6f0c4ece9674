"""Stage taxonomy: the ordered journey stages and the stage each event type signals."""

from __future__ import annotations

import re
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
# How the loader spells a source's event type before looking it up (the Python twin of
# features.normalize.NORMALISE_TYPE_SQL): "Add to Cart" -> add_to_cart. The taxonomy's own
# names are spelled so too, or a key written "Add To Cart" would never match a row.
_SEPARATORS = re.compile(r"[\t\n\f\r \-]+")  # RE2's \s is these four and the space
TRIMMED = " \t\n\r"  # what the loader's clean_text trims


def normal_event_type(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip(TRIMMED)).lower()


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
        taxonomy = cls(
            stages=tuple(str(s) for s in raw["stages"]),
            event_stage=_event_stages(event_types, source),
            conversion_event_types=_conversions(raw.get("conversion_event_types", ["purchase"]),
                                                source),
            unknown_event_types=raw.get("unknown_event_types", "reject"),
            repeat_conversion_stage=None if repeat is None else str(repeat),
            source=source,
        )
        _check_repeat_stage(taxonomy)
        return taxonomy


def _event_stages(raw: dict[Any, Any], source: str) -> dict[str, str | None]:
    """Event type -> stage with each name spelled as the loader spells a row's type; two keys
    that become one name are refused (YAML would keep one of them silently)."""
    out: dict[str, str | None] = {}
    written: dict[str, str] = {}
    for key, stage in raw.items():
        if not isinstance(key, str):  # `2025-01-01:` is a date, `404:` a number
            raise ConfigError(f"{source}: event_types: the key {key!r} is not text (YAML reads "
                              "numbers, dates and true/false as such): quote it")
        name = normal_event_type(key)
        if not name:
            raise ConfigError(f"{source}: event_types: the key {key!r} is empty")
        if name in out:
            raise ConfigError(f"{source}: event_types: {written[name]!r} and {key!r} are the "
                              f"same event type {name!r} once spelled as the loader spells "
                              "event types (lower case, spaces and dashes as _)")
        out[name], written[name] = None if stage is None else str(stage), key
    return out


def _conversions(raw: Any, source: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise ConfigError(f"{source}: conversion_event_types must be a list of event types, "
                          f"got {raw!r}")
    if not raw:
        raise ConfigError(f"{source}: conversion_event_types is empty: with no conversion event "
                          "type no customer ever converts and every conversion label is 0; "
                          "name at least one (e.g. [purchase])")
    return tuple(normal_event_type(t) for t in raw)


def _check_repeat_stage(tax: Taxonomy) -> None:
    """Refuse a repeat_conversion_stage that can change nothing: it only ever moves a repeat
    conversion to a later stage than its event type's own."""
    repeat = tax.repeat_conversion_stage
    if repeat is None:
        return
    own = {t: tax.event_stage[t] for t in tax.conversion_event_types}
    if any(s is not None and tax.stage_index(s) < tax.stage_index(repeat) for s in own.values()):
        return
    staged = sorted((tax.stage_index(s), s) for s in own.values() if s is not None)
    fix = (f"name a stage after {staged[0][1]!r}" if staged
           else "the conversion event types signal no stage")
    raise ConfigError(
        f"{tax.source}: repeat_conversion_stage {repeat!r} is not later than the stage of any "
        f"conversion event type ({', '.join(f'{t}: {s}' for t, s in own.items())}); a repeat "
        f"conversion is only ever moved to a later stage, so the rule would do nothing: {fix}, "
        "or remove the rule")


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load a taxonomy YAML file; None loads the default shipped with Journey."""
    raw, source = read_mapping(path, "features.config", DEFAULT_TAXONOMY, "taxonomy file")
    return Taxonomy.from_dict(raw, source)
