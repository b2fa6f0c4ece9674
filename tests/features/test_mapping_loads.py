"""Mappings end to end: what --map leaves out, columns a mapping names that the file lacks,
renamed event types the taxonomy lacks, and timestamp formats spelled in other cases."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.errors import MappingError
from features.mapping import load_mapping_file, parse_map_option

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import utc

MAP1 = ("event_id,visitor,ts,event_type,channel,value\n"
        "m1,v1,2024-01-01T10:00:00Z,purchase,email,99.5\n"
        "m2,v1,2024-01-02T10:00:00Z,page_view,email,\n")
M2 = "cid,when,what,amt\nx1,20240101,purchase,5\nx2,2024-01-02 10:00,purchase,6\n"


def test_map_keeps_the_files_canonical_columns(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "map1.csv"
    path.write_text(MAP1, encoding="utf-8")
    for option in ("customer_id=visitor,ts=ts,event_type=event_type", "customer_id=visitor"):
        rows = load(path, parse_map_option(option)).rows
        assert [(r["event_id"], r["customer_id"], r["channel"], r["value"]) for r in rows] == [
            ("m1", "v1", "email", 99.5), ("m2", "v1", "email", None)]


def test_a_named_column_the_file_lacks_fails_the_load(tmp_path: Path, load: LoadFn) -> None:
    path, mapping = tmp_path / "m2.csv", tmp_path / "map.yaml"
    path.write_text(M2, encoding="utf-8")
    mapping.write_text("columns: {customer_id: cid, ts: when, event_type: what, "
                       "value: amount_usd}\nts_format: [ISO8601, '%Y%m%d']\n", encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load(path, load_mapping_file(mapping))
    assert str(info.value) == (
        f"{path}: mapping {mapping} names columns the file does not have (columns.value: "
        "'amount_usd'); the file has columns ['cid', 'when', 'what', 'amt']")


def test_lower_case_iso8601_reads_iso_text(tmp_path: Path, load: LoadFn) -> None:
    path, mapping = tmp_path / "m2.csv", tmp_path / "map.yaml"
    path.write_text(M2, encoding="utf-8")
    mapping.write_text("columns: {customer_id: cid, ts: when, event_type: what, value: amt}\n"
                       "ts_format: [iso8601, '%Y%m%d']\n", encoding="utf-8")
    got = load(path, load_mapping_file(mapping))
    assert got.column("ts") == [utc(2024, 1, 1), utc(2024, 1, 2, 10)]


def test_a_renamed_type_the_taxonomy_lacks_names_both(tmp_path: Path, load: LoadFn) -> None:
    path, mapping = tmp_path / "m2.csv", tmp_path / "map.yaml"
    path.write_text(M2 + "x3,2024-01-03,Webinar,0\n", encoding="utf-8")
    mapping.write_text("columns: {customer_id: cid, ts: when, event_type: what, value: amt}\n"
                       "event_types: {purchase: buy}\nts_format: [ISO8601, '%Y%m%d']\n")
    report = "\n".join(load(path, load_mapping_file(mapping)).report.lines())
    assert ("unknown event types: 'purchase' (2; mapped to 'buy', which is not in the "
            "taxonomy), 'Webinar' (1)") in " ".join(report.split())
    assert "map them to types the taxonomy has in the mapping's event_types" in " ".join(
        report.split())
