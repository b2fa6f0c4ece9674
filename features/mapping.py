"""Column mappings: how a source file's columns become the canonical event fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from features.errors import MappingError
from features.schema import EVENT_FIELDS, REQUIRED_FIELDS

PRESETS = ("segment", "purchases")
ISO8601 = "ISO8601"
EPOCH_UNITS = {"epoch_s": 1_000_000, "epoch_ms": 1_000, "epoch_us": 1}
MAPPABLE = frozenset(EVENT_FIELDS)


@dataclass(frozen=True)
class ColumnMapping:
    """Canonical field -> candidate source columns (first present wins), plus value rules."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    event_types: dict[str, str] = field(default_factory=dict)  # source value -> taxonomy name
    ts_format: tuple[str, ...] = (ISO8601,)
    defaults: dict[str, str] = field(default_factory=dict)
    properties: tuple[str, ...] = ()  # extra source columns packed into `properties`
    source: str = "<mapping>"

    def resolve(self, available: list[str], where: str) -> dict[str, tuple[str, ...]]:
        """The source columns of each canonical field, in preference order; a row takes the
        first non-empty one (Segment: userId, else anonymousId). Fails naming what is missing."""
        present = set(available)
        resolved: dict[str, tuple[str, ...]] = {}
        for canonical, candidates in self.columns.items():
            hits = tuple(c for c in candidates if c in present)
            if hits:
                resolved[canonical] = hits
        for required in REQUIRED_FIELDS:
            if required not in resolved and required not in self.constants:
                tried = list(self.columns.get(required, (required,)))
                raise MappingError(
                    f"{where}: no column for required field {required!r} (mapping {self.source} "
                    f"tried {tried}); the file has columns {available}"
                )
        return resolved

    def wanted_columns(self) -> frozenset[str]:
        """Every source column this mapping can read; readers keep only these."""
        return frozenset(c for cands in self.columns.values() for c in cands) | frozenset(
            self.properties)

    def extra_columns(self, available: list[str]) -> list[str]:
        present = set(available)
        return [c for c in self.properties if c in present]


def identity_mapping() -> ColumnMapping:
    """Files already in the canonical shape."""
    return ColumnMapping(columns={f: (f,) for f in EVENT_FIELDS}, source="<canonical>")


def _as_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{where}: expected a column name or a list of names, got {value!r}")


def mapping_from_dict(raw: dict[str, Any], source: str) -> ColumnMapping:
    known = {"columns", "constants", "event_types", "ts_format", "defaults", "properties"}
    unknown = set(raw) - known
    if unknown:
        raise MappingError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    columns_raw = raw.get("columns", {}) or {}
    if not isinstance(columns_raw, dict):
        raise MappingError(f"{source}: 'columns' must map canonical field -> source column")
    for name in list(columns_raw) + list(raw.get("constants", {}) or {}):
        if name not in MAPPABLE:
            raise MappingError(
                f"{source}: {name!r} is not an event field; fields are {list(EVENT_FIELDS)}"
            )
    ts_format = _as_tuple(raw.get("ts_format", [ISO8601]), f"{source}: ts_format")
    return ColumnMapping(
        columns={k: _as_tuple(v, f"{source}: columns.{k}") for k, v in columns_raw.items()},
        constants={k: str(v) for k, v in (raw.get("constants") or {}).items()},
        event_types={str(k): str(v) for k, v in (raw.get("event_types") or {}).items()},
        ts_format=ts_format,
        defaults={k: str(v) for k, v in (raw.get("defaults") or {}).items()},
        properties=_as_tuple(raw.get("properties", []), f"{source}: properties"),
        source=source,
    )


def _load_yaml(text: str, source: str) -> ColumnMapping:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: expected a mapping at the top level")
    return mapping_from_dict(raw, source)


def load_mapping_file(path: str | Path) -> ColumnMapping:
    p = Path(path)
    if not p.is_file():
        raise MappingError(f"mapping file not found: {p}")
    return _load_yaml(p.read_text(encoding="utf-8"), str(p))


def load_preset(name: str) -> ColumnMapping:
    if name not in PRESETS:
        raise MappingError(f"unknown preset {name!r}; presets are {list(PRESETS)}")
    text = resources.files("features.presets").joinpath(f"{name}.yaml").read_text()
    return _load_yaml(text, f"preset {name}")


def parse_map_option(option: str, base: ColumnMapping | None = None) -> ColumnMapping:
    """Parse ``customer_id=COL,ts=COL,event_type=COL[,...]`` (overrides ``base`` per field)."""
    columns = dict(base.columns) if base else {}
    seen: set[str] = set()
    for part in option.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, column = part.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise MappingError(f"--map: expected FIELD=COLUMN, got {part!r}")
        if name not in MAPPABLE:
            raise MappingError(
                f"--map: {name!r} is not an event field; fields: {list(EVENT_FIELDS)}"
            )
        if name in seen:
            raise MappingError(f"--map: field {name!r} given twice")
        seen.add(name)
        columns[name] = (column,)
    if base is None:
        return ColumnMapping(columns=columns, source="--map")
    return ColumnMapping(
        columns=columns,
        constants={k: v for k, v in base.constants.items() if k not in seen},
        event_types=base.event_types,
        ts_format=base.ts_format,
        defaults=base.defaults,
        properties=base.properties,
        source=f"{base.source} + --map",
    )


def choose_mapping(
    map_option: str | None = None,
    mapping_file: str | Path | None = None,
    preset: str | None = None,
) -> ColumnMapping:
    """The mapping the CLI options ask for: a preset or file, refined by --map; else canonical."""
    if preset and mapping_file:
        raise MappingError("give either --preset or --mapping, not both")
    base: ColumnMapping | None = None
    if preset:
        base = load_preset(preset)
    elif mapping_file:
        base = load_mapping_file(mapping_file)
    if map_option:
        return parse_map_option(map_option, base)
    return base or identity_mapping()
