"""Off-policy value of an uplift model's targeting (training.uplift_ope) on a synthetic log whose
truth is known, and the gate's use of it (training.promote.gate with a judge)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from features.decisions import NO_ACTION
from models.uplift_model import JourneyUplift
from models.uplift_support import population_propensities
from training.promote import Decision, gate
from training.uplift_ope import (
    describe,
    logged_propensity,
    policy_value,
    significantly_below,
    targeting,
)

ACTIONS = ("email", "sms")
CONTACT = np.array([0.25, 0.15])  # P(email), P(sms) for every customer-day; none 0.6
RATE = 0.2  # uncontacted days kept


@dataclass
class Truth:
    """P(convert | arm) per row, column 0 = no action."""

    q: np.ndarray
    outcome: str = "convert"
    actions_: tuple[str, ...] = ACTIONS
    flip: bool = False  # rank by the opposite of the true benefit (a bad model)
    contact: np.ndarray | None = None  # per row P(email), P(sms) when not CONTACT everywhere

    def predict_arms(self, frame: pd.DataFrame) -> np.ndarray:
        q: np.ndarray = self.q[frame.index.to_numpy()]
        return q

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        q = self.predict_arms(frame)
        uplift: np.ndarray = q[:, 1:] - q[:, :1]
        return -uplift if self.flip else uplift

    def propensities(self, frame: pd.DataFrame) -> np.ndarray:
        """The logging policy as a model fitted on the sampled frame would see it."""
        rows = frame.index.to_numpy()
        c = np.tile(CONTACT, (len(rows), 1)) if self.contact is None else self.contact[rows]
        p = np.column_stack([1 - c.sum(axis=1), c])
        p[:, 0] *= RATE
        out: np.ndarray = p / p.sum(axis=1, keepdims=True)
        return out


def world(n: int = 200_000, seed: int = 3, record: bool = True,
          push: float = 0.0) -> tuple[pd.DataFrame, Truth]:
    """A decision frame as ``features.decisions`` builds it (every contact, controls sampled
    at RATE with weight 1 / RATE) over customer-days whose true outcome rates are known.
    ``push``: the share of days that got a third action, unknown to the model (no effect)."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    base = 0.05 + 0.1 * x
    q = np.column_stack([base, base + 0.08 * x - 0.02, base + 0.06 * (1 - x) - 0.01, base])
    logged = np.r_[np.nan, CONTACT, push]
    arm = rng.choice(4, size=n, p=np.r_[1 - CONTACT.sum() - push, CONTACT, push])
    converted = (rng.random(n) < q[np.arange(n), arm]).astype(float)
    keep = (arm > 0) | (rng.random(n) < RATE)
    names = np.array(["", *ACTIONS, "push"], dtype=object)
    frame = pd.DataFrame({
        "action": np.where(arm > 0, names[arm], NO_ACTION),
        "propensity": np.where(arm > 0, logged[arm] if record else np.nan, np.nan),
        "weight": np.where(arm > 0, 1.0, 1.0 / RATE),
        "converted": converted,
    })[keep]
    return frame, Truth(q[:, :3])


def true_value(truth: Truth, frame: pd.DataFrame) -> float:
    """The targeting policy's value over all customer-days, from the true rates."""
    q = truth.q
    benefit = q[:, 1:] - q[:, :1]
    weight = np.ones(len(q))
    share = float(CONTACT.sum())
    arms = targeting(benefit, weight, share)
    return float(q[np.arange(len(q)), arms].mean())


def test_the_doubly_robust_value_finds_the_true_policy_value() -> None:
    frame, truth = world()
    got = policy_value(cast(JourneyUplift, truth), frame, RATE)
    want = true_value(truth, frame)
    assert got.policy.value == pytest.approx(want, abs=3 * got.policy.se)
    assert got.contact_share == pytest.approx(CONTACT.sum(), abs=0.01)
    logged = float((truth.q[:, 0] * (1 - CONTACT.sum()) + truth.q[:, 1] * CONTACT[0]
                    + truth.q[:, 2] * CONTACT[1]).mean())
    assert got.logged.value == pytest.approx(logged, abs=3 * got.logged.se)
    assert got.lift.value > 0 and not significantly_below(got.lift)
    assert got.lift.value == pytest.approx(want - logged, abs=3 * got.lift.se)


def test_churn_is_judged_on_customers_kept() -> None:
    """The same world read as churn (churned = not converted): the policy that keeps the most
    customers is the one that converts the most, with the same value."""
    frame, truth = world()
    churn = Truth(1.0 - truth.q, outcome="churn")
    as_churn = frame.assign(churned_inactive=1.0 - frame["converted"]).drop(columns="converted")
    got = policy_value(cast(JourneyUplift, churn), as_churn, RATE)
    want = policy_value(cast(JourneyUplift, truth), frame, RATE)
    assert got.policy.value == pytest.approx(want.policy.value)
    assert got.lift.value == pytest.approx(want.lift.value) and got.lift.value > 0
    assert "stay (do not churn)" in describe(got, "3")


def test_contacts_with_an_action_the_model_does_not_know_still_count() -> None:
    """An action added to the catalog after the model was trained: its contacts are days the
    model's policy would have decided too (it raised ValueError before)."""
    push = 0.1
    frame, truth = world(push=push)
    got = policy_value(cast(JourneyUplift, truth), frame, RATE)
    assert got.contact_share == pytest.approx(CONTACT.sum() + push, abs=0.01)
    q, share = truth.q, float(CONTACT.sum() + push)
    want = float(q[np.arange(len(q)), targeting(q[:, 1:] - q[:, :1], np.ones(len(q)),
                                                share)].mean())
    assert got.policy.value == pytest.approx(want, abs=3 * got.policy.se)


def test_without_recorded_propensities_the_model_s_are_rescaled_to_the_population() -> None:
    frame, truth = world(record=False)
    got = policy_value(cast(JourneyUplift, truth), frame, RATE)
    assert got.policy.value == pytest.approx(true_value(truth, frame), abs=3 * got.policy.se)


def test_ignoring_the_control_sampling_would_be_wrong() -> None:
    """The synthetic world is sensitive to the correction the tests above rely on: read as if
    unsampled, the same rows miss the truth by several standard errors."""
    frame, truth = world(n=400_000, record=False)
    got = policy_value(cast(JourneyUplift, truth), frame.assign(weight=1.0), RATE)
    assert abs(got.policy.value - true_value(truth, frame)) > 4 * got.policy.se


def test_population_propensities_undo_the_sampling() -> None:
    sampled = Truth(np.zeros((1, 3))).propensities(pd.DataFrame(index=[0]))
    got = population_propensities(sampled, RATE)
    assert got[0] == pytest.approx(np.r_[1 - CONTACT.sum(), CONTACT])


def test_recorded_propensities_win_over_the_model_only_when_usable() -> None:
    arms = np.array([0, 1, 1, 2])
    recorded = np.array([np.nan, 0.3, np.nan, 1.5])
    estimated = np.tile([0.5, 0.2, 0.3], (4, 1))
    assert logged_propensity(arms, recorded, estimated).tolist() == [0.5, 0.3, 0.2, 0.3]


def test_targeting_contacts_the_share_with_the_largest_positive_benefit() -> None:
    benefit = np.array([[0.1, 0.3], [0.05, -0.1], [-0.2, -0.1], [0.2, 0.0]])
    arms = targeting(benefit, np.ones(4), 0.5)
    assert arms.tolist() == [2, 0, 0, 1]
    assert targeting(benefit, np.ones(4), 1.0).tolist() == [2, 1, 0, 1]  # never a harmful one


def test_a_model_ranking_backwards_is_significantly_below_the_logged_policy() -> None:
    frame, truth = world()
    bad = policy_value(cast(JourneyUplift, Truth(truth.q, flip=True)), frame, RATE)
    assert significantly_below(bad.lift)


class Registry:
    """Just enough of MlflowClient for the gate: aliases and version tags."""

    def __init__(self, champion: str | None) -> None:
        self.aliases = {"challenger": "2", **({"champion": champion} if champion else {})}
        self.tags: dict[str, str] = {}

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        if alias not in self.aliases:
            raise MlflowException("no alias", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(version=self.aliases[alias], tags={})

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.tags[key] = value


@pytest.mark.parametrize("champion", [None, "1"])
def test_the_judge_holds_back_a_challenger_the_score_would_promote(champion: str | None) -> None:
    client = Registry(champion)
    ch = client.get_model_version_by_alias("m", "challenger")
    d = Decision("uplift-convert", False, "", "qini_mean", 0.0, "2", holdout="h")
    seen: list[object] = []

    def judge(champ: Any) -> tuple[bool, str]:
        seen.append(champ and champ.version)
        return False, "its policy is significantly worse"

    got = gate(cast(Any, client), "m", d, ch, False, lambda v: 0.5 if v.version == "2" else 0.1,
               lambda a, b: a > b, judge)
    assert not got.promoted and client.aliases.get("champion") == champion
    assert "significantly worse" in got.reason and seen == [champion]
    forced = gate(cast(Any, client), "m", d, ch, True, lambda v: 0.5, lambda a, b: a > b, judge)
    assert forced.promoted and forced.reason.endswith("; promoted by --force")
    assert client.aliases["champion"] == "2"


@dataclass
class Boaster(Truth):
    """True rates, except that it claims a large sms effect where the log never sent sms."""

    never: np.ndarray | None = None  # rows without sms in the log

    def predict_arms(self, frame: pd.DataFrame) -> np.ndarray:
        q = super().predict_arms(frame).copy()
        assert self.never is not None
        never = self.never[frame.index.to_numpy()]
        q[never, 2] = q[never, 0] + 0.5
        return q


def test_actions_the_log_never_tried_there_are_left_out_of_the_targeting() -> None:
    """sms only ever went to half the customers (x < 0.5). A model claiming sms works wonders
    on the other half would, unrestricted, be judged by that claim alone: the doubly robust
    term where nothing matches is the model's own estimate."""
    n, rng = 200_000, np.random.default_rng(5)
    x = rng.random(n)
    base = 0.05 + 0.1 * x
    q = np.column_stack([base, base + 0.08 * x - 0.02, base + 0.06 * (1 - x) - 0.01])
    contact = np.column_stack([np.full(n, CONTACT[0]), np.where(x < 0.5, CONTACT[1], 0.0)])
    arm = (rng.random(n)[:, None] > np.cumsum(np.column_stack(
        [1 - contact.sum(axis=1), contact]), axis=1)).sum(axis=1)
    converted = (rng.random(n) < q[np.arange(n), arm]).astype(float)
    keep = (arm > 0) | (rng.random(n) < RATE)
    frame = pd.DataFrame({
        "action": np.array([NO_ACTION, *ACTIONS], dtype=object)[arm],
        "propensity": np.where(arm > 0, contact[np.arange(n), np.maximum(arm - 1, 0)], np.nan),
        "weight": np.where(arm > 0, 1.0, 1.0 / RATE), "converted": converted})[keep]
    boaster = Boaster(q, contact=contact, never=x >= 0.5)
    got = policy_value(cast(JourneyUplift, boaster), frame, RATE)
    assert got.unsupported > 0.95  # its first choices: sms where sms was never sent
    # What it is judged on: its targeting among the explored pairs, where its rates are true.
    share = got.contact_share
    allowed = np.column_stack([np.ones(n, bool), x < 0.5])
    benefit = np.where(allowed, q[:, 1:] - q[:, :1], -np.inf)
    supported_policy = q[np.arange(n), targeting(benefit, np.ones(n), share)]
    assert got.policy.value == pytest.approx(supported_policy.mean(), abs=3 * got.policy.se)
    assert got.policy.value < got.logged.value + 0.02  # not the claimed +0.5 on a third
    assert "the log almost never sent" in describe(got, "4")
    truth = policy_value(cast(JourneyUplift, Truth(q, contact=contact)), frame, RATE)
    assert truth.unsupported == 0.0 and "almost never" not in describe(truth, "4")


def test_a_model_s_own_floors_decide_where_it_is_judged() -> None:
    """A model that learned its floors (``JourneyUplift.support_floor_``) is judged on the
    pairs they leave it, as the service ranks them: here no sms pair is, so its targeting
    sends email or nothing."""
    frame, truth = world(n=50_000)
    free = policy_value(cast(JourneyUplift, truth), frame, RATE)
    assert free.unsupported == 0.0
    truth.support_floor_ = np.array([0.0, np.inf])  # type: ignore[attr-defined]
    held = policy_value(cast(JourneyUplift, truth), frame, RATE)
    assert held.unsupported > 0.2  # the unrestricted policy's sms contacts
    assert held.policy.value != free.policy.value
