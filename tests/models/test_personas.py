"""Persona discovery on synthetic customers of three planted kinds: recovered, stable under the
same seed, described in words, named, picklable; its settings checked key by key; the editable
names file."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from features.errors import ConfigError
from models.persona_params import PersonaError, PersonaParams, load_persona_params
from models.persona_words import (
    describe,
    names_path,
    persona_names,
    read_names,
    summary_lines,
    write_name,
)
from models.personas import UNASSIGNED, PersonaModel

STAGES = ("awareness", "consideration", "decision", "purchase", "retention", "advocacy")
# Per kind: product views per session, cart, checkout and buy rates, logins per session, ad
# click rate, order value, and the mix of search / social / email / direct touchpoints.
KINDS = {
    "browser": (4.0, 0.08, 0.40, 0.30, 0.10, 0.35, 40.0, (0.35, 0.40, 0.15, 0.10)),
    "loyal": (1.5, 0.45, 0.80, 0.80, 0.90, 0.20, 90.0, (0.15, 0.05, 0.20, 0.60)),
    "deal": (2.5, 0.30, 0.50, 0.40, 0.40, 0.30, 25.0, (0.20, 0.20, 0.55, 0.05)),
}
SIZES = {"browser": 900, "loyal": 600, "deal": 400}


def synthetic(seed: int = 0, quiet: int = 150) -> tuple[pd.DataFrame, np.ndarray]:
    """A feature frame with the columns the persona features read, and each row's kind;
    ``quiet`` extra customers have too few events to be assigned."""
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for kind, n in SIZES.items():
        views, cart, checkout, buy, login, ad, aov, mix = KINDS[kind]
        sessions = rng.poisson(12, n) + 6
        f = {"sessions_90d": sessions, "n_product_view_90d": rng.poisson(sessions * views)}
        f["n_add_to_cart_90d"] = rng.binomial(f["n_product_view_90d"], cart)
        f["n_checkout_90d"] = rng.binomial(f["n_add_to_cart_90d"], checkout)
        f["n_purchase_90d"] = rng.binomial(f["n_checkout_90d"], buy)
        f["n_account_login_90d"] = rng.binomial(sessions, login)
        f["n_support_ticket_90d"] = rng.binomial(sessions, 0.03)
        f["n_ad_impression_90d"] = rng.poisson(20, n)
        f["n_ad_click_90d"] = rng.binomial(f["n_ad_impression_90d"], ad)
        f["n_email_open_90d"] = rng.poisson(4, n)
        f["n_email_click_90d"] = rng.binomial(f["n_email_open_90d"], 0.3)
        events = sessions + sum(v for k, v in f.items() if k.startswith("n_"))
        f["events_90d"] = events
        for c, counts in zip(("search", "social", "email", "direct"),
                             np.array([rng.multinomial(e, mix) for e in events]).T,
                             strict=True):
            f[f"ch_{c}_90d"] = counts
        bought = f["n_purchase_90d"] > 0
        f["avg_order_value"] = np.where(bought, rng.lognormal(np.log(aov), 0.25, n), np.nan)
        f["revenue_90d"] = np.nan_to_num(f["avg_order_value"]) * f["n_purchase_90d"]
        f["csat_mean"] = np.where(rng.random(n) < 0.2, rng.uniform(1, 5, n), np.nan)
        f["stage_current"] = rng.integers(0, len(STAGES), n).astype(float)
        frames.append(pd.DataFrame(f).astype(float))
        truth += [kind] * n
    quiet_rows = frames[0].sample(quiet, random_state=seed).assign(events_90d=5.0)
    frame = pd.concat([*frames, quiet_rows], ignore_index=True)
    frame.insert(0, "customer_id", [f"c{i}" for i in range(len(frame))])
    return frame, np.array(truth + ["quiet"] * quiet)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, np.ndarray]) -> PersonaModel:
    return PersonaModel(k_min=2, k_max=5, n_init=4, stages=STAGES, seed=3).fit(data[0])


def test_planted_kinds_are_recovered(fitted: PersonaModel,
                                     data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, truth = data
    labels = fitted.predict(frame)
    assigned = labels != UNASSIGNED
    assert fitted.k_ == 3  # the silhouette prefers the planted number of kinds
    assert fitted.silhouette_[3] == max(fitted.silhouette_.values())
    assert set(fitted.silhouette_) == {2, 3, 4, 5}
    assert adjusted_rand_score(truth[assigned], labels[assigned]) > 0.9
    # Too little history: unassigned, unless every customer is asked for.
    assert (labels[truth == "quiet"] == UNASSIGNED).all() and assigned[truth != "quiet"].all()
    assert (fitted.predict(frame, assign_all=True) >= 0).all()
    assert fitted.n_active_ == len(frame) - 150 and fitted.n_customers_ == len(frame)


def test_same_seed_same_personas_ordered_by_size(fitted: PersonaModel,
                                                 data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, truth = data
    again = PersonaModel(k_min=2, k_max=5, n_init=4, stages=STAGES, seed=3).fit(frame)
    np.testing.assert_array_equal(again.predict(frame), fitted.predict(frame))
    np.testing.assert_array_equal(again.cluster_centers_, fitted.cluster_centers_)
    assert list(fitted.sizes_) == sorted(fitted.sizes_, reverse=True)  # id 0 the largest
    labels = fitted.predict(frame)
    # The largest planted kind (browsers, 900) is persona 0, the smallest (deal, 400) is 2.
    assert pd.Series(labels[truth == "browser"]).mode()[0] == 0
    assert pd.Series(labels[truth == "deal"]).mode()[0] == 2
    # Another seed finds the same personas with the same ids on such separated data.
    other = PersonaModel(k_min=2, k_max=5, n_init=4, seed=11).fit(frame)
    assert adjusted_rand_score(other.predict(frame), labels) > 0.95


def test_pickles_and_reads_an_arrow_table(fitted: PersonaModel,
                                          data: tuple[pd.DataFrame, np.ndarray]) -> None:
    import pyarrow as pa

    frame = data[0]
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict(frame), fitted.predict(frame))
    np.testing.assert_array_equal(fitted.predict(pa.Table.from_pandas(frame)),
                                  fitted.predict(frame))
    assert fitted.get_params()["seed"] == 3  # scikit-learn's parameter protocol


def test_descriptions_say_what_distinguishes_each(fitted: PersonaModel) -> None:
    browsers, loyal, deal = fitted.profiles_
    assert [p["id"] for p in fitted.profiles_] == [0, 1, 2]
    assert browsers["customers"] == fitted.sizes_[0] and 0 < browsers["share"] < 1
    views = next(t for t in browsers["traits"] if "product views per session" in t)
    assert "x the average" in views
    assert browsers["z"]["product_views_per_session"] > 0.5
    assert loyal["z"]["logins_per_session"] > 1 and loyal["channels"][0]["channel"] == "direct"
    assert deal["channels"][0]["channel"] == "email"
    order = next(f for f in deal["top_features"] if f["feature"] == "log_order_value")
    assert order["z"] < 0  # the cheap baskets
    assert browsers["typical_stage"]["stage"] in STAGES
    assert browsers["revenue_mean"] is not None and browsers["churn_mean"] is None
    assert len(browsers["traits"]) == fitted.top_features == 3
    names = fitted.default_names_
    assert len(set(names)) == 3 and names[0].startswith("heavy browsers")
    assert "(direct)" in names[1] and "(email)" in names[2]


def test_describe_adds_churn_risk_and_value(fitted: PersonaModel,
                                            data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame = data[0]
    churn = np.where(fitted.predict(frame) == 1, 0.1, 0.7)
    out = fitted.describe(frame, churn=churn, value=np.full(len(frame), 12.5))
    assert out[1]["churn_mean"] == pytest.approx(0.1)
    assert out[0]["churn_mean"] == pytest.approx(0.7)
    assert out[0]["expected_value_mean"] == pytest.approx(12.5)


def test_shares_are_rounded_once_for_display() -> None:
    """2,541 of 7,463 customers is 34.05 %: 34.0 %, not the 34.1 % of a share first rounded
    to 0.3405. Stage and channel shares likewise."""
    labels = np.r_[np.zeros(2541), np.ones(7463 - 2541)].astype(np.int64)
    clipped = np.random.default_rng(0).normal(size=(len(labels), 2))
    stage = np.where(np.arange(len(labels)) < 865, 0.0, 1.0)  # 1,676 of 2,541 at stage 1
    prof = describe(clipped, labels, 2, ["product_views_per_session", "share_email"],
                    {"stage": stage}, STAGES, 90, 2)[0]
    assert prof["share"] == 2541 / 7463
    lines = summary_lines(prof)
    assert lines[0] == "- 2,541 customers (34.0%)"
    assert prof["typical_stage"] == {"stage": "consideration", "share": 1676 / 2541}


def test_ratios_left_out_and_why(fitted: PersonaModel) -> None:
    # CSAT is missing for 80 % of the customers; which correlated ratios go depends on the
    # data, but every ratio is either used or dropped with a reason.
    assert "csat_mean" in fitted.dropped_ and "missing" in fitted.dropped_["csat_mean"]
    used = {fitted.feature_names_[j] for j in fitted.used_}
    assert used.isdisjoint(fitted.dropped_) and "product_views_per_session" in used
    assert used | set(fitted.dropped_) == set(fitted.feature_names_)


def test_too_few_active_customers_is_an_error(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    quiet = data[0].head(200).assign(events_90d=3.0)
    with pytest.raises(PersonaError, match=r"have 20 or more events .*\(min_events: 3 would "
                                           "admit them"):
        PersonaModel().fit(quiet)
    with pytest.raises(PersonaError, match=r"fewer than .* customers have any event"):
        PersonaModel().fit(quiet.assign(events_90d=0.0))
    with pytest.raises(PersonaError, match=r"window_days: 45 is not one of the feature "
                       r"spec's windows_days \[.*90.*\]"):
        PersonaModel(window_days=45).fit(data[0].head(200))


def test_shipped_settings_load() -> None:
    p = load_persona_params()
    assert p == PersonaParams() and (p.k_min, p.k_max, p.min_events) == (3, 8, 20)


@pytest.mark.parametrize(("text", "says"), [
    ("k_min: 1\n", "k_min"),
    ("kmax: 4\n", "kmax"),
    ("k_min: 5\nk_max: 4\n", "k_max (4) must be at least k_min (5)"),
    ("winsor: 0.7\n", "winsor"),
    ("window_days: ninety\n", "window_days"),
])
def test_bad_settings_name_the_key(tmp_path: Path, text: str, says: str) -> None:
    f = tmp_path / "personas.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=str(f)) as err:
        load_persona_params(f)
    assert says in str(err.value)


def test_names_file(tmp_path: Path) -> None:
    path = names_path(tmp_path)
    defaults = ["heavy browsers", "logged-in regulars", "email clickers"]
    assert read_names(path, "3") == {}
    write_name(path, "3", 1, "  loyal fans ", defaults)
    write_name(path, "4", 1, "other version", defaults)
    assert read_names(path, "3") == {1: "loyal fans"}
    assert persona_names(defaults, read_names(path, "3"))[1] == "loyal fans"
    assert json.loads(path.read_text())["4"] == {"1": "other version"}
    for pid, name, says in [(7, "x", "does not exist"), (0, "loyal fans", "already used"),
                            (0, "", "1-60 characters"), (0, "unassigned", "not 'unassigned'")]:
        with pytest.raises(ConfigError, match=says):
            write_name(path, "3", pid, name, defaults)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected"):
        read_names(path, "3")


def test_summary_figures_read_as_on_the_dashboard_card() -> None:
    """Churn risk in percent (the card's 29.0%, not 0.29), money in whole units per customer,
    in the card's order: churn risk, expected value, revenue over the window."""
    prof = {"customers": 2541, "share": 0.34, "traits": [], "channels": [],
            "churn_mean": 0.29043, "expected_value_mean": 25.18, "revenue_mean": 1312.46}
    assert summary_lines(prof, 90)[-1] == (
        "- churn risk 29.0% (mean), expected value 25 per customer, revenue in the last 90 days "
        "1,312 per customer")
    assert summary_lines({**prof, "churn_mean": None})[-1] == (
        "- expected value 25 per customer, revenue in the window 1,312 per customer")
