"""Personas of a store whose conversions carry no value (a Segment track export without
revenue): its revenue columns hold 0 for everyone, which is no figure. The descriptions, the
words every reader prints (CLI, artifact, API, dashboard card), read revenue as unknown and
name no persona after order values; a valued store is described as before."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.persona_words import NO_VALUE, summary_lines
from models.personas import PersonaModel
from tests.models.test_personas import STAGES, synthetic


def valueless(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the feature pipeline writes it without values: revenue 0, and each
    buyer's average order value 0 (0 revenue over their purchases)."""
    return frame.assign(revenue_90d=0.0, avg_order_value=np.where(
        frame["n_purchase_90d"] > 0, 0.0, np.nan))


def fit(frame: pd.DataFrame, values_known: bool) -> PersonaModel:
    return PersonaModel(k_min=2, k_max=4, n_init=2, stages=STAGES, seed=3).fit(
        frame, values_known=values_known)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic()[0]


def test_revenue_is_unknown_not_zero(frame: pd.DataFrame) -> None:
    model = fit(valueless(frame), values_known=False)
    for prof in model.profiles_:
        assert prof["revenue_mean"] is None and prof["values_known"] is False
        lines = summary_lines(prof, 90)
        assert lines[-1] == f"- revenue in the last 90 days unknown ({NO_VALUE})", lines
        assert not any("0 per customer" in line for line in lines)
    # Scores added later (churn risk, expected value) keep it; so does a pickled model.
    again = pickle.loads(pickle.dumps(model))
    n = len(frame)
    described = again.describe(valueless(frame), churn=np.full(n, 0.25),
                               value=np.full(n, np.nan))
    assert summary_lines(described[0], 90)[-1] == (
        f"- churn risk 25.0% (mean), revenue in the last 90 days unknown ({NO_VALUE})")


def test_no_money_trait_or_name_without_values(frame: pd.DataFrame) -> None:
    """Order values that are not known (here planted, to show they are not read) name no
    trait and no persona ("big-basket buyers")."""
    known = fit(frame, values_known=True)
    assert any("log_order_value" in p["z"] for p in known.profiles_)
    unknown = fit(frame, values_known=False)
    for prof in unknown.profiles_:
        assert "log_order_value" not in prof["z"]
        assert not any("order value" in t for t in prof["traits"])
    assert not any("basket" in name for name in unknown.default_names_)


def test_a_valued_store_reads_as_before(frame: pd.DataFrame) -> None:
    model = fit(frame, values_known=True)
    prof = model.profiles_[0]
    assert prof["values_known"] is True and prof["revenue_mean"] > 0
    assert summary_lines(prof, 90)[-1].startswith("- revenue in the last 90 days ")
    assert summary_lines(prof, 90)[-1].endswith(" per customer")


def test_a_profile_fitted_before_values_known_was_kept_reads_as_it_did() -> None:
    """No values_known key: a revenue figure prints as given, none prints nothing."""
    prof = {"customers": 10, "share": 0.5, "traits": [], "channels": [], "revenue_mean": None,
            "churn_mean": 0.1}
    assert summary_lines(prof, 90)[-1] == "- churn risk 10.0% (mean)"
