"""Reader fixes for hostile files (issue #8, item 5): unterminated quotes, row and field limits."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.errors import ConfigError
from features.mapping import identity_mapping
from features.readers import ReadLimits
from features.store import EventStore
from features.taxonomy import Taxonomy
from tests.features.hostile_cases import HEADER, rows_of

if TYPE_CHECKING:
    from tests.conftest import LoadFn

pytestmark = pytest.mark.timeout(60)


# -- unterminated quotes (they swallowed every row after them) -----------------------------------
def test_rows_after_an_unterminated_quote_load(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "c0,2024-01-01,page_view\n" + 'c1,"2024-01-01,page_view\n'
                    + "c2,2024-01-01,page_view\nc3,2024-01-01,page_view\n")
    got = load(path)
    assert got.column("customer_id") == ["c0", "c2", "c3"]
    [(line, fld, reason, value)] = got.reject_tuples()
    assert (line, fld, value) == (3, "", 'c1,"2024-01-01,page_view')
    assert reason == ("unterminated quote: a quoted field opened on this line runs over 3 lines; "
                      "the lines after it are read again one by one")


def test_a_quote_closed_lines_later_costs_only_its_own_line(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + 'c1,"2024-01-01,page_view\nc2,2024-01-01,page_view\n'
                    + 'c3,2024-01-01,"page_view"\nc4,2024-01-01,page_view\n')
    got = load(path)
    assert got.column("customer_id") == ["c2", "c3", "c4"]
    assert [t[0] for t in got.reject_tuples()] == [2]
    assert got.reject_tuples()[0][2] == (
        "unterminated quote: a quoted field opened on this line runs over 3 lines "
        "(2 fields, expected 3); the lines after it are read again one by one")


def test_the_last_line_cut_inside_quotes(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + 'c1,2024-01-01,page_view\nc2,2024-01-01,"page_v')
    got = load(path)
    assert got.column("customer_id") == ["c1"]
    assert got.reject_tuples() == [
        (3, "", "unterminated quote: the file ends inside a quoted field",
         'c2,2024-01-01,"page_v')
    ]


def test_a_stray_quote_on_every_line_stays_linear(tmp_path: Path, load: LoadFn) -> None:
    """Each line is parsed at most twice (once inside the runaway record, once on its own)."""
    path = tmp_path / "e.csv"
    path.write_text(HEADER + 'c1,"2024-01-01,page_view\n' * 60_000 + rows_of(2))
    started = time.perf_counter()
    got = load(path)
    assert time.perf_counter() - started < 30
    assert got.column("customer_id") == ["c0", "c1"]
    assert got.report.rejected_total > 0


def test_a_multiline_field_is_held_to_the_field_limit_as_one_row(
    tmp_path: Path, load: LoadFn
) -> None:
    path = tmp_path / "e.csv"
    note = "\n".join(["x" * 40] * 20)  # 819 characters over 20 lines
    path.write_text("customer_id,ts,event_type,note\n"
                    f'c1,2024-01-01,page_view,"{note}"\nc2,2024-01-01,page_view,x\n')
    got = load(path, limits=ReadLimits(max_field_bytes=500, max_row_bytes=5000))
    assert got.column("customer_id") == ["c2"]
    assert got.reject_tuples() == [
        (2, "", "malformed CSV row: field larger than field limit (500)", "")
    ]


def test_a_record_of_many_tiny_lines_is_held_to_the_row_limit(
    tmp_path: Path, load: LoadFn
) -> None:
    """Each remembered line counts its overhead too, not only its characters."""
    path = tmp_path / "e.csv"
    note = "\n".join(["y"] * 100)  # 199 characters, but 100 lines to remember
    path.write_text("customer_id,ts,event_type,note\n"
                    f'c1,2024-01-01,page_view,"{note}"\nc2,2024-01-01,page_view,x\n')
    got = load(path, limits=ReadLimits(max_field_bytes=500, max_row_bytes=2000))
    assert "c2" in got.column("customer_id")
    first = got.reject_tuples()[0]
    assert first[0] == 2
    assert first[2].startswith("unterminated quote: a quoted field opened on this line runs over")
    assert "(row longer than 2000 characters)" in first[2]


def test_read_limits_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive"):
        ReadLimits(max_field_bytes=0)
    with pytest.raises(ConfigError, match="below max_field_bytes"):
        ReadLimits(max_field_bytes=100, max_row_bytes=50)


def test_store_ingest_takes_read_limits(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type,note\nc1,2024-01-01,page_view," + "n" * 300
                    + "\nc2,2024-01-01,page_view,n\n")
    with EventStore(tmp_path / "s.duckdb") as es:
        report = es.ingest(path, identity_mapping(), taxonomy,
                           limits=ReadLimits(max_field_bytes=100, max_row_bytes=200))
    assert report.append.inserted == 1
    assert report.load.rejected == Counter({"row longer than 200 characters": 1})
