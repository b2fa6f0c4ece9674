"""Detail tables: per-event property tables whose values a load joins onto its events.

A Segment warehouse keeps each track event's properties in a table of its own, keyed by the
event's id (``order_completed.id`` = ``events.event_id``); the events table itself carries no
revenue. A detail source names such a file, its key column, and the columns that give an
event its value (and channel). It comes from ``--details FILE`` (key ``id``, the mapping's own
value and channel columns as candidates) or from a mapping file's ``details:`` list::

    details:
      - file: order_completed.csv.gz   # relative to the mapping file
        key: id                        # default: id
        columns: {value: total_price}  # default: the mapping's value and channel columns

Paths are checked here, when the mapping is read, so a misspelt file fails before a store is
opened; the files are read by ``features.details_read`` when the load starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.errors import ConfigError, MappingError, SourceError
from features.read_base import UTF8_TEXT, TextFormat, text_format
from features.readers import detect_format

DETAIL_FIELDS = ("value", "channel")  # what a detail row can give an event
DEFAULT_KEY = "id"  # Segment's warehouse tables key each row by the event's id
ENTRY_KEYS = ("file", "key", "columns", "delimiter", "encoding")


@dataclass(frozen=True)
class DetailSource:
    """One detail file. ``columns`` None: the mapping's value and channel columns are
    candidates (a file needs one of them); given: exactly these fields, whose columns the
    file must have."""

    path: Path
    key: str = DEFAULT_KEY
    columns: Mapping[str, tuple[str, ...]] | None = None
    text: TextFormat = UTF8_TEXT
    where: str = "--details"  # where it was given, for errors: "map.yaml: line 9: details[0]"

    def candidates(self, mapping_columns: Mapping[str, tuple[str, ...]]
                   ) -> dict[str, tuple[str, ...]]:
        """Field -> the columns that may give it, in preference order."""
        if self.columns is not None:
            return dict(self.columns)
        return {f: mapping_columns.get(f, (f,)) for f in DETAIL_FIELDS}


def checked_path(path: Path, where: str) -> Path:
    """A detail file that exists and has a type the readers know; else an error at ``where``."""
    if not path.is_file():
        raise SourceError(f"{where}: no such file {path}"
                          + (" (a directory: name its detail file)" if path.is_dir() else ""))
    try:
        detect_format(path)
    except SourceError as exc:
        raise SourceError(f"{where}: {exc}") from exc
    return path


def with_cli_details(listed: tuple[DetailSource, ...], paths: list[Path]
                     ) -> tuple[DetailSource, ...]:
    """The mapping's detail sources, then those of ``--details FILE`` options (checked now:
    before a store is opened). A file given twice would be joined twice and counted twice."""
    out = list(listed)
    for path in paths:
        source = DetailSource(checked_path(path, f"--details {path}"))
        same = [s for s in out if s.path.resolve() == path.resolve()]
        if same:
            raise SourceError(f"--details {path}: already joined ({same[0].where}); give each "
                              "detail file once")
        out.append(source)
    return tuple(out)


def details_from_yaml(raw: Any, at: Callable[[str], str], base: Path | None
                      ) -> tuple[DetailSource, ...]:
    """A mapping file's ``details:`` list (``at(path)``: "file: line N: path" for errors;
    ``base``: the directory relative file names start from, None: the working directory).
    An entry is a file name, or ``{file, key, columns, delimiter, encoding}``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MappingError(f"{at('details')}: must be a list of detail files "
                           f"(- file: order_completed.csv.gz), got {raw!r}")
    out: list[DetailSource] = []
    for i, item in enumerate(raw):
        source = _entry(item, f"details[{i}]", at, base)
        same = [s for s in out if s.path.resolve() == source.path.resolve()]
        if same:
            raise MappingError(f"{source.where}: {source.path} is listed already "
                               f"({same[0].where}); list each detail file once")
        out.append(source)
    return tuple(out)


def _entry(item: Any, label: str, at: Callable[[str], str], base: Path | None) -> DetailSource:
    if isinstance(item, str):
        item = {"file": item}
    if not isinstance(item, dict):
        raise MappingError(f"{at(label)}: expected a file name or file:, key:, columns:, "
                           f"got {item!r}")
    unknown = sorted(set(item) - set(ENTRY_KEYS))
    if unknown:
        raise MappingError(f"{at(f'{label}.{unknown[0]}')}: unknown key; a detail entry has "
                           f"{list(ENTRY_KEYS)}")
    file, key = item.get("file"), item.get("key", DEFAULT_KEY)
    if not isinstance(file, str) or not file.strip():
        raise MappingError(f"{at(f'{label}.file')}: give the detail file's name, got {file!r}")
    if not isinstance(key, str) or not key.strip():
        raise MappingError(f"{at(f'{label}.key')}: give the column holding the event id, "
                           f"got {key!r}")
    path = Path(file)
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        checked_path(path, at(f"{label}.file"))
        text = text_format(item.get("delimiter"), item.get("encoding"), f"{at(label)}: ")
    except (SourceError, ConfigError) as exc:
        raise MappingError(str(exc)) from exc
    columns = None
    if "columns" in item:
        columns = _columns(item["columns"], f"{label}.columns", at)
    return DetailSource(path, key, columns, text, at(label))


def _columns(raw: Any, label: str, at: Callable[[str], str]) -> dict[str, tuple[str, ...]]:
    """``columns: {value: total_price, channel: [utm_source, source]}``."""
    if not isinstance(raw, dict) or not raw:
        raise MappingError(f"{at(label)}: must map {' and/or '.join(DETAIL_FIELDS)} to the "
                           f"detail file's columns (value: total_price), got {raw!r}")
    out: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        where = at(f"{label}.{name}")
        if name not in DETAIL_FIELDS:
            raise MappingError(f"{where}: a detail file gives an event only "
                               f"{list(DETAIL_FIELDS)}, not {name!r}")
        names = [value] if isinstance(value, str) else value
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) and n.strip() for n in names)):
            raise MappingError(f"{where}: expected a column name or a list of names, "
                               f"got {value!r}")
        out[str(name)] = tuple(names)
    return out
