"""Segments of a hand-built snapshot: the cube's sums, filters, changes against the previous
snapshot, top actions, drill-down order and the CSV export."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pyarrow as pa
import pytest

from serving.segments import BOM, SegmentBook, SegmentQueryError
from serving.snapshots import Snapshot, latest, previous_of, write_snapshot

DIMS = ("tier", "stage", "region")
# customer_id, tier, stage, region, churn, expected_value, top_action
Row = tuple[str, str, str | None, str | None, float, float, str | None]


def table(rows: list[Row]) -> pa.Table:
    ids, tiers, stages, regions, churn, value, actions = zip(*rows, strict=True)
    return pa.table({
        "customer_id": list(ids),
        "tier": pa.array(tiers).dictionary_encode(),
        "stage": pa.array(stages, pa.string()).dictionary_encode(),
        "region": pa.array(regions, pa.string()).dictionary_encode(),
        "churn": list(churn), "conversion": [0.1] * len(ids),
        "expected_value": list(value),
        "revenue_at_risk": [c * v for c, v in zip(churn, value, strict=True)],
        "recency_days": [float(i) for i in range(len(ids))],
        "top_action": pa.array(actions, pa.string()),
    })


NOW: list[Row] = [
    ("a", "high", "decision", "north", 0.9, 100.0, "discount_email"),
    ("b", "high", "decision", "south", 0.7, 50.0, "discount_email"),
    ("c", "high", "awareness", "north", 0.8, 10.0, None),
    ("d", "low", "decision", "north", 0.1, 1000.0, "loyalty_offer"),
    ("e", "low", None, None, 0.2, 0.0, None),
]
BEFORE: list[Row] = [
    ("a", "low", "decision", "north", 0.2, 100.0, None),
    ("b", "high", "decision", "south", 0.65, 40.0, None),
]


@pytest.fixture
def book(tmp_path: Path) -> SegmentBook:
    write_snapshot(tmp_path, table(BEFORE), None, {"as_of": "2025-01-01T00:00:00Z"}, keep=5)
    snap = write_snapshot(tmp_path, table(NOW), {"funnel": []},
                          {"as_of": "2025-02-01T00:00:00Z"}, keep=5)
    return SegmentBook(snap, DIMS, previous_of(tmp_path, snap))


def test_segments_sum_the_customers_of_each_cut(book: SegmentBook) -> None:
    rows, total = book.segments(["tier"], {})
    high = next(s for s in rows if s.key == {"tier": "high"})
    assert high.customers == 3 and high.share == pytest.approx(0.6)
    assert high.mean_risk == pytest.approx((0.9 + 0.7 + 0.8) / 3)
    assert high.revenue_at_risk == pytest.approx(90 + 35 + 8)
    assert high.expected_value == pytest.approx(160)
    assert high.top_action == "discount_email" and high.top_action_share == pytest.approx(2 / 3)
    assert total.customers == 5 and total.revenue_at_risk == pytest.approx(133 + 100 + 0)
    assert [s.key["tier"] for s in rows] == ["high", "low"]  # most revenue at risk first


def test_missing_values_form_their_own_segment(book: SegmentBook) -> None:
    rows, _ = book.segments(["stage", "region"], {"tier": ["low"]})
    keys = {(s.key["stage"], s.key["region"]) for s in rows}
    assert keys == {("decision", "north"), ("(none)", "(none)")}
    none = next(s for s in rows if s.key["stage"] == "(none)")
    assert none.top_action is None and none.top_action_share == 0


def test_changes_are_against_the_previous_snapshot(book: SegmentBook) -> None:
    rows, total = book.segments(["tier"], {})
    high = next(s for s in rows if s.key == {"tier": "high"})
    assert high.change == pytest.approx({"customers": 2, "mean_risk": 0.8 - 0.65,
                                         "revenue_at_risk": 133 - 26})
    low = next(s for s in rows if s.key == {"tier": "low"})
    assert low.change is not None and low.change["customers"] == 1
    assert total.change is not None and total.change["customers"] == 3


def test_filters_combine_across_dimensions(book: SegmentBook) -> None:
    rows, total = book.segments(["region"], {"tier": ["high"], "stage": ["decision"]})
    assert total.customers == 2 and {s.key["region"] for s in rows} == {"north", "south"}
    _, both = book.segments([], {"region": ["north", "south"]})
    assert both.customers == 4


def test_drill_down_sorts_and_pages(book: SegmentBook) -> None:
    n, rows = book.page({"tier": ["high"]}, "revenue_at_risk", 2, 0)
    assert n == 3 and [r["customer_id"] for r in rows] == ["a", "b"]
    _, rest = book.page({"tier": ["high"]}, "revenue_at_risk", 2, 2)
    assert [r["customer_id"] for r in rest] == ["c"]
    _, by_churn = book.page({}, "churn", 5, 0)
    assert [r["customer_id"] for r in by_churn] == ["a", "c", "b", "e", "d"]


def test_export_writes_the_matching_customers_in_blocks(book: SegmentBook) -> None:
    data = b"".join(book.csv({"region": ["north"]}, block=1))
    assert data.startswith(BOM) and data.count(BOM) == 1  # Excel reads it as UTF-8
    text = data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["customer_id"] for r in rows] == ["d", "a", "c"]  # 100, 90, 8 at risk
    assert rows[1]["tier"] == "high" and rows[1]["stage"] == "decision"
    assert text.count("customer_id") == 1  # one header for all blocks
    assert {r["as_of"] for r in rows} == {"2025-02-01"}  # the snapshot's as-of date


def test_export_rounds_probabilities_money_and_days(tmp_path: Path) -> None:
    t = table([("x", "high", "decision", "north", 0.123456789, 1234.56789, "a")])
    t = t.set_column(t.column_names.index("recency_days"), "recency_days",
                     pa.array([12.3456]))
    t = t.set_column(t.column_names.index("conversion"), "conversion", pa.array([float("nan")]))
    snap = write_snapshot(tmp_path, t, None, {"as_of": "2025-03-04T05:06:07Z"}, keep=2)
    text = b"".join(SegmentBook(snap, DIMS).csv({})).decode("utf-8-sig")
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["churn"] == "0.1235" and row["expected_value"] == "1234.57"
    assert row["revenue_at_risk"] == "152.42" and row["recency_days"] == "12.3"
    assert row["conversion"] == ""  # NaN: an empty cell, not "nan"
    assert row["as_of"] == "2025-03-04" and row["customer_id"] == "x"


def test_export_keeps_formulas_as_text(tmp_path: Path) -> None:
    """Ids, attributes and persona names come from ingested data or a marketer: a spreadsheet
    must not run them. Any text starting with = + - @ tab or return is prefixed (OWASP), a
    minus before a digit too (-2+3+cmd|... runs in Excel); numbers stay numbers."""
    ids = ['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-2", "-x", "-", "plain", "\tA",
           "-2+3+cmd|' /C calc'!A0", "-1+1", "\r=1", "-.5"]
    t = table([(c, "high", "decision", "north", 0.5, -1.25, None) for c in ids])
    t = t.set_column(t.column_names.index("region"), "region",
                     pa.array(["=1+1"] * len(ids)).dictionary_encode())
    snap = write_snapshot(tmp_path, t, None, {"as_of": "2025-03-04T05:06:07Z"}, keep=2)
    text = b"".join(SegmentBook(snap, DIMS).csv({}, "churn")).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["customer_id"] for r in rows] == [
        """'=HYPERLINK("http://x","y")""", "'+1", "'@SUM(A1)", "'-2", "'-x", "'-", "plain",
        "'\tA", "'-2+3+cmd|' /C calc'!A0", "'-1+1", "'\r=1", "'-.5"]
    assert {r["region"] for r in rows} == {"'=1+1"}
    # Number columns hold numbers, a negative one unprefixed (a spreadsheet reads -1.25).
    assert {r["expected_value"] for r in rows} == {"-1.25"}
    assert {r["revenue_at_risk"] for r in rows} == {"-0.62"}


def test_export_writes_missing_text_as_none_and_missing_numbers_empty(
        book: SegmentBook) -> None:
    """The filters call a customer without a stage or region "(none)": so does the export (a
    pivot table groups them under it); a missing number stays an empty cell."""
    text = b"".join(book.csv({"tier": ["low"]})).decode("utf-8-sig")
    e = next(r for r in csv.DictReader(io.StringIO(text)) if r["customer_id"] == "e")
    assert e["stage"] == e["region"] == e["top_action"] == "(none)"
    assert e["stage"] in book.present["stage"]  # the value a filter offers
    t = table([("x", "high", "decision", "north", float("nan"), 1.0, "a")])
    snap = write_snapshot(book.snapshot.path.parent, t, None, {"as_of": "2025-03-04"}, keep=9)
    (row,) = csv.DictReader(io.StringIO(b"".join(SegmentBook(snap, DIMS).csv({}))
                                        .decode("utf-8-sig")))
    assert row["churn"] == "" and row["revenue_at_risk"] == ""


def test_filter_values_ignore_case_when_unambiguous(book: SegmentBook) -> None:
    """The dashboard shows tiers capitalised: tier=High is high."""
    _, total = book.segments(["stage"], {"tier": ["High"], "region": ["NORTH"]})
    _, exact = book.segments(["stage"], {"tier": ["high"], "region": ["north"]})
    assert total.customers == exact.customers == 2
    assert book.canonical({"tier": ["HIGH", "high"], "stage": ["Decision"]}) == {
        "tier": ["high"], "stage": ["decision"]}
    n, _ = book.page({"tier": ["Low"]}, "churn", 10, 0)
    assert n == 2


def test_an_unknown_value_lists_only_values_someone_has(book: SegmentBook) -> None:
    with pytest.raises(SegmentQueryError) as err:
        book.segments(["stage"], {"tier": ["extreme"]})
    assert str(err.value).endswith("values: high, low")  # no "(none)": everyone has a tier
    assert err.value.field == "tier"
    with pytest.raises(SegmentQueryError, match="values: decision, awareness, \\(none\\)"):
        book.rows({"stage": ["purchase"]})


def test_values_differing_only_by_case_must_be_written_exactly(tmp_path: Path) -> None:
    rows: list[Row] = [("a", "high", "decision", "North", 0.5, 1.0, None),
                       ("b", "high", "decision", "north", 0.5, 1.0, None)]
    book = SegmentBook(write_snapshot(tmp_path, table(rows), None, {"as_of": "x"}, 2), DIMS)
    assert book.segments([], {"region": ["North"]})[1].customers == 1
    with pytest.raises(SegmentQueryError, match="differ only by case") as err:
        book.segments([], {"region": ["NORTH"]})
    assert err.value.field == "region"


def test_an_empty_selection_has_no_mean_risk(book: SegmentBook) -> None:
    from serving.marketing_routes import segment_out

    rows, total = book.segments(["tier"], {"tier": ["low"], "region": ["south"]})
    assert rows == [] and total.customers == 0 and math.isnan(total.mean_risk)
    out = segment_out(total)
    assert out.mean_risk is None and out.change is not None and out.change.mean_risk is None
    # A segment new since the previous snapshot has no change of mean risk either.
    (north,) = book.segments(["region"], {"tier": ["high"], "stage": ["awareness"]})[0]
    assert north.change is not None and math.isnan(north.change["mean_risk"])


def test_filter_values_are_those_some_customer_has(book: SegmentBook) -> None:
    assert "(none)" in book.dims["tier"].values  # every dimension's vocabulary has it
    assert book.present["tier"] == ["high", "low"]  # nobody lacks a tier
    assert book.present["stage"] == ["decision", "awareness", "(none)"]  # customer e has none
    assert set(book.present["region"]) == {"north", "south", "(none)"}


def test_export_file_name_says_the_as_of_date() -> None:
    from serving.marketing_routes import export_filename

    assert export_filename("2025-02-01", {"tier": ["high"], "region": ["東", "a/b"]}) == \
        "segment-2025-02-01-region=_+a_b-tier=high.csv"
    assert export_filename("2025-02-01", {}) == "segment-2025-02-01-all.csv"


@pytest.mark.parametrize(("by", "filters", "field"), [
    (["colour"], {}, "by[0]"),
    (["tier", "tier"], {}, "by"),
    (["tier"], {"planet": ["mars"]}, "planet"),
    (["tier"], {"region": ["atlantis"]}, "region"),
])
def test_bad_queries_name_the_field(book: SegmentBook, by: list[str],
                                    filters: dict[str, list[str]], field: str) -> None:
    with pytest.raises(SegmentQueryError) as err:
        book.segments(by, filters)
    assert err.value.field == field


def test_latest_points_at_the_newest_and_old_ones_are_pruned(tmp_path: Path) -> None:
    made: list[Snapshot] = [write_snapshot(tmp_path, table(NOW), None, {"as_of": str(i)}, 2)
                            for i in range(4)]
    newest = latest(tmp_path)
    assert newest is not None and newest.id == made[-1].id
    kept = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert kept == [made[2].id, made[3].id]
    prev = previous_of(tmp_path, newest)
    assert prev is not None and prev.id == made[2].id
    assert previous_of(tmp_path, made[2]) is None  # its previous one was pruned


def test_a_damaged_snapshot_is_reported_not_fatal(tmp_path: Path) -> None:
    from features.spec import load_spec
    from features.taxonomy import load_taxonomy
    from models.actions import load_catalog
    from serving.errors import NoSnapshotError
    from serving.marketing import Marketing
    from serving.settings import ServeSettings

    snap = write_snapshot(tmp_path, table(NOW), None, {"as_of": "x"}, 3)
    (snap.path / "customers.parquet").write_bytes(b"PAR1 not really")
    spec = load_spec(None, load_taxonomy(None))
    marketing = Marketing(ServeSettings(home=tmp_path, scores=tmp_path), spec, load_catalog())
    marketing.preload()  # logs, does not raise: the service still starts
    with pytest.raises(NoSnapshotError, match="cannot be read"):
        marketing.book()


def test_query_filters_split_on_commas_unless_the_value_has_one() -> None:
    from serving.errors import BadRequestError
    from serving.marketing import parse_query

    known = {"region": ("north", "south", "Paris, France")}
    params = [("by", "tier"), ("region", "north,south"), ("region", "Paris, France")]
    assert parse_query(params, DIMS, ("by",), known) == {
        "region": ["north", "south", "Paris, France"]}
    with pytest.raises(BadRequestError) as err:
        parse_query([("planet", "mars")], DIMS, ("by",), known)
    assert err.value.field == "planet"
    with pytest.raises(BadRequestError) as err:
        parse_query([("tier", " , ")], DIMS, (), known)
    assert err.value.field == "tier"
