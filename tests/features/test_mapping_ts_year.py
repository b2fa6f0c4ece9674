"""A strptime pattern without a year is refused when the mapping is loaded, at its file, line
and field: DuckDB would read every date in 1900 and the load reject every row as out of range
(UCI online shoppers, `ts: Month`, `ts_format: ["%b"]`: 12,330 of 12,330 rows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import MappingError
from features.mapping import load_mapping_file, mapping_from_dict
from features.mapping_checks import has_year

COLUMNS = "columns: {customer_id: c, ts: t, event_type: e}\n"


@pytest.mark.parametrize("pattern", ["%b", "%B", "%m-%d", "%d/%m", "%H:%M", "%X", "%j",
                                     "%A %H:%M", "%%Y-%m-%d", "%V"])
def test_patterns_without_a_year(pattern: str) -> None:
    assert not has_year(pattern)


@pytest.mark.parametrize("pattern", ["%Y%m%d", "%d/%m/%y", "%-y-%m", "%G-W%V", "%c", "%x",
                                     "%b %Y", "%%%Y"])
def test_patterns_with_a_year(pattern: str) -> None:
    assert has_year(pattern)
    assert mapping_from_dict({"ts_format": [pattern]}, "m").ts_format == (pattern,)


def test_a_month_alone_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "uci.yaml"
    path.write_text(COLUMNS + "constants: {channel: web}\nts_format: [\"%b\"]\n",
                    encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(info.value).startswith(
        f"{path}: line 3: ts_format[0]: '%b' has no year (%Y, %y, or %G; %c and %x include "
        "%Y): every row would be read as a date in 1900 and rejected")


def test_the_later_format_of_a_list_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(COLUMNS + "ts_format:\n  - ISO8601\n  - '%Y%m%d'\n  - '%d.%m %H:%M'\n",
                    encoding="utf-8")
    with pytest.raises(MappingError, match=r"line 5: ts_format\[2\]: '%d.%m %H:%M' has no year"):
        load_mapping_file(path)


def test_a_single_format_is_named_at_the_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(COLUMNS + "ts_format: '%m-%d'\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"m.yaml: line 2: ts_format: '%m-%d' has no year"):
        load_mapping_file(path)


def test_epoch_keywords_are_not_patterns() -> None:
    formats = mapping_from_dict({"ts_format": ["epoch_s", "epoch_ms", "ISO8601"]}, "m").ts_format
    assert formats == ("epoch_s", "epoch_ms", "ISO8601")


def test_duckdb_has_no_epoch_directive() -> None:
    """%s would be a year-less pattern if DuckDB read it; it does not: the epoch keywords do."""
    with pytest.raises(MappingError, match=r"ts_format\[0\]: '%s' is not a valid strptime"):
        mapping_from_dict({"ts_format": ["%s"]}, "m")
