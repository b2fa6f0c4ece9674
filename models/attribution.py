"""Markov-chain (order 1) removal-effect attribution of conversions to touchpoint labels.

A path is one customer's ordered touchpoint labels (channels, or event types) up to their first
conversion, or all of them if they never converted; it ends in ``conversion`` or ``null``. The
chain's states are start, every label, conversion and null; transition probabilities come from
the counted transitions of all paths. P(conversion) is the absorbing probability from start,
solved exactly as a linear system (ChannelAttribution estimates the same quantity by
simulation). The removal effect of label c is 1 - P(conv | c removed) / P(conv), where removing
c sends every transition out of c to null; shares are removal effects over their sum.

Paths are held in CSR form (``offsets`` into one array of integer ``codes``) with per-path
conversion and null weights, so a million customers are counted with a few ``np.bincount``
calls and no Python loop over paths. Path strings exist only for export (peer comparisons).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.journey_kernels import path_transitions

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
SEP = " > "
COUNT_CHUNK = 1 << 20


@dataclass(frozen=True)
class Paths:
    """Paths in CSR form: path ``i`` is ``codes[offsets[i]:offsets[i + 1]]`` (codes index
    ``labels``); ``conversions[i]`` / ``nulls[i]`` are how many journeys with that path ended in
    conversion / without one (0/1 per customer; larger for aggregated paths)."""

    labels: tuple[str, ...]
    offsets: I64
    codes: I32
    conversions: F64
    nulls: F64

    def __post_init__(self) -> None:
        n = len(self.offsets) - 1
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.codes):
            raise ValueError("offsets must start at 0 and end at len(codes)")
        if len(self.conversions) != n or len(self.nulls) != n:
            raise ValueError("conversions and nulls need one weight per path")
        if n and np.any(np.diff(self.offsets) <= 0):
            raise ValueError("every path needs at least one touchpoint")
        if len(self.codes) and (self.codes.min() < 0 or self.codes.max() >= len(self.labels)):
            raise ValueError("codes must index labels")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_strings(
        cls,
        paths: Sequence[str],
        conversions: Sequence[float] | F64,
        nulls: Sequence[float] | F64,
        sep: str = ">",
    ) -> Paths:
        """Paths written as ``"a > b > c"`` (labels are stripped), with their weights."""
        split = [[p.strip() for p in path.split(sep)] for path in paths]
        labels = tuple(sorted({label for path in split for label in path}))
        code = {label: i for i, label in enumerate(labels)}
        lengths = np.array([len(path) for path in split], np.int64)
        return cls(
            labels=labels,
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            codes=np.array([code[x] for path in split for x in path], np.int32),
            conversions=np.asarray(conversions, np.float64),
            nulls=np.asarray(nulls, np.float64),
        )

    def collapsed(self) -> Paths:
        """Consecutive repeats of a label merged (``a > a > b`` -> ``a > b``)."""
        keep = np.zeros(len(self.codes), bool)
        keep[self.offsets[:-1][self.offsets[:-1] < len(keep)]] = True  # each path's first
        keep[1:] |= self.codes[1:] != self.codes[:-1]
        kept = np.flatnonzero(keep)
        # A path's new offset is the count of kept events before its old one: a binary search
        # in the kept positions (a running count would be 8 bytes an event).
        return Paths(self.labels, np.searchsorted(kept, self.offsets).astype(np.int64),
                     self.codes[kept], self.conversions, self.nulls)

    def aggregated(self) -> tuple[list[str], F64, F64]:
        """Distinct paths as ``"a > b"`` strings with summed conversions and nulls: the input
        format of ChannelAttribution. For export; loops in Python over the paths."""
        text = [SEP.join(self.labels[c] for c in self.codes[a:b])
                for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist(), strict=True)]
        unique, inverse = np.unique(np.array(text, dtype=object), return_inverse=True)
        conv = weighted_count(inverse, self.conversions, len(unique))
        null = weighted_count(inverse, self.nulls, len(unique))
        return [str(u) for u in unique], conv, null


@dataclass(frozen=True)
class LabelCredit:
    label: str
    removal_effect: float
    share: float  # removal effect / sum of removal effects
    conversions: float  # share x total conversions
    first_touch_share: float
    last_touch_share: float
    touchpoints: float  # occurrences in all paths (before merging repeats), weighted


@dataclass(frozen=True)
class Attribution:
    journeys: float  # paths, weighted (aggregated paths count several journeys)
    total_conversions: float
    total_null: float
    p_conversion: float  # absorbing probability of conversion from start
    labels: tuple[LabelCredit, ...]  # by share, largest first

    def share(self, label: str) -> float:
        return next((c.share for c in self.labels if c.label == label), 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "markov",
            "order": 1,
            "journeys": _num(self.journeys),
            "total_conversions": _num(self.total_conversions),
            "total_null": _num(self.total_null),
            "p_conversion": round(self.p_conversion, 6),
            "labels": [
                {
                    "label": c.label,
                    "removal_effect": round(c.removal_effect, 6),
                    "share": round(c.share, 6),
                    "conversions": round(c.conversions, 3),
                    "first_touch_share": round(c.first_touch_share, 6),
                    "last_touch_share": round(c.last_touch_share, 6),
                    "touchpoints": _num(c.touchpoints),
                }
                for c in self.labels
            ],
        }


def weighted_count(index: npt.NDArray[np.integer[Any]], weights: F64, n: int) -> F64:
    """Sum of ``weights`` per value of ``index`` in 0..n-1 (``np.bincount`` with weights)."""
    out: F64 = np.bincount(index, weights, n).astype(np.float64, copy=False)
    return out


def code_counts(codes: npt.NDArray[np.integer[Any]], n: int) -> npt.NDArray[np.int64]:
    """``np.bincount(codes, minlength=n)`` a million codes at a time: bincount first copies
    int32 codes to int64, 8 bytes a touchpoint (180 MB at 1M customers)."""
    out = np.zeros(n, np.int64)
    for i in range(0, len(codes), COUNT_CHUNK):
        out += np.bincount(codes[i:i + COUNT_CHUNK], minlength=n)
    return out


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 3)


def transition_counts(paths: Paths) -> F64:
    """Weighted transition counts between states 0 start, 1..L labels, L+1 conversion,
    L+2 null, as an (L+3) x (L+3) matrix; paths are expected collapsed."""
    size = len(paths.labels) + 3
    # One compiled pass: the NumPy form built five int64 arrays of a touchpoint's size (400 MB
    # for the event-type paths of 1M customers).
    counts = path_transitions(paths.codes, paths.offsets, paths.conversions, paths.nulls, size)
    return counts.reshape(size, size)


def conversion_probability(counts: F64, removed: int | None = None) -> float:
    """P(absorbed in conversion | start) of the chain with transition ``counts``; ``removed``
    (a state) has all its transitions sent to null."""
    size = counts.shape[0]
    conv = size - 2
    totals = counts.sum(axis=1, keepdims=True)
    probs = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    if removed is not None:
        probs[removed] = 0.0  # the rest of the row's mass goes to null, which pays nothing
    transient = slice(0, conv)
    q = probs[transient, transient]
    r = probs[transient, conv]
    # Every visited state can reach absorption along some observed path, so I - Q is regular.
    x = np.linalg.solve(np.eye(conv) - q, r)
    return float(x[0])


def markov_attribution(paths: Paths) -> Attribution:
    """Order-1 removal-effect attribution, with first/last-touch shares for comparison."""
    # ChannelAttribution's markov_model (2.2.5, order 1) drops self-transitions: for
    # "a > a > b" its transition matrix has a -> b and no a -> a (checked against its
    # out_more=True output). Merging consecutive repeats gives the same counts; and an order-1
    # chain's absorbing probabilities ignore self-loops anyway, so both agree on any input.
    chain = paths.collapsed()
    counts = transition_counts(chain)
    total_conv = float(paths.conversions.sum())
    total_null = float(paths.nulls.sum())
    p_conv = conversion_probability(counts) if total_conv > 0 else 0.0
    n_labels = len(paths.labels)
    removal = np.zeros(n_labels)
    if p_conv > 0:
        for k in range(n_labels):
            removal[k] = max(0.0, 1.0 - conversion_probability(counts, k + 1) / p_conv)
    total_removal = removal.sum()
    shares = removal / total_removal if total_removal > 0 else np.zeros(n_labels)
    first, last, touches = _heuristics(paths, total_conv)
    seen = code_counts(paths.codes, n_labels) > 0
    credits = [
        LabelCredit(paths.labels[k], float(removal[k]), float(shares[k]),
                    float(shares[k] * total_conv), float(first[k]), float(last[k]),
                    float(touches[k]))
        for k in np.flatnonzero(seen)
    ]
    credits.sort(key=lambda c: (-c.share, c.label))
    return Attribution(float(paths.conversions.sum() + paths.nulls.sum()), total_conv,
                       total_null, p_conv, tuple(credits))


def _heuristics(paths: Paths, total_conv: float) -> tuple[F64, F64, F64]:
    """First- and last-touch shares of conversions, and weighted touchpoint counts."""
    n_labels = len(paths.labels)
    weight = paths.conversions + paths.nulls
    if np.all(weight == 1):
        touches = code_counts(paths.codes, n_labels).astype(np.float64)
    else:
        touches = weighted_count(paths.codes, np.repeat(weight, np.diff(paths.offsets)),
                                 n_labels)
    if not len(paths) or total_conv <= 0:
        return np.zeros(n_labels), np.zeros(n_labels), touches
    first = weighted_count(paths.codes[paths.offsets[:-1]], paths.conversions, n_labels)
    last = weighted_count(paths.codes[paths.offsets[1:] - 1], paths.conversions, n_labels)
    return first / total_conv, last / total_conv, touches
