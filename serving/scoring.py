"""Batch scoring of every customer: the served models' churn, conversion and next-stage
probabilities, the risk tier, expected value and revenue at risk (null when no conversion in
the store carries a value: no revenue is known), the customer attributes, and (when uplift
models are served) the top next-best-action, one row per customer.

The vectors come from the same kernel as online scoring, over customer chunks of the full event
arrays, so a customer's score here equals what ``/v1/predict`` answers at the same time. The
command line reads the arrays from the store (``BatchEngine.encoded``); the service from its
in-memory histories, so it can score while it is the store's writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.events import Encoder, EventArrays
from features.online import OnlineFeatures, Vectors
from features.spec import FeatureSpec
from models.contacts import sent_after
from models.lgbm import LightGBMClassifier
from models.persona_words import UNASSIGNED_NAME, persona_names, read_names
from serving.champions import ModelSet
from serving.predictor import TIERS
from serving.recommender import Recommender
from serving.segment_config import SegmentConfig

F64 = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Population:
    """Every customer's encoded events (customer-sorted, with segments) and attributes: per
    name, each customer's code (-1 none) and the values the codes index."""

    arrays: EventArrays
    attributes: dict[str, tuple[npt.NDArray[np.int32], list[str]]]

    def __len__(self) -> int:
        return self.arrays.n_customers


def chunk(arrays: EventArrays, lo: int, hi: int) -> EventArrays:
    """Customers ``lo..hi-1`` of customer-sorted arrays, recoded from 0."""
    if arrays.segments is None:
        raise ValueError("scoring needs the arrays' customer segments")
    starts, ends = arrays.segments
    s = int(starts[lo]) if hi > lo else 0
    e = int(ends[hi - 1]) if hi > lo else 0
    return EventArrays(
        arrays.customer_ids[lo:hi], arrays.cust[s:e] - np.int32(lo), arrays.ts[s:e],
        arrays.etype[s:e], arrays.channel[s:e], arrays.action[s:e], arrays.value[s:e],
        arrays.score[s:e], segments=(starts[lo:hi] - s, ends[lo:hi] - s))


def probabilities(models: ModelSet, vectors: Vectors) -> dict[str, F64]:
    """Each model's calibrated probabilities (one column per class), through the compiled
    forest on every core."""
    out: dict[str, F64] = {}
    for name, served in models.models.items():
        model = served.loaded.model
        if isinstance(model, LightGBMClassifier):
            out[name] = model.proba_batch(model.vectors_matrix(vectors))
        else:  # a baseline champion scores from records
            out[name] = np.asarray(model.predict_proba(vectors.frame()))
    return out


class BatchScorer:
    def __init__(self, spec: FeatureSpec, config: SegmentConfig, bands: tuple[float, float],
                 recommender: Recommender | None = None, names_file: Path | None = None) -> None:
        self.spec = spec
        self.config = config
        self.bands = bands
        self.online = OnlineFeatures(spec)
        self.recommender = recommender
        self.names_file = names_file  # the marketer's persona names (read at each run)

    def score(self, models: ModelSet, population: Population, as_of: datetime,
              progress: Progress | None = None, names: list[str] | None = None) -> pa.Table:
        """One row per customer of ``population`` as of ``as_of`` (its events must all be
        before it). ``names``: each persona id's name (default: ``persona_names``; a run
        passes the ones it records in the snapshot's meta)."""
        t = round(as_of.timestamp() * 1_000_000)
        mean_order = order_mean(population.arrays, self.spec)
        n = len(population)
        names = self.persona_names(models) if names is None else names
        tables = []
        for lo, hi in self._chunks(n):
            tables.append(self._chunk(models, population, lo, hi, t, as_of, mean_order, names))
            if progress is not None:
                progress(hi, n)
        return pa.concat_tables(tables) if tables else self._chunk(
            models, population, 0, 0, t, as_of, mean_order, names)

    def persona_names(self, models: ModelSet) -> list[str]:
        """Each persona id's name (the marketer's, else the model's default), then the name of
        customers with too little history; empty without a persona model."""
        if models.persona is None:
            return []
        given = read_names(self.names_file, models.persona.version) if self.names_file else {}
        return [*persona_names(models.persona.model.default_names_, given), UNASSIGNED_NAME]

    def _chunks(self, n: int) -> Iterator[tuple[int, int]]:
        size = self.config.chunk_customers
        for lo in range(0, n, size):
            yield lo, min(n, lo + size)

    def _chunk(self, models: ModelSet, pop: Population, lo: int, hi: int, t: int,
               as_of: datetime, mean_order: float | None, personas: list[str]) -> pa.Table:
        arrays = chunk(pop.arrays, lo, hi)
        names = list(pop.attributes)
        codes = {a: (c[lo:hi], vocab) for a, (c, vocab) in pop.attributes.items()}
        vectors = self.online.vectors_coded(arrays, t, codes)
        proba = probabilities(models, vectors)
        churn, conversion = proba["churn"][:, 1], proba["conversion"][:, 1]
        classes = models.models["next_stage"].target.classes
        nxt = proba["next_stage"]
        cols = self._columns(vectors)
        value = self._expected_value(cols, conversion, mean_order)
        tier = np.searchsorted(np.asarray(self.bands), churn, side="right")
        table: dict[str, pa.Array] = {
            "customer_id": pa.array(arrays.customer_ids, pa.string()),
            "stage": _categorical(cols["stage_current"], self.spec.stages),
            "tier": pa.DictionaryArray.from_arrays(pa.array(tier, pa.int32()), pa.array(TIERS)),
            "churn": pa.array(churn, pa.float64()),
            "conversion": pa.array(conversion, pa.float64()),
            "next_stage": pa.DictionaryArray.from_arrays(
                pa.array(np.argmax(nxt, axis=1), pa.int32()), pa.array(list(classes))),
            "next_stage_probability": pa.array(nxt.max(axis=1), pa.float64()),
            "expected_value": _money(value),
            "revenue_at_risk": _money(value * churn),
            # A copy: the column is a view of the chunk's whole vector matrix, which Arrow
            # would keep alive zero-copy (120 MB per 100k customers, to the end of the run).
            "recency_days": pa.array(cols["recency_days"].copy(), pa.float64()),
            "events": pa.array(np.asarray(vectors.events, np.int64)),
        }
        table["persona"], table["persona_id"] = _personas(models, vectors, personas)
        for a in names:
            c, vocab = codes[a]
            table[a] = pa.DictionaryArray.from_arrays(
                pa.array(c, pa.int32(), mask=c < 0), pa.array(vocab, pa.string()))
        action, action_value = self._actions(models, vectors, arrays, t,
                                             churn, conversion, cols["stage_current"])
        table["top_action"] = action
        table["top_action_value"] = action_value
        return pa.table(table)

    def _columns(self, vectors: Vectors) -> dict[str, F64]:
        w = self.config.value_window_days
        wanted = ("stage_current", "recency_days", f"revenue_{w}d", "avg_order_value")
        index = {name: j for j, name in enumerate(vectors.matrix.names)}
        return {name: vectors.matrix.values[:, index[name]] for name in wanted}

    def _expected_value(self, cols: dict[str, F64], conversion: F64, mean_order: float | None
                        ) -> F64:
        """Each customer's expected value; NaN for all when the store knows no revenue."""
        if mean_order is None:
            return np.full(len(conversion), np.nan)
        w = self.config.value_window_days
        rate = np.nan_to_num(cols[f"revenue_{w}d"]) / w
        aov = cols["avg_order_value"]
        aov = np.where(np.isfinite(aov) & (aov > 0), aov, mean_order)
        return rate * self.config.value_horizon_days + conversion * aov

    def _actions(self, models: ModelSet, vectors: Vectors, arrays: EventArrays, t: int,
                 churn: F64, conversion: F64, stage: F64
                 ) -> tuple[pa.Array, pa.Array]:
        """The top action of each customer (no exploration), or nulls when no recommender or
        no uplift models are served."""
        n = len(vectors)
        # No customers (a time before every event): nothing to rank, and the uplift boosters'
        # row-by-row path cannot shape an empty answer.
        if n == 0 or self.recommender is None or not models.uplift:
            return pa.nulls(n, pa.string()), pa.nulls(n, pa.float64())
        stages = stage_codes(stage, self.spec.stages)
        sent = sent_after(arrays, self.spec, t - self.recommender.catalog.horizon_us)
        top, value = self.recommender.top_actions(
            models, vectors, stages, {"churn": churn, "conversion": conversion}, sent, t)
        return pa.array(top, pa.string()), pa.array(value, pa.float64(), from_pandas=True)


def order_mean(arrays: EventArrays, spec: FeatureSpec) -> float | None:
    """The order value expected of a customer without orders of their own: the mean of the
    store's positive values. None when no conversion carries a value (a track export without
    revenue): the store knows no revenue, and a 0 would read as a real figure."""
    values = arrays.value
    conversions = Encoder(spec).conversion_of_type[arrays.etype]
    if not np.isfinite(values[conversions]).any():
        return None
    paid = values[np.isfinite(values) & (values > 0)]
    return float(paid.mean()) if len(paid) else 0.0


def _money(values: F64) -> pa.Array:
    """Money per customer, NaN (no revenue known) as null: readers show a gap, not a 0."""
    return pa.array(values, pa.float64(), from_pandas=True)


def _personas(models: ModelSet, vectors: Vectors, names: list[str]
              ) -> tuple[pa.DictionaryArray, pa.Array]:
    """Each customer's persona name and id (-1: unassigned; both null for all without a
    persona model): nearest centroid in numpy on the vectors' matrix, microseconds a customer.
    The id is what readers key on: a persona renamed after this run keeps it."""
    n = len(vectors)
    if models.persona is None:
        nulls = pa.array(np.zeros(n, np.int32), mask=np.ones(n, bool))
        return (pa.DictionaryArray.from_arrays(nulls, pa.array([], pa.string())),
                pa.nulls(n, pa.int32()))
    ids = models.persona.model.predict(vectors)
    codes = np.where(ids >= 0, ids, len(names) - 1).astype(np.int32)  # last name: unassigned
    return (pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()),
                                           pa.array(names, pa.string())),
            pa.array(np.where(ids >= 0, ids, -1).astype(np.int32), pa.int32()))


def _no_stage(codes: F64, vocab: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    """Where a stage code names no stage: NaN, or -1 for a customer whose events all map to
    none (a prospect who was only contacted), which as an index would wrap to the last stage."""
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(codes) & (codes >= 0) & (codes < len(vocab)))


def stage_codes(codes: F64, vocab: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Each stage index code as an index into ``vocab``, -1 where it names no stage."""
    return np.where(_no_stage(codes, vocab), -1, np.nan_to_num(codes)).astype(np.int64)


def _categorical(codes: F64, vocab: tuple[str, ...]) -> pa.DictionaryArray:
    """Stage index codes (NaN or -1: no stage) as a dictionary column, null without a stage."""
    missing = _no_stage(codes, vocab)
    ints = np.where(missing, 0, codes).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(ints, pa.int32(), mask=missing),
                                          pa.array(list(vocab), pa.string()))
