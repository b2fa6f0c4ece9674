"""A scoring run: every customer's scores, the journey map and the KPIs (overall, by persona,
stage, customer attribute and month) as of one time, written as a new snapshot that segments,
the KPIs and the dashboard read. ``journey score`` runs it on the event store;
the running service runs it on its in-memory histories (``POST /v1/admin/score``), because it
holds the store's only write lock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from features.batch import BatchEngine, joined_ranges, micros
from features.events import EventArrays
from features.history import HistoryIndex
from features.spec import FeatureSpec
from features.store import EventStore
from models.backtest import DEFINITION_TAGS
from models.journey_map import JourneyMapParams, journey_map_and_kpis, load_params
from models.kpis import Grouping
from serving.champions import ModelSet
from serving.scoring import BatchScorer, Population
from serving.segment_config import SegmentConfig
from serving.segments_personas import NAMES_FILE_META, NAMES_META, PERSONA_ID
from serving.snapshots import Snapshot, write_snapshot
from serving.utc import iso_z


@dataclass(frozen=True)
class ScoreRun:
    spec: FeatureSpec
    config: SegmentConfig
    scorer: BatchScorer
    root: Path  # where snapshots go
    log: Callable[[str], None] = field(default=lambda _: None)
    # The journey map's and KPIs' (JOURNEY_JOURNEY_MAP_CONFIG; default: the packaged file).
    params: JourneyMapParams = field(default_factory=lambda: load_params(None))

    def run(self, models: ModelSet, population: Population, as_of: datetime,
            source: str, publish: bool = False) -> Snapshot:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        names = self.scorer.persona_names(models)  # read once: the table and meta agree
        table = self.scorer.score(models, population, as_of, self._progress, names)
        timings["score_seconds"] = round(time.perf_counter() - started, 3)
        began = time.perf_counter()
        jmap, kpis = journey_map_and_kpis(population.arrays, self.spec, micros(as_of),
                                          self.params,
                                          kpi_groups(table, self.config, names))
        timings["journey_map_seconds"] = round(time.perf_counter() - began, 3)  # with KPIs
        meta: dict[str, Any] = {
            "as_of": iso_z(as_of),  # in UTC whatever offset it came with (serving.utc)
            "customers": table.num_rows, "events": len(population.arrays),
            "source": source, "models": models.versions(),
            "definitions": definitions(models),  # what the live backtest scores them against
            "feature_definition_hash": self.spec.hash, "risk_bands": list(self.scorer.bands),
            "dimensions": list(self.config.dimensions),
            "actions": table["top_action"].null_count < table.num_rows,
            # False: no conversion carried a value, so every money figure is null.
            "values_known": table["expected_value"].null_count < table.num_rows
            or not table.num_rows,
            "value": {"window_days": self.config.value_window_days,
                      "horizon_days": self.config.value_horizon_days},
            **self._persona_meta(names),
            **timings,
        }
        began = time.perf_counter()
        snap = write_snapshot(self.root, table, jmap.to_dict(), meta,
                              self.config.keep_snapshots, kpis, publish)
        snap.meta["write_seconds"] = round(time.perf_counter() - began, 3)
        return snap

    def _persona_meta(self, names: list[str]) -> dict[str, Any]:
        """Each persona id's name as scored, and where renames are read: readers show the
        names a marketer gives later (segments_personas), keyed by the ids."""
        if not names:
            return {}
        where = self.scorer.names_file
        return {NAMES_META: names, **({NAMES_FILE_META: str(where)} if where else {})}

    def _progress(self, done: int, total: int) -> None:
        self.log(f"scored {done:,} of {total:,} customers")


def definitions(models: ModelSet) -> dict[str, dict[str, str]]:
    """Each served model's horizon and label definition, from its registry tags."""
    return {name: {k: s.loaded.tags[t] for k, t in DEFINITION_TAGS.items() if t in s.loaded.tags}
            for name, s in models.models.items()}


def kpi_groups(table: pa.Table, config: SegmentConfig, personas: list[str] | None = None
               ) -> dict[str, Grouping]:
    """The snapshot's columns KPIs are grouped by (rows in the population's customer order):
    persona (when a persona model scored; its rows name their id), stage and the customer
    attributes."""
    out = {}
    if personas and PERSONA_ID in table.column_names:
        ids = table[PERSONA_ID].fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int64)
        k = len(personas) - 1  # the last name is the unassigned customers'
        out["persona"] = Grouping(np.where(ids == -1, k, np.where(ids < -1, -1, ids)),
                                  tuple(personas), (*range(k), -1))
    for name in ("persona", "stage", *config.attributes):
        if name in out or name not in table.column_names \
                or table[name].null_count == table.num_rows:
            continue
        arr = table[name].combine_chunks()  # one dictionary for every chunk
        codes = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        out[name] = Grouping(codes, tuple(str(v) for v in arr.dictionary.to_pylist()))
    return out


def population_from_store(store: EventStore, spec: FeatureSpec, config: SegmentConfig,
                          as_of: datetime) -> Population:
    """Every customer with an event before ``as_of``, from the store."""
    arrays, keys = BatchEngine(store, spec).encoded(as_of)
    by_key = store.attributes_by_key(config.attributes)
    attrs = {}
    for name in config.attributes:
        codes, vocab = by_key.get(name, (np.zeros(0, np.int32), None))
        mine = np.full(len(keys), -1, np.int32)
        inside = keys < len(codes)
        mine[inside] = codes[keys[inside]]
        attrs[name] = (mine, [str(v) for v in vocab.to_pylist()] if vocab is not None else [])
    return Population(arrays, attrs)


# Customers per part of a population sent to the score worker: ~1.6M events at 1M customers
# (60 MB wide), where the whole population (38 bytes an event, 1.2 GB) used to be built in the
# service and pickled at once.
PART_CUSTOMERS = 50_000


def population_from_history(history: HistoryIndex, config: SegmentConfig,
                            cutoff_us: int) -> Population:
    """Every customer of the service's histories with an event before ``cutoff_us``."""
    return _population_of(history, config, history.customer_ids(), cutoff_us)


def population_parts(history: HistoryIndex, config: SegmentConfig, cutoff_us: int,
                     size: int = PART_CUSTOMERS) -> Iterator[Population]:
    """``population_from_history`` in parts of ``size`` customers (in the histories' order;
    at least one part, maybe empty), each gathered when asked for: what the score worker is
    sent, so the service holds one part at a time."""
    ids = history.customer_ids()
    for lo in range(0, max(len(ids), 1), size):
        yield _population_of(history, config, ids[lo:lo + size], cutoff_us)


def _population_of(history: HistoryIndex, config: SegmentConfig, customer_ids: list[str],
                   cutoff_us: int) -> Population:
    arrays = without_empty(history.many(customer_ids, cutoff_us))
    ids = arrays.customer_ids
    attrs = {}
    key_of = history.attributes.key_of
    keys = np.array([key_of.get(c, -1) for c in ids], np.int64)
    for name in config.attributes:
        codes, vocab = history.attributes.columns.get(name, (np.zeros(0, np.int32), []))
        mine = np.full(len(ids), -1, np.int32)
        inside = (keys >= 0) & (keys < len(codes))
        mine[inside] = codes[keys[inside]]
        attrs[name] = (mine, list(vocab))
    return Population(arrays, attrs)


def joined(parts: list[Population]) -> Population:
    """Parts of a population as one (customer codes and segments renumbered), emptying
    ``parts``: each part is let go once copied, so the peak is the whole plus one part."""
    if len(parts) == 1:
        return parts.pop()
    if not parts:
        raise ValueError("a population needs at least one part")
    total = sum(len(p.arrays) for p in parts)
    attrs = {name: (np.concatenate([p.attributes[name][0] for p in parts]),
                    parts[-1].attributes[name][1]) for name in parts[-1].attributes}
    no_keys = np.zeros(0, np.int64)  # store keys: a population has none to carry

    def drained() -> Iterator[tuple[EventArrays, np.ndarray]]:
        while parts:
            yield parts.pop(0).arrays, no_keys

    arrays, _ = joined_ranges(drained(), total)
    return Population(arrays, attrs)


def without_empty(arrays: EventArrays) -> EventArrays:
    """``arrays`` without the customers who have no event (first seen after the cutoff: not
    yet customers). Their segments are empty, so the events stay as they are and only the
    customer codes are renumbered: no second gather of every event (38 bytes each)."""
    assert arrays.segments is not None
    starts, ends = arrays.segments
    keep = ends > starts
    if keep.all():
        return arrays
    code = (np.cumsum(keep) - 1).astype(np.int32)
    return replace(
        arrays, customer_ids=[c for c, k in zip(arrays.customer_ids, keep.tolist(), strict=True)
                              if k],
        cust=code[arrays.cust], segments=(starts[keep], ends[keep]))
