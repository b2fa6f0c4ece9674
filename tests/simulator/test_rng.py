from __future__ import annotations

import numpy as np

from features.simulator import rng


def test_uniform_is_a_pure_function_of_customer_day_replica_stream() -> None:
    keys = rng.customer_keys(7, np.arange(1000, dtype=np.int64))
    a = rng.uniform(rng.day_keys(keys, 5, 0), 3)
    # The same customers drawn one at a time, or in another order, give the same numbers.
    single = np.concatenate(
        [rng.uniform(rng.day_keys(keys[i : i + 1], 5, 0), 3) for i in range(1000)]
    )
    np.testing.assert_array_equal(a, single)
    perm = np.random.default_rng(0).permutation(1000)
    np.testing.assert_array_equal(rng.uniform(rng.day_keys(keys[perm], 5, 0), 3), a[perm])
    # Any change of seed, day, replica or stream gives other numbers.
    for other in (
        rng.uniform(rng.day_keys(rng.customer_keys(8, np.arange(1000)), 5, 0), 3),
        rng.uniform(rng.day_keys(keys, 6, 0), 3),
        rng.uniform(rng.day_keys(keys, 5, 1), 3),
        rng.uniform(rng.day_keys(keys, 5, 0), 4),
    ):
        assert np.mean(other == a) < 0.01


def test_uniform_moments_and_independence() -> None:
    keys = rng.day_keys(rng.customer_keys(1, np.arange(200_000, dtype=np.int64)), 0)
    u, v = rng.uniform(keys, 0), rng.uniform(keys, 1)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01
    z = rng.normal(keys, 2)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_categorical_and_geometric_follow_their_parameters() -> None:
    keys = rng.day_keys(rng.customer_keys(3, np.arange(100_000, dtype=np.int64)), 0)
    probs = np.array([0.1, 0.6, 0.3])
    draws = rng.categorical(rng.uniform(keys, 0), probs)
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / len(draws), probs, atol=0.006)
    per_row = np.tile([[0.0, 0.0, 1.0]], (len(keys), 1))
    assert (rng.categorical(rng.uniform(keys, 1), per_row) == 2).all()
    counts = rng.geometric(rng.uniform(keys, 2), 2.5)
    assert counts.min() == 0 and abs(counts.mean() - 2.5) < 0.05
