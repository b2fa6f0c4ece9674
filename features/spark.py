"""Features on Apache Spark: the spec's families expressed in Spark SQL, for logs that outgrow
one machine. Same definitions as the compiled kernel (docs/features.md); parity is tested.

Events are read from Parquet in the event contract (partitioned by date or not), their fields
spelled as the loader stores them (``features.spark_input``); the embedded store can be
exported to Parquet for a parity check (``spark_features_from_store``).
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from features.events import Encoder
from features.layout import CATEGORICAL, layout
from features.spark_input import normalised_events
from features.spark_session import SparkJobError, local_session, spark_failure
from features.spec import DAY_US, SCORE_NUMBER, FeatureSpec, ScoreSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["SparkJobError", "local_session", "spark_failure", "spark_features",
           "spark_features_from_store"]

US_PER_MIN = 60_000_000
# SCORE_NUMBER for Java's find(): anchored at both ends; \z, as $ would let a final newline in.
_JAVA_NUMBER = f"^(?:{SCORE_NUMBER})\\z"


def _col(name: str) -> Column:
    """A column by its exact name: a dot, space or backtick in a name from the spec (a channel
    such as google.com, an attribute) is part of the name, not syntax."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _score(s: ScoreSpec) -> Column:
    """The event's score by the rule of every engine (features.spec.SCORE_NUMBER, finite):
    the text at the key's path; a non-number is missing, never an error (try_cast)."""
    from pyspark.sql import functions as F

    # Dot notation: Spark reads a name up to the next dot or bracket, quotes and spaces
    # included; features.spec.key_problem keeps out what it cannot read.
    text = F.get_json_object(F.col("properties"), "$." + ".".join(s.path))
    number = F.when(text.rlike(_JAVA_NUMBER), text.try_cast("double"))
    finite = ~F.isnan(number) & (F.abs(number) != F.lit(float("inf")))
    return F.when((F.col("event_type") == s.event_type) & finite, number)


def _lookup(mapping: dict[str, int], column: Column, default: int) -> Column:
    from pyspark.sql import functions as F

    pairs: list[Column] = []
    for name, code in mapping.items():
        pairs += [F.lit(name), F.lit(code)]
    return F.coalesce(F.create_map(*pairs)[column], F.lit(default)) if pairs else F.lit(default)


def _encoded(events: DataFrame, spec: FeatureSpec, enc: Encoder, cutoff_us: int) -> DataFrame:
    from pyspark.sql import functions as F

    stage = {t: int(enc.stage_of_type[c]) for t, c in enc.etype.items()}
    conv = set(spec.taxonomy.conversion_event_types)
    df = (
        # Spelled as the loader stores them; a blank action is then none, as in every engine
        # (features.normalize.normal_action).
        normalised_events(events)
        .withColumn("t", F.unix_micros(F.col("ts")))
        .where(F.col("t") < F.lit(cutoff_us))
        .withColumn("etype", _lookup(enc.etype, F.col("event_type"), -1))
        .withColumn("stage", _lookup(stage, F.col("event_type"), -1))
        .withColumn("conv", F.col("event_type").isin(list(conv)))
        .withColumn(
            "chan", _lookup(enc.channel, F.coalesce(F.col("channel"), F.lit("")), enc.other_channel)
        )
        .withColumn(
            "act",
            F.when(F.col("action").isNull(), F.lit(-1)).otherwise(
                _lookup(enc.action, F.col("action"), enc.other_action)
            ),
        )
        .withColumn("age", F.lit(cutoff_us) - F.col("t"))
    )
    for i, s in enumerate(spec.scores):
        df = df.withColumn(f"score_{i}", _score(s))
    return _repeat_conversions(df, spec.taxonomy.repeat_stage_index)


def _repeat_conversions(df: DataFrame, repeat: int) -> DataFrame:
    """The taxonomy's repeat_conversion_stage: a conversion later than the customer's first
    signals that stage when it is further on (as the kernel's loop does)."""
    if repeat < 0:
        return df
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = F.min(F.when(F.col("conv"), F.col("t"))).over(Window.partitionBy("customer_id"))
    repeat_conv = (F.col("conv") & (F.col("stage") >= 0) & (F.col("stage") < repeat)
                   & (F.col("t") > first))
    return df.withColumn("stage", F.when(repeat_conv, F.lit(repeat)).otherwise(F.col("stage")))


def _order(spec: FeatureSpec) -> list[Column]:
    from pyspark.sql import functions as F

    keys = [
        F.col("t"),
        F.col("etype"),
        F.col("chan"),
        F.col("act"),
        F.col("value").asc_nulls_last(),
    ]
    return keys + [F.col(f"score_{i}").asc_nulls_last() for i in range(len(spec.scores))]


def _per_event(df: DataFrame, spec: FeatureSpec) -> list[Column]:
    """Aggregates over every event before T (counts, RFM, actions, scores, last touch)."""
    from pyspark.sql import functions as F

    names = spec.event_types
    aggs: list[Column] = [
        F.min("t").alias("first_t"),
        F.max(F.when(F.col("stage") >= 0, F.col("t"))).alias("last_beh_t"),
        F.max(F.when(F.col("conv"), F.col("t"))).alias("last_conv_t"),
        F.max(F.when(F.col("act") >= 0, F.col("t"))).alias("last_act_t"),
    ]
    money = F.when(F.col("conv") & F.col("value").isNotNull(), F.col("value")).otherwise(0.0)
    beh = F.col("stage") >= 0

    def count(cond: Column, name: str) -> None:
        aggs.append(F.sum(F.when(cond, 1.0).otherwise(0.0)).alias(name))

    for w in spec.windows_days:
        inside = F.col("age") <= F.lit(w * DAY_US)
        count(inside & beh, f"events_{w}d")
        count(inside & F.col("conv"), f"purchases_{w}d")
        aggs.append(F.sum(F.when(inside, money).otherwise(0.0)).alias(f"revenue_{w}d"))
        for k, t in enumerate(names):
            count(inside & (F.col("etype") == k), f"n_{t}_{w}d")
        for k, st in enumerate(spec.stages):
            count(inside & (F.col("stage") == k), f"st_{st}_{w}d")
        for k, c in enumerate(spec.channel_vocab):
            count(inside & (F.col("chan") == k), f"ch_{c}_{w}d")
        before = (F.col("age") > F.lit(w * DAY_US)) & (F.col("age") <= F.lit(2 * w * DAY_US))
        count(before & beh, f"_before_{w}d")
        count(inside & (F.col("act") >= 0), f"actions_{w}d")
    widest = spec.windows_days[-1]
    for k, a in enumerate(spec.action_vocab):
        count((F.col("age") <= F.lit(widest * DAY_US)) & (F.col("act") == k), f"act_{a}_{widest}d")
    count(beh, "events_total")
    count(F.col("conv"), "purchases_total")
    aggs.append(F.sum(money).alias("revenue_total"))
    count(F.col("act") >= 0, "_n_actions")
    count(F.col("responded"), "action_responses")
    for i, s in enumerate(spec.scores):
        has = (F.col("etype") == spec.event_types.index(s.event_type)) & F.col(
            f"score_{i}"
        ).isNotNull()
        count(has, f"{s.name}_count")
        aggs.append(F.sum(F.when(has, F.col(f"score_{i}")).otherwise(0.0)).alias(f"_{s.name}_sum"))
        aggs.append(
            F.max_by(F.when(has, F.col(f"score_{i}")), F.when(has, F.col("pos"))).alias(
                f"{s.name}_last"
            )
        )
        if s.low is not None:
            count(has & (F.col(f"score_{i}") <= F.lit(s.low)), f"{s.name}_low")
    aggs.append(F.max_by("etype", "pos").alias("_last_etype"))
    aggs.append(F.max_by("chan", "pos").alias("_last_chan"))
    return aggs


def _own_events(df: DataFrame, spec: FeatureSpec) -> DataFrame:
    """The customer's own (stage-bearing) events with the previous one's time and stage, the
    gap to it, and the session and stage run each event belongs to or starts."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("customer_id").orderBy("pos")
    return (
        df.where(F.col("stage") >= 0)
        .withColumn("prev_t", F.lag("t").over(w))
        .withColumn("prev_stage", F.lag("stage").over(w))
        .withColumn("gap", (F.col("t") - F.col("prev_t")) / F.lit(float(DAY_US)))
        .withColumn(
            "new_session",
            F.col("prev_t").isNull()
            | (F.col("t") - F.col("prev_t") > F.lit(int(spec.session_gap_minutes * US_PER_MIN))),
        )
        .withColumn(
            "run_start", F.col("prev_stage").isNull() | (F.col("stage") != F.col("prev_stage"))
        )
        .withColumn(
            "session",
            F.sum(F.col("new_session").cast("int")).over(
                w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
        )
    )


def _sessions(own: DataFrame, spec: FeatureSpec) -> DataFrame:
    from pyspark.sql import functions as F

    sessions = own.groupBy("customer_id", "session").agg(
        F.min("t").alias("s_start"),
        F.max("t").alias("s_end"),
        F.count("*").alias("s_size"),
        F.min("age").alias("_min_age"),
        F.max("age").alias("s_age"),
    )
    sess_aggs = [
        F.count("*").cast("double").alias("sessions_total"),
        F.avg(F.col("s_size").cast("double")).alias("session_events_mean"),
        F.avg((F.col("s_end") - F.col("s_start")) / F.lit(float(US_PER_MIN))).alias(
            "session_minutes_mean"
        ),
        F.when(
            F.count("*") > 1,
            (F.max("s_start") - F.min("s_start")) / F.lit(float(DAY_US)) / (F.count("*") - 1),
        ).alias("days_between_sessions"),
    ]
    sess_aggs += [
        F.sum(F.when(F.col("s_age") <= F.lit(w_ * DAY_US), 1.0).otherwise(0.0)).alias(
            f"sessions_{w_}d"
        )
        for w_ in spec.windows_days
    ]
    return sessions.groupBy("customer_id").agg(*sess_aggs)


def _stage_and_gaps(own: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return own.groupBy("customer_id").agg(
        F.max_by("stage", "pos").cast("double").alias("stage_current"),
        F.max("stage").cast("double").alias("stage_furthest"),
        F.max_by(
            F.when(F.col("run_start"), F.col("t")), F.when(F.col("run_start"), F.col("pos"))
        ).alias("_run_start_t"),
        F.sum(F.when(F.col("stage") < F.col("prev_stage"), 1.0).otherwise(0.0)).alias(
            "stage_regressions"
        ),
        F.avg("gap").alias("gap_mean_days"),
        F.stddev_pop("gap").alias("gap_std_days"),
        F.max("gap").alias("gap_max_days"),
        F.max_by("gap", F.when(F.col("gap").isNotNull(), F.col("pos"))).alias("gap_last_days"),
    )


def _behavioural(df: DataFrame, spec: FeatureSpec) -> DataFrame:
    """Stage, gap and session families over the customer's own (stage-bearing) events."""
    own = _own_events(df, spec)
    return _stage_and_gaps(own).join(_sessions(own, spec), "customer_id", "outer")


def spark_features(
    events: DataFrame, spec: FeatureSpec, cutoff: datetime, attributes: DataFrame | None = None
) -> DataFrame:
    """One row per customer with an event before ``cutoff``; columns as the batch engine's."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from features.batch import micros

    enc = Encoder(spec)
    cutoff_us = micros(cutoff)
    df = _encoded(events, spec, enc, cutoff_us)
    w = Window.partitionBy("customer_id").orderBy(*_order(spec))
    df = df.withColumn("pos", F.row_number().over(w))
    after = (
        Window.partitionBy("customer_id").orderBy("pos").rowsBetween(1, Window.unboundedFollowing)
    )
    next_own = F.min(F.when(F.col("stage") >= 0, F.col("t"))).over(after)
    df = df.withColumn(
        "responded",
        (F.col("act") >= 0)
        & next_own.isNotNull()
        & (next_own - F.col("t") <= F.lit(int(spec.response_window_hours * 3_600_000_000))),
    )
    out = (
        df.groupBy("customer_id")
        .agg(*_per_event(df, spec))
        .join(_behavioural(df, spec), "customer_id", "left")
    )
    return _finish(out, spec, cutoff_us, attributes)


def _finish(
    out: DataFrame, spec: FeatureSpec, cutoff_us: int, attributes: DataFrame | None
) -> DataFrame:
    from pyspark.sql import functions as F

    def days_since(col: str) -> Column:
        return (F.lit(cutoff_us) - F.col(col)) / F.lit(float(DAY_US))

    def ratio(num: Column, den: Column) -> Column:
        return F.when(den > 0, num / den)

    derived: dict[str, Column] = {
        "tenure_days": days_since("first_t"),
        "recency_days": days_since("last_beh_t"),
        "purchase_recency_days": days_since("last_conv_t"),
        "avg_order_value": ratio(F.col("revenue_total"), F.col("purchases_total")),
        "days_in_stage": days_since("_run_start_t"),
        "days_since_action": days_since("last_act_t"),
        "action_response_rate": ratio(F.col("action_responses"), F.col("_n_actions")),
    }
    for w in spec.windows_days:
        derived[f"trend_events_{w}d"] = (F.col(f"events_{w}d") + 1.0) / (
            F.col(f"_before_{w}d") + 1.0
        )
    for s in spec.scores:
        derived[f"{s.name}_mean"] = ratio(_col(f"_{s.name}_sum"), _col(f"{s.name}_count"))
    zero_if_missing = {
        "stage_regressions",
        "sessions_total",
        *[f"sessions_{w}d" for w in spec.windows_days],
    }
    types = F.array(*[F.lit(t) for t in spec.event_types])
    chans = F.array(*[F.lit(c) for c in spec.channel_vocab])
    cols: list[Column] = [F.col("customer_id")]
    for name in layout(spec).names:
        col = derived.get(name, _col(name))
        if name in zero_if_missing:
            col = F.coalesce(col, F.lit(0.0))
        if name in ("stage_current", "stage_furthest"):
            col = F.coalesce(col, F.lit(-1.0))
        # Undefined numbers are NaN, as in the kernel (Spark's conditionals give null).
        cols.append(F.coalesce(col.cast("double"), F.lit(float("nan"))).alias(name))
    cols += [
        F.when(F.col("_last_etype") >= 0, F.element_at(types, F.col("_last_etype") + 1)).alias(
            "last_event_type"
        ),
        F.element_at(chans, F.col("_last_chan") + 1).alias("last_channel"),
    ]
    result = out.select(*cols)
    if spec.attributes:
        if attributes is None:
            for a in spec.attributes:
                result = result.withColumn(f"attr_{a}", F.lit(None).cast("string"))
        else:
            picks = [_col(a).cast("string").alias(f"attr_{a}") for a in spec.attributes]
            result = result.join(attributes.select("customer_id", *picks), "customer_id", "left")
    return result


def spark_features_from_store(
    store: Any, spec: FeatureSpec, cutoff: datetime, spark: SparkSession | None = None
) -> pa.Table:
    """Export the store's events before ``cutoff`` to Parquet and compute them on Spark."""
    session = spark or local_session()
    with tempfile.TemporaryDirectory(prefix="journey-spark-") as tmp:
        store.con.execute(
            f"COPY (SELECT event_id, customer_id, ts, event_type, channel, value, "
            f"action, properties FROM events WHERE ts < ?) TO '{tmp}/events.parquet' "
            "(FORMAT parquet)",
            [cutoff],
        )
        attrs = None
        if spec.attributes:
            store.con.execute(
                f"COPY (PIVOT attributes ON name USING max(value) GROUP BY customer_id) "
                f"TO '{tmp}/attrs.parquet' (FORMAT parquet)"
            )
            attrs = session.read.parquet(f"{tmp}/attrs.parquet")
            for a in spec.attributes:
                if a not in attrs.columns:
                    from pyspark.sql import functions as F

                    attrs = attrs.withColumn(a, F.lit(None).cast("string"))
        events = session.read.parquet(f"{tmp}/events.parquet")
        result = spark_features(events, spec, cutoff, attrs).toArrow()
    return batch_schema(result.sort_by("customer_id"), spec)


def batch_schema(table: pa.Table, spec: FeatureSpec) -> pa.Table:
    """Spark's vectors in the batch engine's schema (features.batch.to_table): categorical and
    attribute columns dictionary-encoded, every column nullable, so a snapshot written from
    Spark reads back (as pandas categories) as the DuckDB one it replaces."""
    coded = {*CATEGORICAL, *(f"attr_{a}" for a in spec.attributes)}
    text = pa.dictionary(pa.int32(), pa.string())
    return table.cast(pa.schema([pa.field(f.name, text if f.name in coded else f.type)
                                 for f in table.schema]))
