"""The Spark engine's SQL text: names and constants from the spec are never read as syntax."""

from __future__ import annotations

import math
from typing import Any

import pytest

from features import spark_sql as sql

AWKWARD = ["plain", "google.com", "it's", "back\\slash", "\\'", "new\nline", "tab\there",
           "ünïcödé €", "`tick`", "50%_off", "", "$.a.b", "😀"]


def test_plain_text_is_quoted_and_the_rest_is_spelled_in_hex() -> None:
    assert sql.text("google.com") == "'google.com'"
    assert sql.text("it's") == "decode(unhex('69742773'), 'UTF-8')"
    assert sql.name("a.b`c") == "`a.b``c`"
    assert sql.long(86_400_000_000) == "86400000000L"
    assert sql.double(1) == "1.0D" and sql.double(1e-5) == "1e-05D"
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="not a finite number"):
            sql.double(bad)
    assert sql.lookup({}, "x", -1) == "-1"


@pytest.mark.spark
@pytest.mark.parametrize("escaped", ["false", "true"])
def test_spark_reads_back_every_constant_and_name(spark: Any, escaped: str) -> None:
    """Whatever the parser's string-literal setting, each constant is the text it was made of,
    each quoted name finds its column, and doubles stay doubles."""
    before = spark.conf.get("spark.sql.parser.escapedStringLiterals")
    spark.conf.set("spark.sql.parser.escapedStringLiterals", escaped)
    try:
        row = spark.sql("SELECT " + ", ".join(
            f"{sql.text(v)} AS c{i}" for i, v in enumerate(AWKWARD))).first()
        assert [row[f"c{i}"] for i in range(len(AWKWARD))] == AWKWARD
        frame = spark.createDataFrame([("it's", 3.0)], ["a.b`c", "v"])
        code = sql.lookup({"it's": 7, "x": 1}, sql.name("a.b`c"), -1)
        got = frame.selectExpr(f"{sql.name('a.b`c')} AS n", f"{code} AS k",
                               f"v * {sql.double(0.1)} AS d").first()
        assert (got["n"], got["k"]) == ("it's", 7)
        assert got["d"] == 3.0 * 0.1 != 0.3  # a DECIMAL 0.1 would give exactly 0.3
    finally:
        spark.conf.set("spark.sql.parser.escapedStringLiterals", before)
