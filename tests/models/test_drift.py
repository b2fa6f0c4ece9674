from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone

from features.errors import ConfigError
from models.drift import (
    MISSING,
    OTHER,
    DriftProfile,
    DriftSettings,
    chi2_pvalue,
    compare,
    ks_pvalue,
    load_drift_settings,
    psi,
    score_columns,
)

SETTINGS = DriftSettings(min_samples=50)


def _numeric_live() -> pd.Series:
    # 50 in the first quartile bin, 20 in the second and third, 10 in the last.
    return pd.Series([0.0] * 50 + [30.0] * 20 + [60.0] * 20 + [90.0] * 10)


def test_numeric_psi_matches_the_hand_computation() -> None:
    profile = DriftProfile(bins=4).fit(pd.DataFrame({"x": np.arange(100.0)}))
    np.testing.assert_allclose(profile.edges_["x"], [24.75, 49.5, 74.25])
    np.testing.assert_allclose(profile.freqs_["x"], [0.25, 0.25, 0.25, 0.25, 0.0])
    report = compare(profile, pd.DataFrame({"x": _numeric_live()}), SETTINGS)
    # 0.25 ln 2 + 2 (0.05 ln 1.25) + 0.15 ln 2.5; the empty missing bin adds nothing.
    expected = 0.25 * math.log(2) + 2 * 0.05 * math.log(1.25) + 0.15 * math.log(2.5)
    (row,) = report.rows
    assert row.psi == pytest.approx(expected, abs=1e-9) and expected == pytest.approx(0.33304, 1e-4)
    assert row.live == [0.5, 0.2, 0.2, 0.1, 0.0]
    assert row.bins[0] == "[-inf, 24.75)" and row.bins[-1] == MISSING
    assert row.test == "ks" and row.status == "alarm" and report.alarm


def test_categorical_psi_with_other_and_missing_matches_the_hand_computation() -> None:
    reference = pd.DataFrame({"c": ["a"] * 40 + ["b"] * 30 + [None] * 10 + ["c"] * 10 + ["d"] * 10})
    profile = DriftProfile(max_levels=2).fit(reference)
    assert profile.levels_["c"] == ["a", "b"]
    np.testing.assert_allclose(profile.freqs_["c"], [0.4, 0.3, 0.2, 0.1])
    live = pd.DataFrame({"c": ["a"] * 30 + ["b"] * 30 + ["z"] * 20 + [None] * 20})
    (row,) = compare(profile, live, SETTINGS).rows
    expected = 0.1 * math.log(4 / 3) + 0.1 * math.log(2)
    assert row.psi == pytest.approx(expected, abs=1e-9)
    assert row.bins == ["a", "b", OTHER, MISSING] and row.test == "chi2"


def test_missing_values_have_their_own_bin_and_outer_bins_are_open() -> None:
    profile = DriftProfile(bins=2).fit(pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan]}))
    assert profile.freqs_["x"][-1] == pytest.approx(0.25)
    counts = profile.counts("x", np.array([-1e9, 1e9, np.nan, np.nan]))
    assert counts.tolist() == [1.0, 1.0, 2.0]


def test_psi_floors_empty_bins_instead_of_going_infinite() -> None:
    value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.25, 0.25]))
    assert np.isfinite(value) and value > 0.25


def test_ks_statistic_and_p_value_agree_with_scipy() -> None:
    rng = np.random.default_rng(0)
    ref, live = rng.normal(size=800), rng.normal(0.15, 1, size=600)
    profile = DriftProfile(sample_size=800).fit(pd.DataFrame({"x": ref}))
    d, p = ks_pvalue(profile.quantiles_["x"], profile.n_, live)
    expected = stats.ks_2samp(ref, live, method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    # The limit law, where scipy uses the finite-n one: close at these sizes.
    assert p == pytest.approx(expected.pvalue, rel=0.1)


def test_chi2_agrees_with_scipy() -> None:
    freqs, observed = np.array([0.5, 0.3, 0.2]), np.array([40.0, 35.0, 25.0])
    statistic, p = chi2_pvalue(freqs, observed)
    expected = stats.chisquare(observed, freqs * observed.sum())
    assert statistic == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)


def test_the_same_distribution_raises_nothing_and_a_shift_alarms() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b", "c"], 5000)})
    profile = DriftProfile().fit(ref)
    same = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b", "c"], 2000)})
    report = compare(profile, same, DriftSettings())
    assert not report.alarm and all(r.status == "ok" for r in report.rows)
    moved = same.assign(x=same.x + 1.0, c=rng.choice(["a", "b", "c"], 2000, p=[0.8, 0.1, 0.1]))
    assert {r.name: r.status for r in compare(profile, moved, DriftSettings()).rows} == {
        "x": "alarm", "c": "alarm"}


def test_a_tiny_window_is_reported_but_never_alarms() -> None:
    profile = DriftProfile().fit(pd.DataFrame({"x": np.arange(1000.0)}))
    report = compare(profile, pd.DataFrame({"x": np.full(20, 5000.0)}), DriftSettings())
    (row,) = report.rows
    assert row.psi > 1 and row.status == "too_few" and not report.alarm


def test_excluded_and_absent_columns() -> None:
    profile = DriftProfile().fit(pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0], "z": [3.0, 4.0]}))
    report = compare(profile, pd.DataFrame({"x": [1.0]}), DriftSettings(exclude=("y",)))
    assert [r.name for r in report.rows] == ["x"] and report.missing_columns == ["z"]


def test_profile_and_report_survive_json() -> None:
    frame = pd.DataFrame({"x": np.arange(200.0), "c": ["a", "b"] * 100, "score_churn": 0.3})
    profile = DriftProfile(bins=5).fit(frame)
    again = DriftProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    live = frame.assign(x=frame.x * 2)
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    a, b = (compare(p, live, SETTINGS, start, end) for p in (profile, again))
    assert a == b
    data = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert data["start"] == "2025-06-01T00:00:00+00:00" and data["window_size"] == 200
    kinds = {r["name"]: r["kind"] for r in data["rows"]}
    assert kinds == {"x": "feature", "c": "feature", "score_churn": "score"}
    with pytest.raises(ValueError, match="not a drift profile"):
        DriftProfile.from_dict({"params": {}})


def test_an_empty_live_column_reports_no_statistics() -> None:
    profile = DriftProfile().fit(pd.DataFrame({"x": np.arange(10.0)}))
    report = compare(profile, pd.DataFrame({"x": pd.Series([], dtype=float)}), SETTINGS)
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["rows"][0]["psi"] is None


def test_merged_profiles_describe_each_column_once() -> None:
    a = DriftProfile().fit(pd.DataFrame({"x": [1.0, 2.0, 3.0], "score_churn": [0.1, 0.2, 0.3]}))
    b = DriftProfile().fit(pd.DataFrame({"x": [7.0, 8.0], "score_conversion": [0.5, 0.6]}))
    both = a.merged(b)
    assert both.columns_ == ["x", "score_churn", "score_conversion"]
    np.testing.assert_array_equal(both.edges_["x"], a.edges_["x"])
    assert both.n_ == 2


def test_estimator_conventions() -> None:
    profile = DriftProfile(bins=3)
    assert profile.fit(pd.DataFrame({"x": [1.0, 2.0]})) is profile
    assert clone(profile).get_params() == {"bins": 3, "max_levels": 20, "sample_size": 1000}
    with pytest.raises(ValueError, match="at least one"):
        DriftProfile().fit(pd.DataFrame({"x": []}))


def test_score_columns_name_binary_and_multiclass_scores() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert list(score_columns("churn", ("0", "1"), proba)) == ["score_churn"]
    np.testing.assert_array_equal(score_columns("churn", ("0", "1"), proba)["score_churn"],
                                  [0.8, 0.4])
    three = np.full((1, 3), 1 / 3)
    assert list(score_columns("next_stage", ("a", "b", "c"), three)) == [
        "score_next_stage_a", "score_next_stage_b", "score_next_stage_c"]


def test_shipped_settings_load() -> None:
    s = load_drift_settings()
    assert (s.psi_warn, s.psi_alarm) == (0.1, 0.25) and "tenure_days" in s.exclude


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("psi_alarm: -1\n", "psi_alarm"),
        ("bins: many\n", "bins"),
        ("colour: red\n", "colour"),
        ("psi_warn: 0.3\npsi_alarm: 0.2\n", "psi_alarm (0.2) is below psi_warn"),
    ],
)
def test_bad_settings_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_drift_settings(path)
    assert str(path) in str(info.value) and message in str(info.value)
