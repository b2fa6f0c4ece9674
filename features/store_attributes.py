"""Customer attributes in the event store: loaded as latest values, read as codes by key.

A file is read as text (ids such as ``00001`` keep their zeros, as ingest keeps them), so its
ids join the events' customer ids. Within one load the last row of a customer wins; rows
without an id are counted and located, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import StoreError
from features.normalize import clean_text
from features.normalize import quote as quote_ident
from features.normalize import sql_str as sql_literal
from features.normalize_ids import typed_id
from features.read_base import UTF8_TEXT, TextFormat
from features.readers import LINE_COLUMN, Reject, read_batches, source_files
from features.transactions import rollback

ROW_COLUMN = "_row"  # position over every file read: a customer's last row wins
SOURCE_COLUMN = "_source"
INTERNAL_COLUMNS = (LINE_COLUMN, ROW_COLUMN, SOURCE_COLUMN)
SHOWN = 5  # lines without an id, and unknown ids, a report names


@dataclass(frozen=True)
class AttributeLoad:
    """What one load of customer attributes did."""

    customers: int  # distinct customer ids loaded
    known: int  # of them, customers the store holds events of
    unknown_ids: tuple[str, ...]  # the first few ids the store holds no events of
    duplicates: int  # rows replaced by a later row of the same customer
    missing_id: int  # rows without a customer id: not loaded
    missing_id_at: tuple[tuple[str, int], ...]  # (source, line) of the first few

    @property
    def unknown(self) -> int:
        return self.customers - self.known


def read_attribute_file(path: Path, text: TextFormat = UTF8_TEXT
                        ) -> tuple[pa.Table, list[Reject]]:
    """Every row of a CSV/TSV/JSON lines/Parquet file or directory with its source and line
    (text stays text: no type inference), and the rows that could not be parsed. ``text``: the
    delimiter and encoding of CSV/TSV files."""
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    for file in source_files(path):
        for raw in read_batches(file, text=text):
            rejects += raw.rejects
            source = pa.array([str(file)] * raw.table.num_rows, pa.string())
            tables.append(raw.table.append_column(SOURCE_COLUMN, source))
    if not tables:
        return pa.table({}), rejects
    if any(t.schema != tables[0].schema for t in tables):
        # Files typed apart (an id int64 in one Parquet file, text in another) still stack.
        tables = [pa.table({n: (t[n] if n in INTERNAL_COLUMNS else t[n].cast(pa.string()))
                            for n in t.column_names}) for t in tables]
    table = pa.concat_tables(tables, promote_options="default")
    return table.append_column(ROW_COLUMN, pa.array(range(table.num_rows), pa.int64())), rejects


def _with_positions(table: pa.Table) -> pa.Table:
    """The internal columns a table read elsewhere (pq.read_table) lacks: its row order."""
    n = table.num_rows
    if ROW_COLUMN not in table.column_names:
        table = table.append_column(ROW_COLUMN, pa.array(range(n), pa.int64()))
    if LINE_COLUMN not in table.column_names:
        table = table.append_column(LINE_COLUMN, pa.array(range(1, n + 1), pa.int64()))
    if SOURCE_COLUMN not in table.column_names:
        table = table.append_column(SOURCE_COLUMN, pa.array([""] * n, pa.string()))
    return table


def load_attributes(con: duckdb.DuckDBPyConnection, table: pa.Table,
                    id_column: str = "customer_id") -> AttributeLoad:
    """Upsert customer attributes (every column but the id); a customer's last row wins.

    Attributes are kept as their latest value; features treat them as static, so load
    only attributes known from the customer's start (region, device, acquisition channel).
    """
    columns = [c for c in table.column_names if c not in INTERNAL_COLUMNS]
    if id_column not in columns:
        raise StoreError(f"attributes: no {id_column!r} column; columns are {columns}")
    names = [c for c in columns if c != id_column]
    if not names:
        raise StoreError("attributes: the file has no attribute columns besides the id")
    con.register("incoming_attrs", _with_positions(table))
    try:
        con.execute("BEGIN TRANSACTION")
        _stage(con, id_column, names, table.schema.field(id_column).type)
        result = _summarize(con)
        con.execute(
            "DELETE FROM attributes a USING staged_attrs s "
            "WHERE a.customer_id = s.customer_id AND a.name = s.name"
        )
        con.execute("INSERT INTO attributes SELECT customer_id, name, value FROM staged_attrs")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    finally:
        con.unregister("incoming_attrs")
        con.execute("DROP TABLE IF EXISTS read_attrs")
        con.execute("DROP TABLE IF EXISTS staged_attrs")
    return result


def _stage(con: duckdb.DuckDBPyConnection, id_column: str, names: list[str],
           id_type: pa.DataType) -> None:
    """read_attrs: every row, id and values as trimmed text (blank is missing, as in ingest;
    a whole number in a float id column as the integer events spell it: 7.0 is customer
    "7"); staged_attrs: (customer, name, value) of each customer's last row."""
    typed = typed_id(quote_ident(id_column), id_type)
    customer = clean_text(quote_ident(id_column) if typed is None else typed[0])
    values = ", ".join(f"{clean_text(quote_ident(n))} AS {quote_ident(n)}" for n in names)
    internal = ", ".join(INTERNAL_COLUMNS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE read_attrs AS
        SELECT {customer} AS customer_id, {internal}, {values}
        FROM incoming_attrs""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE staged_attrs AS
        UNPIVOT (SELECT * EXCLUDE ({internal}) FROM read_attrs WHERE customer_id IS NOT NULL
                 QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY {ROW_COLUMN} DESC)
                         = 1)
        ON COLUMNS(* EXCLUDE (customer_id)) INTO NAME name VALUE value""")


def _summarize(con: duckdb.DuckDBPyConnection) -> AttributeLoad:
    row = con.execute("""
        SELECT count(*) FILTER (WHERE customer_id IS NULL),
               count(customer_id) - count(DISTINCT customer_id),
               count(DISTINCT customer_id),
               count(DISTINCT customer_id) FILTER (WHERE customer_id IN
                                                   (SELECT customer_id FROM customers))
        FROM read_attrs""").fetchone()
    missing, duplicates, customers, known = (int(v) for v in row) if row else (0, 0, 0, 0)
    missing_at = con.execute(
        f"SELECT {SOURCE_COLUMN}, {LINE_COLUMN} FROM read_attrs WHERE customer_id IS NULL "
        f"ORDER BY {ROW_COLUMN} LIMIT {SHOWN}").fetchall()
    unknown = con.execute(f"""
        SELECT customer_id FROM read_attrs r WHERE customer_id IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM customers c WHERE c.customer_id = r.customer_id)
        GROUP BY customer_id ORDER BY min({ROW_COLUMN}) LIMIT {SHOWN}""").fetchall()
    return AttributeLoad(
        customers=customers, known=known, unknown_ids=tuple(str(r[0]) for r in unknown),
        duplicates=duplicates, missing_id=missing,
        missing_id_at=tuple((str(s), int(line)) for s, line in missing_at),
    )


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
        # The values in sorted order: the GROUP BY's row order, and so the order of first
        # appearance, changes from run to run, and with it the order of a snapshot's
        # dictionaries and of the KPI rows by attribute.
        order = pc.array_sort_indices(encoded.dictionary).to_numpy()
        rank = np.empty(len(order), np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        codes = np.full(size, -1, np.int32)
        idx = encoded.indices
        missing = idx.is_null().to_numpy(zero_copy_only=False)
        codes[keys] = np.where(missing, -1, rank[idx.fill_null(0).to_numpy()] if len(rank)
                               else -1)
        out[name] = (codes, encoded.dictionary.take(pa.array(order)))
    return out


def attributes_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, int | str] | None:
    """What the attributes table holds: its rows and an order-free hash of them (None while it
    is empty). A load that changes any value, adds or removes one changes it; one scan of a
    table of customers x attributes rows, small beside the events. Loads keep (customer_id,
    name) unique (a load replaces a customer's value), so XOR cannot cancel equal rows.
    DuckDB's hash may differ between DuckDB versions: a snapshot is then computed again."""
    try:
        row = con.execute(
            "SELECT count(*), bit_xor(hash(customer_id, name, value)) FROM attributes"
        ).fetchone()
    except duckdb.CatalogException:  # a store from before attributes existed
        return None
    if not row or not row[0]:
        return None
    return {"rows": int(row[0]), "hash": f"{int(row[1]):016x}"}
