"""A snapshot of a store whose conversions carry no value (a Segment track export without
revenue) has null expected value and revenue at risk: segments, changes, persona means and the
customer drill-down answer null, not 0 (a marketer would read 0 as a real figure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from serving.marketing_schemas import CustomerScoreOut, SegmentOut
from serving.segments import SegmentBook
from serving.snapshots import Snapshot, write_snapshot

NAMES = ["browsers", "buyers", "unassigned"]


def snapshot(root: Path, valued: bool) -> Snapshot:
    n = 4
    value = [50.0, 80.0, 20.0, 10.0] if valued else [None] * n
    churn = [0.2, 0.7, 0.9, 0.5]
    table = pa.table({
        "customer_id": [f"c{i}" for i in range(n)],
        "stage": ["decision"] * n, "tier": ["low", "high", "high", "medium"],
        "churn": churn, "conversion": [0.1] * n, "next_stage": ["purchase"] * n,
        "next_stage_probability": [0.3] * n,
        "expected_value": pa.array(value, pa.float64()),
        "revenue_at_risk": pa.array([None if v is None else v * c
                                     for v, c in zip(value, churn, strict=True)], pa.float64()),
        "recency_days": [1.0] * n, "events": [3] * n,
        "top_action": pa.nulls(n, pa.string()), "top_action_value": pa.nulls(n, pa.float64()),
        "persona": pa.DictionaryArray.from_arrays(pa.array([0, 1, 1, 2], pa.int32()),
                                                  pa.array(NAMES)),
        "persona_id": pa.array([0, 1, 1, -1], pa.int32()),
    })
    meta = {"as_of": "2025-02-01T00:00:00Z", "models": {"journey-personas": "1"},
            "persona_names": NAMES}
    return write_snapshot(root, table, None, meta, keep=9)


def test_segments_and_their_change_are_null_without_values(tmp_path: Path) -> None:
    root = tmp_path / "scores"
    before = snapshot(root, valued=True)
    now = snapshot(root, valued=False)
    book = SegmentBook(now, ("tier", "persona"), previous=before)
    rows, total = book.segments(["tier"], {})
    assert [s.key["tier"] for s in rows] and all(np.isnan(s.revenue_at_risk) for s in rows)
    out = SegmentOut.model_validate(total, from_attributes=True)
    assert (out.expected_value, out.revenue_at_risk) == (None, None) and out.customers == 4
    assert out.change is not None and out.change.revenue_at_risk is None
    assert out.change.customers == 0
    _, page = book.page({}, "revenue_at_risk", 10, 0)
    scored = [CustomerScoreOut.model_validate(r) for r in page]  # was a 500: floats only
    assert [c.expected_value for c in scored] == [None] * 4
    assert book.personas is not None
    means = book.personas.means(book.table["churn"], book.table["expected_value"])
    assert means[1]["expected_value_mean"] is None and means[1]["churn_mean"] == 0.8


def test_a_store_with_values_keeps_its_sums(tmp_path: Path) -> None:
    book = SegmentBook(snapshot(tmp_path / "scores", valued=True), ("tier",))
    _, total = book.segments([], {})
    out = SegmentOut.model_validate(total, from_attributes=True)
    assert out.expected_value == 160.0 and out.revenue_at_risk == 10 + 56 + 18 + 5


def test_no_change_against_a_snapshot_that_knew_no_value(tmp_path: Path) -> None:
    """Values known now and not before: a change would be the whole revenue at risk, for the
    segments the previous snapshot had and the ones new since alike."""
    root = tmp_path / "scores"
    before = snapshot(root, valued=False)
    book = SegmentBook(snapshot(root, valued=True), ("tier",), previous=before)
    rows, total = book.segments(["tier"], {})
    for s in [*rows, total]:
        out = SegmentOut.model_validate(s, from_attributes=True)
        assert out.revenue_at_risk is not None and out.change is not None
        assert out.change.revenue_at_risk is None and out.change.customers == 0
