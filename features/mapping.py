"""Column mappings: how a source file's columns become the canonical event fields.

A column the user names (in a mapping file or with --map) must be in the file: a mapping that
names ``amount_usd`` for the value of a file without it would otherwise load every value as
missing. A preset's lists are candidates for many kinds of files, so none of them is required.

A field a mapping file or --map leaves out is read from the column of its own name, when the
file has one and no field took that column (``columns: {ts: when}`` still loads
``customer_id``): naming every column again would be busywork, and a mapping naming only
what differs from the canonical shape is the common case. Presets do not: their lists say
where each field is in the files they are for (a Segment event's ``properties`` object is not
the event's properties).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import yaml

from features.details_spec import DetailSource, details_from_yaml, with_cli_details
from features.errors import ConfigError, MappingError
from features.mapping_checks import (
    channel_renames,
    column_names,
    defaults_of,
    delimiter_hint,
    excluded_customers,
    has_year,
    no_year,
)
from features.read_base import TextFormat, text_format
from features.schema import EVENT_FIELDS, REQUIRED_FIELDS
from features.yaml_config import StrictLoader, field_lines, read_text, reject_duplicate_keys

PRESETS = ("segment", "purchases")
ISO8601 = "ISO8601"
EPOCH_UNITS = {"epoch_s": 1_000_000, "epoch_ms": 1_000, "epoch_us": 1}
TS_KEYWORDS = {k.lower(): k for k in (ISO8601, *EPOCH_UNITS)}  # spelled in any case
MAPPABLE = frozenset(EVENT_FIELDS)
# (what named them, e.g. "columns.value", the columns it named: at least one must be present)
Required = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class ColumnMapping:
    """Canonical field -> candidate source columns (first present wins), plus value rules."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    event_types: dict[str, str] = field(default_factory=dict)  # source value -> taxonomy name
    # Source channel -> stored channel, both trimmed and lower-case (as the store keeps them).
    channels: dict[str, str] = field(default_factory=dict)
    ts_format: tuple[str, ...] = (ISO8601,)
    defaults: dict[str, str] = field(default_factory=dict)
    properties: tuple[str, ...] = ()  # extra source columns packed into `properties`
    source: str = "<mapping>"
    required: Required = ()  # columns the user named, which the file must have
    text: TextFormat = field(default_factory=TextFormat)  # CSV/TSV delimiter, encoding
    # Per-event tables joined on the event id (features.details_spec): fill missing values.
    details: tuple[DetailSource, ...] = ()
    # Customer ids whose rows are left out (a Segment stream's catch-all user): counted apart.
    exclude_customers: frozenset[str] = frozenset()
    # A field ``columns`` does not name is read from the column of its name (not a preset's).
    same_named: bool = True

    def _claimed(self) -> set[str]:
        """Source columns the mapping gives to a field or packs into properties."""
        return {c for cands in self.columns.values() for c in cands} | set(self.properties)

    def same_named_fields(self) -> tuple[str, ...]:
        """The fields read from the column of their own name: not mapped, not constant, and
        that column not taken by another field (``--map customer_id=event_id``)."""
        if not self.same_named:
            return ()
        claimed = self._claimed()
        return tuple(f for f in EVENT_FIELDS if f not in self.columns
                     and f not in self.constants and f not in claimed)

    def candidates(self, canonical: str) -> tuple[str, ...]:
        """The columns a field may be read from, in preference order."""
        if canonical in self.columns:
            return self.columns[canonical]
        return (canonical,) if canonical in self.same_named_fields() else ()

    def resolve(self, available: list[str], where: str) -> dict[str, tuple[str, ...]]:
        """The source columns of each canonical field, in preference order; a row takes the
        first non-empty one (Segment: userId, else anonymousId). Fails naming what is missing."""
        present = set(available)
        resolved: dict[str, tuple[str, ...]] = {}
        for canonical in (*self.columns, *self.same_named_fields()):
            hits = tuple(c for c in self.candidates(canonical) if c in present)
            if hits:
                resolved[canonical] = hits
        for req in REQUIRED_FIELDS:
            if req not in resolved and req not in self.constants:
                raise MappingError(
                    f"{where}: no column for required field {req!r} ({self._tried(req)}); "
                    f"the file has columns {available}" + delimiter_hint(available)
                )
        missing = [(label, named) for label, named in self.required
                   if not any(c in present for c in named)]
        if missing:
            what = "; ".join(f"{label}: {column_names(named)}" for label, named in missing)
            raise MappingError(f"{where}: mapping {self.source} names columns the file does not "
                               f"have ({what}); the file has columns {available}"
                               + delimiter_hint(available))
        return resolved

    def _tried(self, req: str) -> str:
        """What the mapping looked for, for a required field the file lacks."""
        tried = self.candidates(req)
        if tried:
            return f"mapping {self.source} tried {list(tried)}"
        owner = next((f for f, cands in self.columns.items() if req in cands), None)
        taken = (f": the column {req!r} is mapped to {owner}" if owner is not None
                 else f": the column {req!r} is packed into properties"
                 if req in self.properties else "")
        return (f"mapping {self.source} maps no column to it{taken}; name one under "
                f"`columns:` or with --map {req}=COLUMN")

    def wanted_columns(self) -> frozenset[str]:
        """Every source column this mapping can read; readers keep only these."""
        return frozenset(self._claimed()) | frozenset(self.same_named_fields())

    def extra_columns(self, available: list[str]) -> list[str]:
        present = set(available)
        return [c for c in self.properties if c in present]


def with_text_options(mapping: ColumnMapping, delimiter: str | None,
                      encoding: str | None) -> ColumnMapping:
    """The mapping with the command line's --delimiter / --encoding in place of its own."""
    if delimiter is None and encoding is None:
        return mapping
    given = text_format(delimiter, encoding, "--")
    return replace(mapping, text=TextFormat(
        given.delimiter if delimiter is not None else mapping.text.delimiter,
        given.encoding if encoding is not None else mapping.text.encoding))


def identity_mapping() -> ColumnMapping:
    """Files already in the canonical shape."""
    return ColumnMapping(columns={f: (f,) for f in EVENT_FIELDS}, source="<canonical>")


def _as_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{where}: expected a column name or a list of names, got {value!r}")


def _ts_formats(value: Any, source: str, lines: Mapping[str, int]) -> tuple[str, ...]:
    """The timestamp formats, keywords in their canonical spelling; each strptime pattern is
    tried once here, as DuckDB reads it: a bad one fails the query of every batch."""
    formats = _as_tuple(value, f"{source}: ts_format")
    if not formats:
        raise MappingError(f"{source}: ts_format: give at least one format")
    out = []
    with duckdb.connect() as con:
        for i, fmt in enumerate(formats):
            # A scalar ts_format has no line of its own for [0]: it is on the key's line.
            label = f"ts_format[{i}]" if isinstance(value, list) else "ts_format"
            where = f"{_at(source, lines, label)}: {fmt!r}"
            keyword = TS_KEYWORDS.get(fmt.strip().lower())
            if keyword is not None:
                out.append(keyword)
                continue
            if "%" not in fmt:
                raise MappingError(f"{where} is neither one of {list(TS_KEYWORDS.values())} "
                                   "nor a strptime pattern (such as %Y%m%d)")
            try:
                con.execute("SELECT TRY_STRPTIME('', '" + fmt.replace("'", "''") + "')")
            except duckdb.Error as exc:
                why = str(exc).strip().splitlines()[0].split("Error: ", 1)[-1]
                raise MappingError(f"{where} is not a valid strptime pattern: {why}") from exc
            if not has_year(fmt):
                raise MappingError(no_year(_at(source, lines, label), fmt))
            out.append(fmt)
    return tuple(out)


def _at(source: str, lines: Mapping[str, int], path: str) -> str:
    """``file: line N: field`` (the line of the nearest enclosing field the file has)."""
    probe = path
    while probe and probe not in lines:
        probe = probe.rpartition(".")[0]
    line = lines.get(probe)
    return f"{source}: line {line}: {path}" if line else f"{source}: {path}"


def _pairs(raw: dict[str, Any], key: str, what: str, source: str,
           lines: Mapping[str, int]) -> dict[str, str]:
    """A ``key: {name: text}`` block (absent or empty: none); a list or a nested value, which
    would otherwise fail deep inside (or become the text "['a']"), names its line."""
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise MappingError(f"{_at(source, lines, key)}: must map {what}, got {value!r}")
    for name, text in value.items():
        if isinstance(text, dict | list) or text is None:
            raise MappingError(f"{_at(source, lines, f'{key}.{name}')}: must be text, "
                               f"got {text!r}")
    return {str(k): str(v) for k, v in value.items()}


def mapping_from_dict(raw: dict[str, Any], source: str, preset: bool = False,
                      lines: Mapping[str, int] | None = None,
                      base: Path | None = None) -> ColumnMapping:
    """``preset``: the columns are candidates for many files, none required. ``lines``: each
    field's line in the file (``features.spec.field_lines``), for errors. ``base``: where the
    file names of ``details:`` start from (the mapping file's directory)."""
    lines = lines or {}
    known = {"columns", "constants", "event_types", "channels", "ts_format", "defaults",
             "properties", "delimiter", "encoding", "details", "exclude_customers"}
    unknown = set(raw) - known
    if unknown:
        raise MappingError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    columns_raw = raw.get("columns", {}) or {}
    if not isinstance(columns_raw, dict):
        raise MappingError(f"{_at(source, lines, 'columns')}: 'columns' must map canonical "
                           "field -> source column")
    constants = _pairs(raw, "constants", "each field to its value for every row", source, lines)
    for name in list(columns_raw) + list(constants):
        if name not in MAPPABLE:
            raise MappingError(
                f"{source}: {name!r} is not an event field; fields are {list(EVENT_FIELDS)}"
            )
    both = [name for name in constants if name in columns_raw]
    if both:  # the normaliser reads a constant first: the column would be ignored for every row
        name = both[0]
        at = lines.get(f"constants.{name}")
        column_line = lines.get(f"columns.{name}")
        raise MappingError(
            f"{source}: {f'line {at}: ' if at else ''}{name}: given both in columns and "
            f"constants{f' (columns at line {column_line})' if column_line else ''}; a "
            "constant is the value of every row, so keep only one of them")
    columns = {k: _as_tuple(v, f"{source}: columns.{k}") for k, v in columns_raw.items()}
    properties = _as_tuple(raw.get("properties", []), f"{source}: properties")
    required: Required = () if preset else (
        *((f"columns.{k}", v) for k, v in columns.items()),
        *((f"properties[{i}]", (c,)) for i, c in enumerate(properties)))
    return ColumnMapping(
        columns=columns,
        constants=constants,
        event_types=_pairs(raw, "event_types", "each source value to a taxonomy event type",
                           source, lines),
        channels=channel_renames(
            _pairs(raw, "channels", "each source value to a channel", source, lines),
            lambda path: _at(source, lines, path)),
        ts_format=_ts_formats(raw.get("ts_format", [ISO8601]), source, lines),
        defaults=defaults_of(raw.get("defaults") or {}, source),
        properties=properties,
        source=source,
        required=required,
        text=_text(raw, source),
        details=details_from_yaml(raw.get("details"), lambda path: _at(source, lines, path),
                                  base),
        exclude_customers=excluded_customers(raw.get("exclude_customers"),
                                             lambda path: _at(source, lines, path)),
        same_named=not preset,
    )


def _text(raw: dict[str, Any], source: str) -> TextFormat:
    for key in ("delimiter", "encoding"):
        if key in raw and not isinstance(raw[key], str):
            raise MappingError(f"{source}: {key}: expected text, got {raw[key]!r}")
    try:
        return text_format(raw.get("delimiter"), raw.get("encoding"), f"{source}: ")
    except ConfigError as exc:
        raise MappingError(str(exc)) from exc


def _load_yaml(text: str, source: str, preset: bool = False,
               base: Path | None = None) -> ColumnMapping:
    try:
        node = yaml.compose(text, Loader=StrictLoader)
        raw = yaml.load(text, Loader=StrictLoader)  # safe: StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise MappingError(f"{source}: not valid YAML: {exc}") from exc
    if node is not None:
        try:
            reject_duplicate_keys(node, source)
        except ConfigError as exc:  # YAML would keep the last of the two silently
            raise MappingError(str(exc)) from exc
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: expected a mapping at the top level")
    lines = field_lines(node, source) if node is not None else {}
    return mapping_from_dict(raw, source, preset, lines, base)


def load_mapping_file(path: str | Path) -> ColumnMapping:
    p = Path(path)
    if not p.is_file():
        raise MappingError(f"mapping file not found: {p}")
    try:
        text = read_text(p)
    except ConfigError as exc:  # not UTF-8: at its line
        raise MappingError(str(exc)) from exc
    return _load_yaml(text, str(p), base=p.parent)


def load_preset(name: str) -> ColumnMapping:
    if name not in PRESETS:
        raise MappingError(f"unknown preset {name!r}; presets are {list(PRESETS)}")
    text = resources.files("features.presets").joinpath(f"{name}.yaml").read_text()
    return _load_yaml(text, f"preset {name}", preset=True)


def _parse_map_parts(option: str) -> dict[str, str]:
    """``FIELD=COLUMN`` pairs of a --map option, in order."""
    pairs: dict[str, str] = {}
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
        if name in pairs:
            raise MappingError(f"--map: field {name!r} given twice")
        pairs[name] = column
    return pairs


def parse_map_option(option: str, base: ColumnMapping | None = None) -> ColumnMapping:
    """Parse ``customer_id=COL,ts=COL,event_type=COL[,...]`` (overrides ``base`` per field).

    Without ``base``, a field --map does not name is read from the column of its canonical
    name (``--map customer_id=visitor`` still loads ``ts``, ``event_id``, ``value``...), unless
    --map gave that column to another field."""
    pairs = _parse_map_parts(option)
    if base is None:
        claimed = set(pairs.values())
        columns = {f: cols for f, cols in identity_mapping().columns.items()
                   if f in pairs or not claimed.intersection(cols)}
        base = ColumnMapping(columns=columns, source="--map")
        source = "--map"
    else:
        source = f"{base.source} + --map"
    columns = dict(base.columns)
    columns.update({name: (column,) for name, column in pairs.items()})
    overridden = {f"columns.{name}" for name in pairs}
    required: Required = (*((label, named) for label, named in base.required
                            if label not in overridden),
                          *((f"--map {name}", (column,)) for name, column in pairs.items()))
    return ColumnMapping(
        columns=columns,
        constants={k: v for k, v in base.constants.items() if k not in pairs},
        event_types=base.event_types,
        channels=base.channels,
        ts_format=base.ts_format,
        defaults=base.defaults,
        properties=base.properties,
        source=source,
        required=required,
        text=base.text,
        details=base.details,
        exclude_customers=base.exclude_customers,
        same_named=base.same_named,
    )


def choose_mapping(
    map_option: str | None = None,
    mapping_file: str | Path | None = None,
    preset: str | None = None,
    details: list[Path] | None = None,
    exclude: list[str] | None = None,
) -> ColumnMapping:
    """The mapping the CLI options ask for: a preset or file, refined by --map; else canonical.
    ``details``: the --details files, joined after those the mapping file lists. ``exclude``:
    the --exclude-customer ids, left out with those the mapping file lists."""
    if preset and mapping_file:
        raise MappingError("give either --preset or --mapping, not both")
    base: ColumnMapping | None = None
    if preset:
        base = load_preset(preset)
    elif mapping_file:
        base = load_mapping_file(mapping_file)
    chosen = parse_map_option(map_option, base) if map_option else base or identity_mapping()
    if exclude:
        chosen = replace(chosen, exclude_customers=chosen.exclude_customers | excluded_customers(
            exclude, lambda path: "--exclude-customer"))
    if not details:
        return chosen
    return replace(chosen, details=with_cli_details(chosen.details, details))
