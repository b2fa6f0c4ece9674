"""Customer attributes in the event store: loaded as latest values, read as codes by key."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from features.errors import StoreError
from features.normalize import quote as quote_ident
from features.normalize import sql_str as sql_literal


def load_attributes(con: duckdb.DuckDBPyConnection, table: pa.Table,
                    id_column: str = "customer_id") -> int:
    """Upsert customer attributes (every column but the id); returns customers updated.

    Attributes are kept as their latest value; features treat them as static, so load
    only attributes known from the customer's start (region, device, acquisition channel).
    """
    if id_column not in table.column_names:
        raise StoreError(
            f"attributes: no {id_column!r} column; columns are {table.column_names}"
        )
    names = [c for c in table.column_names if c != id_column]
    if not names:
        raise StoreError("attributes: the file has no attribute columns besides the id")
    con.register("incoming_attrs", table)
    try:
        cols = ", ".join(
            f"CAST({quote_ident(n)} AS VARCHAR) AS {quote_ident(n)}" for n in names
        )
        con.execute("BEGIN TRANSACTION")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE staged_attrs AS
            UNPIVOT (SELECT CAST({quote_ident(id_column)} AS VARCHAR) AS customer_id, {cols}
                     FROM incoming_attrs WHERE {quote_ident(id_column)} IS NOT NULL)
            ON COLUMNS(* EXCLUDE (customer_id)) INTO NAME name VALUE value""")
        con.execute(
            "DELETE FROM attributes a USING staged_attrs s "
            "WHERE a.customer_id = s.customer_id AND a.name = s.name"
        )
        con.execute(
            "INSERT INTO attributes SELECT customer_id, name, value FROM staged_attrs"
        )
        row = con.execute(
            "SELECT count(DISTINCT customer_id) FROM staged_attrs"
        ).fetchone()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("incoming_attrs")
        con.execute("DROP TABLE IF EXISTS staged_attrs")
    return int(row[0]) if row else 0


def attributes_by_key(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]
                      ) -> dict[str, tuple[np.ndarray, pa.Array]]:
    """Per attribute: codes indexed by customer key (-1 unknown) and their dictionary."""
    size_row = con.execute(
        "SELECT coalesce(max(customer_key), -1) + 1 FROM customers"
    ).fetchone()
    size = int(size_row[0]) if size_row else 0
    out: dict[str, tuple[np.ndarray, pa.Array]] = {}
    if not names:
        return out
    picks = ", ".join(
        f"max(a.value) FILTER (WHERE a.name = {sql_literal(n)}) AS a{i}"
        for i, n in enumerate(names)
    )
    got = con.execute(
        f"SELECT c.customer_key AS k, {picks} FROM attributes a "
        "JOIN customers c USING (customer_id) GROUP BY c.customer_key"
    ).to_arrow_table()
    keys = got["k"].to_numpy()
    for i, name in enumerate(names):
        encoded = got[f"a{i}"].combine_chunks().dictionary_encode()
        codes = np.full(size, -1, np.int32)
        idx = encoded.indices
        missing = idx.is_null().to_numpy(zero_copy_only=False)
        codes[keys] = np.where(missing, -1, idx.fill_null(0).to_numpy())
        out[name] = (codes, encoded.dictionary)
    return out
