"""Spark computes the same vectors as the batch engine, and ignores events at or after T."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.batch import BatchEngine
from features.spec import load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from tests.features.engines import SIM_CUTOFF, sim_store  # noqa: F401
from tests.features.histories import CUTOFF, random_history, to_table
from tests.features.test_leakage import assert_same_vector, future

pytestmark = pytest.mark.spark


def assert_same_tables(expected: pa.Table, got: pa.Table) -> None:
    assert got.column_names == expected.column_names
    left = {r.pop("customer_id"): r for r in expected.to_pylist()}
    right = {r.pop("customer_id"): r for r in got.to_pylist()}
    assert left.keys() == right.keys()
    for customer, vector in left.items():
        assert_same_vector(vector, right[customer])


def test_spark_matches_batch_on_a_simulated_store(sim_store: Path, spark: Any) -> None:  # noqa: F811
    from features.spark import spark_features_from_store

    spec = load_spec()
    with EventStore(sim_store, read_only=True) as store:
        batch = BatchEngine(store, spec).features(SIM_CUTOFF)
        result = spark_features_from_store(store, spec, SIM_CUTOFF, spark)
    assert batch.num_rows > 1000
    assert_same_tables(batch, result)


def test_spark_matches_batch_with_repeat_conversions(sim_store: Path, spark: Any) -> None:  # noqa: F811
    """The taxonomy's repeat_conversion_stage: a later purchase signals retention in both."""
    from features.spark import spark_features_from_store

    spec = load_spec(taxonomy=replace(load_taxonomy(), repeat_conversion_stage="retention"))
    with EventStore(sim_store, read_only=True) as store:
        batch = BatchEngine(store, spec).features(SIM_CUTOFF)
        plain = BatchEngine(store, load_spec()).features(SIM_CUTOFF)
        result = spark_features_from_store(store, spec, SIM_CUTOFF, spark)
    retained = pc.sum(pc.equal(batch["stage_furthest"], 4.0)).as_py()
    assert retained > pc.sum(pc.equal(plain["stage_furthest"], 4.0)).as_py()
    assert_same_tables(batch, result)


def test_spark_matches_batch_on_hostile_histories_and_ignores_later_events(
    tmp_path: Path,
    spark: Any,
) -> None:
    """Ties, unknown types and channels, actions on customer events; then the same log with
    events at or after T appended must give Spark the same vectors."""
    from features.spark import spark_features

    spec = load_spec()
    rng = np.random.default_rng(2024)
    past = [
        e for k in range(40) for e in random_history(rng, f"c{k:02d}", int(rng.integers(1, 80)))
    ]
    later = future("c00", [(0, "purchase", "app", 10.0, None), (5, "page_view", None, None, None)])
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(to_table(past))
        batch = BatchEngine(store, spec).features(CUTOFF)
    # Spark reads Parquet in production; a pandas hop would turn missing strings into "NaN".
    pq.write_table(to_table(past + later), tmp_path / "events.parquet")
    events = spark.read.parquet(str(tmp_path / "events.parquet"))
    result = spark_features(events, spec, CUTOFF).toArrow().sort_by("customer_id")
    assert_same_tables(batch, result)


def test_spark_reads_scores_by_the_engines_rule(tmp_path: Path, spark: Any) -> None:
    """Nested, quoted and spaced keys, numeric and non-numeric text (which made Spark's ANSI
    cast fail the job), keys written twice, non-standard JSON; channel and attribute names
    with a dot or a space: Spark gives the batch engine's vectors."""
    from features.spark import spark_features_from_store
    from tests.features.test_score_values import SPEC_TEXT, _events

    path = tmp_path / "features.yaml"
    path.write_text(SPEC_TEXT + "channels: [email, web.site]\nattributes: [plan type]\n",
                    encoding="utf-8")
    spec = load_spec(path)
    events = _events()
    for e in events[::3]:
        e["channel"] = "web.site"
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(to_table(events))
        ids = sorted({e["customer_id"] for e in events})
        store.load_attributes(pa.table({"customer_id": ids, "plan type": ["a", "b"] * 13 + ["a"]}))
        batch = BatchEngine(store, spec).features(CUTOFF)
        result = spark_features_from_store(store, spec, CUTOFF, spark)
    assert pc.sum(batch["ch_web.site_30d"]).as_py() > 0
    assert set(batch["attr_plan type"].to_pylist()) == {"a", "b"}
    assert_same_tables(batch, result)


def test_a_spark_failure_is_told_in_one_line(spark: Any) -> None:
    from features.spark import spark_failure

    with pytest.raises(Exception) as err:
        spark.sql("SELECT CAST('n/a' AS DOUBLE) AS x").collect()
    short = spark_failure(err.value)
    assert short is not None
    first, hint = str(short).splitlines()
    assert first.startswith("the Spark job failed: [CAST_INVALID_INPUT] The value 'n/a'")
    assert "does not fit" in hint
    assert spark_failure(ValueError("not Spark")) is None


def test_the_jvm_runs_with_the_sessions_java_options(spark: Any) -> None:
    """``local_session``'s java_options reach the JVM it starts, beside the log config."""
    from tests.features.engines import QUICK_JIT

    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert set(QUICK_JIT) <= set(arguments)
    assert any(a.startswith("-Dlog4j2.configurationFile=") for a in arguments)
