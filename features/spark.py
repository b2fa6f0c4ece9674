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

from features import spark_sql as sql
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
_DAY = sql.double(DAY_US)
_NAN = "CAST('NaN' AS DOUBLE)"


def _score(s: ScoreSpec) -> str:
    """The event's score by the rule of every engine (features.spec.SCORE_NUMBER, finite):
    the text at the key's path; a non-number is missing, never an error (try_cast)."""
    # Dot notation: Spark reads a name up to the next dot or bracket, quotes and spaces
    # included; features.spec.key_problem keeps out what it cannot read.
    at = f"get_json_object(properties, {sql.text('$.' + '.'.join(s.path))})"
    number = f"(CASE WHEN {at} RLIKE {sql.text(_JAVA_NUMBER)} THEN try_cast({at} AS DOUBLE) END)"
    finite = f"(NOT isnan({number}) AND abs({number}) != CAST('Infinity' AS DOUBLE))"
    return f"CASE WHEN event_type = {sql.text(s.event_type)} AND {finite} THEN {number} END"


def _encoded(events: DataFrame, spec: FeatureSpec, enc: Encoder, cutoff_us: int) -> DataFrame:
    stage = {t: int(enc.stage_of_type[c]) for t, c in enc.etype.items()}
    conv = spec.taxonomy.conversion_event_types
    action = sql.lookup(enc.action, "action", enc.other_action)
    channel = sql.lookup(enc.channel, "coalesce(channel, '')", enc.other_channel)
    # Spelled as the loader stores them; a blank action is then none, as in every engine
    # (features.normalize.normal_action).
    # Only the fields the features read go on: a log's other columns (a `stage` or `session`
    # of its own) would clash with the names given below.
    fields = ["customer_id", "ts", "event_type", "channel", "value", "action",
              *(["properties"] if spec.scores else [])]
    df = (normalised_events(events).selectExpr(*fields, "unix_micros(ts) AS t")
          .where(f"t < {sql.long(cutoff_us)}"))
    df = df.selectExpr(
        "*",
        f"{sql.lookup(enc.etype, 'event_type', -1)} AS etype",
        f"{sql.lookup(stage, 'event_type', -1)} AS stage",
        f"event_type IN ({sql.texts(conv)}) AS conv" if conv else "false AS conv",
        f"{channel} AS chan",
        f"CASE WHEN action IS NULL THEN -1 ELSE {action} END AS act",
        f"{sql.long(cutoff_us)} - t AS age",
        *[f"{_score(s)} AS score_{i}" for i, s in enumerate(spec.scores)],
    )
    return _repeat_conversions(df, spec.taxonomy.repeat_stage_index)


def _repeat_conversions(df: DataFrame, repeat: int) -> DataFrame:
    """The taxonomy's repeat_conversion_stage: a conversion later than the customer's first
    signals that stage when it is further on (as the kernel's loop does)."""
    if repeat < 0:
        return df
    from pyspark.sql import functions as F

    first = "min(CASE WHEN conv THEN t END) OVER (PARTITION BY customer_id)"
    repeat_conv = f"conv AND stage >= 0 AND stage < {repeat} AND t > {first}"
    return df.withColumn("stage", F.expr(f"CASE WHEN {repeat_conv} THEN {repeat} ELSE stage END"))


def _order(spec: FeatureSpec) -> str:
    keys = ["t", "etype", "chan", "act", "value ASC NULLS LAST"]
    return ", ".join(keys + [f"score_{i} ASC NULLS LAST" for i in range(len(spec.scores))])


def _per_event(spec: FeatureSpec) -> list[str]:
    """Aggregates over every event before T (counts, RFM, actions, scores, last touch)."""
    aggs = [
        "min(t) AS first_t",
        "max(CASE WHEN stage >= 0 THEN t END) AS last_beh_t",
        "max(CASE WHEN conv THEN t END) AS last_conv_t",
        "max(CASE WHEN act >= 0 THEN t END) AS last_act_t",
    ]
    money = "(CASE WHEN conv AND value IS NOT NULL THEN value ELSE 0.0D END)"
    for w in spec.windows_days:
        inside = f"age <= {sql.long(w * DAY_US)}"
        aggs += [sql.count(f"{inside} AND stage >= 0", f"events_{w}d"),
                 sql.count(f"{inside} AND conv", f"purchases_{w}d"),
                 f"sum(CASE WHEN {inside} THEN {money} ELSE 0.0D END) AS revenue_{w}d"]
        aggs += [sql.count(f"{inside} AND etype = {k}", f"n_{t}_{w}d")
                 for k, t in enumerate(spec.event_types)]
        aggs += [sql.count(f"{inside} AND stage = {k}", f"st_{st}_{w}d")
                 for k, st in enumerate(spec.stages)]
        aggs += [sql.count(f"{inside} AND chan = {k}", f"ch_{c}_{w}d")
                 for k, c in enumerate(spec.channel_vocab)]
        before = f"age > {sql.long(w * DAY_US)} AND age <= {sql.long(2 * w * DAY_US)}"
        aggs += [sql.count(f"{before} AND stage >= 0", f"_before_{w}d"),
                 sql.count(f"{inside} AND act >= 0", f"actions_{w}d")]
    widest = spec.windows_days[-1]
    aggs += [sql.count(f"age <= {sql.long(widest * DAY_US)} AND act = {k}", f"act_{a}_{widest}d")
             for k, a in enumerate(spec.action_vocab)]
    aggs += [sql.count("stage >= 0", "events_total"), sql.count("conv", "purchases_total"),
             f"sum({money}) AS revenue_total", sql.count("act >= 0", "_n_actions"),
             sql.count("responded", "action_responses")]
    for i, s in enumerate(spec.scores):
        has = f"(etype = {spec.event_types.index(s.event_type)} AND score_{i} IS NOT NULL)"
        aggs += [sql.count(has, f"{s.name}_count"),
                 f"sum(CASE WHEN {has} THEN score_{i} ELSE 0.0D END) "
                 f"AS {sql.name(f'_{s.name}_sum')}",
                 f"max_by(CASE WHEN {has} THEN score_{i} END, CASE WHEN {has} THEN pos END) "
                 f"AS {sql.name(f'{s.name}_last')}"]
        if s.low is not None:
            aggs.append(sql.count(f"{has} AND score_{i} <= {sql.double(s.low)}", f"{s.name}_low"))
    return [*aggs, "max_by(etype, pos) AS _last_etype", "max_by(chan, pos) AS _last_chan"]


def _own_events(df: DataFrame, spec: FeatureSpec) -> DataFrame:
    """The customer's own (stage-bearing) events with the previous one's time and stage, the
    gap to it, and the session and stage run each event belongs to or starts."""
    w = "PARTITION BY customer_id ORDER BY pos"
    gap = sql.long(int(spec.session_gap_minutes * US_PER_MIN))
    return (
        df.where("stage >= 0")
        .selectExpr("*", f"lag(t) OVER ({w}) AS prev_t", f"lag(stage) OVER ({w}) AS prev_stage")
        .selectExpr("*", f"(t - prev_t) / {_DAY} AS gap",
                    f"prev_t IS NULL OR t - prev_t > {gap} AS new_session",
                    "prev_stage IS NULL OR stage != prev_stage AS run_start")
        .selectExpr("*", f"sum(CAST(new_session AS INT)) OVER ({w} ROWS BETWEEN UNBOUNDED "
                         "PRECEDING AND CURRENT ROW) AS session")
    )


def _sessions(own: DataFrame, spec: FeatureSpec) -> DataFrame:
    sessions = own.groupBy("customer_id", "session").agg(*_exprs(
        "min(t) AS s_start", "max(t) AS s_end", "count(*) AS s_size", "max(age) AS s_age"))
    return sessions.groupBy("customer_id").agg(*_exprs(
        "CAST(count(*) AS DOUBLE) AS sessions_total",
        "avg(CAST(s_size AS DOUBLE)) AS session_events_mean",
        f"avg((s_end - s_start) / {sql.double(US_PER_MIN)}) AS session_minutes_mean",
        f"CASE WHEN count(*) > 1 THEN (max(s_start) - min(s_start)) / {_DAY} / (count(*) - 1) "
        "END AS days_between_sessions",
        *[sql.count(f"s_age <= {sql.long(w * DAY_US)}", f"sessions_{w}d")
          for w in spec.windows_days],
    ))


def _stage_and_gaps(own: DataFrame) -> DataFrame:
    return own.groupBy("customer_id").agg(*_exprs(
        "CAST(max_by(stage, pos) AS DOUBLE) AS stage_current",
        "CAST(max(stage) AS DOUBLE) AS stage_furthest",
        "max_by(CASE WHEN run_start THEN t END, CASE WHEN run_start THEN pos END) AS _run_start_t",
        sql.count("stage < prev_stage", "stage_regressions"),
        "avg(gap) AS gap_mean_days",
        "stddev_pop(gap) AS gap_std_days",
        "max(gap) AS gap_max_days",
        "max_by(gap, CASE WHEN gap IS NOT NULL THEN pos END) AS gap_last_days",
    ))


def _exprs(*texts: str) -> list[Column]:
    from pyspark.sql import functions as F

    return [F.expr(t) for t in texts]


def _behavioural(df: DataFrame, spec: FeatureSpec) -> DataFrame:
    """Stage, gap and session families over the customer's own (stage-bearing) events."""
    own = _own_events(df, spec)
    return _stage_and_gaps(own).join(_sessions(own, spec), "customer_id", "outer")


def spark_features(
    events: DataFrame, spec: FeatureSpec, cutoff: datetime, attributes: DataFrame | None = None
) -> DataFrame:
    """One row per customer with an event before ``cutoff``; columns as the batch engine's."""
    from features.batch import micros

    cutoff_us = micros(cutoff)
    df = _encoded(events, spec, Encoder(spec), cutoff_us)
    df = df.selectExpr(
        "*", f"row_number() OVER (PARTITION BY customer_id ORDER BY {_order(spec)}) AS pos")
    next_own = ("min(CASE WHEN stage >= 0 THEN t END) OVER (PARTITION BY customer_id "
                "ORDER BY pos ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)")
    window = sql.long(int(spec.response_window_hours * 3_600_000_000))
    df = df.selectExpr("*", f"act >= 0 AND {next_own} IS NOT NULL "
                            f"AND {next_own} - t <= {window} AS responded")
    out = (
        df.groupBy("customer_id")
        .agg(*_exprs(*_per_event(spec)))
        .join(_behavioural(df, spec), "customer_id", "left")
    )
    return _finish(out, spec, cutoff_us, attributes)


def _derived(spec: FeatureSpec, cutoff_us: int) -> dict[str, str]:
    """The features computed from the aggregates, by name."""
    def days_since(col: str) -> str:
        return f"({sql.long(cutoff_us)} - {col}) / {_DAY}"

    def ratio(num: str, den: str) -> str:
        return f"CASE WHEN {den} > 0 THEN {num} / {den} END"

    derived = {
        "tenure_days": days_since("first_t"),
        "recency_days": days_since("last_beh_t"),
        "purchase_recency_days": days_since("last_conv_t"),
        "avg_order_value": ratio("revenue_total", "purchases_total"),
        "days_in_stage": days_since("_run_start_t"),
        "days_since_action": days_since("last_act_t"),
        "action_response_rate": ratio("action_responses", "_n_actions"),
    }
    for w in spec.windows_days:
        derived[f"trend_events_{w}d"] = f"(events_{w}d + 1.0D) / (_before_{w}d + 1.0D)"
    for s in spec.scores:
        derived[f"{s.name}_mean"] = ratio(sql.name(f"_{s.name}_sum"), sql.name(f"{s.name}_count"))
    return derived


def _finish(
    out: DataFrame, spec: FeatureSpec, cutoff_us: int, attributes: DataFrame | None
) -> DataFrame:
    derived = _derived(spec, cutoff_us)
    zero_if_missing = {
        "stage_regressions",
        "sessions_total",
        *[f"sessions_{w}d" for w in spec.windows_days],
    }
    cols = ["customer_id"]
    for name in layout(spec).names:
        col = derived.get(name, sql.name(name))
        if name in zero_if_missing:
            col = f"coalesce({col}, 0.0D)"
        if name in ("stage_current", "stage_furthest"):
            col = f"coalesce({col}, -1.0D)"
        # Undefined numbers are NaN, as in the kernel (Spark's conditionals give null).
        cols.append(f"coalesce(CAST({col} AS DOUBLE), {_NAN}) AS {sql.name(name)}")
    cols += [
        f"CASE WHEN _last_etype >= 0 THEN element_at(array({sql.texts(spec.event_types)}), "
        "_last_etype + 1) END AS last_event_type",
        f"element_at(array({sql.texts(spec.channel_vocab)}), _last_chan + 1) AS last_channel",
    ]
    result = out.selectExpr(*cols)
    if spec.attributes:
        if attributes is None:
            result = result.selectExpr("*", *[f"CAST(NULL AS STRING) AS {sql.name(f'attr_{a}')}"
                                              for a in spec.attributes])
        else:
            picks = [f"CAST({sql.name(a)} AS STRING) AS {sql.name(f'attr_{a}')}"
                     for a in spec.attributes]
            result = result.join(attributes.selectExpr("customer_id", *picks), "customer_id",
                                 "left")
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
