"""The compiled passes of the journey map and KPIs (``models.journey_kernels``) give what the
NumPy forms they replaced gave, on random event arrays grouped by customer and in time order
(ties, empty customers, events outside the periods, no events at all)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from models.attribution import Paths, code_counts
from models.journey_kernels import (
    NEVER,
    NEVER_BEFORE,
    activity_runs,
    edge_ts,
    first_by_stage,
    last_activity,
    path_events,
    path_transitions,
    period_runs,
)

I64 = npt.NDArray[np.int64]


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    rows = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 40),
                                   st.integers(-1, 3), st.booleans(), st.booleans()),
                         max_size=60))
    rows.sort(key=lambda r: (r[0], r[1]))  # grouped by customer, in time order (ties kept)
    def col(k: int, dtype: Any) -> npt.NDArray[Any]:
        return np.array([r[k] for r in rows], dtype)

    return {"n": n, "cust": col(0, np.int32), "ts": col(1, np.int64), "stage": col(2, np.int8),
            "a": col(3, bool), "b": col(4, bool)}


def _edge(cust: npt.NDArray[np.int32], ts: I64, mask: npt.NDArray[np.bool_], n: int,
          last: bool) -> I64:
    out = np.full(n, NEVER, np.int64)
    for i in np.flatnonzero(mask):
        if last or out[cust[i]] == NEVER:
            out[cust[i]] = ts[i]
    return out


@settings(max_examples=200, deadline=None)
@given(events(), st.booleans())
def test_edge_and_stage_firsts(e: dict[str, Any], last: bool) -> None:
    got = edge_ts(e["cust"], e["ts"], e["a"], e["n"], last)
    assert np.array_equal(got, _edge(e["cust"], e["ts"], e["a"], e["n"], last))
    firsts = first_by_stage(e["cust"], e["ts"], e["stage"], e["n"], 4)
    for s in range(4):
        assert np.array_equal(firsts[:, s],
                              _edge(e["cust"], e["ts"], e["stage"] == s, e["n"], False))


@settings(max_examples=200, deadline=None)
@given(events(), st.lists(st.integers(0, 45), max_size=5, unique=True), st.integers(0, 12))
def test_last_activity_is_the_last_one_in_each_slot(e: dict[str, Any], at: list[int],
                                                    span: int) -> None:
    times = np.array(sorted(at), np.int64)
    got = last_activity(e["cust"], e["ts"], e["a"], times, span, e["n"])
    want = np.full((e["n"], len(times)), NEVER_BEFORE, np.int64)
    if len(times):
        for i in np.flatnonzero(e["a"] & (e["ts"] >= times[0] - span)):
            j = int(np.searchsorted(times, e["ts"][i], side="right"))
            if j < len(times):
                want[e["cust"][i], j] = max(want[e["cust"][i], j], e["ts"][i])
    assert np.array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(events(), st.integers(0, 12))
def test_activity_runs_split_at_customers_and_gaps(e: dict[str, Any], span: int) -> None:
    who, first, last = activity_runs(e["cust"], e["ts"], e["a"], span)
    ts, cust = e["ts"][e["a"]], e["cust"][e["a"]]
    new = np.ones(len(ts), bool)
    new[1:] = (cust[1:] != cust[:-1]) | (ts[1:] - ts[:-1] > span)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, len(ts) - 1)[:len(starts)]
    assert np.array_equal(who, cust[starts])
    assert np.array_equal(first, ts[starts])
    assert np.array_equal(last, ts[ends])


@settings(max_examples=200, deadline=None)
@given(events(), st.lists(st.integers(-2, 45), min_size=2, max_size=5, unique=True))
def test_period_runs_are_the_customer_period_cells(e: dict[str, Any], bounds: list[int]
                                                   ) -> None:
    edges = np.array(sorted(bounds), np.int64)
    start, who, period, furthest = period_runs(e["cust"], e["ts"], e["stage"], edges[1:-1],
                                               int(edges[0]), int(edges[-1]))
    sel = np.flatnonzero((e["ts"] >= edges[0]) & (e["ts"] < edges[-1]))
    p = np.searchsorted(edges[1:-1], e["ts"][sel], side="right")
    key = e["cust"][sel].astype(np.int64) * len(edges) + p
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else \
        np.zeros(0, np.int64)
    assert np.array_equal(start, sel[first])
    assert np.array_equal(who, e["cust"][sel][first])
    assert np.array_equal(period, p[first])
    want = np.maximum.reduceat(e["stage"][sel], first) if len(first) else np.zeros(0)
    assert np.array_equal(furthest, want)


@settings(max_examples=200, deadline=None)
@given(events(), st.integers(-1, 40))
def test_path_events_stop_at_the_first_conversion_in_the_window(e: dict[str, Any],
                                                                lo: int) -> None:
    conversion, touch = e["a"], e["b"]
    keep, length, converted = path_events(e["cust"], e["ts"], conversion, touch, lo, e["n"])
    window = e["ts"] >= lo
    stop = np.full(e["n"], len(e["ts"]))
    for i in np.flatnonzero(window & conversion)[::-1]:
        stop[e["cust"][i]] = i  # the first one wins
    want = window & touch & (np.arange(len(e["ts"])) < stop[e["cust"]])
    assert np.array_equal(keep, want)
    assert np.array_equal(length, np.bincount(e["cust"][want], minlength=e["n"]))
    assert np.array_equal(converted, stop < len(e["ts"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=6), max_size=8),
       st.data())
def test_path_transitions_count_like_the_numpy_form(paths: list[list[int]],
                                                    data: st.DataObject) -> None:
    k = len(paths)
    conv = np.array(data.draw(st.lists(st.floats(0, 5), min_size=k, max_size=k)), np.float64)
    null = np.array(data.draw(st.lists(st.floats(0, 5), min_size=k, max_size=k)), np.float64)
    codes = np.array([c for p in paths for c in p], np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in paths])]).astype(np.int64)
    size = 4 + 3
    want = np.zeros((size, size))
    for p, w_conv, w_null in zip(paths, conv, null, strict=True):
        state = [0, *(c + 1 for c in p)]
        for a, b in pairwise(state):
            want[a, b] += w_conv + w_null
        want[state[-1], size - 2] += w_conv
        want[state[-1], size - 1] += w_null
    got = path_transitions(codes, offsets, conv, null, size).reshape(size, size)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.array_equal(code_counts(codes, 4), np.bincount(codes, minlength=4))


def test_collapsed_offsets_count_the_kept_touchpoints() -> None:
    paths = Paths.from_strings(["a > a > b", "b", "b > b", "c > a > a > c"], [1, 0, 1, 0],
                               [0, 1, 0, 1]).collapsed()
    assert [[paths.labels[c] for c in paths.codes[a:b]]
            for a, b in zip(paths.offsets[:-1], paths.offsets[1:], strict=True)] == \
        [["a", "b"], ["b"], ["b"], ["c", "a", "c"]]
