"""Spark on a raw Parquet log spells its fields as the file loader stores them: channel and
event type trimmed and lower-cased ("Email " is email, " Add to Cart" is add_to_cart), a blank
action is none and a padded one trimmed, a NaN value is missing. It used to count them as
other channels, unknown types and actions, and NaN revenue."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.batch import BatchEngine
from features.mapping import identity_mapping
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from tests.features.test_leakage import assert_same_vector

pytestmark = pytest.mark.spark
T = datetime(2024, 2, 1, tzinfo=UTC)


def raw_log(values: list[float | None]) -> pa.Table:
    n = len(values)
    return pa.table({
        "event_id": [f"r{i}" for i in range(n)],
        "customer_id": ["a", "a", "a", "b", "b", "b"][:n],
        "ts": pa.array([datetime(2024, 1, 1 + i, tzinfo=UTC) for i in range(n)],
                       pa.timestamp("us", "UTC")),
        "event_type": ["purchase", " Purchase", "Add to Cart", "product-view", "purchase",
                       "page_view"][:n],
        "channel": ["Email ", "email", "\tSEARCH", None, " ", "app"][:n],
        "value": pa.array(values, pa.float64()),
        "action": [None, "", " discount_email ", "\t", "loyalty_offer\n", None][:n],
        "properties": pa.array([None] * n, pa.string()),
    })


def test_spark_on_a_raw_log_gives_the_loaded_stores_vectors(tmp_path: Path,
                                                            spark: Any) -> None:
    from features.spark import spark_features

    spec = load_spec()
    log = raw_log([1.0, 10.0, None, None, 5.0, None])
    pq.write_table(log, tmp_path / "raw.parquet")
    with EventStore(tmp_path / "s.duckdb") as store:
        report = store.ingest(tmp_path / "raw.parquet", identity_mapping(), load_taxonomy())
        assert report.load.valid == 6
        batch = {r.pop("customer_id"): r for r in BatchEngine(store, spec).features(T).to_pylist()}
    got = spark_features(spark.read.parquet(str(tmp_path / "raw.parquet")), spec, T).toArrow()
    other = {r.pop("customer_id"): r for r in got.to_pylist()}
    assert other.keys() == batch.keys() == {"a", "b"}
    for customer, vector in batch.items():
        assert_same_vector(other[customer], vector)
    assert batch["a"]["ch_email_90d"] == 2 and batch["a"]["purchases_total"] == 2
    assert batch["b"]["act_loyalty_offer_90d"] == 1 and batch["a"]["actions_30d"] == 1


def test_a_log_s_own_columns_do_not_clash_with_the_engine_s(tmp_path: Path, spark: Any) -> None:
    """Extra columns named as the query's own steps name theirs are left out, not ambiguous."""
    from features.spark import spark_features

    spec = load_spec()
    log = raw_log([1.0, 10.0, None, None, 5.0, None])
    clashing = ("t", "stage", "age", "session", "pos", "etype", "responded", "gap", "conv")
    extra = log
    for name in clashing:
        extra = extra.append_column(name, pa.array(["x"] * log.num_rows))
    pq.write_table(log, tmp_path / "raw.parquet")
    pq.write_table(extra, tmp_path / "extra.parquet")
    plain, other = (spark_features(spark.read.parquet(str(tmp_path / f)), spec, T).toArrow()
                    for f in ("raw.parquet", "extra.parquet"))
    assert other.column_names == plain.column_names
    left, right = ({r.pop("customer_id"): r for r in t.to_pylist()} for t in (plain, other))
    assert left.keys() == right.keys() == {"a", "b"}
    for customer, vector in left.items():
        assert_same_vector(right[customer], vector)


def test_a_nan_value_is_missing_in_spark(tmp_path: Path, spark: Any) -> None:
    from features.spark import spark_features

    pq.write_table(raw_log([math.nan, 10.0]), tmp_path / "raw.parquet")
    got = spark_features(spark.read.parquet(str(tmp_path / "raw.parquet")), load_spec(), T)
    row = got.toArrow().to_pylist()[0]
    assert row["revenue_total"] == 10.0 and row["purchases_total"] == 2


def test_a_spark_snapshot_has_the_batch_engines_column_types(tmp_path: Path,
                                                             spark: Any) -> None:
    """Categorical and attribute columns were plain strings from Spark and dictionaries from
    DuckDB; `journey features --engine spark` writes to the same snapshot folder."""
    from features.spark import spark_features_from_store

    path = tmp_path / "features.yaml"
    path.write_text("attributes: [region, plan]\n", encoding="utf-8")
    spec = load_spec(path)
    pq.write_table(raw_log([1.0, 10.0, None, None, 5.0, None]), tmp_path / "raw.parquet")
    with EventStore(tmp_path / "s.duckdb") as store:
        store.ingest(tmp_path / "raw.parquet", identity_mapping(), load_taxonomy())
        store.load_attributes(pa.table({"customer_id": ["a"], "region": ["west"]}))
        batch = BatchEngine(store, spec).features(T)
        got = spark_features_from_store(store, spec, T, spark)
    assert got.schema == batch.schema
    assert pa.types.is_dictionary(got.schema.field("attr_plan").type)
    assert got["attr_region"].to_pylist() == ["west", None]
    assert got["last_channel"].to_pylist() == batch["last_channel"].to_pylist()
