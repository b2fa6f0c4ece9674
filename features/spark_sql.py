"""Spark SQL text for the Spark engine's expressions (features.spark).

The feature query has a few hundred columns. Built with PySpark's Column functions, each
``F.col``, ``F.lit`` or ``F.when`` is a call into the JVM (~3 ms here), and the query took
~5 s to describe before Spark did any work; written as SQL text, each column is one call.
These helpers spell names and constants so that no text from the spec is read as syntax.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

_PLAIN = re.compile(r"[A-Za-z0-9_.:$ -]*")


def name(column: str) -> str:
    """A column by its exact name: a dot, space or backtick in a name from the spec (a channel
    such as google.com, an attribute) is part of the name, not syntax."""
    return "`" + column.replace("`", "``") + "`"


def text(value: str) -> str:
    """A string constant. Plain text is quoted; anything else is spelled in hex, which no parser
    setting (spark.sql.parser.escapedStringLiterals) reads differently. The optimizer folds
    either to the same literal."""
    if _PLAIN.fullmatch(value):
        return f"'{value}'"
    return f"decode(unhex('{value.encode('utf-8').hex()}'), 'UTF-8')"


def texts(values: Iterable[str]) -> str:
    return ", ".join(text(v) for v in values)


def long(value: int) -> str:
    """A BIGINT constant (microsecond times overflow INT)."""
    return f"{int(value)}L"


def double(value: float) -> str:
    """A DOUBLE constant: a bare ``1.0`` is a DECIMAL in Spark SQL, whose sums and ratios
    would differ from the other engines' doubles."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return f"{float(value)!r}D"


def lookup(mapping: Mapping[str, int], column: str, default: int) -> str:
    """The code ``mapping`` gives the value of ``column``, or ``default``."""
    if not mapping:
        return str(default)
    pairs = ", ".join(f"{text(k)}, {int(v)}" for k, v in mapping.items())
    return f"coalesce(map({pairs})[{column}], {int(default)})"


def count(condition: str, alias: str) -> str:
    """How many rows meet ``condition``, as a double (the engines' counts are doubles)."""
    return f"sum(CASE WHEN {condition} THEN 1.0D ELSE 0.0D END) AS {name(alias)}"
