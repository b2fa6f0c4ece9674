"""Ids from typed (Parquet) columns spelt as text files spell them.

pandas writes an integer column with a missing value as float64, so customer 7 arrives as
7.0; DuckDB's text of it is "7.0", which would make another customer than the "7" of a CSV
file or of JSON's 7 (``features.read_jsonl`` spells an integral JSON number without its
fraction). The same rule holds here: an integral number is written as an integer, exactly
when the type holds it exactly (a float64 up to 2^53, a float32 up to 2^24, any decimal);
true/false, a fraction, NaN, infinities, an inexact float and nested values (lists,
structs) have no spelling another file would share, so the row is rejected, as it is for
JSON (``features.normalize_checks``: ``customer_id_typed``, ``event_id_typed``).
"""

from __future__ import annotations

import pyarrow as pa

# The largest integer each float width holds exactly, along with all below it.
EXACT_FLOAT = {16: 2**11, 32: 2**24, 64: 2**53}


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def typed_id(col: str, typ: pa.DataType) -> tuple[str, str] | None:
    """(SQL text of the id, SQL true when it has no text spelling) for a column of ``typ``
    (``col``: quoted), None for text and integer columns, which need neither."""
    typ = _value_type(typ)
    if pa.types.is_floating(typ):
        exact = EXACT_FLOAT[typ.bit_width]
        whole = f"(isfinite({col}) AND {col} = trunc({col}) AND abs({col}) <= {exact})"
        return (f"CASE WHEN {whole} THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({col} AS VARCHAR) END", f"({col} IS NOT NULL AND NOT {whole})")
    if pa.types.is_decimal(typ):
        whole = f"({col} = trunc({col}))"
        return (f"CASE WHEN {whole} THEN CAST(CAST(trunc({col}) AS HUGEINT) AS VARCHAR) "
                f"ELSE CAST({col} AS VARCHAR) END", f"({col} IS NOT NULL AND NOT {whole})")
    if pa.types.is_boolean(typ) or pa.types.is_nested(typ):
        return f"CAST({col} AS VARCHAR)", f"({col} IS NOT NULL)"
    return None


def id_sql(schema: pa.Schema, columns: tuple[str, ...], text: dict[str, str],
           quote: dict[str, str]) -> tuple[str, str]:
    """(SQL text of an id read from ``columns``, the first non-empty one winning, SQL true
    when that one has no text spelling). ``text``: each column's cleaned text as other
    fields read it; ``quote``: each column quoted."""
    texts, typed = [], []
    for column in columns:
        found = typed_id(quote[column], schema.field(column).type)
        texts.append(text[column] if found is None else found[0])
        typed.append("false" if found is None else found[1])
    value = texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"
    if all(t == "false" for t in typed):
        return value, "false"
    whens = " ".join(f"WHEN {t} IS NOT NULL THEN {b}"
                     for t, b in zip(texts, typed, strict=True))
    return value, f"(CASE {whens} ELSE false END)"
