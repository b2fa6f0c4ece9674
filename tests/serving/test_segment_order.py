"""A drill-down's order (kept per snapshot and sort, then filtered) is what sorting the matching
customers would give: by the sort column, ties in customer order, missing values last, in both
directions and under any filter, and the same when asked again."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pyarrow as pa
import pytest

from serving.segment_cube import NONE
from serving.segments import SORTABLE, SegmentBook
from serving.snapshots import write_snapshot

DIMS = ("tier", "stage")


def _book(tmp_path: Path, n: int, seed: int) -> SegmentBook:
    rng = random.Random(seed)

    def column() -> list[float | None]:  # few distinct values: many ties; some missing
        return [None if rng.random() < 0.15 else float(rng.randrange(6)) for _ in range(n)]

    data = {"customer_id": [f"c{i:03d}" for i in range(n)],
            "tier": pa.array([rng.choice(["high", "low", "medium"]) for _ in range(n)])
            .dictionary_encode(),
            "stage": pa.array([rng.choice(["decision", "awareness", None]) for _ in range(n)],
                              pa.string()).dictionary_encode(),
            **{name: pa.array(column(), pa.float64()) for name in SORTABLE},
            "top_action": pa.array([None] * n, pa.string())}
    snap = write_snapshot(tmp_path, pa.table(data), {"funnel": []},
                          {"as_of": "2025-02-01T00:00:00Z"}, keep=5)
    return SegmentBook(snap, DIMS)


def _naive(book: SegmentBook, filters: dict[str, list[str]], sort: str,
           descending: bool) -> list[int]:
    rows = book.table.select(["tier", "stage", sort]).to_pylist()
    keep = [i for i, r in enumerate(rows)
            if all((r[d] if r[d] is not None else NONE) in v for d, v in filters.items())]

    def key(i: int) -> float:
        v = rows[i][sort]
        v = -math.inf if v is None else v
        return -v if descending else v

    return sorted(keep, key=key)  # stable: ties stay in customer order


@pytest.mark.parametrize("seed", range(3))
def test_rows_are_the_matching_customers_sorted(tmp_path: Path, seed: int) -> None:
    book = _book(tmp_path, 300, seed)
    for filters in ({}, {"tier": ["high"]}, {"tier": ["low", "medium"], "stage": ["decision"]},
                    {"stage": [NONE]}):
        for sort in SORTABLE:
            for descending in (True, False):
                want = _naive(book, filters, sort, descending)
                for _ in range(2):  # the kept order is not changed by a filtered read
                    assert book.rows(filters, sort, descending).tolist() == want, \
                        (filters, sort, descending)


def test_warm_sorts_the_default_order_ahead(tmp_path: Path) -> None:
    book = _book(tmp_path, 200, 7)
    assert book.warm() is book
    assert list(book._orders) == [(SORTABLE[0], True)]  # the routes' default, largest first
    assert book.rows({}).tolist() == _naive(book, {}, SORTABLE[0], True)
    assert list(book._orders) == [(SORTABLE[0], True)]  # the page reused it
