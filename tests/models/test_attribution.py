"""Markov removal-effect attribution: hand-solved absorbing chains, ChannelAttribution's
treatment of repeats, invariants on random paths, and the CSR/aggregate round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.attribution import Paths, conversion_probability, markov_attribution, transition_counts


def by_label(paths: Paths) -> dict[str, dict[str, float]]:
    return {c["label"]: c for c in markov_attribution(paths).to_dict()["labels"]}


def test_hand_solved_chain_with_repeats() -> None:
    # Paths (conv, null): a>a>b (1,0), b>c (0,1), a>c>c (1,1), c (0,2). Without self-loops:
    # start -> a 3/6, b 1/6, c 2/6; a -> b 1/3, c 2/3; b -> conv 1/2, c 1/2; c -> conv 1/5.
    # x_c = 1/5, x_b = 1/2 + 1/2 * 1/5 = 3/5, x_a = 1/3 * 3/5 + 2/3 * 1/5 = 1/3;
    # P = 1/2 * 1/3 + 1/6 * 3/5 + 1/3 * 1/5 = 1/3.
    # Without a: 1/6 * 3/5 + 1/3 * 1/5 = 1/6 -> RE 1/2; without b: x_a = 2/15,
    # P = 1/2 * 2/15 + 1/15 = 2/15 -> RE 3/5; without c: x_b = 1/2, x_a = 1/6, P = 1/6 -> RE 1/2.
    # (ChannelAttribution 2.2.5 prints the same matrix and removal effects 0.500, 0.601, 0.499.)
    paths = Paths.from_strings(["a > a > b", "b > c", "a > c > c", "c"], [1, 0, 1, 0],
                               [0, 1, 1, 2])
    result = markov_attribution(paths)
    assert result.p_conversion == pytest.approx(1 / 3)
    got = by_label(paths)
    assert got["a"]["removal_effect"] == pytest.approx(0.5)
    assert got["b"]["removal_effect"] == pytest.approx(0.6)
    assert got["c"]["removal_effect"] == pytest.approx(0.5)
    # Shares 0.5/1.6, 0.6/1.6, 0.5/1.6 of the 2 conversions.
    assert got["a"]["conversions"] == pytest.approx(0.625)
    assert got["b"]["conversions"] == pytest.approx(0.75)
    assert got["c"]["conversions"] == pytest.approx(0.625)
    assert [c.label for c in result.labels] == ["b", "a", "c"]
    # Heuristics on the uncollapsed paths: first touch a, a; last touch b, c.
    assert got["a"]["first_touch_share"] == 1.0 and got["b"]["last_touch_share"] == 0.5
    assert got["c"]["touchpoints"] == 1 + 2 * 2 + 2  # weighted by each path's journeys


def test_cycles_are_solved_not_truncated() -> None:
    # a>b>a converts, b does not: a -> b 1/2, a -> conv 1/2, b -> a 1/2, b -> null 1/2;
    # x_a = 1/2 + 1/2 x_b, x_b = 1/2 x_a -> x_a = 2/3, x_b = 1/3; P = 1/2 (2/3 + 1/3) = 1/2.
    # Without a: 0 (RE 1); without b: x_a = 1/2, P = 1/4 (RE 1/2); shares 2/3, 1/3.
    paths = Paths.from_strings(["a > b > a", "b"], [1, 0], [0, 1])
    result = markov_attribution(paths)
    assert result.p_conversion == pytest.approx(0.5)
    assert result.share("a") == pytest.approx(2 / 3)
    assert result.share("b") == pytest.approx(1 / 3)


def test_repeats_do_not_change_the_chain() -> None:
    plain = markov_attribution(Paths.from_strings(["a > b", "b > a", "a"], [1, 1, 0], [1, 0, 2]))
    repeated = markov_attribution(
        Paths.from_strings(["a > a > b > b", "b > a > a > a", "a > a"], [1, 1, 0], [1, 0, 2]))
    for x, y in zip(plain.labels, repeated.labels, strict=True):
        assert (x.label, x.share, x.removal_effect) == pytest.approx(
            (y.label, y.share, y.removal_effect))


def test_collapsed_merges_runs_within_paths_only() -> None:
    paths = Paths.from_strings(["a > a > b", "b > b", "b > a"], [0, 0, 0], [1, 1, 1])
    merged = paths.collapsed()
    assert merged.offsets.tolist() == [0, 2, 3, 5]
    assert [merged.labels[c] for c in merged.codes] == ["a", "b", "b", "b", "a"]


def test_transition_counts_weigh_paths() -> None:
    counts = transition_counts(Paths.from_strings(["a > b", "b"], [2, 0], [1, 3]))
    start, a, b, conv, null = range(5)
    # a > b: 3 journeys (2 converted), b: 3 journeys (none converted).
    assert counts[start, a] == 3 and counts[start, b] == 3
    assert counts[a, b] == 3 and counts[b, conv] == 2 and counts[b, null] == 4
    assert counts.sum() == 3 + 3 + 3 + 2 + 4
    assert conversion_probability(counts) == pytest.approx(2 / 6)  # every journey passes b
    assert conversion_probability(counts, removed=a) == pytest.approx(1 / 6)


def random_paths(seed: int, n: int, labels: int) -> Paths:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    codes = rng.integers(0, labels, int(lengths.sum())).astype(np.int32)
    conv = (rng.random(n) < 0.3).astype(float)
    return Paths(tuple(f"ch{k}" for k in range(labels)), offsets, codes, conv, 1 - conv)


def test_invariants_on_random_paths() -> None:
    paths = random_paths(1, 5000, 6)
    result = markov_attribution(paths)
    assert sum(c.share for c in result.labels) == pytest.approx(1.0)
    assert sum(c.conversions for c in result.labels) == pytest.approx(result.total_conversions)
    assert sum(c.first_touch_share for c in result.labels) == pytest.approx(1.0)
    assert sum(c.last_touch_share for c in result.labels) == pytest.approx(1.0)
    assert result.journeys == 5000
    assert all(0 <= c.removal_effect <= 1 for c in result.labels)
    json.dumps(result.to_dict())


def test_a_label_that_never_leads_to_conversion_gets_nothing() -> None:
    # "dead" only ever ends journeys without a conversion: removing it changes nothing.
    base = random_paths(2, 3000, 4)
    dead = len(base.labels)
    null_paths = np.flatnonzero(base.nulls > 0)[::3]
    lengths = np.diff(base.offsets)
    extra = np.zeros(len(base), np.int64)
    extra[null_paths] = 1
    pieces = np.split(base.codes, base.offsets[1:-1])
    codes = np.concatenate([np.append(p, dead) if e else p for p, e in zip(pieces, extra,
                                                                            strict=True)])
    paths = Paths((*base.labels, "dead"),
                  np.concatenate([[0], np.cumsum(lengths + extra)]).astype(np.int64),
                  codes.astype(np.int32), base.conversions, base.nulls)
    result = markov_attribution(paths)
    assert result.share("dead") == pytest.approx(0.0, abs=1e-12)
    assert sum(c.share for c in result.labels) == pytest.approx(1.0)


def test_aggregated_paths_give_the_same_attribution() -> None:
    paths = random_paths(3, 2000, 5)
    text, conv, null = paths.aggregated()
    assert len(text) < 2000 and conv.sum() == paths.conversions.sum()
    again = markov_attribution(Paths.from_strings(text, conv, null))
    first = markov_attribution(paths)
    assert [(c.label, round(c.share, 12)) for c in first.labels] == [
        (c.label, round(c.share, 12)) for c in again.labels]


def test_no_conversions_and_no_paths() -> None:
    none = markov_attribution(Paths.from_strings(["a > b", "b"], [0, 0], [1, 1]))
    assert none.p_conversion == 0 and all(c.share == 0 for c in none.labels)
    empty = Paths(("a",), np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0),
                  np.zeros(0))
    result = markov_attribution(empty)
    assert result.labels == () and result.total_conversions == 0
    json.dumps(result.to_dict())


@pytest.mark.parametrize(("offsets", "codes", "weights", "message"), [
    ([0, 2], [0], 1, "offsets"),
    ([0, 1, 1], [0], 2, "at least one"),
    ([0, 1], [3], 1, "index labels"),
    ([0, 1], [0], 2, "one weight per path"),
])
def test_malformed_paths_are_refused(offsets: list[int], codes: list[int], weights: int,
                                     message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Paths(("a", "b"), np.array(offsets, np.int64), np.array(codes, np.int32),
              np.ones(weights), np.zeros(weights))
