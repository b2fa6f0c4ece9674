"""A scoring run's top actions, decided for the whole batch at once, are ``arbitrate``'s (one
slot, no exploration) to the bit: same action, same value, on random catalogs, customers,
uplifts and contact histories that reach every rule, ties, NaN values and the edge cases of
each (missing values, text, infinities, caps of 0, contacts stamped in the future)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from features.errors import ConfigError
from features.spec import load_spec
from models.actions import catalog_from_dict
from models.arbitration import arbitrate
from models.arbitration_batch import Batch, Sent, candidates, top_actions
from models.catalog import DAY_US, Catalog
from models.recommendation import Contact, Customer, Ranked

NOW = 1_750_000_000_000_000
CHANNELS = ("email", "sms", "display")
TIERS = ("gold", "silver", None)
DEFAULT_STAGES = load_spec().stages


def _condition(rng: np.random.Generator) -> dict[str, Any]:
    on = str(rng.choice(["prediction.churn", "prediction.conversion", "feature.aov",
                         "feature.tier", "feature.attr_plan", "feature.visits"]))
    op = str(rng.choice([">=", ">", "<=", "<", "==", "!="]))
    if on in ("feature.tier", "feature.attr_plan") or rng.random() < 0.1:
        value: Any = str(rng.choice(["gold", "silver"]))
        op = str(rng.choice(["==", "!="]))
    else:
        value = float(rng.choice([0.0, 0.3, 1.0, 40.0]))
    return {"on": on, "op": op, "value": value}


def _action(rng: np.random.Generator, ids: list[str], me: int) -> dict[str, Any]:
    a: dict[str, Any] = {
        "channel": str(rng.choice(CHANNELS)),
        "cost": float(rng.choice([0.0, 0.1, 0.5, 2.0])),
        "value": {"convert": float(rng.choice([1.0, 1.0, 0.85, 0.0]))},
        "weight": float(rng.choice([1.0, 1.0, 0.5, 3.0])),
        "eligibility": {"consent": bool(rng.random() < 0.5)},
    }
    if rng.random() < 0.5:
        stages = rng.choice(DEFAULT_STAGES, size=int(rng.integers(1, 4)), replace=False)
        a["eligibility"]["stages"] = [str(s) for s in stages]
    if rng.random() < 0.5:
        a["eligibility"]["conditions"] = [_condition(rng) for _ in range(rng.integers(1, 3))]
    if rng.random() < 0.4:
        a["caps"] = [{"max": int(rng.integers(0, 3)), "window_days": float(rng.integers(1, 30))}]
    if rng.random() < 0.4:
        a["cooldown_days"] = float(rng.integers(1, 20))
    others = [x for j, x in enumerate(ids) if j != me]
    if rng.random() < 0.3 and others:
        a["excludes"] = {"actions": [str(rng.choice(others))], "days": float(rng.integers(1, 20))}
    return a


def random_catalog(rng: np.random.Generator) -> Catalog:
    """A valid random catalog (invalid draws, e.g. two exclusions naming each other with
    different windows, are drawn again)."""
    while True:
        ids = [f"a{i}" for i in range(int(rng.integers(1, 7)))]
        caps = [{"max": int(rng.integers(0, 4)), "window_days": float(rng.integers(1, 30))}
                | ({"channel": str(rng.choice(CHANNELS))} if rng.random() < 0.5 else {})
                for _ in range(rng.integers(0, 3))]
        # Unbounded, an infinite aov is worth infinity: times an uplift of 0, NaN.
        convert = [{"feature": "aov", "default": 40.0, "min": 5.0, "max": 100.0},
                   {"feature": "aov", "default": 40.0}, 60.0][int(rng.integers(0, 3))]
        raw = {
            "outcomes": {"convert": {"value": convert},
                         "churn": {"value": float(rng.choice([-50.0, -10.0]))}},
            "policy": {"exploration": 0.0, "min_value": float(rng.choice([0.0, -1.0, 0.5])),
                       "default_consent": bool(rng.random() < 0.7), "caps": caps},
            "actions": {a: _action(rng, ids, i) for i, a in enumerate(ids)},
        }
        try:
            return catalog_from_dict(raw, "<random>")
        except ConfigError:
            continue


def _numbers(rng: np.random.Generator, n: int, pool: list[float]) -> np.ndarray:
    return rng.choice(np.array(pool, np.float64), size=n)


def random_batch(rng: np.random.Generator, catalog: Catalog, n: int
                 ) -> tuple[Batch, dict[str, np.ndarray]]:
    aov = _numbers(rng, n, [math.nan, math.inf, -5.0, 0.0, 3.0, 30.0, 60.0, 250.0])
    visits = _numbers(rng, n, [math.nan, 0.0, 1.0, 7.0])
    features = {"aov": aov, "visits": visits,
                "tier": rng.choice(np.array(TIERS, object), size=n),
                "attr_plan": rng.choice(np.array(TIERS, object), size=n)}
    predictions = {"churn": _numbers(rng, n, [math.nan, 0.0, 0.1, 0.3, 0.9]),
                   "conversion": _numbers(rng, n, [0.0, 0.05, 0.4])}
    # Uplifts on a coarse grid make ties between actions common.
    grid = [math.nan, -0.02, 0.0, 0.01, 0.02, 0.05]
    uplift = {a: {o: _numbers(rng, n, grid) for o in ("convert", "churn") if rng.random() < 0.8}
              for a in catalog.ids if rng.random() < 0.9}
    baseline = {o: _numbers(rng, n, [math.nan, -0.1, 0.0, 0.2, 1.0, 1.5])
                for o in ("convert", "churn") if rng.random() < 0.9}
    rows = rng.integers(0, n, size=3 * n)
    names: list[str | None] = [*catalog.ids, "legacy_offer", None]
    days = rng.choice(np.array([-1.0, 0.0, 0.5, 2.0, 6.9, 7.0, 15.0, 29.0, 45.0]), size=len(rows))
    sent = Sent(rows.astype(np.int64), rng.integers(0, len(names), size=len(rows)),
                rng.integers(0, len(CHANNELS), size=len(rows)),
                (NOW - np.round(days * DAY_US)).astype(np.int64), names, CHANNELS)
    stages = rng.integers(-1, len(DEFAULT_STAGES), size=n).astype(np.int64)
    batch = Batch(stages, DEFAULT_STAGES, predictions, lambda name: _column(features, name, n),
                  baseline, uplift, sent)
    return batch, features


def _column(features: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return features[name] if name in features else np.full(n, None, object)


def one(batch: Batch, features: dict[str, np.ndarray], row: int) -> tuple[Customer, Any]:
    """Row ``row`` of the batch as ``arbitrate`` takes a customer and its uplift."""
    def scalar(v: Any) -> Any:
        return v if v is None or isinstance(v, str) else float(v)

    stage = int(batch.stages[row])
    customer = Customer(
        "c", DEFAULT_STAGES[stage] if stage >= 0 else None,
        {k: float(v[row]) for k, v in batch.predictions.items()},
        {k: scalar(v[row]) for k, v in features.items()}, batch.sent.contacts(row),
        baseline={k: float(v[row]) for k, v in batch.baseline.items()})
    uplift = {a: {o: float(u[row]) for o, u in by.items()} for a, by in batch.uplift.items()}
    return customer, uplift


def test_batch_top_actions_are_arbitrate_s_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    asked: list[int] = []
    seen = {"chosen": 0, "none": 0}
    for _ in range(120):
        catalog = random_catalog(rng)
        batch, features = random_batch(rng, catalog, 200)

        def exact(row: int, catalog: Catalog = catalog, batch: Batch = batch,
                  features: dict[str, np.ndarray] = features) -> Ranked | None:
            asked.append(row)
            d = arbitrate(catalog, *one(batch, features, row), NOW, top_k=1, exploration=0.0,
                          explain=False)
            return d.actions[0] if d.actions else None

        index, value = top_actions(catalog, batch, NOW, exact)
        for row in range(len(batch)):
            d = arbitrate(catalog, *one(batch, features, row), NOW, top_k=1, exploration=0.0,
                          explain=False)
            want = d.actions[0] if d.actions else None
            got = None if index[row] < 0 else catalog.ids[index[row]]
            assert got == (want and want.action), (catalog, row, d)
            if want is None:
                assert math.isnan(value[row])
                seen["none"] += 1
            else:
                assert value[row] == want.value or (math.isnan(want.value)
                                                    and math.isnan(value[row]))
                seen["chosen"] += 1
    assert asked, "no customer needed arbitrate itself: the NaN-value case went untested"
    assert min(seen.values()) > 1000, seen


def test_only_the_open_pairs_uplift_is_read() -> None:
    """A scoring run estimates uplift only where ``candidates`` is true: the answer must not
    depend on the other pairs' uplift, nor on the baseline of customers with none open (the
    NaN fallback, ``arbitrate`` itself, included)."""
    rng = np.random.default_rng(11)
    closed = 0
    for _ in range(40):
        catalog = random_catalog(rng)
        batch, features = random_batch(rng, catalog, 200)
        open_ = candidates(catalog, batch, NOW)
        closed += int((~open_).sum())
        some = open_.any(axis=1)
        garbage = {a: {o: np.where(open_[:, catalog.index[a]], u, rng.normal(size=len(u)))
                       for o, u in by.items()} for a, by in batch.uplift.items()}
        baseline = {o: np.where(some, p0, rng.normal(size=len(p0)))
                    for o, p0 in batch.baseline.items()}
        other = replace(batch, uplift=garbage, baseline=baseline)
        answers = []
        for b, given in ((batch, None), (other, open_)):
            def exact(row: int, catalog: Catalog = catalog, b: Batch = b,
                      features: dict[str, np.ndarray] = features) -> Ranked | None:
                d = arbitrate(catalog, *one(b, features, row), NOW, top_k=1, exploration=0.0,
                              explain=False)
                return d.actions[0] if d.actions else None

            answers.append(top_actions(catalog, b, NOW, exact, given))
        np.testing.assert_array_equal(answers[1][0], answers[0][0])
        np.testing.assert_array_equal(answers[1][1], answers[0][1])
    assert closed > 10_000


def test_a_catalog_without_actions_recommends_nothing() -> None:
    rng = np.random.default_rng(1)
    base = random_catalog(rng)
    empty = Catalog(base.outcomes, base.policy, ())
    batch, _ = random_batch(rng, empty, 5)

    def never(row: int) -> Ranked | None:
        raise AssertionError(row)

    index, value = top_actions(empty, batch, NOW, never)
    assert index.tolist() == [-1] * 5 and np.isnan(value).all()


def test_sent_contacts_are_one_customer_s_in_order() -> None:
    sent = Sent(np.array([1, 0, 1]), np.array([0, 1, 1]), np.array([1, 0, 0]),
                np.array([10, 20, 30]), ("a", None), ("email", "sms"))
    assert sent.contacts(1) == [Contact("a", "sms", 10), Contact(None, "email", 30)]
    assert sent.contacts(0) == [Contact(None, "email", 20)] and sent.contacts(2) == []
