"""Spark's input step: the fields of a raw event log spelled as the file loader stores them.

Spark reads Parquet in the event contract, which need not have gone through `journey ingest`
(features/normalize.py): a channel written "Email ", an event type "Add to Cart", an action
"" or " discount_email ", a NaN value would otherwise count as other channels, types and
actions than the loader's, and NaN revenue. On a store export every rule changes nothing.
The loader's checks (rows it rejects: negative values, missing ids...) are not applied here:
docs/features.md says what Spark's input must then be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.schema import DEFAULT_CHANNEL
from features.taxonomy import TRIMMED

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# features.taxonomy's separators, spelled out: Java's \s also matches a vertical tab, which
# the loader's RE2 class (and Python's twin) does not.
_SEPARATORS = "[\\t\\n\\f\\r \\-]+"


def _clean(name: str) -> Column:
    """The loader's clean_text: surrounding spaces, tabs and line breaks trimmed; blank is
    missing."""
    from pyspark.sql import functions as F  # noqa: N812 (the PySpark idiom, as in spark.py)

    # SQL's TRIM(BOTH ... FROM ...): the two-argument trim() is deprecated in Spark 4.
    chars = TRIMMED.encode("unicode_escape").decode("ascii")  # "' \t\n\r'" in SQL
    text = F.expr(f"trim(BOTH '{chars}' FROM CAST(`{name}` AS STRING))")
    return F.when(text != "", text)


def normalised_events(events: DataFrame) -> DataFrame:
    """``events`` with event_type, channel, action and value as the loader stores them."""
    from pyspark.sql import functions as F  # noqa: N812 (the PySpark idiom, as in spark.py)

    value = F.col("value").cast("double")
    return events.withColumns({
        "event_type": F.lower(F.regexp_replace(_clean("event_type"), _SEPARATORS, "_")),
        "channel": F.lower(F.coalesce(_clean("channel"), F.lit(DEFAULT_CHANNEL))),
        "action": _clean("action"),
        "value": F.when(~F.isnan(value), value),
    })
