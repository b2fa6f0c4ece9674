"""Undoing a DuckDB transaction after a failure without hiding the failure."""

from __future__ import annotations

import contextlib

import duckdb


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK the open transaction, if one is. When COMMIT itself failed (a full disk)
    DuckDB has ended it, and the "no transaction is active" error of a plain ROLLBACK would
    replace the one that says what happened."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")
