"""The attribution benchmark's own logic: the comparison arithmetic, and the ChannelAttribution
peer on a hand-solved example (skipped when benchmarks/.venv-peers is absent; this test does
not create it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.attribution import PEER_PYTHON, channel_attribution, compare, synthetic
from features.spec import load_spec
from models.attribution import Paths, markov_attribution

# The example of tests/models/test_attribution.py: removal effects a 0.5, b 0.6, c 0.5.
EXAMPLE = (["a > a > b", "b > c", "a > c > c", "c"], [1, 0, 1, 0], [0, 1, 1, 2])


def test_compare_reports_points_and_heuristics() -> None:
    result = markov_attribution(Paths.from_strings(*EXAMPLE))
    # A peer that gives b 0.85 of the 2 conversions instead of 0.75, and an extra channel.
    peer = {"channels": {
        "a": {"conversions": 0.625, "removal_effect": 0.5, "first_touch": 2.0, "last_touch": 0.0},
        "b": {"conversions": 0.85, "removal_effect": 0.6, "first_touch": 0.0, "last_touch": 1.0},
        "c": {"conversions": 0.525, "removal_effect": 0.5, "first_touch": 0.0, "last_touch": 1.0},
        "d": {"conversions": 0.0, "removal_effect": 0.0, "first_touch": 0.0, "last_touch": 0.0},
    }}
    got = compare(result, peer)
    assert got["shares"]["b"]["ours_pct"] == 37.5 and got["shares"]["b"]["ca_pct"] == 42.5
    assert got["max_share_diff_pp"] == 5.0  # b: -5, c: +5
    assert got["max_first_touch_diff_pp"] == 0 and got["max_last_touch_diff_pp"] == 0
    assert got["channels_only_in_ca"] == ["d"]


def test_synthetic_arrays_are_customer_sorted() -> None:
    ev = synthetic(500, 10.0, load_spec(), seed=3)
    assert ev.n_customers == 500 and len(ev) > 4000
    same = ev.cust[1:] == ev.cust[:-1]
    assert (ev.cust[1:] >= ev.cust[:-1]).all() and (ev.ts[1:][same] >= ev.ts[:-1][same]).all()


@pytest.mark.slow
def test_channel_attribution_agrees_on_the_hand_example(tmp_path: Path) -> None:
    if not PEER_PYTHON.exists():
        pytest.skip(f"peers venv absent ({PEER_PYTHON}); run bash benchmarks/peers/setup.sh")
    paths = Paths.from_strings(*EXAMPLE)
    peer = channel_attribution(paths, tmp_path, "example")
    assert peer["version"] == "2.2.5" and peer["distinct_paths"] == 4
    got = compare(markov_attribution(paths), peer)
    # Its simulation (>= 1e6 paths, fixed seed) lands within a fraction of a point.
    assert got["max_share_diff_pp"] < 0.5
    assert got["max_first_touch_diff_pp"] == 0 and got["max_last_touch_diff_pp"] == 0
    assert {k: round(v["removal_effect"], 2) for k, v in peer["channels"].items()} == {
        "a": 0.5, "b": 0.6, "c": 0.5}
