"""Off-policy estimates on synthetic logs whose reward model and logging propensities are
known: a logging policy that rarely acts, an economic reward (value x conversion - cost), and
a deterministic target policy whose true value is computed from the reward model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from models.ope import (
    actions_from_arms,
    arms_from_actions,
    doubly_robust,
    incremental,
    ips,
    no_action_policy,
    snips,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
VALUE, COSTS = 50.0, np.array([0.0, 1.0, 2.0])  # per conversion; per arm


@dataclass
class Logs:
    reward: Floats
    arm: Ints
    propensity: Floats  # of the logged arm
    q: Floats  # (n, 3) true expected reward of each arm
    target: Ints  # the policy under evaluation

    def truth(self, policy: Ints) -> float:
        return float(self.q[np.arange(len(policy)), policy].mean())


@pytest.fixture(scope="module")
def logs() -> Logs:
    rng = np.random.default_rng(0)
    n = 200_000
    x = rng.normal(size=(n, 2))
    base = 1 / (1 + np.exp(-(-2.0 + 0.5 * x[:, 0])))
    lift = np.column_stack([np.zeros(n), 0.04 * (x[:, 1] > 0), 0.06 * (x[:, 0] > 0.5)])
    q = VALUE * (base[:, None] + lift) - COSTS
    logits = np.column_stack([np.zeros(n), -2.5 + 0.5 * x[:, 1], -3.0 + 0.7 * x[:, 0]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    arm = (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)
    rows = np.arange(n)
    converted = rng.uniform(size=n) < base + lift[rows, arm]
    reward = VALUE * converted - COSTS[arm]
    return Logs(reward, arm, p[rows, arm], q, np.argmax(q, axis=1))


def test_estimates_cover_the_truth(logs: Logs) -> None:
    truth = logs.truth(logs.target)
    bias = logs.q + np.array([3.0, -2.0, 5.0])  # a wrong reward model: DR stays unbiased
    for est in (
        ips(logs.reward, logs.arm, logs.propensity, logs.target),
        snips(logs.reward, logs.arm, logs.propensity, logs.target),
        doubly_robust(logs.reward, logs.arm, logs.propensity, logs.target, logs.q),
        doubly_robust(logs.reward, logs.arm, logs.propensity, logs.target, bias),
    ):
        assert est.n == len(logs.reward)
        assert abs(est.value - truth) < 4 * est.se, (est, truth)
        low, high = est.interval(4.0)
        assert low < truth < high


def test_doubly_robust_with_the_true_model_is_tighter(logs: Logs) -> None:
    args = (logs.reward, logs.arm, logs.propensity, logs.target)
    # Conversion noise (value x a Bernoulli draw) dominates both; DR removes the rest.
    assert doubly_robust(*args, logs.q).se < 0.95 * ips(*args).se
    zero = doubly_robust(*args, np.zeros_like(logs.q))  # no model: DR is IPS
    assert zero.value == pytest.approx(ips(*args).value) and zero.se == pytest.approx(ips(*args).se)


def test_incremental_value_is_paired(logs: Logs) -> None:
    nothing = no_action_policy(len(logs.arm))
    args = (logs.reward, logs.arm, logs.propensity)
    target = doubly_robust(*args, logs.target, logs.q)
    baseline = doubly_robust(*args, nothing, logs.q)
    gain = incremental(target, baseline)
    truth = logs.truth(logs.target) - logs.truth(nothing)
    assert gain.value == pytest.approx(target.value - baseline.value)
    assert abs(gain.value - truth) < 4 * gain.se
    # Rows where the target policy also does nothing add the same term to both estimates.
    assert gain.se < np.hypot(target.se, baseline.se)
    reward, arm, propensity, target_arm = (a[:10] for a in (*args, logs.target))
    with pytest.raises(ValueError, match="different rows"):
        incremental(target, doubly_robust(reward, arm, propensity, target_arm, logs.q[:10]))


def test_clipping_floors_the_propensity(logs: Logs) -> None:
    args = (logs.reward, logs.arm, logs.propensity, logs.target)
    plain = ips(*args)
    below = ips(*args, clip=0.5 * float(logs.propensity.min()))
    assert below.value == plain.value and below.se == plain.se
    clip = float(np.quantile(logs.propensity, 0.1))
    clipped = ips(*args, clip=clip)
    match = logs.arm == logs.target
    expected = np.mean(match * logs.reward / np.maximum(logs.propensity, clip))
    assert clipped.value == pytest.approx(expected)
    assert clipped.se < plain.se
    assert ips(*args, clip=1.0).value == pytest.approx(np.mean(match * logs.reward))
    with pytest.raises(ValueError, match="clip"):
        ips(*args, clip=0.0)


def test_snips_moves_with_the_reward_offset(logs: Logs) -> None:
    args = (logs.arm, logs.propensity, logs.target)
    assert snips(logs.reward + 7.0, *args).value == pytest.approx(
        snips(logs.reward, *args).value + 7.0
    )


def test_arm_encoding() -> None:
    actions = np.array([-1, 0, 4, -1])
    np.testing.assert_array_equal(arms_from_actions(actions), [0, 1, 5, 0])
    np.testing.assert_array_equal(actions_from_arms(arms_from_actions(actions)), actions)
    with pytest.raises(ValueError):
        arms_from_actions([-2, 0])
    with pytest.raises(ValueError):
        arms_from_actions([0.5])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        ips([1.0], [0], [0.0], [0])
    with pytest.raises(ValueError, match="one length"):
        ips([1.0, 2.0], [0], [0.5], [0])
    with pytest.raises(ValueError, match="columns"):
        doubly_robust([1.0], [2], [0.5], [0], np.zeros((1, 2)))
