"""Expected value and revenue at risk of a store whose conversions carry no value (a Segment
track export without revenue): null for every customer, never a 0 that reads as a real
figure; one valued conversion and scoring values customers as before. Segments, drill-down
order and the CSV export of such a snapshot."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from features.spec import DAY_US
from serving.scoring import BatchScorer, order_mean
from serving.segment_config import load_segment_config
from serving.segments import SegmentBook
from serving.snapshots import write_snapshot
from tests.models.test_journey_map import AS_OF, EVENTS, SPEC, arrays
from tests.serving.constant_models import constant_models, population

BEFORE = [e for e in EVENTS if e[1] * DAY_US < AS_OF]  # scoring sees only the past
WHEN = datetime.fromtimestamp(AS_OF / 1e6, UTC)
PURCHASE = SPEC.event_types.index("purchase")


def scored(values: dict[int, float] | None = None) -> pa.Table:
    scorer = BatchScorer(SPEC, load_segment_config(None, SPEC), (0.3, 0.6))
    return scorer.score(constant_models(SPEC), population(BEFORE, values), WHEN)


def purchases() -> list[int]:
    return np.flatnonzero(arrays(BEFORE).etype == PURCHASE).tolist()


def test_no_conversion_value_leaves_every_value_null() -> None:
    table = scored()
    assert table.num_rows == 7
    for name in ("expected_value", "revenue_at_risk"):
        assert table[name].null_count == table.num_rows, name
    assert table["churn"].null_count == 0  # the probabilities are known all the same


def test_one_valued_conversion_values_every_customer() -> None:
    table = scored({purchases()[0]: 40.0})
    value = np.asarray(table["expected_value"].to_numpy())
    assert table["expected_value"].null_count == 0 and (value > 0).all()
    # A customer without orders: conversion probability (1/2 here) x the mean order, 40.
    c3 = table["customer_id"].to_pylist().index("c3")
    assert value[c3] == pytest.approx(0.5 * 40.0)
    assert table["revenue_at_risk"].to_pylist()[c3] == pytest.approx(0.5 * 0.5 * 40.0)


def test_order_mean_looks_for_values_on_conversions() -> None:
    ev = arrays(BEFORE)
    assert order_mean(ev, SPEC) is None
    ev.value[:] = np.where(ev.etype == PURCHASE, np.nan, 25.0)  # a value on views only
    assert order_mean(ev, SPEC) is None
    ev.value[purchases()] = [10.0, 0.0, 30.0]
    assert order_mean(ev, SPEC) == pytest.approx((10 + 30 + 25 * (len(ev.value) - 3)) /
                                                 (len(ev.value) - 1))
    ev.value[:] = np.where(ev.etype == PURCHASE, 0.0, np.nan)  # free orders: a known 0
    assert order_mean(ev, SPEC) == 0.0


@pytest.fixture
def book(tmp_path: Path) -> SegmentBook:
    table = scored()
    snap = write_snapshot(tmp_path, table, None, {"as_of": "1970-04-11T00:00:00Z"}, keep=5)
    return SegmentBook(snap, ("tier", "stage"))


def test_a_valueless_snapshot_sorts_and_exports(book: SegmentBook) -> None:
    """Sorting by revenue at risk with every one null keeps the customers' order; the CSV
    leaves the money cells empty."""
    assert book.rows({}, "revenue_at_risk").tolist() == list(range(7))
    assert book.rows({}, "expected_value", descending=False).tolist() == list(range(7))
    text = b"".join(book.csv({})).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 7
    assert all(r["expected_value"] == "" and r["revenue_at_risk"] == "" for r in rows)
    rows_, total = book.segments(["tier"], {})  # sums over nulls answer, not crash
    assert total.customers == 7 and rows_
