"""Detail files that cannot be joined stop the load with file, line and columns; rows with a
bad value or key are rejected with file, line and field, and the rest joins."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import JourneyError, MappingError, SourceError
from features.mapping import choose_mapping, load_mapping_file
from features.taxonomy import Taxonomy
from tests.features.details_cases import EVENTS, ORDERS, load_joined, write


def test_bad_values_are_rejected_with_file_line_and_field(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    orders = write(tmp_path / "o.csv",
                   "id,total_price\n"
                   "o1,abc\n"        # line 2
                   "o2,-5\n"         # line 3
                   "o3,1_000\n"      # line 4
                   "p1,inf\n"        # line 5
                   ",4\n"            # line 6: no key
                   "o9,\n"           # line 7: no value: nothing to join, not an error
                   "o8,2e13\n"       # line 8
                   " o4 , 7.25 \n")  # line 9: trimmed, as an event's fields are
    got = load_joined(tmp_path, taxonomy, events, details=[orders])
    assert [(int(r["line"]), r["field"], r["reason"], r["value"]) for r in got.rejects] == [
        (2, "total_price", "value is not a number", "abc"),
        (3, "total_price", "negative value", "-5"),
        (4, "total_price", "value is not a plain decimal number: ASCII digits, a point and an "
                           "exponent only (no _)", "1_000"),
        (5, "total_price", "value is not finite", "inf"),
        (6, "id", "missing key", ""),
        (8, "total_price", "value above 1,000,000,000,000", "2e13"),
    ]
    assert {r["source"] for r in got.rejects} == {str(orders)}
    assert all(row["value"] is None for row in got.rows.values())
    assert got.report.details is not None
    [counts] = got.report.details.files
    assert (counts.rows, sum(counts.rejected.values()), counts.joined) == (8, 6, 0)
    lines = got.report.lines()
    assert "  o.csv: 1 rows rejected: negative value" in lines
    assert lines[-1].startswith("rejected rows (file, line, field, reason, value): ")


def test_the_rest_of_a_file_with_rejects_joins(tmp_path: Path, taxonomy: Taxonomy) -> None:
    orders = write(tmp_path / "o.csv", ORDERS + "o3,-1,x\n")
    got = load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                      details=[orders])
    assert [got.value("o1"), got.value("o2"), got.value("o3")] == [69.73, 18.99, None]
    # A short row is the reader's reject: it names the line, and the rest still loads.
    assert [(int(r["line"]), r["source"]) for r in got.rejects] == [(4, str(orders))]


def test_a_key_on_two_rows_names_both_lines(tmp_path: Path, taxonomy: Taxonomy) -> None:
    orders = write(tmp_path / "o.csv", ORDERS + "o3,x,1,Canada\no1,x,2,Canada\n"
                                                "o3,x,-1,Canada\n")
    with pytest.raises(SourceError) as info:
        load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                    details=[orders])
    assert str(info.value) == (
        f"{orders}: line 5: key 'o1' (column 'id') is on line 2 too (1 more keys are "
        "repeated): a detail file has one row per event, and which row's values the event "
        "should get cannot be told; keep one row per key")
    assert not (tmp_path / "rejects.csv").exists()  # the load stored nothing: no rejects file


def test_a_file_without_the_key_column_names_its_columns(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    orders = write(tmp_path / "o.csv", "order,total_price\no1,3\n")
    with pytest.raises(MappingError) as info:
        load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                    details=[orders])
    assert str(info.value) == (
        f"{orders}: detail file has no key column 'id' (given at --details); the file has "
        "columns ['order', 'total_price']")


def test_a_file_without_a_value_column_names_what_was_tried(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    orders = write(tmp_path / "o.csv", "id,price\no1,3\n")
    with pytest.raises(MappingError) as info:
        load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                    details=[orders])
    message = str(info.value)
    assert message.startswith(f"{orders}: detail file has none of the columns (value: "
                              "['revenue', 'total', 'value', ")
    assert "'total_price']; channel: ['context_campaign_source'" in message
    assert message.endswith("the file has columns ['id', 'price']")


def test_a_column_the_mapping_names_must_be_there(tmp_path: Path, taxonomy: Taxonomy) -> None:
    write(tmp_path / "o.csv", ORDERS)
    mapping = write(tmp_path / "m.yaml",
                    "columns: {customer_id: user_id, ts: ts, event_type: event_type, "
                    "event_id: event_id}\nevent_types: {Order Completed: purchase}\n"
                    "details:\n  - file: o.csv\n    columns: {value: amount}\n")
    with pytest.raises(MappingError) as info:
        load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                    load_mapping_file(mapping))
    assert str(info.value) == (
        f"{tmp_path / 'o.csv'}: detail file names columns it does not have (value: "
        f"['amount']; given at {mapping}: line 4: details[0]); the file has columns "
        "['id', 'timestamp', 'total_price', 'shipping_country']")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("  - file: nope.csv\n", "line 2: details[0].file: no such file "),
        ("  - {file: o.csv, kee: id}\n", "line 2: details[0].kee: unknown key; a detail "
                                          "entry has ['file', 'key', 'columns', 'delimiter', "
                                          "'encoding']"),
        ("  - {file: o.csv, columns: {price: x}}\n",
         "line 2: details[0].columns.price: a detail file gives an event only ['value', "
         "'channel'], not 'price'"),
        ("  - {file: o.csv, columns: {value: [1]}}\n",
         "line 2: details[0].columns.value: expected a column name or a list of names"),
        ("  - {file: o.csv, key: ''}\n", "line 2: details[0].key: give the column holding"),
        ("  - o.csv\n  - ./o.csv\n", "line 3: details[1]: "),
        ("  - {file: o.txt.zip}\n", "line 2: details[0].file: "),
        ("  file: o.csv\n", "line 1: details: must be a list of detail files"),
    ],
)
def test_mapping_details_mistakes_name_their_line(tmp_path: Path, entry: str,
                                                  expected: str) -> None:
    write(tmp_path / "o.csv", ORDERS)
    write(tmp_path / "o.txt.zip", "")
    mapping = write(tmp_path / "m.yaml", "details:\n" + entry)
    with pytest.raises(MappingError) as info:
        load_mapping_file(mapping)
    assert str(info.value).startswith(f"{mapping}: {expected}"), str(info.value)


def test_cli_details_are_checked_before_any_load(tmp_path: Path) -> None:
    orders = write(tmp_path / "o.csv", ORDERS)
    with pytest.raises(SourceError, match=r"--details .*nope.csv: no such file"):
        choose_mapping(preset="segment", details=[tmp_path / "nope.csv"])
    with pytest.raises(SourceError, match="already joined"):
        choose_mapping(preset="segment", details=[orders, tmp_path / "." / "o.csv"])
    with pytest.raises(JourneyError, match="unknown file type"):
        choose_mapping(preset="segment", details=[write(tmp_path / "o.xlsx", "")])
    mapping = choose_mapping(map_option="customer_id=user_id", details=[orders])
    assert [d.path for d in mapping.details] == [orders]


def test_an_empty_detail_file_joins_nothing(tmp_path: Path, taxonomy: Taxonomy) -> None:
    for text in ("", "id,total_price\n"):
        orders = write(tmp_path / "o.csv", text)
        got = load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                          details=[orders])
        assert got.report.details is not None
        [counts] = got.report.details.files
        assert (counts.rows, counts.joined, counts.filled) == (0, 0, 0)


def test_typed_parquet_values_follow_the_same_rules(tmp_path: Path, taxonomy: Taxonomy) -> None:
    orders = tmp_path / "o.parquet"
    pq.write_table(pa.table({"id": ["o1", "o2", "o3"], "total_price": [-1.0, float("nan"), 4]}),
                   orders)
    got = load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                      details=[orders])
    assert [(int(r["line"]), r["field"], r["reason"]) for r in got.rejects] == [
        (1, "total_price", "negative value"), (2, "total_price", "value is not finite")]
    assert [got.value("o1"), got.value("o2"), got.value("o3")] == [None, None, 4.0]


def test_a_json_key_that_is_not_text_is_rejected(tmp_path: Path, taxonomy: Taxonomy) -> None:
    orders = write(tmp_path / "o.jsonl", '{"id": {"order": 1}, "total_price": 3}\n'
                                         '{"id": "o1", "total_price": 4}\n')
    got = load_joined(tmp_path, taxonomy, write(tmp_path / "events.csv", EVENTS),
                      details=[orders])
    assert [(int(r["line"]), r["field"], r["reason"]) for r in got.rejects] == [
        (1, "id", "id is a JSON object, not text or a whole number")]
    assert got.value("o1") == 4.0
